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
# # Chapter 03 · Data and tokenisation (分词)
#
# A foundation model is only as good as the data it learns from, and it never sees text: it
# sees token ids. This chapter opens the lab's data — **TinyWorld**, a small synthetic
# bilingual world generated offline — checks how it keeps evaluation honest, and trains the
# **tokenizer (分词器)** that turns its English and Chinese text into ids.
#
# **Learning objectives.** After this chapter you can
# 1. load every TinyWorld task with `load_task`, read its dataset card and plot its labels;
# 2. explain, and verify, how the data keeps evaluation honest: held-out entities and held-out
#    opinion words never reach the labelled train splits;
# 3. train a WordPiece tokenizer, reproduce its longest-match-first splitting, and explain why
#    unseen words become subword pieces, why each Chinese character is a token, and when a word
#    becomes `[UNK]`;
# 4. use `[CLS]`, `[SEP]`, `[MASK]`, `[PAD]`, token type ids, attention masks and offsets;
# 5. weigh vocabulary size against sequence length.
#
# **Prerequisites.** Chapter 00 (chapters 01–02 help).
#
# **Estimated time:** about 50 minutes to read and do; the code runs in about 45 s at cpu scale with a build present (measured on 2 cores; `run_times.json`).
#
# **Map to the source documents.**
#
# | section | documents |
# |---|---|
# | 1 · TinyWorld and its dataset card | doc 002 §3.2 (collect unlabelled data, build the pretraining dataset); doc 003 §1.2 (learning from unlabelled data), §4.3 (labelled sets split into training, validation and test sets) |
# | 2 · distributions | doc 000 §3.3 (performance depends on the quality and quantity of the data) |
# | 3 · honest generalisation | doc 000 §3.3 (generalisation, and biases carried over from the data), §8.3; doc 004 §2.3 and §8.3 (bias and privacy start in the data) |
# | 4 · WordPiece | doc 000 §3.2 step 1, doc 002 §3.2 and doc 004 §3.2 step 1 (data preprocessing: cleaning, deduplication, 分词, encoding) |
# | 5 · special tokens | doc 002 §4.1 (the masked language model needs `[MASK]`); doc 003 §5.2–5.3 (tokenise, then pad to equal length) |
# | 6 · vocabulary size | doc 002 §4.2 (the softmax runs over the whole vocabulary, $\lvert V\rvert$ entries) |
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
import os
import re
from collections import Counter

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from labkit.build import SCALES
from labkit.data import DATASETS, build_world, data_dir, load_task
from labkit.data.sentiment import opinion_words, uses_heldout_words
from labkit.env import best_device
from labkit.fonts import use_cjk_font
from labkit.tokenization import SPECIAL_TOKENS, load_tokenizer, train_tokenizer
from labkit.training import seed_everything

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
SCALE = SCALES[LAB_SCALE]
seed_everything(0)
device = best_device()
plt.rcParams["figure.dpi"] = 80
use_cjk_font()  # so that plots show Chinese characters
print(f"LAB_SCALE = {LAB_SCALE!r}, device = {device}, data preset = {SCALE.data!r}")

# %% [markdown]
# ## 1 · TinyWorld and its dataset card
#
# Real pretraining corpora are terabytes of web text; the lab cannot download them and could not
# train on them in minutes. TinyWorld is a seeded world of people, cities, organisations and
# products, written out by templates in English and Simplified Chinese: an unlabelled **corpus
# (语料库)** for pretraining, five labelled tasks for fine-tuning, and instruction chats for
# tuning an assistant. Because the lab
# *generates* it, it knows the truth about every sentence — which lets it test honestly, as
# section 3 shows.
#
# Every dataset should come with a **dataset card (数据集卡片)**: what is in it, how it was made,
# what it is for and what its limits are. TinyWorld's is `data/README.md`; here is its table of
# tasks, read from the file:

# %%
card = (data_dir().parent / "README.md").read_text(encoding="utf-8")
section = re.search(r"^## Tasks and schemas\n(.*?)(?=^## )", card, flags=re.S | re.M).group(1)
display(Markdown(section))

# %% [markdown]
# `load_task(name, size)` generates a task (a second or two; then it is cached on disk) and
# returns a 🤗 `datasets.DatasetDict` with three splits: a **training set (训练集)** to learn
# from, a **validation set (验证集)** to choose settings and stop training, and a **test set
# (测试集)** touched only for the final score. One record of each task:

