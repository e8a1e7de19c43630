"""One fine-tuning loop for every task: ``finetune(task, model, tokenizer, data, cfg)``.

The task (:mod:`labkit.tasks`) makes the named batches and scores the predictions; the
model returns its own loss; :func:`labkit.training.fit` trains. Data is a
``datasets.DatasetDict`` with train/validation/test splits. Everything random inside —
which examples a subsample keeps, batch order, dropout — is drawn from ``cfg.seed``, so two
runs with one seed are identical whatever ran before them.

``finetune_classifier``, ``finetune_tokens``, ``finetune_qa`` and ``finetune_translation``
are the same loop with a task made from their keyword arguments.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tasks import (ClassificationTask, QATask, TaggingTask, Task, TranslationTask, align_labels, answer_questions,
                    predict_proba, predict_tags)
from .training import History, TrainConfig, fit, pad, seeded

__all__ = ["FinetuneResult", "finetune", "subsample", "finetune_classifier", "finetune_tokens", "finetune_qa",
           "finetune_translation", "pad", "predict_proba", "align_labels", "predict_tags", "answer_questions"]


@dataclass
class FinetuneResult:
    history: History
    metrics: dict[str, float]  # on the test split (empty when it was not scored)
    report: str = ""  # a readable per-class / per-entity report, where one exists


def subsample(split, n: int | None, seed: int, label_column: str | None = None):
    """The first n examples of a seeded shuffle (stratified by label when a column is given)."""
    if n is None or n >= len(split):
        return split
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    rng = np.random.default_rng(seed)
    if label_column is None:
        return split.select(sorted(rng.permutation(len(split))[:n].tolist()))
    labels = np.asarray(split[label_column])
    per = [rng.permutation(np.flatnonzero(labels == c)).tolist() for c in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < n:  # round-robin over classes keeps them balanced
        for p in per:
            if p and len(chosen) < n:
                chosen.append(p.pop())
    return split.select(sorted(chosen))


def finetune(task: Task, model, tokenizer, data, cfg: TrainConfig, *, n_train: int | None = None,
             validate: bool = True, test: bool = True) -> FinetuneResult:
    """Fine-tune ``model`` on ``task``; return the history and the test-split metrics.

    n_train: use only this many labelled training examples (class-balanced for classification),
    as in the transfer experiment. validate: score (part of) the validation split every
    ``cfg.eval_every`` steps. test: score the test split at the end (else the metrics are empty).
    """
    if not isinstance(task, Task):
        raise ValueError(f"task must be a labkit.tasks.Task (e.g. labkit.tasks.TASKS['sentiment']), got {task!r}")
    if missing := {"train", "validation", "test"} - set(data):
        raise ValueError(f"data for {task.name!r} lacks the splits {sorted(missing)}")
    with seeded(cfg.seed):
        train = subsample(data["train"], n_train, cfg.seed, task.stratify_column)
        history = fit(model, task.batches(tokenizer, train, cfg), cfg=cfg,
                      evaluate=(lambda m: task.validate(m, tokenizer, data["validation"])) if validate else None,
                      desc=f"fine-tuning {task.name} ({len(train)} {task.unit})")
        metrics, report = task.evaluate(model, tokenizer, data["test"]) if test else ({}, "")
    return FinetuneResult(history, metrics, report)


def finetune_classifier(model, tokenizer, data, cfg: TrainConfig, *, text_column: str = "text",
                        label_column: str = "label", max_length: int = 128, **kw) -> FinetuneResult:
    """:func:`finetune` for a sequence classifier: accuracy and macro-F1."""
    task = ClassificationTask(name="classification", text_column=text_column, label_column=label_column,
                              max_length=max_length)
    return finetune(task, model, tokenizer, data, cfg, **kw)


def finetune_tokens(model, tokenizer, data, cfg: TrainConfig, *, tokens_column: str = "tokens",
                    tags_column: str = "ner_tags", max_length: int = 128, **kw) -> FinetuneResult:
    """:func:`finetune` for a token classifier: entity-level P/R/F1 (CoNLL)."""
    task = TaggingTask(name="tagging", tokens_column=tokens_column, tags_column=tags_column, max_length=max_length)
    return finetune(task, model, tokenizer, data, cfg, **kw)


def finetune_qa(model, tokenizer, data, cfg: TrainConfig, *, max_length: int = 192, stride: int = 64,
                n_validate: int | None = 400, **kw) -> FinetuneResult:
    """:func:`finetune` for extractive QA: SQuAD v1.1 exact match and F1 (percent)."""
    task = QATask(name="qa", max_length=max_length, stride=stride, n_validate=n_validate)
    return finetune(task, model, tokenizer, data, cfg, **kw)


def finetune_translation(model, tokenizer, data, cfg: TrainConfig, *, max_length: int = 64, num_beams: int = 4,
                         n_validate: int | None = 200, n_beam: int | None = 200, **kw) -> FinetuneResult:
    """:func:`finetune` for EN→ZH translation: character BLEU, greedy (and beam search on the first ``n_beam``)."""
    task = TranslationTask(name="translation", max_length=max_length, num_beams=num_beams, n_validate=n_validate,
                           n_beam=n_beam)
    return finetune(task, model, tokenizer, data, cfg, **kw)
