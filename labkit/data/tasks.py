"""The TinyWorld datasets (the corpus, six tasks and the instruction chats): sizes, features, builders.

Every task draws its splits from one world (``build_world(seed)``) with its own random
stream per split. Labelled train splits use the train entity pools and never show a
reserved (template, value) combination; validation and test use the held-out pools
(see ``world.py`` and ``slots.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Sequence, Translation, Value

from labkit.data import corpus, instructions, ner, qa, sentiment, topic, translation
from labkit.data.render import derive_rng
from labkit.data.world import build_world

DATASETS = ("corpus", "sentiment", "topic", "ner", "qa", "translation", "instructions")  # the fine-tuning tasks are labkit.tasks.TASKS
SIZES = ("ci", "cpu", "gpu")  # data presets; the build's scales are labkit.scales.SCALES
SPLITS = ("train", "validation", "test")
SENTIMENT_HELDOUT_RATE = 0.3  # share of opinion words drawn from the held-out list in eval splits


@dataclass(frozen=True)
class SplitSizes:
    """Rows per split; for ``corpus`` at a named scale, tokens per split."""

    train: int
    validation: int
    test: int
    unit: str = "rows"  # "rows" or "tokens"


_LABELLED = {"ci": (500, 100, 200), "cpu": (2000, 400, 500), "gpu": (10000, 1000, 2000)}
SCALE_SIZES: dict[str, dict[str, tuple[int, int, int]]] = {
    "corpus": {"ci": (200_000, 10_000, 10_000), "cpu": (1_000_000, 25_000, 25_000),
               "gpu": (5_000_000, 100_000, 100_000)},
    "sentiment": _LABELLED,
    "topic": _LABELLED,
    "ner": _LABELLED,
    "qa": _LABELLED,
    "translation": {"ci": (2000, 200, 200), "cpu": (8000, 500, 500), "gpu": (40000, 1000, 2000)},
    "instructions": {"ci": (2000, 100, 300), "cpu": (6000, 200, 600), "gpu": (30000, 1000, 2000)},
}


def split_sizes(task: str, size: str | int) -> SplitSizes:
    """Sizes for a named scale, or for ``size`` training rows (documents for corpus).

    With an int, validation/test keep the cpu scale's ratio to train (at least 50/100
    rows; corpus: 1/40 of the documents, at least 10).
    """
    if isinstance(size, str):
        train, validation, test = SCALE_SIZES[task][size]
        return SplitSizes(train, validation, test, "tokens" if task == "corpus" else "rows")
    if task == "corpus":
        held = max(10, size // 40)
        return SplitSizes(size, held, held)
    train, validation, test = SCALE_SIZES[task]["cpu"]
    return SplitSizes(size, max(50, round(size * validation / train)), max(100, round(size * test / train)))


def features(task: str) -> Features:
    """The ``datasets.Features`` of ``task``'s rows."""
    if task == "corpus":
        return Features({"text": Value("string")})
    if task == "sentiment":
        return Features({"text": Value("string"), "label": ClassLabel(names=list(sentiment.LABELS))})
    if task == "topic":
        return Features({"text": Value("string"), "label": ClassLabel(names=list(topic.TOPICS))})
    if task == "ner":
        return Features({"tokens": Sequence(Value("string")),
                         "ner_tags": Sequence(ClassLabel(names=list(ner.NER_TAGS)))})
    if task == "qa":
        return Features({"id": Value("string"), "title": Value("string"), "context": Value("string"),
                         "question": Value("string"),
                         "answers": Sequence({"text": Value("string"), "answer_start": Value("int32")})})
    if task == "translation":
        return Features({"translation": Translation(languages=["en", "zh"])})
    if task == "instructions":
        return Features({"messages": List({"role": Value("string"), "content": Value("string")}),
                         "kind": Value("string"), "entity": Value("string"), "answerable": Value("bool"),
                         "lang": Value("string"), "value": Value("string")})
    raise ValueError(f"unknown task {task!r}; choose one of {DATASETS}")


def build_rows(task: str, sizes: SplitSizes, seed: int, *, skew: float = 0.0, canaries: int = 0,
               canary_text: str | None = None) -> dict[str, list[dict]]:
    """Rows of every split of ``task`` (no caching; see ``load_task``)."""
    world = build_world(seed, skew if task == "corpus" else 0.0)
    counts = dict(zip(SPLITS, (sizes.train, sizes.validation, sizes.test)))
    rows: dict[str, list[dict]] = {}
    for split in SPLITS:
        rng = derive_rng(seed, task, split)
        n = counts[split]
        evaluation = split != "train"
        common = {"heldout": evaluation, "reserve": not evaluation}
        if task == "corpus":
            budget = {"n_tokens": n} if sizes.unit == "tokens" else {"n_documents": n}
            documents = corpus.generate(world, rng, **budget)
            if split == "train" and canaries:
                documents = corpus.insert_canaries(documents, canaries, canary_text or corpus.DEFAULT_CANARY,
                                                   derive_rng(seed, "canaries"))
            rows[split] = [{"text": d} for d in documents]
        elif task == "sentiment":
            rate = SENTIMENT_HELDOUT_RATE if evaluation else 0.0
            rows[split] = sentiment.generate(world, rng, n, heldout_rate=rate, **common)
        elif task == "topic":
            rows[split] = topic.generate(world, rng, n, **common)
        elif task == "ner":
            rows[split] = ner.generate(world, rng, n, **common)
        elif task == "qa":
            rows[split] = qa.generate(world, rng, n, split=split, **common)
        elif task == "translation":
            seen = frozenset(r["translation"]["en"] for done in rows.values() for r in done)
            rows[split] = translation.generate(world, rng, n, exclude=seen, **common)
        elif task == "instructions":
            rows[split] = instructions.generate(world, rng, n, heldout=evaluation)
        else:
            raise ValueError(f"unknown task {task!r}; choose one of {DATASETS}")
    return rows


def build_dataset(task: str, sizes: SplitSizes, seed: int, **knobs) -> DatasetDict:
    """``build_rows`` as a ``DatasetDict`` with ``features(task)``."""
    rows = build_rows(task, sizes, seed, **knobs)
    schema = features(task)
    return DatasetDict({split: Dataset.from_list(rows[split], features=schema) for split in SPLITS})