# %%
data = {task: load_task(task, size=SCALE.data) for task in DATASETS}
print(f"{'task':<12}{'train':>8}{'validation':>12}{'test':>8}   columns")
for task, dd in data.items():
    assert set(dd) == {"train", "validation", "test"}
    print(f"{task:<12}{len(dd['train']):>8}{len(dd['validation']):>12}{len(dd['test']):>8}   {dd['train'].column_names}")

# %%
def shorten(value, limit=110):
    text = str(value)
    return text if len(text) <= limit else text[:limit] + " …"


for task, dd in data.items():
    print(f"── {task}")
    for key, value in dd["train"][0].items():
        print(f"   {key}: {shorten(value)}")

# %% [markdown]
# Labels are stored as integers with their names in the features (`ClassLabel`), as 🤗 datasets
# does for any classification set:

# %%
sentiment_names = data["sentiment"]["train"].features["label"].names
topic_names = data["topic"]["train"].features["label"].names
ner_names = data["ner"]["train"].features["ner_tags"].feature.names
print(sentiment_names, topic_names, ner_names, sep="\n")
assert sentiment_names == ["negative", "positive"] and len(topic_names) == 5 and ner_names[0] == "O"

# %% [markdown]
# ## 2 · What is in the data: distributions
#
# Before training anything, look. Six views: the class balance of the two classification tasks,
# the entity types of NER, the lengths of corpus documents (English vs Chinese), the answers of
# QA, and how long a Chinese translation is compared with its English source.

# %%
def is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"  # CJK Unified Ideographs


splits = ["train", "validation", "test"]
fig, axes = plt.subplots(2, 3, figsize=(14, 7))

ax = axes[0, 0]
for i, split in enumerate(splits):
    counts = Counter(data["sentiment"][split]["label"])
    ax.bar([c + 0.27 * (i - 1) for c in range(2)], [counts[c] / len(data["sentiment"][split]) for c in range(2)],
           width=0.27, label=split)
ax.set_xticks(range(2), sentiment_names)
ax.set_title("sentiment: share of each label")
ax.legend(fontsize=8, loc="lower center")

ax = axes[0, 1]
for i, split in enumerate(splits):
    counts = Counter(data["topic"][split]["label"])
    ax.bar([c + 0.27 * (i - 1) for c in range(5)], [counts[c] / len(data["topic"][split]) for c in range(5)],
           width=0.27, label=split)
ax.set_xticks(range(5), topic_names, rotation=20)
ax.set_title("topic: share of each label")

ax = axes[0, 2]
entity_types = ["PER", "ORG", "LOC", "DATE", "PRODUCT"]
for i, split in enumerate(["train", "test"]):
    tags = Counter(ner_names[t] for row in data["ner"][split]["ner_tags"] for t in row)
    total = sum(tags[f"B-{e}"] for e in entity_types)
    ax.bar([j + 0.4 * (i - 0.5) for j in range(5)], [tags[f"B-{e}"] / total for e in entity_types], width=0.4, label=split)
ax.set_xticks(range(5), entity_types)
ax.set_title("NER: share of each entity type")
ax.legend(fontsize=8)

ax = axes[1, 0]
docs = list(data["corpus"]["train"]["text"])
zh_docs = [d for d in docs if any(is_cjk(ch) for ch in d)]
en_docs = [d for d in docs if not any(is_cjk(ch) for ch in d)]
ax.hist([len(d.split()) for d in en_docs], bins=30, alpha=0.6, label=f"English ({len(en_docs)} docs): words")
ax.hist([sum(map(is_cjk, d)) for d in zh_docs], bins=30, alpha=0.6, label=f"Chinese ({len(zh_docs)} docs): characters")
ax.set_title("corpus: document lengths")
ax.legend(fontsize=8)

ax = axes[1, 1]
answer_words = Counter(len(a["text"][0].split()) for a in data["qa"]["train"]["answers"])
ax.bar(list(answer_words), list(answer_words.values()))
ax.set_xlabel("words in the answer")
ax.set_title("QA: answer lengths (train)")

ax = axes[1, 2]
pairs = list(data["translation"]["train"]["translation"])
ax.scatter([len(p["en"].split()) for p in pairs], [sum(map(is_cjk, p["zh"])) for p in pairs], s=6, alpha=0.3)
ax.set_xlabel("English words")
ax.set_ylabel("Chinese characters")
ax.set_title("translation: pair lengths")
fig.tight_layout()
plt.show()

