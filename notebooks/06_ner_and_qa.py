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
# instead: **named-entity recognition (命名实体识别, NER)** labels every word as part of a
# person, an organisation, a place, a date, a product — or nothing; **extractive question
# answering (抽取式问答)** points at the span of a passage that answers a question. Both put a
# tiny head on the same pretrained encoder and read its vector for every token.
#
# **Learning objectives.** After this chapter you can
# 1. write BIO tags, and align word-level tags with word pieces (the first piece carries the
#    tag, the others are ignored by the loss);
# 2. fine-tune a token classifier and read a per-entity precision/recall/F1 report;
# 3. turn (question, context) pairs into windows with offsets and a stride, and find the best
#    answer span from start and end scores — by hand and with `labkit.qa`;
# 4. score QA with exact match and F1, and read an n-best list;
# 5. analyse errors: which entity types get confused, which kinds of question fail.
#
# **Prerequisites.** Chapters 04–05. **Estimated time:** 75 minutes; the code runs in about
# two minutes.
#
# **Source documents.** doc 003 §3.4 and §4.3.2 (named-entity recognition: learn entity
# boundaries and types by fine-tuning), §4.3.3 (question answering), §5.4 (a per-entity
# precision/recall/F1 report), §6.1 (question answering in customer service); doc 004 §9.3
# (precision, recall, F1); doc 002 §3.4 and doc 001 §6.1 (question-answering systems as a
# downstream task).

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
from labkit.qa import postprocess, prepare_train_features
from labkit.training import seed_everything
from labkit.viz import attention_heads, encoder_attentions, plot_history

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
SCALE = SCALES[LAB_SCALE]  # model and training sizes of `labkit build` at this scale
BUILD = default_output_dir(LAB_SCALE)  # where `labkit build` saved its models
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
# An entity can span several words ("Pioneer Bank", "10 February 1962"). The **BIO** scheme
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
# pieces (`##` marks a continuation). `labkit.finetune.align_labels` tokenises pre-split words
# and gives the **first** piece of each word that word's tag; the other pieces and the special
# tokens get `-100`, which the loss ignores. Each word is then predicted exactly once. Here is a
# sentence with a word that falls into several pieces:

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
# The report (doc 003 §5.4 prints one like it) gives, per entity type, precision
# $P = TP/(TP+FP)$, recall $R = TP/(TP+FN)$, $F_1 = 2PR/(P+R)$ and the support (gold entities
# of that type); the last line pools the counts of all types ("micro average"). Recompute it
# from the predictions:

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
# F1 says how often the tagger is wrong, not *how*. For every gold entity, look at what the
# prediction did with its words: the same span with the right type (correct), the same span
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

# %% [markdown]
# ## 5 · Extractive question answering
#
# In SQuAD-style QA (doc 003 §4.3.3) the answer is a span of the context. The model reads
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
# A context longer than the model's window is cut into overlapping windows ("features"); two
# neighbouring windows share `stride` context tokens, so an answer cut by one window's edge
# lies whole in the next. Each feature keeps the **character offsets** of its context tokens,
# which turn a token span back into text. Here with a deliberately tiny window:

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
if (BUILD / "qa" / "model.safetensors").is_file():
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
# the windows of long contexts.

# %%
def span_logits(questions: list[str], contexts: list[str]):
    feats = prepare_train_features(tokenizer, questions, contexts, max_length=SCALE.tasks["qa"].max_length, stride=64)
    keys = ("input_ids", "attention_mask", "token_type_ids")
    x, m, tt = (torch.tensor(feats[k], device=device) for k in keys)
    with torch.no_grad():
        out = qa_model(x, m, tt)
    return feats, out.start_logits.cpu(), out.end_logits.cpu()


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
n_best = postprocess(feats, start_logits, end_logits, [row["context"]], n_best=5, max_answer_length=MAX_ANSWER)[0]
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
# ## 6 · Scoring QA: exact match and F1
#
# SQuAD's two numbers compare the predicted text with the gold answer after normalisation
# (lower-case, no punctuation, no articles): **exact match** (EM) is 1 if they are equal;
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
#
# **Next:** chapter 07 adds a decoder and generates text: English → Chinese translation.
#
# ## Exercises
#
# Replace each `None` with your answer and run the cell. Solutions: `notebooks/solutions/ch06.py`.
#
# **Exercise 1.** A sentence of five words was tokenised into pieces whose word ids are
# `ch06.ALIGN_WORD_IDS` (`None` for `[CLS]`/`[SEP]`); the words' tag ids are `ch06.ALIGN_TAGS`.
# Give the list of piece labels the loss should see.

# %%
from labkit.exercises import ch06

print(ch06.ALIGN_WORD_IDS, ch06.ALIGN_TAGS)
answer = None  # your code: a list of ints, one per piece
ch06.check_align_labels(answer)

# %% [markdown]
# **Exercise 2.** Compute the entity-level F1 of the predicted tags `ch06.NER_PRED` against the
# gold tags `ch06.NER_GOLD` (one sentence each).

# %%
print(ch06.NER_GOLD)
print(ch06.NER_PRED)
answer = None  # your code: a float in [0, 1]
ch06.check_entity_f1(answer)

# %% [markdown]
# **Exercise 3.** `ch06.span_inputs()` gives start and end scores over 10 tokens and which tokens
# belong to the context. With answers at most `ch06.MAX_ANSWER_LENGTH` tokens long, which span
# (i, j) does extractive QA return?

# %%
start_scores, end_scores, in_context = ch06.span_inputs()
answer = None  # your code: a tuple (i, j)
ch06.check_best_span(answer)
