# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 06 · Named-entity recognition and question answering
#
# Chapter 05 read a whole text and gave it one label. Many tasks need an answer *per token*
# instead: **named-entity recognition (命名实体识别)**, NER, labels every word as part of a
# person, an organisation, a place, a date, a product — or nothing; **extractive question
# answering (抽取式问答)** points at the span of a passage that answers a question. Both put a
# tiny head on the same pretrained encoder and read its vector for every token: NER is a
# **token classification (词元分类)** task, and QA nearly one — it scores every token as a
# possible start and end of the answer.
#
# **Learning objectives.** After this chapter you can
# 1. write BIO tags, and align word-level tags with word pieces (the first piece carries the
#    tag, the others are ignored by the loss) — and say why;
# 2. fine-tune a token classifier and read a per-entity precision/recall/F1 report;
# 3. turn (question, context) pairs into windows with offsets and a stride, and find the best
#    answer span from start and end scores — by hand and with `labkit.qa`;
# 4. turn that span back into text that neither starts nor ends inside a word;
# 5. score QA with exact match and F1, and read an n-best list;
# 6. analyse errors: which entity types get confused, which kinds of question fail.
#
# **Prerequisites.** Chapters 04–05.
#
# **Estimated time:** about 90 minutes to read and do (the exercises and the open experiment
# included); the code runs in about 35 s at cpu scale with a build present (measured on 2 cores; `run_times.json`).
#
# **Source documents.** doc 003 §3.4 and §4.3.2 (named-entity recognition: learn entity
# boundaries and types by fine-tuning), §4.3.3 (question answering), §5.4 (a per-entity
# precision/recall/F1 report), §6.1 (question answering in customer service); doc 004 §9.3
# (precision, recall, F1); doc 002 §3.4 and doc 001 §6.1 (question-answering systems as a
# downstream task).
#
# *Stored outputs: `LAB_SCALE=cpu`, with a cpu build present.*

# %% tags=["nbval-skip"]
# Run this cell first on Colab (or in any fresh Python): it installs the lab when it is missing.
import importlib.util
import os
import subprocess
import sys