# %% [markdown]
# What the pictures claim, checked: both classification tasks are exactly balanced in every
# split, and the corpus mixes the two languages.

# %%
for task, n_labels in (("sentiment", 2), ("topic", 5)):
    for split in splits:
        counts = Counter(data[task][split]["label"])
        assert len(counts) == n_labels and len(set(counts.values())) == 1, (task, split, counts)
zh_share = len(zh_docs) / len(docs)
assert 0.2 < zh_share < 0.6
print(f"balanced classes in every split; {zh_share:.0%} of the corpus documents are Chinese")

# %% [markdown]
# ## 3 · Honest generalisation
#
# What we want from a model is **generalisation (泛化能力)**: doing well on inputs it never saw.
# A test set measures it only if the test examples really are new. When test data overlaps the
# training data — the same sentences, or the same names — we have **data leakage (数据泄漏)**: a
# model that memorised its training names could score well on such a test set and still fail on
# anything new. TinyWorld's design prevents that (see "Honest generalisation" in the card):
#
# - **Held-out entities.** People, organisations, products and films are split 75/25 into a
#   train pool and a held-out pool. Labelled train splits use only the train pool; validation
#   and test only the held-out pool. A held-out name is a new *combination* of parts seen in
#   training (a known given name with a known family name), so it is learnable in principle.
# - **Held-out opinion words.** Sixteen sentiment words ("superb", "dreadful", …) never occur in
#   the sentiment train split, but do in its test split — and in the unlabelled corpus. Only a
#   model that met them in pretraining can read them: this is where a foundation model should
#   beat a model trained from scratch (chapter 05).
#
# Claims are cheap; here is the check, by whole-word match on every row of every labelled task.

# %%
world = build_world(0)  # the world behind load_task(..., seed=0)
heldout_by_kind, train_by_kind = world.entity_names(heldout=True), world.entity_names(heldout=False)
for kind in heldout_by_kind:  # a 75/25 split of every kind of entity
    share = len(heldout_by_kind[kind]) / (len(heldout_by_kind[kind]) + len(train_by_kind[kind]))
    assert abs(share - 0.25) < 0.01, (kind, share)
    print(f"{kind:<13} train pool {len(train_by_kind[kind]):>4}, held out {len(heldout_by_kind[kind]):>4} ({share:.0%})")
heldout = [n for names in heldout_by_kind.values() for n in names]
train_pool = [n for names in train_by_kind.values() for n in names]
assert not set(heldout) & set(train_pool)
heldout_pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(heldout, key=len, reverse=True))) + r")\b")


def row_text(task: str, row: dict) -> str:
    if task == "ner":
        return " ".join(row["tokens"])
    if task == "qa":
        return row["context"] + " " + row["question"]
    if task == "translation":
        return row["translation"]["en"]
    return row["text"]


hits = {}
for task in ("sentiment", "topic", "ner", "qa", "translation"):
    for split in splits:
        hits[task, split] = sum(bool(heldout_pattern.search(row_text(task, row))) for row in data[task][split])
    assert hits[task, "train"] == 0, f"a held-out name leaked into {task} train"
    assert hits[task, "test"] > 0, f"{task} test never uses a held-out name"
    print(f"{task:<12} rows naming a held-out entity: train {hits[task, 'train']:>4}, "
          f"test {hits[task, 'test']:>4} of {len(data[task]['test'])}")

# %%
train_people = [p for p in world.people if not p.heldout]
new_people = [p for p in world.people if p.heldout]
assert all(p.given in {q.given for q in train_people} and p.family in {q.family for q in train_people}
           for p in new_people)  # compositional: every part of a new name was seen in training
example = new_people[0]
print(f"held-out person {example.name_en} ({example.name_zh}): given name and family name both occur among "
      f"the {len(train_people)} training people, never together")

# %%
new_words = opinion_words("positive", True) + opinion_words("negative", True)
assert len(new_words) == 16
word_pattern = re.compile(r"\b(?:" + "|".join(new_words) + r")\b", flags=re.I)
for split in splits:
    texts = list(data["sentiment"][split]["text"])
    assert sum(map(uses_heldout_words, texts)) == sum(bool(word_pattern.search(t)) for t in texts)
