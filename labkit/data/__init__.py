"""TinyWorld: the lab's bilingual (English + Simplified Chinese) synthetic data.

``load_task(name)`` returns a ``datasets.DatasetDict`` with train/validation/test splits:

========== ==================================================================
task       columns
========== ==================================================================
corpus     text (unlabelled EN and ZH documents, for pretraining)
sentiment  text, label (negative / positive) — English reviews
topic      text, label (business / sports / technology / health / politics)
ner        tokens, ner_tags (BIO over PER, ORG, LOC, DATE, PRODUCT)
qa         id, title, context, question, answers {text, answer_start} (SQuAD v1.1)
translation translation {en, zh}
instructions messages [{role, content}], kind, entity, answerable, lang, value (chats)
========== ==================================================================

Everything is generated from the lexicons and templates in ``data/tinyworld`` (see
``data/README.md``, the dataset card), deterministically from ``seed``, and cached on
disk (``labkit.data.cache``).

Example::

    from labkit.data import load_task
    sst = load_task("sentiment", size="ci")
    sst["train"][0]  # {'text': 'I bought the Zentra S5 ...', 'label': 1}
"""

from __future__ import annotations

import math
import os

from datasets import DatasetDict

from labkit.data.cache import cached
from labkit.data.corpus import DEFAULT_CANARY, SkewStats, count_tokens, gender_occupation_skew
from labkit.data.lexicon import data_dir, data_fingerprint
from labkit.data.tasks import SIZES, DATASETS, SplitSizes, build_dataset, split_sizes
from labkit.data.world import World, build_world

GENERATOR_VERSION = "tinyworld-7"
SCALE_ENV = "LAB_SCALE"

__all__ = [
    "DATASETS", "SIZES", "load_task", "resolve_size", "split_sizes", "SplitSizes", "build_world", "World",
    "gender_occupation_skew", "SkewStats", "count_tokens", "DEFAULT_CANARY", "data_dir", "GENERATOR_VERSION",
]


def resolve_size(size: str | int | None) -> str | int:
    """A scale name or a positive number of training rows (``None``: ``$LAB_SCALE`` or "cpu")."""
    if size is None:
        size = os.environ.get(SCALE_ENV) or "cpu"
        if size not in SIZES:
            raise ValueError(f"environment variable {SCALE_ENV}={size!r} is not a scale; choose one of {SIZES}")
        return size
    if isinstance(size, bool) or not isinstance(size, (str, int)):
        raise ValueError(f"size must be one of {SIZES}, a positive int or None; got {size!r}")
    if isinstance(size, str) and size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {SIZES}, a positive int, or None")
    if isinstance(size, int) and size <= 0:
        raise ValueError(f"size must be a positive number of training examples; got {size}")
    return size


def load_task(name: str, size: str | int | None = None, seed: int = 0, *, skew: float = 0.0,
              canaries: int = 0, canary_text: str | None = None) -> DatasetDict:
    """Generate (or load from the cache) TinyWorld task ``name``.

    Args:
        name: one of ``DATASETS``.
        size: one of ``SIZES`` ("ci" small and fast, "cpu" default, "gpu" large), a
            positive number of training rows (documents for ``corpus``), or None for
            ``$LAB_SCALE`` (default "cpu").
        seed: world and sampling seed; same arguments give identical data.
        skew: corpus only — gender/occupation stereotyping, 0 (balanced) to 1 (full).
        canaries: corpus only — how many times to insert ``canary_text`` into train.
        canary_text: corpus only — the canary sentence (default ``DEFAULT_CANARY``).

    Returns:
        ``DatasetDict`` with "train", "validation" and "test".
    """
    if name not in DATASETS:
        raise ValueError(f"unknown task {name!r}; choose one of {DATASETS}")
    size = resolve_size(size)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int; got {seed!r}")
    if not isinstance(skew, (int, float)) or isinstance(skew, bool) or math.isnan(skew) or not 0 <= skew <= 1:
        raise ValueError(f"skew must be a number in [0, 1]; got {skew!r}")
    if isinstance(canaries, bool) or not isinstance(canaries, int) or canaries < 0:
        raise ValueError(f"canaries must be an int >= 0; got {canaries!r}")
    if canary_text is not None and (not isinstance(canary_text, str) or not canary_text.strip()):
        raise ValueError(f"canary_text must be a non-empty string or None; got {canary_text!r}")
    if name != "corpus" and (skew != 0 or canaries != 0 or canary_text is not None):
        raise ValueError(f"skew, canaries and canary_text apply only to task 'corpus', not {name!r}; "
                         "leave them at 0.0, 0 and None")

    sizes = split_sizes(name, size)
    knobs = {"skew": float(skew), "canaries": canaries, "canary_text": canary_text}
    params = {"task": name, "size": size, "sizes": [sizes.train, sizes.validation, sizes.test, sizes.unit],
              "seed": seed, **knobs, "version": GENERATOR_VERSION, "data": data_fingerprint()}
    label = f"{name}-{size}-seed{seed}"
    return cached(label, params, lambda: build_dataset(name, sizes, seed, **knobs))
