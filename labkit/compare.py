"""What scale buys: fine-tune two pretrained encoders on the same labels and score both.

The lab's mini-BERT was pretrained on TinyWorld alone; a real encoder (:mod:`labkit.real`)
was pretrained on English Wikipedia and books, then trained on about a billion English sentence pairs. Give both the same few labelled TinyWorld
examples, the same recipe (the transfer experiment's: head alone, then the whole model) and
the same seeds, then score them twice: on TinyWorld's test split (the world both were
fine-tuned in) and on the out-of-world probes (:mod:`labkit.data.probes`: everyday English the
mini model's pretraining never saw). Only the pretrained encoder and its tokenizer differ —
and the learning rate, each encoder's own (a 22.7M-parameter encoder takes smaller steps).

    rows = compare_encoders([mini, real], data, probes, CompareConfig())
    print(compare_markdown(rows))
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from torch import nn

from .tasks import TASKS, ClassificationTask
from .transfer import TransferConfig, finetune_lpft
from .transformer import count_parameters

__all__ = ["Contender", "CompareConfig", "RealStageConfig", "compare_encoders", "summarise", "compare_markdown", "probe_predictions", "plot_comparison"]


@dataclass
class Contender:
    """A pretrained encoder in the comparison, with its tokenizer and fine-tuning learning rates."""

    name: str  # a short label: "mini", "real"
    encoder: nn.Module  # a labkit Encoder or MaskedLM
    tokenizer: object
    lr: float  # the whole model's learning rate
    probe_lr: float = 3e-3  # the head's, while the encoder is frozen
    about: str = ""  # one line: what it is and what it was pretrained on

    @property
    def parameters(self) -> int:
        enc = getattr(self.encoder, "encoder", self.encoder)
        return count_parameters(enc)


@dataclass(frozen=True, kw_only=True)
class CompareConfig:
    """Which tasks, how many labels, which seeds; ``recipe`` sets steps and batch size."""

    tasks: tuple[str, ...] = ("sentiment", "topic")  # classification tasks with probes
    label_counts: tuple[int, ...] = (32, 128)
    seeds: tuple[int, ...] = (0, 1, 2)
    recipe: TransferConfig = field(default_factory=TransferConfig)
    n_test: int | None = None  # score only the first n examples of the test split (None: all)

    def __post_init__(self):
        if not self.tasks or not self.label_counts or not self.seeds:
            raise ValueError("CompareConfig needs at least one task, one label count and one seed")
        if unknown := [t for t in self.tasks if not isinstance(TASKS.get(t), ClassificationTask)]:
            raise ValueError(f"compare takes classification tasks; {unknown} are not among "
                             f"{[k for k, v in TASKS.items() if isinstance(v, ClassificationTask)]}")
        if any(n <= 0 for n in self.label_counts):
            raise ValueError(f"label counts must be positive, got {self.label_counts}")


def compare_encoders(contenders: Sequence[Contender], data: dict, probes: dict, cfg: CompareConfig = CompareConfig(),
                     *, progress: bool = False, keep: bool = False, log=None) -> list[dict]:
    """One row per run: {model, task, labels, seed, test, probe, seconds, parameters}
    (test and probe are accuracies; seconds is the fine-tune alone, scoring excluded).

    data[task]: the task's DatasetDict; probes[task]: its probe Dataset. keep=True adds the
    fine-tuned model to each row (under "model_object") for a closer look.
    """
    if len({c.name for c in contenders}) != len(contenders):
        raise ValueError(f"contenders need distinct names, got {[c.name for c in contenders]}")
    if missing := [t for t in cfg.tasks if t not in data or t not in probes]:
        raise ValueError(f"no data or probes given for tasks {missing}")
    rows = []
    for name in cfg.tasks:
        task, ds = TASKS[name], data[name]
        test_split = ds["test"] if cfg.n_test is None else ds["test"].select(range(min(cfg.n_test, len(ds["test"]))))
        for n in cfg.label_counts:
            n_eff = min(n, len(ds["train"]))
            for c in contenders:
                for seed in cfg.seeds:
                    model = task.make_model(c.encoder, ds, seed=seed)
                    t0 = time.perf_counter()
                    finetune_lpft(task, model, c.tokenizer, ds, cfg.recipe, n_train=n_eff, seed=seed, lr=c.lr,
                                  probe_lr=c.probe_lr, progress=progress, test=False)
                    seconds = time.perf_counter() - t0
                    test = task.evaluate(model, c.tokenizer, test_split)[0]["accuracy"]
                    probe = task.evaluate(model, c.tokenizer, probes[name])[0]["accuracy"]
                    row = {"model": c.name, "task": name, "labels": n_eff, "seed": seed, "test": test, "probe": probe,
                           "seconds": seconds, "parameters": c.parameters}
                    if log:
                        log(f"{c.name:>5} {name:<9} {n_eff:>4} labels seed {seed}: TinyWorld test {test:.3f}, "
                            f"probes {probe:.3f} ({seconds:.0f}s)")
                    rows.append({**row, "model_object": model} if keep else row)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds: one row per (task, labels, model)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["labels"], r["model"]), []).append(r)
    out = []
    for (task, n, model), runs in groups.items():
        stats = {k: (float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs])))
                 for k in ("test", "probe", "seconds")}
        out.append({"task": task, "labels": n, "model": model, "seeds": len(runs), "parameters": runs[0]["parameters"],
                    **{f"{k}_mean": m for k, (m, _) in stats.items()}, **{f"{k}_std": s for k, (_, s) in stats.items()}})
    return out


def compare_markdown(rows: list[dict]) -> str:
    """The table: task, labels, model, parameters, TinyWorld test and probe accuracy (mean ± std
    over seeds) and fine-tune seconds."""
    lines = ["| task | labels | model | parameters | TinyWorld test | out-of-world probes | fine-tune (s) |",
             "|---|---|---|---|---|---|---|"]
    for s in summarise(rows):
        lines.append(f"| {s['task']} | {s['labels']} | {s['model']} | {s['parameters']:,} | "
                     f"{s['test_mean']:.3f} ± {s['test_std']:.3f} | {s['probe_mean']:.3f} ± {s['probe_std']:.3f} | "
                     f"{s['seconds_mean']:.0f} |")
    return "\n".join(lines)


def probe_predictions(models: dict[str, tuple[nn.Module, object]], probes, *, max_length: int = 128) -> list[dict]:
    """Per probe sentence: its text, gold label and each model's predicted label and probability.

    models: name -> (a SequenceClassifier, its tokenizer)."""
    from .tasks import predict_proba

    names = probes.features["label"].names
    out = [{"text": t, "gold": names[y]} for t, y in zip(probes["text"], probes["label"])]
    for name, (model, tok) in models.items():
        p = predict_proba(model, tok, list(probes["text"]), max_length=max_length)
        for row, pi in zip(out, p):
            row[name] = model.id2label[int(pi.argmax())]
            row[f"{name}_p"] = float(pi.max())
    return out



@dataclass(frozen=True, kw_only=True)
class RealStageConfig:
    """The optional ``labkit build --real`` stage: the comparison grid, and the real classifiers the
    dashboard shows (fine-tuned on every labelled training example, as the mini ones are)."""

    compare: CompareConfig = field(default_factory=CompareConfig)
    classifier: TransferConfig = field(default_factory=TransferConfig)  # recipe of the saved real classifiers
    real_lr: float = 2e-4  # measured on sentiment/topic at 32 and 128 labels: 2e-4 beat 5e-5 on both
    mini_lr: float = 1e-3  # the transfer experiment's


def plot_comparison(rows: list[dict], path: str | Path | None = None):
    """Two panels (TinyWorld test, out-of-world probes): accuracy of each model per task and
    label count, mean over seeds with the standard deviation as an error bar."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    summary = summarise(rows)
    cells = list(dict.fromkeys((s["task"], s["labels"]) for s in summary))
    models = list(dict.fromkeys(s["model"] for s in summary))
    keyed = {(s["task"], s["labels"], s["model"]): s for s in summary}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    width = 0.8 / len(models)
    for ax, split, title in zip(axes, ("test", "probe"), ("TinyWorld test split", "out-of-world probes")):
        for i, model in enumerate(models):
            xs = [j + (i - (len(models) - 1) / 2) * width for j in range(len(cells))]
            ys = [keyed[(t, n, model)][f"{split}_mean"] for t, n in cells]
            es = [keyed[(t, n, model)][f"{split}_std"] for t, n in cells]
            ax.bar(xs, ys, width, yerr=es, capsize=3, label=model)
        ax.set_xticks(range(len(cells)), [f"{t}\n{n} labels" for t, n in cells])
        ax.set_title(title)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