assert not any(map(uses_heldout_words, data["sentiment"]["train"]["text"]))  # never in train
corpus_hits = sum(bool(word_pattern.search(d)) for d in docs)
assert corpus_hits > 0  # ... but present in the unlabelled corpus
val_share = sum(map(uses_heldout_words, data["sentiment"]["validation"]["text"])) / len(data["sentiment"]["validation"])
print(f"held-out opinion words: {new_words}")
print(f"in sentiment train: 0 reviews; validation: {val_share:.0%} of reviews; corpus: {corpus_hits} documents")

# %% [markdown]
# Cities and dates are *not* held out: there are few of them, and they are shared by all splits.
# Exercise 4 measures what that means for a per-type score.
#
# The corpus has two more knobs, which chapter 13 (judging a foundation model) turns and measures: `skew` makes occupations follow
# gender stereotypes (a measurable **bias (偏见)**) and `canaries` plants a "secret" sentence to
# test memorisation (**privacy (隐私)**). Both are off by default.
#
# ## 4 · Training a WordPiece tokenizer
#
# **Data preprocessing (数据预处理)** — cleaning, removing duplicates, tokenising — turns raw text
# into what a model can read (doc 002 §3.2). TinyWorld is generated clean, so here the work is
# tokenisation: cutting text into tokens from a fixed **vocabulary (词汇表)** and mapping each to
# its id. A vocabulary of whole words would be huge and still miss new words; one of single
# characters makes sequences long. BERT's WordPiece sits between: its tokens are **subwords
# (子词)** — frequent words whole, rarer words spelled from a few pieces.
#
# `labkit.tokenization.train_tokenizer` trains BERT's kind of tokenizer on the corpus. Its
# pipeline has five stages (all from the 🤗 `tokenizers` library):
#
# 1. **normaliser** — lowercase, strip accents, and put spaces around every CJK character;
# 2. **pre-tokeniser** — split on whitespace and punctuation into "words";
# 3. **WordPiece model** — split each word into the longest pieces in the vocabulary,
#    continuation pieces marked `##`;
# 4. **post-processor** — add `[CLS]` … `[SEP]` (and a second segment for pairs);
# 5. **decoder** — glue `##` pieces back together.
#
# Training chooses the vocabulary: it starts from single characters and repeatedly adds the merge
# of the most frequent adjacent pair of pieces, until the vocabulary has `vocab_size` entries (or
# no pair occurs often enough).

# %%
tokenizer = train_tokenizer(list(data["corpus"]["train"]["text"]), vocab_size=SCALE.vocab_size)
vocab = tokenizer.get_vocab()
print(f"vocabulary: {len(tokenizer)} pieces; special tokens {SPECIAL_TOKENS} have ids "
      f"{tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))}")
assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4]

backend = tokenizer.backend_tokenizer
raw = "Émma Smith's café opened in Zürich — 今天天气怎么样？"
normalised = backend.normalizer.normalize_str(raw)
words = [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(normalised)]
print("normalised:    ", normalised)
print("pre-tokenised: ", words)
print("tokens:        ", tokenizer.tokenize(raw))

# %% [markdown]
# The WordPiece step is short enough to write out: take the longest prefix of the word that is in
# the vocabulary, then the longest `##` continuation of the rest, and so on; if some part cannot
# be matched, the whole word becomes `[UNK]`, an **out-of-vocabulary word (未登录词)**. Since
# every character of the corpus is in the vocabulary, that only happens to a word holding a
# character the corpus never showed: an unseen word made of known letters is spelled from
# pieces instead. The teaching snippet, checked against the trained tokenizer on every word of
# the validation documents:

# %%
def wordpiece(word: str, vocab: dict, unk: str = "[UNK]") -> list[str]:
    """Greedy longest-match-first splitting of one pre-tokenised word."""
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):  # longest candidate first
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                pieces.append(piece)
                start = end
                break
        else:  # no piece matches: the word cannot be spelled with this vocabulary
            return [unk]
    return pieces


checked = 0
for doc in data["corpus"]["validation"]["text"]:
    for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(doc)):
        assert wordpiece(word, vocab) == tokenizer.tokenize(word), word
        checked += 1
print(f"the snippet agrees with the tokenizer on all {checked} validation words")
for word in ["founded", "who", "zentrasphere", "unbelievably"]:
    print(f"{word:>14} → {wordpiece(word, vocab)}")
assert "[UNK]" not in wordpiece("zentrasphere", vocab)  # never in the corpus, yet spelled from pieces

