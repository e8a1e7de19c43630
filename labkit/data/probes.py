"""Out-of-world probes: everyday English reviews and news lines that TinyWorld never wrote.

TinyWorld's test splits come from the same templates as its training splits, so a model can
score well on them by learning the templates. The probes in ``data/probes/out_of_world.tsv``
were written by hand for the lab, in plain everyday English, with words and situations the
generator never uses (hotels, blenders, marathons, measles, parliaments...). A model that
scores well on TinyWorld's test split and badly here has learnt TinyWorld, not the task.

    from labkit.data.probes import load_probes
    probes = load_probes("sentiment")   # Dataset: text, label (negative / positive), balanced

Columns of the file: ``task`` (sentiment or topic), ``label`` (one of the task's label names),
``text``. The labels use the same ``ClassLabel`` as the task, so a TinyWorld classifier's
label ids apply unchanged.
"""
from __future__ import annotations

import csv
from pathlib import Path

from datasets import Dataset

import labkit
from labkit.data.tasks import features

__all__ = ["PROBE_TASKS", "probes_path", "load_probes"]

PROBE_TASKS = ("sentiment", "topic")


def probes_path() -> Path:
    """The probe file of this checkout: ``data/probes/out_of_world.tsv``."""
    return Path(labkit.__file__).resolve().parents[1] / "data" / "probes" / "out_of_world.tsv"


def load_probes(task: str, path: str | Path | None = None) -> Dataset:
    """The probes of ``task`` as a ``datasets.Dataset`` with the task's features (text, label)."""
    if task not in PROBE_TASKS:
        raise ValueError(f"no out-of-world probes for task {task!r}; there are probes for {list(PROBE_TASKS)}")
    path = Path(path) if path is not None else probes_path()
    if not path.is_file():
        raise FileNotFoundError(f"probe file {path} is missing; it ships with the lab's checkout in data/probes/")
    feats = features(task)
    names = feats["label"].names
    texts, labels = [], []
    with path.open(encoding="utf-8", newline="") as f:
        for number, row in enumerate(csv.DictReader(f, delimiter="\t"), start=2):
            if row["task"] != task:
                continue
            if row["label"] not in names:
                raise ValueError(f"{path.name}:{number}: label {row['label']!r} is not one of {task}'s labels {names}")
            texts.append(row["text"].strip())
            labels.append(names.index(row["label"]))
    return Dataset.from_dict({"text": texts, "label": labels}, features=feats)
