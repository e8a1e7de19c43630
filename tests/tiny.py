"""Tiny hand-made data for the library tests: a labelled split for every task in
labkit.tasks.TASKS, a tokenizer that knows all of it, and a small model config.

Everything here trains in a second or two on a CPU; the ci-scale build is the fixture
``ci_build`` (tests/conftest.py), not this.
"""
from __future__ import annotations

import functools

import datasets

from labkit.tokenization import train_tokenizer
from labkit.transformer import TransformerConfig

# Unlabelled text for pretraining: one-sentence English documents and two Chinese ones...
TEXTS = [f"the {a} {b} is {c} today ." for a in ("red", "blue", "green", "small") for b in ("phone", "car", "city")
         for c in ("good", "bad", "great", "awful")] + ["今天天气怎么样？", "天气很好。"] * 4
# ...and two-sentence documents, for next-sentence pairs.
COLOURS = ("red", "blue", "green", "small", "black", "white")
DOCS = [f"the {c} {thing} is here. the {c} {thing} is {adj}." for c in COLOURS
        for thing in ("phone", "car", "city") for adj in ("good", "bad", "great", "awful")]
DOCS += ["今天天气很好。我们去公园。", "他是老师。他在上海工作。"] * 4


@functools.cache
def text_tokenizer():
    """A word-piece tokenizer for TEXTS (shared: do not modify it)."""
    return train_tokenizer(TEXTS * 3, vocab_size=200, min_frequency=1)


@functools.cache
def doc_tokenizer():
    """A word-piece tokenizer for DOCS (shared: do not modify it)."""
    return train_tokenizer(DOCS * 3, vocab_size=200, min_frequency=1)


NAMES = ("emma", "tom", "li", "sara", "omar", "mia")
CITIES = ("paris", "rome", "lyon")


def _three(split: datasets.Dataset) -> datasets.DatasetDict:
    return datasets.DatasetDict(train=split, validation=split, test=split)


def _classes(texts: list[str], labels: list[int], names: list[str], text_column: str = "text") -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {text_column: texts, "label": labels},
        features=datasets.Features({text_column: datasets.Value("string"), "label": datasets.ClassLabel(names=names)}))


def sentiment_data() -> datasets.DatasetDict:
    moods = {"good": 1, "great": 1, "bad": 0, "awful": 0}
    rows = [(f"the {c} {t} is {m} today .", y) for c in ("red", "blue") for t in ("phone", "car")
            for m, y in moods.items()]
    return _three(_classes([t for t, _ in rows], [y for _, y in rows], ["negative", "positive"]))


def topic_data() -> datasets.DatasetDict:
    kinds = ["the bank sold shares .", "the team won the match .", "the doctor saw a patient ."]
    rows = [(f"{n} said {k}", y) for n in NAMES[:4] for y, k in enumerate(kinds)]
    return _three(_classes([t for t, _ in rows], [y for _, y in rows], ["business", "sports", "health"]))


NER_TAGS = ["O", "B-PER", "I-PER", "B-LOC"]


def ner_data() -> datasets.DatasetDict:
    tokens = [[n, "wilson", "lives", "in", c, "."] for n in NAMES[:4] for c in CITIES]
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=NER_TAGS))})
    split = datasets.Dataset.from_dict({"tokens": tokens, "ner_tags": [[1, 2, 0, 0, 3, 0]] * len(tokens)},
                                       features=features)
    return _three(split)


def qa_data() -> datasets.DatasetDict:
    rows = []
    for i, (n, c) in enumerate((n, c) for n in NAMES[:4] for c in CITIES):
        context = f"{n} wilson lives in {c} . {n} wilson works in a bank ."
        rows.append({"id": f"q{i}", "title": n, "context": context, "question": f"where does {n} wilson live ?",
                     "answers": {"text": [c], "answer_start": [context.index(f" {c} ") + 1]}})
    return _three(datasets.Dataset.from_list(rows))


def translation_data() -> datasets.DatasetDict:
    pairs = [("the weather is good today .", "今天天气很好。"), ("he is a teacher .", "他是老师。"),
             ("we go to the park .", "我们去公园。"), ("the weather is bad today .", "今天天气不好。")] * 2
    features = datasets.Features({"translation": datasets.Translation(languages=["en", "zh"])})
    return _three(datasets.Dataset.from_dict({"translation": [{"en": e, "zh": z} for e, z in pairs]},
                                             features=features))


MAKERS = {"sentiment": sentiment_data, "topic": topic_data, "ner": ner_data, "qa": qa_data,
          "translation": translation_data}


@functools.cache
def task_data() -> dict[str, datasets.DatasetDict]:
    """One tiny DatasetDict per task of labkit.tasks.TASKS (train = validation = test)."""
    return {name: make() for name, make in MAKERS.items()}


def _texts(split) -> list[str]:
    if "text" in split.column_names:
        return list(split["text"])
    if "tokens" in split.column_names:
        return [" ".join(t) for t in split["tokens"]]
    if "context" in split.column_names:
        return [f"{q} {c}" for q, c in zip(split["question"], split["context"])]
    return [t for p in split["translation"] for t in (p["en"], p["zh"])]


@functools.cache
def tokenizer():
    """A word-piece tokenizer over every tiny task's text (shared: do not modify it)."""
    texts = [t for d in task_data().values() for t in _texts(d["train"])]
    return train_tokenizer(texts * 3, vocab_size=300, min_frequency=1)


def config(tok, **overrides) -> TransformerConfig:
    """A 2-layer, 32-wide model for ``tok``; long enough for 64 decoded tokens."""
    sizes = dict(vocab_size=len(tok), d_model=32, n_layers=2, n_decoder_layers=1, n_heads=2, d_ff=64,
                 max_position=128, dropout=0.0, attention_dropout=0.0, pad_token_id=tok.pad_token_id)
    return TransformerConfig(**{**sizes, **overrides})