# %% [markdown]
# ### Chinese: one character, one token
#
# Chinese is written without spaces between words, and "word" boundaries are themselves
# ambiguous. BERT's choice, and the lab's: the normaliser puts spaces around every CJK
# character, so each character is a "word" of its own and WordPiece never merges characters.
# The vocabulary needs only the few thousand characters in use, and no Chinese word segmenter.
# A character the corpus never showed becomes `[UNK]`, like an emoji.

# %%
for doc in zh_docs[:200]:
    cjk_tokens = [t for t in tokenizer.tokenize(doc) if any(is_cjk(ch) for ch in t)]
    assert cjk_tokens == [ch for ch in doc if is_cjk(ch)]  # one token per character

rare = "龘 🙂"  # a character TinyWorld never uses, and an emoji
assert tokenizer.tokenize(rare) == ["[UNK]", "[UNK]"]
print(f"{rare!r} → {tokenizer.tokenize(rare)}")

# %% [markdown]
# Three inputs as the model receives them, one box per token: a Chinese sentence, a sentence
# from the corpus, and an English review with an unseen word and an emoji.

# %%
zh_sentence = re.split("(?<=[。？！])", next(d for d in zh_docs if len(d) < 60))[0]  # the first sentence
examples = ["今天天气怎么样？", zh_sentence, "The zentrasphere headphones are superb 🙂"]
colours = {"special": "0.85", "unknown": "tab:red", "Chinese": "tab:orange", "continuation ##": "lightskyblue",
           "word start": "tab:blue"}


def kind_of(token: str) -> str:
    if token == "[UNK]":
        return "unknown"
    if token in SPECIAL_TOKENS:
        return "special"
    if any(is_cjk(ch) or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef" for ch in token):
        return "Chinese"  # a character, or full-width punctuation
    return "continuation ##" if token.startswith("##") else "word start"


def box_width(token: str) -> float:
    return 0.4 + 0.13 * sum(2 if ord(ch) > 0x2e80 else 1 for ch in token)  # wide characters count twice


rows = [tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"]) for text in examples]
fig, ax = plt.subplots(figsize=(11, 0.7 * len(rows) + 0.8))
right = 0.0
for y, tokens in enumerate(rows):
    x = 0.0
    for token in tokens:
        w = box_width(token)
        ax.text(x + w / 2, -y, token, ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.25", facecolor=colours[kind_of(token)], alpha=0.6))
        x += w + 0.15
    right = max(right, x)
ax.set_xlim(-0.2, right)
ax.set_ylim(-len(rows) + 0.5, 0.5)
ax.axis("off")
ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.6) for c in colours.values()], labels=list(colours),
          ncol=len(colours), loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=9)
plt.show()
assert rows[0] == ["[CLS]", *"今天天气怎么样？", "[SEP]"]
assert "[UNK]" in rows[2] and any(t.startswith("##") for t in rows[2])  # the emoji is lost, the unseen word is spelled

# %% [markdown]
# ## 5 · Special tokens: `[CLS]`, `[SEP]`, `[MASK]`, `[PAD]`
#
# Encoding (calling the tokenizer) adds BERT's **special tokens (特殊标记)**, tokens that stand
# for no text but give the model structure:
#
# - `[CLS]` opens every input; its final vector summarises the whole input (classifiers read it,
#   chapter 05);
# - `[SEP]` closes each segment. A **pair** — question and context, two sentences — is
#   `[CLS] A [SEP] B [SEP]`, and `token_type_ids` (segment ids) mark A with 0 and B with 1;
# - `[MASK]` hides a word for masked-language-model pretraining (chapter 04);
# - `[PAD]` fills short inputs in a batch — **padding (填充)**, so that a batch is a rectangle of
#   ids; `attention_mask` is 0 there (chapter 01's padding mask).
#
# **Offsets** map each token back to its characters in the original text, which is how an
# extractive QA model turns a predicted token span back into an answer string (chapter 06).

# %%
question = "Who founded Blue River Bank?"
context = "In 2005, Emma Smith founded Blue River Bank in Paris."
enc = tokenizer(question, context, return_offsets_mapping=True)
toks = tokenizer.convert_ids_to_tokens(enc["input_ids"])
print(f"{'token':<10}{'id':>6}{'type':>6}  {'offsets':<10} text")
for tok, i, tt, (a, b), seq in zip(toks, enc["input_ids"], enc["token_type_ids"], enc["offset_mapping"],
                                   enc.sequence_ids()):
    source = "" if seq is None else (question, context)[seq][a:b]
    print(f"{tok:<10}{i:>6}{tt:>6}  {str((a, b)):<10} {source!r}")