LAB_REPO = ""  # ← paste the git URL of your course's copy of this repository
LAB_REPO = LAB_REPO or os.environ.get("LAB_REPO", "")
if importlib.util.find_spec("labkit") is None:
    if not LAB_REPO:
        raise RuntimeError("labkit is not installed here. Set LAB_REPO in this cell to the git URL of your "
                           "course's copy of the Foundation Model Lab (ask your teacher), then run it again.")
    folder = "foundation-model-lab"
    if not os.path.isdir(folder):
        subprocess.run(["git", "clone", "--depth", "1", LAB_REPO, folder], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{folder}[lab]"], check=True)
    sys.path.insert(0, os.path.abspath(folder))  # let this running kernel import it at once
    importlib.invalidate_caches()
print("labkit is installed:", importlib.util.find_spec("labkit") is not None)

# %%
import json
import os
from collections import Counter, defaultdict
from dataclasses import replace

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
import transformers
from bertviz import head_view
from IPython.display import HTML, display

from labkit import metrics as M
from labkit.build import SCALES, default_output_dir, ensure_pretrained
from labkit.data import load_task
from labkit.env import best_device
from labkit.finetune import align_labels, answer_questions, finetune_qa, finetune_tokens, predict_tags
from labkit.folders import load_model
from labkit.heads import QuestionAnswerer, TokenClassifier
from labkit.qa import best_answers, postprocess, prepare_train_features, word_edges
from labkit.training import seed_everything
from labkit.viz import attention_heads, encoder_attentions, plot_history

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
SCALE = SCALES[LAB_SCALE]  # model and training sizes of `labkit build` at this scale
BUILD = default_output_dir(LAB_SCALE)  # where `labkit build` saved its models
REPORT = json.loads((BUILD / "report.json").read_text(encoding="utf-8"))  # what the build measured
seed_everything(0)
device = best_device()
plt.rcParams["figure.dpi"] = 80
transformers.logging.set_verbosity_error()  # keep the outputs short: no loading reports
transformers.utils.logging.disable_progress_bar()
print(f"LAB_SCALE = {LAB_SCALE!r}, device = {device}")

# %%
mlm, tokenizer = ensure_pretrained(LAB_SCALE, progress=False)
ner = load_task("ner", size=LAB_SCALE)
TAGS = ner["train"].features["ner_tags"].feature.names
print(f"NER: {len(ner['train'])} train / {len(ner['test'])} test sentences; tags {TAGS}")

# %% [markdown]
# ## 1 · Entities as BIO tags
#
# An entity can span several words ("Pioneer Bank", "10 February 1962"). NER is therefore
# **sequence labelling (序列标注)**: one tag per word, read together. The **BIO** scheme
# tags each word `B-TYPE` (begins an entity), `I-TYPE` (inside one, continuing the previous
# word's entity) or `O` (outside any entity). TinyWorld has five types: PER, ORG, LOC, DATE,
# PRODUCT, so $2 \times 5 + 1 = 11$ tags. `labkit.metrics.extract_entities` reads the entities
# back from a tag sequence.

# %%
example = ner["train"][3]
words, tags = example["tokens"], [TAGS[t] for t in example["ner_tags"]]
print("  ".join(f"{w}/{t}" for w, t in zip(words, tags)))
entities = M.extract_entities(tags)
print("entities:", [(kind, " ".join(words[a:b + 1])) for kind, a, b in entities])
assert len(TAGS) == 2 * 5 + 1 and all(tags[a].startswith("B-") for _, a, _ in entities)

# %% [markdown]
# ## 2 · Word pieces and label alignment
#
# The tags belong to *words*, but the model reads *word pieces*: a rare word becomes several
# pieces (`##` marks a continuation). The labels must be moved from words to pieces —
# **label alignment (标签对齐)**. `labkit.finetune.align_labels` tokenises pre-split words
# and gives the **first** piece of each word that word's tag; the other pieces and the special
# tokens get `-100`, which the loss ignores. Each word is then predicted exactly once.
#
# Why not copy the tag onto every piece? Then a word cut into four pieces would weigh four
# times as much in the loss as a word that stays whole — and rare names, which are cut most,
# would dominate — and at prediction time one word would get several tags that may
# disagree. The first piece loses nothing by speaking for the whole word: through attention
# its vector already sees the other pieces. Here is a sentence with a word that falls into
# several pieces:

# %%
def split_words(words: list[str]) -> list[str]:
    """The words of a sentence that the tokenizer cuts into more than one piece."""
    return [w for w in words if len(tokenizer.tokenize(w)) > 1]


shown = next(r for r in ner["train"] if split_words(r["tokens"]) and any(r["ner_tags"]))
aligned = align_labels(tokenizer, [shown["tokens"]], [shown["ner_tags"]])
pieces = tokenizer.convert_ids_to_tokens(aligned["input_ids"][0])
word_ids, labels = aligned["word_ids"][0], aligned["labels"][0]
print(f"{'piece':>12} {'word id':>7} {'word':>12} {'label':>10}")
for piece, w, label in zip(pieces, word_ids, labels):
    word = shown["tokens"][w] if w is not None else ""
    print(f"{piece:>12} {str(w):>7} {word:>12} {TAGS[label] if label != -100 else '-100':>10}")

# %%
labelled = [i for i, label in enumerate(labels) if label != -100]
assert len(labelled) == len(shown["tokens"])  # one prediction per word
assert all(word_ids[i] != word_ids[i - 1] for i in labelled)  # ... made at the word's first piece
assert [labels[i] for i in labelled] == shown["ner_tags"]  # carrying the word's tag

# %% [markdown]
# ## 3 · Fine-tuning the token classifier
#
# `TokenClassifier` is the twin of transformers' `BertForTokenClassification`: every token's
# final vector → dropout → a linear layer with 11 outputs. `finetune_tokens` aligns the labels
# as above, trains with cross-entropy over the labelled pieces, and scores the test split at
# the **entity** level: an entity counts as found only if both its boundaries and its type are
# right (CoNLL's rule, as in seqeval).

# %%
seed_everything(0)
ner_model = TokenClassifier.from_pretrained(mlm, num_labels=len(TAGS), id2label=dict(enumerate(TAGS)))
ner_run = finetune_tokens(ner_model, tokenizer, ner, replace(SCALE.finetune["ner"], progress=False))
plot_history(ner_run.history, "entity_f1", smooth=10)
plt.title("fine-tuning the NER tagger")
plt.show()
print(ner_run.report)

# %% [markdown]
# The report (doc 003 §5.4 prints one like it) gives, per entity type,
# **precision (精确率)** $P = TP/(TP+FP)$ — the share of predicted entities that are right —
# **recall (召回率)** $R = TP/(TP+FN)$ — the share of gold entities found — their harmonic
# mean $F_1 = 2PR/(P+R)$, and the support (gold entities of that type); the last line pools
# the counts of all types, a **micro average (微平均)**. Recompute it from the predictions:

# %%
test_words = list(ner["test"]["tokens"])
gold_tags = [[TAGS[t] for t in row] for row in ner["test"]["ner_tags"]]
pred_tags = predict_tags(ner_model, tokenizer, test_words)
report = M.entity_scores(gold_tags, pred_tags)
assert abs(report.f1 - ner_run.metrics["entity_f1"]) < 1e-12
gold_set = {(s, *e) for s, row in enumerate(gold_tags) for e in M.extract_entities(row)}
pred_set = {(s, *e) for s, row in enumerate(pred_tags) for e in M.extract_entities(row)}
tp = len(gold_set & pred_set)
assert report.support == len(gold_set)
assert np.isclose(report.precision, tp / max(len(pred_set), 1)) and np.isclose(report.recall, tp / len(gold_set))
for kind, (p, r, f1, support) in report.per_type.items():
    assert np.isclose(f1, 2 * p * r / (p + r) if p + r else 0.0)
print(f"{tp} of {len(gold_set)} gold entities found exactly; {len(pred_set) - tp} predicted entities are wrong")
built_ner = REPORT["models"]["ner"]["metrics"]
print(f"entity F1 here {report.f1:.3f}; labkit build's tagger, trained with the same settings: {built_ner['entity_f1']:.3f}")

# %%
assert abs(report.f1 - built_ner["entity_f1"]) < 0.03  # this run reproduces the build's tagger
if LAB_SCALE == "cpu":  # the figure the text quotes, with its tolerance
    assert report.f1 > 0.95 and report.precision > 0.95 and report.recall > 0.95
assert SCALES["ci"].finetune["ner"].steps < SCALES["cpu"].finetune["ner"].steps

# %% [markdown]
# At the cpu scale the tagger finds almost every entity: precision, recall and entity F1 are
# all above 0.95, as in the build's report. (At `LAB_SCALE=ci` the pretrained encoder has
# read less text and the tagger trains for fewer steps, so its F1 is much lower and the
# report shows far more errors.)

# %% [markdown]
# **Try it.** Type a sentence; the tagger colours the entities it finds (words are split on
# spaces and punctuation, as in TinyWorld).

# %%
COLOURS = {"PER": "#f4cccc", "ORG": "#cfe2f3", "LOC": "#d9ead3", "DATE": "#fff2cc", "PRODUCT": "#ead1dc"}


def show_entities(words: list[str], tags: list[str]) -> HTML:
    html = []
    for word, tag in zip(words, tags):
        kind = tag[2:] if tag != "O" else None
        style = f"background:{COLOURS[kind]};padding:2px" if kind else ""
        html.append(f"<span style='{style}' title='{tag}'>{word}</span>" + (f"<sub>{tag}</sub>" if kind else ""))
    return HTML(" ".join(html))


def tag_sentence(text: str = "Emma Sato joined Pioneer Bank in Chengdu on 3 March 2015."):
    words = text.replace(".", " .").replace(",", " ,").replace("?", " ?").split()
    display(show_entities(words, predict_tags(ner_model, tokenizer, [words])[0]))


widgets.interact(tag_sentence, text=widgets.Text(value="Emma Sato joined Pioneer Bank in Chengdu on 3 March 2015.",
                                                 continuous_update=False, layout=widgets.Layout(width="80%")));

# %% [markdown]
# ## 4 · Error analysis: which entity types get confused?
#
# F1 says how often the tagger is wrong, not *how*. At the cpu scale there are only a handful
# of errors, so look closely at the few cells off the diagonal below. For every gold entity,
# look at what the prediction did with its words: the same span with the right type (correct), the same span
# with another type (a type confusion), an overlapping span with other boundaries (a boundary
# error), or nothing at all (missed).

# %%
KINDS = sorted(COLOURS)
OUTCOMES = KINDS + ["boundary", "missed"]
outcome = np.zeros((len(KINDS), len(OUTCOMES)), dtype=int)  # rows: gold type
for s, kind, a, b in sorted(gold_set):
    predicted = [(k, c, d) for s2, k, c, d in pred_set if s2 == s and c <= b and a <= d]  # overlapping predictions
    same_span = [k for k, c, d in predicted if (c, d) == (a, b)]
    column = same_span[0] if same_span else "boundary" if predicted else "missed"
    outcome[KINDS.index(kind), OUTCOMES.index(column)] += 1

fig, ax = plt.subplots(figsize=(6.5, 3.6))
ax.imshow(outcome / outcome.sum(1, keepdims=True).clip(1), cmap="Blues", vmin=0, vmax=1)
for (r, c), n in np.ndenumerate(outcome):
    ax.text(c, r, n, ha="center", va="center", fontsize=9)
ax.set_xticks(range(len(OUTCOMES)), OUTCOMES, rotation=30)
ax.set_yticks(range(len(KINDS)), KINDS)
ax.set_xlabel("what the prediction did")
ax.set_ylabel("gold entity type")
ax.set_title("NER outcomes per gold entity (diagonal = correct)")
plt.show()

# %%
assert outcome.sum() == report.support  # every gold entity has exactly one outcome
assert np.trace(outcome[:, :len(KINDS)]) == tp  # the diagonal holds exactly the correct ones
for kind in KINDS:
    if kind in report.per_type:
        assert outcome[KINDS.index(kind)].sum() == report.per_type[kind][3]  # row sums = support
if LAB_SCALE == "cpu":
    assert outcome.sum() - tp <= 0.05 * outcome.sum()  # "only a handful of errors"

# %% [markdown]
# ## 5 · Extractive question answering
#
# **Question answering (问答)** comes in several kinds; in SQuAD-style extractive QA
# (doc 003 §4.3.3) the answer is a **span (跨度)** of the context: a run of its tokens, from a
# start token to an end token. The model reads
# `[CLS] question [SEP] context [SEP]` and gives every token $i$ a start score $s_i$ and an end
# score $e_i$; a span $(i, j)$ scores $s_i + e_j$, with $i \le j$, both inside the context, and
# at most `max_answer_length` tokens. Training is cross-entropy on the true start and end
# positions.

# %%
qa = load_task("qa", size=LAB_SCALE)
row = qa["test"][0]
print("question:", row["question"])
print("context: ", row["context"])
print("answer:  ", row["answers"])
start = row["answers"]["answer_start"][0]
assert row["context"][start:start + len(row["answers"]["text"][0])] == row["answers"]["text"][0]

# %% [markdown]
# ### Windows, offsets and the stride
#
# A context longer than the model's window is cut into overlapping windows ("features") — a
# **sliding window (滑动窗口)**; two neighbouring windows share `stride` context tokens (the
# **stride (步长)** here is the overlap, as in transformers' tokenizers), so an answer cut by
# one window's edge lies whole in the next. Each feature keeps the
# **character offsets (字符偏移)** of its context tokens — where each token starts and ends in
# the context string — which turn a token span back into text. Here with a deliberately tiny
# window:

# %%
long_row = max(qa["test"], key=lambda r: len(r["context"]))
small = prepare_train_features(tokenizer, [long_row["question"]], [long_row["context"]], [long_row["answers"]],
                               max_length=48, stride=12)
context_ids = []  # per window: the token ids of its context part
for f, offsets in enumerate(small["offset_mapping"]):
    inside = [i for i, o in enumerate(offsets) if o is not None]
    context_ids.append([small["input_ids"][f][i] for i in inside])
    a, b = offsets[inside[0]][0], offsets[inside[-1]][1]
    s, e = small["start_positions"][f], small["end_positions"][f]
    answer = long_row["context"][offsets[s][0]:offsets[e][1]] if s else "(not inside this window)"
    print(f"window {f}: characters {a:>3}–{b:<3} | answer tokens {s}–{e}: {answer}")

# %%
for left, right in zip(context_ids, context_ids[1:]):
    assert left[-12:] == right[:12]  # neighbours share exactly `stride` context tokens
inside = [f for f in range(len(context_ids)) if small["start_positions"][f]]
assert inside, "the answer lies whole in at least one window"
for f in inside:
    s, e = small["start_positions"][f], small["end_positions"][f]
    assert long_row["context"][small["offset_mapping"][f][s][0]:small["offset_mapping"][f][e][1]] == long_row["answers"]["text"][0]
print(f"{len(context_ids)} windows; the answer is whole in window(s) {inside}")

# %% [markdown]
# ### The QA model
#
# `labkit build` fine-tuned a `QuestionAnswerer` (the twin of `BertForQuestionAnswering`) at
# this scale; we load it. If there is no build yet, a shorter fine-tuning run here stands in.

# %%
QA_FROM_BUILD = (BUILD / "qa" / "model.safetensors").is_file()
if QA_FROM_BUILD:
    qa_model, _ = load_model(BUILD / "qa")
    print("loaded the QA model of `labkit build`")
else:
    seed_everything(0)
    qa_model = QuestionAnswerer.from_pretrained(mlm)
    finetune_qa(qa_model, tokenizer, qa, replace(SCALE.finetune["qa"], steps=min(SCALE.finetune["qa"].steps, 300), progress=False),
                max_length=SCALE.tasks["qa"].max_length)
    print("no build found: fine-tuned a QA model here")
qa_model = qa_model.to(device).eval()

# %% [markdown]
# ### Finding the best span, by hand
#
# The search is a double loop: every start $i$ and end $j \ge i$ inside the context, no longer
# than `max_answer_length`, scored $s_i + e_j$. Write it plainly for one example, then compare
# with `labkit.qa.postprocess`, which does the same with a (T, T) score matrix and also merges
# the windows of long contexts. (`postprocess` then does one more thing by default, which the
# next part explains; `snap_to_words=False` switches it off for this comparison.)

# %%
def span_logits(questions: list[str], contexts: list[str], batch_size: int = 64):
    """The QA model's features and (F, T) start and end logits for (question, context) pairs."""
    feats = prepare_train_features(tokenizer, questions, contexts, max_length=SCALE.tasks["qa"].max_length, stride=64)
    keys = ("input_ids", "attention_mask", "token_type_ids")
    starts, ends = [], []
    for b in range(0, len(feats["input_ids"]), batch_size):
        x, m, tt = (torch.tensor(feats[k][b:b + batch_size], device=device) for k in keys)  # (F_b, T) each
        with torch.no_grad():
            out = qa_model(x, m, tt)
        starts.append(out.start_logits.cpu())
        ends.append(out.end_logits.cpu())
    return feats, torch.cat(starts), torch.cat(ends)  # (F, T), (F, T)


feats, start_logits, end_logits = span_logits([row["question"]], [row["context"]])
assert len(feats["input_ids"]) == 1  # a short context: one window
offsets = feats["offset_mapping"][0]
MAX_ANSWER = 30
best, best_score = None, -float("inf")
for i in range(len(offsets)):
    for j in range(i, min(i + MAX_ANSWER, len(offsets))):
        if offsets[i] is not None and offsets[j] is not None:
            score = (start_logits[0, i] + end_logits[0, j]).item()
            if score > best_score:
                best, best_score = (i, j), score
by_hand = row["context"][offsets[best[0]][0]:offsets[best[1]][1]]
n_best = postprocess(feats, start_logits, end_logits, [row["context"]], n_best=5, max_answer_length=MAX_ANSWER,
                     snap_to_words=False)[0]
print(f"by hand: tokens {best}, score {best_score:.3f}: {by_hand!r}")
print(f"{'rank':>4} {'score':>7}  answer   (gold: {row['answers']['text'][0]!r})")
for rank, span in enumerate(n_best, 1):
    print(f"{rank:>4} {span.score:>7.3f}  {span.text!r}")

# %%
assert n_best[0].text == by_hand and abs(n_best[0].score - best_score) < 1e-4
assert all(a.score >= b.score for a, b in zip(n_best, n_best[1:]))  # the n-best list is sorted
assert all(row["context"][s.start_char:s.end_char] == s.text for s in n_best)  # offsets map back to the text

# %% [markdown]
# The n-best list is useful beyond the top answer: a gap between the first and second scores
# is a rough confidence, and an application can show alternatives.
#
# ### Answers are whole words
#
# The model never sees words, only pieces, and it scores every piece as a possible start or
# end. Nothing stops its best span from starting at a continuation piece: "Lakeside" is cut
# into `lake ##si ##de` (by the cpu build's tokenizer), and a span that starts at `##si` covers the characters
# "side Hospital". A reader wants "Lakeside Hospital". So the post-processing widens every
# span to whole words: `labkit.qa.word_edges(text, start, end)` moves the start left and the
# end right while they sit between two letters or digits (a Chinese character counts as a
# word of its own), and `postprocess` and `best_answers` do this by default
# (`snap_to_words=True`).
#
# First the problem in its purest form: logits built by hand that put the start at the
# continuation piece and the end at "hospital".

# %%
snap_question = "Where does Anna work?"
snap_context = "Anna Weber is a nurse. She works at Lakeside Hospital in Toronto."
snap_feats = prepare_train_features(tokenizer, [snap_question], [snap_context], max_length=SCALE.tasks["qa"].max_length)
snap_offsets = snap_feats["offset_mapping"][0]
word = (snap_context.index("Lakeside"), snap_context.index("Lakeside") + len("Lakeside"))
pieces = [i for i, o in enumerate(snap_offsets) if o is not None and word[0] <= o[0] < word[1]]  # the pieces of "Lakeside"
print("Lakeside →", tokenizer.convert_ids_to_tokens([snap_feats["input_ids"][0][i] for i in pieces]))
hospital = next(i for i, o in enumerate(snap_offsets) if o is not None and snap_context[o[0]:o[1]] == "Hospital")
start, end = torch.full((1, len(snap_offsets)), -5.0), torch.full((1, len(snap_offsets)), -5.0)  # (F=1, T)
start[0, pieces[1]], end[0, hospital] = 5.0, 5.0  # start at the second piece of "Lakeside", end at "Hospital"
raw = best_answers(snap_feats, start, end, [snap_context], snap_to_words=False)[0]
whole = best_answers(snap_feats, start, end, [snap_context])[0]  # snap_to_words=True, the default
print(f"snap_to_words=False: {raw!r}\nsnap_to_words=True:  {whole!r}")

# %%
assert len(pieces) >= 2 and tokenizer.convert_ids_to_tokens([snap_feats["input_ids"][0][pieces[1]]])[0].startswith("##")
assert raw == snap_context[snap_offsets[pieces[1]][0]:snap_context.index(" in Toronto")] and whole == "Lakeside Hospital"
a = snap_context.index(raw)
assert word_edges(snap_context, a, a + len(raw)) == (word[0], a + len(raw))  # word_edges widens the start only

# %% [markdown]
# Now the chapter's model on the same question. Compare its four best candidates with and
# without snapping: do any of the raw ones start or end inside a word (the last line lists
# them)? With snapping, such a fragment becomes its whole word, and fragments of the same word
# merge into one candidate (keeping the best score), which leaves room in the list for real
# alternatives.

# %%
s_logits, e_logits = span_logits([snap_question], [snap_context])[1:]
raw_list, whole_list = (postprocess(snap_feats, s_logits, e_logits, [snap_context], n_best=4, snap_to_words=snap)[0]
                        for snap in (False, True))
print(f"{'snap_to_words=False':<36} snap_to_words=True")
for r, w in zip(raw_list + [None] * 4, whole_list + [None] * 4):
    if r or w:
        print(f"{(f'{r.score:6.2f} {r.text!r}' if r else ''):<36} {(f'{w.score:6.2f} {w.text!r}' if w else '')}")
cut = [r.text for r in raw_list if word_edges(snap_context, r.start_char, r.end_char) != (r.start_char, r.end_char)]
print(f"raw candidates that cut a word: {cut}")

# %%
for w in whole_list:  # every snapped answer starts and ends at a word's edge ...
    assert word_edges(snap_context, w.start_char, w.end_char) == (w.start_char, w.end_char)
for r in raw_list:  # ... and contains a raw candidate of the same or a higher score
    assert any(w.start_char <= r.start_char and r.end_char <= w.end_char and w.score >= r.score for w in whole_list)
assert whole_list[0].score == raw_list[0].score  # the best span is the same; only its edges move
assert (whole_list[0].start_char, whole_list[0].end_char) == word_edges(snap_context, raw_list[0].start_char, raw_list[0].end_char)

# %% [markdown]
# ## 6 · Scoring QA: exact match and F1
#
# SQuAD's two numbers compare the predicted text with the gold answer after normalisation
# (lower-case, no punctuation, no articles): **exact match (精确匹配)**, EM, is 1 if they are equal;
# **F1** treats both as bags of words and scores their overlap, so a half-right answer gets
# partial credit. `labkit.metrics.squad_scores` averages them over the questions, in percent.

# %%
test = qa["test"]
predictions = answer_questions(qa_model, tokenizer, list(test["question"]), list(test["context"]),
                               max_length=SCALE.tasks["qa"].max_length)
golds = [a["text"] for a in test["answers"]]
scores = M.squad_scores(dict(zip(test["id"], predictions)), dict(zip(test["id"], golds)))
print(f"test: exact match {scores['exact_match']:.1f}, F1 {scores['f1']:.1f} over {len(test)} questions")


def f1_by_hand(prediction: str, truth: str) -> float:
    p, t = M.normalize_answer(prediction).split(), M.normalize_answer(truth).split()
    common = sum((Counter(p) & Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


assert np.isclose(f1_by_hand("on 3 March 2015", "3 March 2015"), 2 * (3 / 4) * 1 / (3 / 4 + 1))  # "on" is extra: P = 3/4, R = 1
assert M.squad_exact_match("The Pioneer Bank.", ["pioneer bank"]) == 1.0  # normalisation drops "the" and "."
assert np.isclose(scores["f1"], 100 * np.mean([f1_by_hand(p, g[0]) for p, g in zip(predictions, golds)]))
assert np.isclose(scores["exact_match"], 100 * np.mean([M.normalize_answer(p) == M.normalize_answer(g[0])
                                                        for p, g in zip(predictions, golds)]))

# %% [markdown]
# These are the figures of the build's QA model, and `labkit build` measured the same ones on
# the same test set when it made the model (its `report.json`, read below). At the cpu scale
# the model answers well over eight questions in ten exactly, with an F1 near 90.
#
# At `LAB_SCALE=ci`, the small scale the automated tests run, the same cells print much lower
# scores. The ci build pretrains its encoder on a smaller corpus for fewer steps, and
# fine-tunes the QA head for far fewer steps (both printed below), so it knows less about
# which words are names, places and dates, and has seen fewer questions: it often picks an
# entity of the right kind but the wrong one, or a run-on span.

# %%
built = REPORT["models"]["qa"]["metrics"]
print(f"labkit build ({REPORT['scale']}): exact match {built['exact_match']:.1f}, F1 {built['f1']:.1f}; "
      f"this notebook: exact match {scores['exact_match']:.1f}, F1 {scores['f1']:.1f}")
for name in ("ci", "cpu"):
    sc = SCALES[name]
    print(f"scale {name}: pretraining {sc.pretrain.train.steps:,} steps, QA fine-tuning {sc.finetune['qa'].steps:,} steps")
assert SCALES["ci"].pretrain.train.steps < SCALES["cpu"].pretrain.train.steps
assert SCALES["ci"].finetune["qa"].steps < SCALES["cpu"].finetune["qa"].steps
if QA_FROM_BUILD:
    assert abs(scores["f1"] - built["f1"]) < 1 and abs(scores["exact_match"] - built["exact_match"]) < 1
if LAB_SCALE == "cpu":  # the figures the text quotes, with their tolerance
    assert scores["exact_match"] > 80 and 85 < scores["f1"] < 95

# %% [markdown]
# How much does snapping to words change? Score the test set again with
# `snap_to_words=False`, and count, over every question's five best candidates, how many raw
# spans start or end inside a word.

# %%
raw_predictions = answer_questions(qa_model, tokenizer, list(test["question"]), list(test["context"]),
                                   max_length=SCALE.tasks["qa"].max_length, snap_to_words=False)
raw_scores = M.squad_scores(dict(zip(test["id"], raw_predictions)), dict(zip(test["id"], golds)))
changed = [(r, p) for r, p in zip(raw_predictions, predictions) if r != p]
test_feats, test_starts, test_ends = span_logits(list(test["question"]), list(test["context"]))
raw_n_best = postprocess(test_feats, test_starts, test_ends, list(test["context"]), n_best=5, snap_to_words=False)
candidates = [(c, x) for c, spans in zip(test["context"], raw_n_best) for x in spans if x.start_char >= 0]
fragments = [x.text for c, x in candidates if word_edges(c, x.start_char, x.end_char) != (x.start_char, x.end_char)]
print(f"top answers changed by snapping: {len(changed)} of {len(test)}; "
      f"EM {raw_scores['exact_match']:.1f} → {scores['exact_match']:.1f}, F1 {raw_scores['f1']:.1f} → {scores['f1']:.1f}")
print(f"raw 5-best candidates that cut a word: {len(fragments)} of {len(candidates)}, e.g. {fragments[:4]}")

# %%
assert all(r in p for r, p in changed)  # snapping only widens an answer
assert abs(scores["f1"] - raw_scores["f1"]) <= 100 * len(changed) / len(test)  # scores move only through changed answers
assert len(changed) <= 0.05 * len(test)  # few top answers cut a word

# %% [markdown]
# On the test set, whose questions are phrased like the training questions, the model's
# answers seldom cut a word: snapping changes at most a few top answers (the first line), so
# EM and F1 barely move. Fragments are more likely where the model is unsure — a question
# phrased unlike the training ones, like Anna's, or a weaker model (compare the count at
# `LAB_SCALE=ci`). Snapping costs nothing when a span's edges are already right, and fixes
# them when they are not.

# %% [markdown]
# ## 7 · Error analysis: which questions fail?
#
# Group the test questions by what they ask for, using their wording, and score each group.

# %%
def question_type(question: str) -> str:
    q = question.lower()
    if q.startswith("when") or "year" in q or "date" in q or "month" in q:
        return "when"
    if q.startswith("who") or "which person" in q:
        return "who"
    if q.startswith("where") or "city" in q or "country" in q:
        return "where"
    if any(w in q for w in ("organisation", "company", "university", "school", "hospital", "firm")):
        return "which organisation"
    return "what (other)"


groups = defaultdict(list)
for q, p, g in zip(test["question"], predictions, golds):
    groups[question_type(q)].append((M.squad_exact_match(p, g), M.squad_f1(p, g)))
names = sorted(groups, key=lambda k: -len(groups[k]))
fig, ax = plt.subplots(figsize=(7, 3))
x = np.arange(len(names))
ax.bar(x - 0.2, [100 * np.mean([em for em, _ in groups[k]]) for k in names], width=0.4, label="exact match")
ax.bar(x + 0.2, [100 * np.mean([f for _, f in groups[k]]) for k in names], width=0.4, label="F1")
ax.set_xticks(x, [f"{k}\n({len(groups[k])})" for k in names])
ax.set_ylabel("score (%)")
ax.set_ylim(0, 100)
ax.legend()
ax.set_title("QA test scores by question type (number of questions)")
plt.show()
assert sum(len(v) for v in groups.values()) == len(test)

# %%
wrong = [(q, p, g[0]) for q, p, g in zip(test["question"], predictions, golds) if not M.squad_exact_match(p, g)]
print(f"{len(wrong)} of {len(test)} answers are not exact; a few:")
for q, p, g in wrong[:6]:
    print(f"  [{question_type(q)}] {q}\n      predicted {p!r}, gold {g!r}")

# %% [markdown]
# **Try it.** Ask your own question about a context (the first test context is filled in).

# %%
def ask(question: str = "Where was she born?", context: str = row["context"]):
    feats, s, e = span_logits([question], [context])
    for rank, span in enumerate(postprocess(feats, s, e, [context], n_best=3)[0], 1):
        print(f"{rank}. {span.text!r}  (score {span.score:.2f})")


widgets.interact(ask, question=widgets.Text(value=row["question"], continuous_update=False,
                                            layout=widgets.Layout(width="80%")),
                 context=widgets.Textarea(value=row["context"], continuous_update=False,
                                          layout=widgets.Layout(width="80%", height="90px")));

# %% [markdown]
# What does the question read in the context? The attention of the QA model's encoder over the
# pair `[CLS] question [SEP] context [SEP]` (sentence A = question, B = context): bertviz's head
# view (it needs internet in the browser for its JavaScript), then every head of the last layer
# drawn offline by `labkit.viz.attention_heads`.

# %%
short = min(qa["test"], key=lambda r: len(r["context"]))
pair_tokens, pair_attentions = encoder_attentions(qa_model, tokenizer, short["question"], short["context"])
rounded = [a.double().round(decimals=3) for a in pair_attentions]  # 3 decimals keep the stored page small
head_view(rounded, pair_tokens, sentence_b_start=pair_tokens.index(tokenizer.sep_token) + 1)

# %%
attention_heads(pair_attentions, pair_tokens, layer=len(pair_attentions) - 1)
plt.show()
assert all(torch.allclose(a.sum(-1), torch.ones(())) for a in pair_attentions)

# %% [markdown]
# ## Summary
#
# - Token-level tasks read the encoder's vector of every token. NER tags words with BIO tags;
#   with word pieces, only the first piece of a word carries its tag, the rest get `-100`.
# - NER is scored per entity — both boundaries and the type must match — and the per-type
#   report shows which kinds of entity are hard; an outcome matrix shows whether the errors are
#   type confusions, boundary errors or misses.
# - Extractive QA predicts a start and an end score per token; the answer is the best valid
#   span $s_i + e_j$. Long contexts become overlapping windows (stride), and character offsets
#   map the span back to text. EM and F1 score it; the n-best list shows the alternatives.
# - The model works on pieces, so a span can start or end inside a word ("side Hospital");
#   post-processing widens every span to whole words (`snap_to_words=True`, the default).
#
# **Next:** chapter 07 adds a decoder and generates text: English → Chinese translation.
#
# ## Exercises
#
# Replace each `None` with your answer and run the cell; a wrong answer shows a hint, and each
# further try a stronger one. Every exercise cell runs on its own. Solutions:
# `notebooks/solutions/ch06.py`.
#
# **Exercise 1 (main idea: label alignment).** A sentence of five words was tokenised into
# pieces whose word ids are `ch06.ALIGN_WORD_IDS` (`None` for `[CLS]`/`[SEP]`); the words' tag
# ids are `ch06.ALIGN_TAGS`. Give the list of piece labels the loss should see.

# %% tags=["exercise"]
from labkit.exercises import ch06

print(ch06.ALIGN_WORD_IDS, ch06.ALIGN_TAGS)
answer = None  # your code: a list of ints, one per piece
ch06.check_align_labels(answer)

# %% [markdown]
# **Exercise 2 (entity-level scoring).** Compute the entity-level F1 of the predicted tags
# `ch06.NER_PRED` against the gold tags `ch06.NER_GOLD` (one sentence each).

# %% tags=["exercise"]
from labkit.exercises import ch06

print(ch06.NER_GOLD)
print(ch06.NER_PRED)
answer = None  # your code: a float in [0, 1]
ch06.check_entity_f1(answer)

# %% [markdown]
# **Exercise 3 (the best span).** `ch06.span_inputs()` gives start and end scores over 10
# tokens and which tokens belong to the context. With answers at most
# `ch06.MAX_ANSWER_LENGTH` tokens long, which span (i, j) does extractive QA return?

# %% tags=["exercise"]
from labkit.exercises import ch06

start_scores, end_scores, in_context = ch06.span_inputs()
answer = None  # your code: a tuple (i, j)
ch06.check_best_span(answer)

# %% [markdown]
# **Exercise 4 (main idea: from a token span to a whole-word answer).** A QA model read
# `ch06.SNAP_PIECES` — `[CLS]`, the question `ch06.SNAP_QUESTION`, `[SEP]`, the context
# `ch06.SNAP_CONTEXT`, `[SEP]` — and its best span runs from token `i` to token `j`,
# `ch06.SNAP_SPAN`. `ch06.SNAP_OFFSETS` holds each token's `(start, end)` characters in the
# context (`None` outside it). Give two strings: the text the token span covers, and that text
# widened to whole words. Do it without `labkit.qa.word_edges`, then compare. Why can only
# the context tokens have offsets?

# %% tags=["exercise"]
from labkit.exercises import ch06

for n, (piece, offset) in enumerate(zip(ch06.SNAP_PIECES, ch06.SNAP_OFFSETS)):
    print(n, piece, offset)
print("span:", ch06.SNAP_SPAN)
answer = None  # your code: a tuple (raw text, whole-word text)
ch06.check_whole_word_answer(answer)

# %% [markdown] tags=["experiment"]
# **Open experiment.** How long may an answer be?
#
# - **Change:** `max_answer_length`, the longest span the post-processing accepts, in tokens:
#   try 3, 5, 10 and 30 (the default), with `snap_to_words` on and off.
# - **Measure:** `labkit.finetune.answer_questions(model, tokenizer, questions, contexts,
#   max_length=..., max_answer_length=n)` on the test split, scored with
#   `labkit.metrics.squad_scores` (EM and F1); group the results by question type as §7 does.
#   The starter cell below measures the overall scores.
# - **A good answer** reports EM and F1 for each length, finds the length where the scores
#   peak, and explains both sides with examples: too short cuts long answers (dates such as
#   "10 February 1962", multi-word names), too long lets run-on spans across sentences win
#   (like some of §7's errors). It says which question types are most sensitive, and why a
#   real system would tune this value on validation data, not on the test set.

# %% tags=["experiment"]
import os

from labkit import metrics as M
from labkit.build import SCALES, default_output_dir
from labkit.data import load_task
from labkit.finetune import answer_questions
from labkit.folders import load_model

scale = os.environ.get("LAB_SCALE", "cpu")
model, tok = load_model(default_output_dir(scale) / "qa")  # the build's QA model
test_split = load_task("qa", size=scale)["test"]
gold = dict(zip(test_split["id"], [a["text"] for a in test_split["answers"]]))
for n in (3, 5, 10, 30):
    answers = answer_questions(model, tok, list(test_split["question"]), list(test_split["context"]),
                               max_length=SCALES[scale].tasks["qa"].max_length, max_answer_length=n)
    result = M.squad_scores(dict(zip(test_split["id"], answers)), gold)
    print(f"max_answer_length {n:>2}: exact match {result['exact_match']:5.1f}, F1 {result['f1']:5.1f}")

# %% [markdown] tags=["teacher"]
# **Notes for teachers.** Allow about 90 minutes: 35 for NER (§1–§4), 35 for QA (§5–§7, with
# the whole-word part), 20 for the exercises. Exercises 1 and 4 carry the chapter's main ideas.
#
# - *Misconception:* "labels go on every piece." Exercise 1's diagnosis explains the double
#   counting; ask what a tagger should output for a word whose pieces disagree.
# - *Misconception:* "token accuracy is a good NER score." Most tags are `O`: a tagger that
#   outputs only `O` has high token accuracy and entity F1 of zero. Exercise 2 makes the
#   difference concrete.
# - *Misconception:* "the answer is the argmax of the start scores and the argmax of the end
#   scores." Exercise 3's distractor is exactly that; the span must be valid as a whole.
# - *Misconception:* "offsets are a detail." Exercise 4 and the Lakeside example show that the
#   text a user sees is built from character offsets, and why a piece-level model needs a
#   word-level clean-up step.
# - The open experiment's starter runs in a few seconds per length; groups can split the
#   lengths and the question types between them.
