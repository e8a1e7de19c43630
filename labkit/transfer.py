"""The transfer experiment: does pretraining on unlabelled text reduce how many labels a task needs?

For each task and each number of labelled examples n, fine-tune the same architecture
twice — once from the pretrained encoder, once from random initialisation — with the same
steps, learning rate and seeds, and compare the test score: accuracy for classification
tasks (a ``label`` column), entity-level F1 for tagging tasks (``ner_tags``).

Each run first trains the new head alone (the encoder frozen; a classifier's pooler trains
with its head), then the whole model: "linear probing, then fine-tuning" (LP-FT, Kumar et
al., 2022). A randomly initialised head otherwise sends large, arbitrary gradients into the
pretrained encoder in the first steps; with 32 labels that can wreck what pretraining put
there. The scratch runs get exactly the same two phases.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .finetune import FinetuneResult, finetune
from .tasks import TASKS
from .training import TrainConfig
from .transformer import MaskedLM

__all__ = ["TransferConfig", "finetune_lpft", "run_transfer", "transfer_markdown", "plot_transfer"]


@dataclass(frozen=True, kw_only=True)
class TransferConfig:
    tasks: tuple[str, ...] = ("sentiment", "ner")  # names in labkit.tasks.TASKS
    label_counts: tuple[int | None, ...] = (32, 128, 512, None)  # None = every labelled example
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 15  # passes over the n examples...
    min_steps: int = 60  # ...but at least this many steps
    steps_cap: int = 150  # ...and at most this many
    batch_size: int = 16
    lr: float = 1e-3
    probe_steps: int = 60  # first phase: the head alone (0 = plain fine-tuning)...
    probe_lr: float = 3e-3  # ...at this learning rate

    def steps_for(self, n: int) -> int:
        return int(min(self.steps_cap, max(self.min_steps, math.ceil(self.epochs * n / self.batch_size))))


def _train_head_only(model, train) -> None:
    """Call ``train()`` with ``model``'s encoder frozen but for a classifier's pooler: only the head learns."""
    frozen = [p for name, p in model.encoder.named_parameters() if not name.startswith("pooler.")]
    for p in frozen:
        p.requires_grad_(False)
    try:
        train()
    finally:
        for p in frozen:
            p.requires_grad_(True)


def finetune_lpft(task, model, tokenizer, ds, cfg: TransferConfig, *, n_train: int, seed: int,
                  lr: float | None = None, probe_lr: float | None = None, progress: bool = False,
                  test: bool = True) -> FinetuneResult:
    """One run of the experiment's recipe: the head alone for ``cfg.probe_steps`` steps, then the
    whole model for ``cfg.steps_for(n_train)`` steps (``lr``/``probe_lr`` override the config's)."""
    tc = TrainConfig(steps=cfg.steps_for(n_train), batch_size=cfg.batch_size, lr=cfg.lr if lr is None else lr, seed=seed,
                     eval_every=10**9, progress=progress)
    if cfg.probe_steps > 0:
        probe = replace(tc, steps=cfg.probe_steps, lr=cfg.probe_lr if probe_lr is None else probe_lr)
        _train_head_only(model, lambda: finetune(task, model, tokenizer, ds, probe, n_train=n_train,
                                                 validate=False, test=False))
    return finetune(task, model, tokenizer, ds, tc, n_train=n_train, validate=False, test=test)


def run_transfer(pretrained: MaskedLM, tokenizer, data: dict, cfg: TransferConfig, *, progress: bool = False,
                 tasks: dict | None = None) -> list[dict]:
    """Rows of {task, metric, labels, init, score (mean), std, runs}; one row per (task, n, init).

    Each run (task, n, init, seed) depends on its own seed alone: its head, its subsample,
    its batch order and its dropout are drawn from it, so a cell scores the same whether or
    not other cells ran first. ``tasks`` overrides :data:`labkit.tasks.TASKS` by name.
    """
    tasks = {**TASKS, **(tasks or {})}
    if unknown := [t for t in cfg.tasks if t not in tasks]:
        raise ValueError(f"unknown transfer tasks {unknown}; choose from {sorted(tasks)}")
    rows = []
    for name in cfg.tasks:
        task, ds = tasks[name], data[name]
        for n in cfg.label_counts:
            n_eff = len(ds["train"]) if n is None else min(n, len(ds["train"]))
            for init in ("pretrained", "scratch"):
                scores = []
                for seed in cfg.seeds:
                    model = task.make_model(pretrained if init == "pretrained" else None, ds,
                                            config=pretrained.config, seed=seed)
                    metrics = finetune_lpft(task, model, tokenizer, ds, cfg, n_train=n_eff, seed=seed,
                                            progress=progress).metrics
                    scores.append(metrics[task.metric])
                rows.append({"task": name, "metric": task.metric, "labels": n_eff, "init": init,
                             "score": float(np.mean(scores)), "std": float(np.std(scores)), "runs": scores})
    return rows


def transfer_markdown(rows: list[dict]) -> str:
    """A table: task, metric, labels, pretrained and scratch score (mean ± std over seeds), and the gain in points."""
    out = ["| task | metric | labels | pretrained | scratch | gain (points) |", "|---|---|---|---|---|---|"]
    keyed = {(r["task"], r["labels"], r["init"]): r for r in rows}
    for task, n in dict.fromkeys((r["task"], r["labels"]) for r in rows):
        p, s = keyed[(task, n, "pretrained")], keyed[(task, n, "scratch")]
        out.append(f"| {task} | {p['metric']} | {n} | {p['score']:.3f} ± {p['std']:.3f} | {s['score']:.3f} ± {s['std']:.3f} | "
                   f"{100 * (p['score'] - s['score']):+.1f} |")
    return "\n".join(out)


def plot_transfer(rows: list[dict], path: str | Path | None = None):
    """Accuracy against number of labels (log scale), pretrained vs scratch, one panel per task."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for init, style in (("pretrained", "o-"), ("scratch", "s--")):
            pts = sorted((r["labels"], r["score"], r["std"]) for r in rows if r["task"] == task and r["init"] == init)
            xs, ys, es = zip(*pts)
            ax.errorbar(xs, ys, yerr=es, fmt=style, capsize=3, label=init)
        ax.set_xscale("log")
        ax.set_xlabel("labelled training examples")
        ax.set_ylabel("test " + next(r["metric"] for r in rows if r["task"] == task))
        ax.set_title(task)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