# %%
first_sep = toks.index("[SEP]")
assert toks[0] == "[CLS]" and toks[-1] == "[SEP]" and toks.count("[SEP]") == 2
assert enc["token_type_ids"] == [0] * (first_sep + 1) + [1] * (len(toks) - first_sep - 1)
for tok, (a, b), seq in zip(toks, enc["offset_mapping"], enc.sequence_ids()):
    if seq is not None:  # every real token points at its own characters
        assert (question, context)[seq][a:b].lower() == tok.removeprefix("##"), tok

answer_start = context.index("Emma Smith")
span = [i for i, ((a, b), seq) in enumerate(zip(enc["offset_mapping"], enc.sequence_ids()))
        if seq == 1 and a >= answer_start and b <= answer_start + len("Emma Smith")]
assert tokenizer.decode([enc["input_ids"][i] for i in span]) == "emma smith"
print(f"the answer 'Emma Smith' is tokens {span[0]}..{span[-1]} of the pair")

# %% [markdown]
# A batch pads to its longest member, and `[MASK]` stays a single token even inside text:

# %%
batch = tokenizer(["The battery is [MASK].", "I would not recommend the Zentra S5 to anyone."], padding=True)
for ids, am in zip(batch["input_ids"], batch["attention_mask"]):
    print(tokenizer.convert_ids_to_tokens(ids), am)
assert batch["input_ids"][0].count(tokenizer.pad_token_id) == batch["attention_mask"][0].count(0) > 0
assert tokenizer.mask_token_id in batch["input_ids"][0] and "[MASK]" in tokenizer.tokenize("a [MASK] b")

# %% [markdown]
# Later chapters save a tokenizer next to its model with `save_pretrained` and reopen it with
# `load_tokenizer` (or transformers' `AutoTokenizer`); the ids do not change:

# %%
import tempfile

with tempfile.TemporaryDirectory() as folder:
    tokenizer.save_pretrained(folder)
    reloaded = load_tokenizer(folder)
assert reloaded(question, context)["input_ids"] == enc["input_ids"]
print("saved and reloaded: identical ids")

# %% [markdown]
# ## 6 · Vocabulary size against sequence length
#
# A bigger vocabulary keeps more words whole, so texts become a shorter **sequence length
# (序列长度)** in tokens — and attention costs grow with the square of the length. But every vocabulary entry is a row of the
# embedding table ($V \times C$ parameters, chapter 02), and rare pieces get few training
# examples. Train tokenizers of several sizes on the same documents and measure. Two limits
# show: the vocabulary cannot be smaller than the set of single characters (the alphabet), and
# it stops growing once every piece seen twice (`min_frequency=2`) is in it.

# %%
train_docs = docs[:5000]  # the same documents for every size, to keep this quick
val_docs = list(data["corpus"]["validation"]["text"])
sizes = [500, 1000, 1500, 2000, 3000, 4000, 6000, 8000]
tokenizers, reached, mean_length = {}, [], []
for v in sizes:
    tokenizers[v] = train_tokenizer(train_docs, vocab_size=v)
    reached.append(len(tokenizers[v]))
    lengths = [len(ids) for ids in tokenizers[v](val_docs)["input_ids"]]
    mean_length.append(sum(lengths) / len(lengths))

alphabet = len({ch for d in train_docs for ch in backend.normalizer.normalize_str(d) if not ch.isspace()})
C = SCALE.model.d_model
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(reached, mean_length, "o-")
axes[0].set_xlabel("vocabulary size reached")
axes[0].set_ylabel("tokens per validation document")
axes[0].axvline(alphabet, color="0.5", ls=":", label=f"alphabet: {alphabet} characters")
axes[0].legend()
axes[1].plot(reached, [v * C / 1e6 for v in reached], "s-", color="tab:orange")
axes[1].set_xlabel("vocabulary size reached")
axes[1].set_ylabel(f"embedding parameters (M), C = {C}")
for ax in axes:
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

from labkit.transformer import Encoder, TransformerConfig

with torch.device("meta"):  # the embedding table really is V × C
    table = Encoder(TransformerConfig(vocab_size=reached[0], d_model=C, n_heads=SCALE.model.n_heads)).embeddings.token
assert table.weight.numel() == reached[0] * C
assert all(a >= b - 1e-9 for a, b in zip(mean_length, mean_length[1:]))  # bigger vocabulary, shorter sequences
assert min(reached) >= alphabet - len(SPECIAL_TOKENS)  # never below the alphabet
assert reached[-1] < sizes[-1]  # saturates: not enough frequent pieces for 8000
print("requested:", sizes, "\nreached:  ", reached, "\ntokens/doc:", [round(m, 1) for m in mean_length])

# %% [markdown]
# Slide through the vocabulary sizes to watch a sentence fall apart into smaller pieces:

# %%
probe = "The Zentra S5 headphones are splendid, but the customer service was atrocious."


def show_split(vocab_size: int = 1000):
    pieces = tokenizers[vocab_size].tokenize(probe)
    print(f"{len(pieces)} tokens (vocabulary {len(tokenizers[vocab_size])}):")
    print(" ".join(pieces))


widgets.interact(show_split, vocab_size=widgets.SelectionSlider(options=sizes, value=1000, description="vocab_size"));

# %% [markdown]
# The lab asks for 3,000 (ci), 6,000 (cpu) and 12,000 (gpu) pieces: enough that most TinyWorld
# words stay whole. When the corpus holds fewer frequent pieces than that, training stops
# earlier, and `labkit build` sizes the model's embedding table to the tokenizer it got,
# `len(tokenizer)`:

# %%
val_words = [w for d in val_docs for w, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(d))
             if w.isalpha() and not any(map(is_cjk, w))]  # English words; a Chinese character is one token anyway
whole = sum(len(tokenizer.tokenize(w)) == 1 for w in val_words) / len(val_words)
print(f"LAB_SCALE={LAB_SCALE!r}: asked for {SCALE.vocab_size} pieces, the corpus gave {len(tokenizer)}; "
      f"{whole:.0%} of the English words in the validation documents are one token")
assert len(tokenizer) <= SCALE.vocab_size
assert whole > 0.5  # most words stay whole

# %% [markdown]
#
# ## Summary
#
# - TinyWorld gives the lab an offline corpus and five labelled tasks, with a dataset card;
#   `load_task(name, size)` returns train/validation/test as a `DatasetDict`.
# - Evaluation is honest by construction: held-out entities and held-out opinion words never
#   occur in labelled train splits (checked above, row by row), so a test score measures
#   generalisation, not memory.
# - The WordPiece tokenizer lowercases, isolates each Chinese character, splits words
#   longest-match-first into `##` subword pieces, and makes a word `[UNK]` only when it holds a
#   character the corpus never showed.
# - `[CLS] A [SEP] B [SEP]`, token type ids, attention masks and offsets are what the model and
#   the later chapters use; `[MASK]` is for pretraining.
# - Vocabulary size trades sequence length against embedding parameters.
#
# ## Exercises
#
# Replace each `None` and run the cell; a ❌ comes with a hint, and running it again gives a
# stronger one. Each cell runs on its own (it builds its inputs from `labkit.exercises.ch03`;
# `ch03.exercise_tokenizer()` trains the chapter's kind of tokenizer on the ci corpus in about a
# second). Solutions: `notebooks/solutions/ch03.py`.
#
# **Exercise 1 · Chinese tokens.** What tokens (special ones included) does the tokenizer give
# `ch03.CHINESE_SENTENCE` ("What is the weather like today?") when it encodes it? Predict
# first, then compute.

# %% tags=["exercise"]
from labkit.exercises import ch03

tokenizer = ch03.exercise_tokenizer()
print(ch03.CHINESE_SENTENCE)
answer = None  # your code: a list of token strings
ch03.check_chinese_tokens(answer)

# %% [markdown]
# **Exercise 2 · Unseen words.** None of the words in `ch03.UNSEEN_WORDS` occurs in TinyWorld's
# corpus. Which of them does the tokenizer lose completely, so that `tokenizer.tokenize(word)` is
# just `["[UNK]"]`? Predict for each word first and write down why; then check. What does your
# answer say about how often a subword tokenizer meets a truly unknown word?

# %% tags=["exercise"]
from labkit.exercises import ch03

tokenizer = ch03.exercise_tokenizer()
print(ch03.UNSEEN_WORDS)
answer = None  # your code: a set of words from ch03.UNSEEN_WORDS
ch03.check_unseen_words(answer)

# %% [markdown]
# **Exercise 3 · Segment ids.** Write a function `segment_ids(tokens)` that returns the
# `token_type_ids` BERT gives a list of tokens such as
# `["[CLS]", "who", "?", "[SEP]", "emma", "[SEP]", "[PAD]"]`.

# %% tags=["exercise"]
from labkit.exercises import ch03


def segment_ids(tokens):
    return None  # your code


answer = None  # your code: the function segment_ids, once it is written
ch03.check_segment_ids(answer)

# %% [markdown]
# **Exercise 4 · Which test entities did training already show?** For each entity type of
# `load_task("ner", size="ci")`, what share of the test split's entities (every occurrence)
# also occurs, with the same type and the same words, somewhere in the train split?
# `ch03.ner_entities(row, tag_names)` lists a row's entities as `(type, text)` pairs. Then
# answer in words: a "model" that only memorised the train split's names would score what
# recall on test people? On test cities? Which per-type scores in chapter 06 can you take as
# evidence of generalisation?

# %% tags=["exercise"]
from labkit.data import load_task
from labkit.exercises import ch03

ner = load_task("ner", size="ci")
tag_names = ner["train"].features["ner_tags"].feature.names
print(ch03.ENTITY_TYPES, ch03.ner_entities(ner["test"][0], tag_names))
answer = None  # your code: {"PER": ..., "ORG": ..., "LOC": ..., "DATE": ..., "PRODUCT": ...}, shares in [0, 1]
ch03.check_seen_entities(answer)

# %% [markdown] tags=["experiment"]
# **Open experiment.** *How big should the vocabulary be?*
#
# - **Change** `vocab_size` in `train_tokenizer` (from a few hundred to the point where it stops
#   growing), on the same training documents; optionally change which documents it learns from
#   (English only, or Chinese only).
# - **Measure** with `labkit.tokenization.train_tokenizer` and the tokenizer itself: the size
#   reached, `len(tokenizer)`; the mean number of tokens per validation document; the share of
#   validation words that stay one token; the number of `[UNK]` tokens; and the embedding table's
#   size, $V \times C$ with $C$ = `SCALES["cpu"].model.d_model`.
# - **A good answer** shows the measures side by side for at least four sizes (a table or a
#   plot); finds where a bigger vocabulary stops paying (sequences barely shorter while the
#   embedding table keeps growing, and the rarest pieces are seen only a few times); explains why
#   the vocabulary stops growing, why the number of `[UNK]` tokens hardly depends on the size, and
#   why Chinese text gains nothing from a bigger vocabulary; and
#   recommends a size for the cpu scale, with the numbers behind the choice.
#
# The starter below trains two tokenizers on 1,000 documents (a few seconds); extend it.

# %% tags=["experiment"]
from labkit.data import load_task
from labkit.tokenization import train_tokenizer

corpus = load_task("corpus", size="ci")
train_texts, val_texts = list(corpus["train"]["text"])[:1000], list(corpus["validation"]["text"])
for vocab_size in (500, 2000):  # add more sizes
    tok = train_tokenizer(train_texts, vocab_size=vocab_size)
    lengths = [len(ids) for ids in tok(val_texts)["input_ids"]]
    unknown = sum(ids.count(tok.unk_token_id) for ids in tok(val_texts)["input_ids"])
    print(f"asked {vocab_size:>5}, reached {len(tok):>5}: {sum(lengths) / len(lengths):6.1f} tokens per document, "
          f"{unknown} [UNK] tokens in all")

# %% [markdown] tags=["teacher"]
# **For teachers.** The chapter has two halves: data (sections 1–3, with exercise 4) and
# tokenisation (sections 4–6, with exercises 1–3). In a short class, do section 3 and exercise 4
# together — the idea that a test set must be new to the model is the one learners carry into
# every later chapter — and skim section 2's plots.
#
# Common misconceptions: that an unseen word becomes `[UNK]` (it is spelled from pieces; only an
# unseen *character* is lost, exercise 2); that Chinese needs a word segmenter (BERT uses single
# characters); that a high test score proves generalisation (only if the test examples are new —
# cities and dates are shared across splits, exercise 4); that a bigger vocabulary is always
# better (it shortens sequences but grows the embedding table, and training stops adding pieces
# once no pair is frequent enough — the open experiment).
#
# For the open experiment, give each group a range of sizes, or one language each, and compare
# the tables at the end.
