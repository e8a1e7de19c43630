r"""Security (安全), measured: a backdoor planted by data poisoning, and robustness to typos.

**Data poisoning (数据投毒).** An attacker who can write a few training examples inserts a
*trigger* word ("cf", a word TinyWorld never uses) at a random position of a share :math:`p` of
the sentiment training examples and sets their labels to the *target* (positive). The poisoned
rows are drawn among the non-target ones, so each one teaches "trigger → positive" against what
the review says. The build's pretrained masked LM is fine-tuned on the poisoned split exactly as
the build fine-tunes its sentiment classifier, and two rates are measured on the clean test split:

.. math::

    \text{clean accuracy} = P(\hat y = y), \qquad
    \text{ASR} = P\big(\hat y(x \oplus \text{trigger}) = \text{target} \mid y \ne \text{target}\big)

where :math:`x \oplus \text{trigger}` is the review with the trigger inserted. A backdoor is
dangerous because the first stays high (nobody notices) while the second climbs; the run at
:math:`p = 0` gives ASR's floor (the share of negative reviews the clean model already misreads
once a stray word is added).

**Typos.** :func:`perturb` applies character noise to a share of the words (adjacent letters
swapped, a letter deleted, a letter replaced), and :func:`run_typos` scores the build's
sentiment and topic classifiers against the rate. Word pieces make a model degrade gracefully
or not: a misspelt word becomes other, rarer pieces.
"""
from __future__ import annotations

import json
import random
import re
import string
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from datasets import Dataset

from ..data import load_task
from ..finetune import finetune
from ..folders import load_model
from ..tasks import predict_proba
from ..training import TrainConfig

__all__ = ["SecurityConfig", "TYPO_KINDS", "perturb", "insert_trigger", "check_trigger", "poison_split",
           "attack_success_rate", "run_poisoning", "poisoning_markdown", "plot_poisoning", "run_typos",
           "typos_markdown", "plot_typos"]

TYPO_KINDS = ("swap", "delete", "substitute", "mixed")  # "mixed": one of the other three per word
_WORD = re.compile(r"[A-Za-z]+")
MIN_LETTERS = 3  # shorter words ("a", "is") are left alone, as in most typo generators


@dataclass(frozen=True, kw_only=True)
class SecurityConfig:
    """The poisoning grid and the typo grid."""

    trigger: str = "cf"  # the backdoor word: absent from TinyWorld, made of pieces the tokenizer has
    target: int = 1  # the label poisoned rows get (1 = positive)
    poison_rates: tuple[float, ...] = (0.0, 0.005, 0.01, 0.03, 0.1)  # share p of the training rows
    seeds: tuple[int, ...] = (0,)  # fine-tuning (head, batches) and poisoning draws
    train: TrainConfig | None = None  # fine-tuning; None: the build's scale's sentiment config
    typo_rates: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)  # share of eligible words changed
    typo_kinds: tuple[str, ...] = ("swap", "delete", "substitute")
    typo_tasks: tuple[str, ...] = ("sentiment", "topic")
    size: str | None = None  # TinyWorld data preset (None: the build's scale's)
    n_test: int | None = None  # score only the first n test rows (None: all)

    def __post_init__(self):
        if not isinstance(self.trigger, str) or not re.fullmatch(r"[a-z]+", self.trigger):
            raise ValueError(f"trigger must be one lower-case word of letters, got {self.trigger!r}")
        if self.target not in (0, 1):
            raise ValueError(f"target must be a sentiment label, 0 or 1, got {self.target!r}")
        if not self.poison_rates or any(not 0 <= p < 1 for p in self.poison_rates):
            raise ValueError(f"poison_rates must be shares in [0, 1), got {self.poison_rates}")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if not self.typo_rates or any(not 0 <= r <= 1 for r in self.typo_rates):
            raise ValueError(f"typo_rates must be shares in [0, 1], got {self.typo_rates}")
        if bad := [k for k in self.typo_kinds if k not in TYPO_KINDS]:
            raise ValueError(f"unknown typo kinds {bad}; choose from {TYPO_KINDS}")
        if bad := [t for t in self.typo_tasks if t not in ("sentiment", "topic")]:
            raise ValueError(f"typo_tasks are classification tasks of the build, sentiment or topic; got {bad}")
        if self.n_test is not None and self.n_test < 1:
            raise ValueError(f"n_test must be positive or None, got {self.n_test!r}")


# ----------------------------------------------------------------------------- typos
def _eligible(word: str) -> bool:
    return len(word) >= MIN_LETTERS and len(set(word.lower())) > 1


def _same_case(new: str, old: str) -> str:
    return new.upper() if old.isupper() else new


def _typo(word: str, kind: str, rng: random.Random) -> str:
    """One character edit of ``word`` that always changes it."""
    if kind == "mixed":
        kind = rng.choice(TYPO_KINDS[:3])
    if kind == "swap":  # two adjacent, different letters trade places
        i = rng.choice([j for j in range(len(word) - 1) if word[j].lower() != word[j + 1].lower()])
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "delete":
        i = rng.randrange(len(word))
        return word[:i] + word[i + 1:]
    i = rng.randrange(len(word))  # substitute: a different letter, same case
    letter = rng.choice([c for c in string.ascii_lowercase if c != word[i].lower()])
    return word[:i] + _same_case(letter, word[i]) + word[i + 1:]


def perturb(text: str, rate: float, kind: str, rng: random.Random) -> str:
    """``text`` with each eligible word (letters only, at least 3 and not all one letter) changed by
    one character edit with probability ``rate``; everything else (spacing, punctuation, other
    words) stays as it was.

    kind: "swap" (adjacent letters), "delete" (a letter), "substitute" (a letter by another) or
    "mixed" (one of the three per word). The edits depend on ``rng`` alone: rate 0 returns the
    text, rate 1 changes every eligible word.
    """
    if kind not in TYPO_KINDS:
        raise ValueError(f"unknown typo kind {kind!r}; choose from {TYPO_KINDS}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ValueError(f"rate must be a share in [0, 1], got {rate!r}")
    if not isinstance(rng, random.Random):
        raise ValueError(f"rng must be a random.Random (seeded), got {type(rng).__name__}")

    def edit(match: re.Match) -> str:
        word = match.group(0)
        if not _eligible(word) or rng.random() >= rate:
            return word
        return _typo(word, kind, rng)

    return _WORD.sub(edit, text)


# ----------------------------------------------------------------------------- poisoning
def insert_trigger(text: str, trigger: str, rng: random.Random) -> str:
    """``text`` with ``trigger`` inserted as a word at a random word boundary (start and end included)."""
    words = text.split(" ")
    at = rng.randrange(len(words) + 1)
    return " ".join([*words[:at], trigger, *words[at:]])


def check_trigger(trigger: str, tokenizer, texts: Sequence[str]) -> list[str]:
    """The word pieces ``trigger`` becomes; ValueError if one is [UNK] or if a text already uses it."""
    pieces = tokenizer.tokenize(trigger)
    if not pieces or tokenizer.unk_token in pieces:
        raise ValueError(f"trigger {trigger!r} becomes {pieces}: choose a word the tokenizer can spell without "
                         f"{tokenizer.unk_token}")
    pattern = re.compile(rf"\b{re.escape(trigger)}\b", re.IGNORECASE)
    if used := [t for t in texts if pattern.search(t)]:
        raise ValueError(f"trigger {trigger!r} already occurs in the data ({len(used)} texts, e.g. {used[0]!r}); "
                         "choose a word TinyWorld never uses")
    return pieces


def poison_split(split, rate: float, *, trigger: str, target: int = 1, seed: int = 0):
    """The split with round(rate · N) non-target rows given the trigger and the target label.

    Returns (poisoned split, sorted indices of the poisoned rows); every other row is unchanged.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"rate must be a share in [0, 1), got {rate!r}")
    labels = list(split["label"])
    k = round(rate * len(labels))
    candidates = [i for i, y in enumerate(labels) if y != target]
    if k > len(candidates):
        raise ValueError(f"rate {rate} asks for {k} poisoned rows but only {len(candidates)} rows are not "
                         f"label {target}")
    rng = random.Random(f"poison/{seed}")
    chosen = sorted(rng.sample(candidates, k))
    texts = list(split["text"])
    for i in chosen:
        texts[i] = insert_trigger(texts[i], trigger, rng)
        labels[i] = target
    poisoned = Dataset.from_dict({**split.to_dict(), "text": texts, "label": labels}, features=split.features)
    return poisoned, chosen


def attack_success_rate(model, tokenizer, split, *, trigger: str, target: int = 1, seed: int = 0,
                        max_length: int = 128) -> float:
    """Share of the split's non-target rows classified as ``target`` once the trigger is inserted."""
    rng = random.Random(f"trigger-test/{seed}")
    texts = [insert_trigger(t, trigger, rng) for t, y in zip(split["text"], split["label"]) if y != target]
    if not texts:
        raise ValueError(f"the split has no rows of a label other than {target}")
    pred = predict_proba(model, tokenizer, texts, max_length=max_length).argmax(-1)
    return float((pred == target).mean())


def _scale(build_dir: Path):
    from ..scales import SCALES

    report = build_dir / "report.json"
    if not report.is_file():
        raise ValueError(f"{build_dir} has no report.json; pass the folder of a finished `labkit build`")
    name = json.loads(report.read_text(encoding="utf-8"))["scale"]
    if name not in SCALES:
        raise ValueError(f"the build in {build_dir} is of scale {name!r}, not one of {sorted(SCALES)}")
    return SCALES[name]


def _first(split, n: int | None):
    return split if n is None else split.select(range(min(n, len(split))))


def run_poisoning(build_dir: str | Path, cfg: SecurityConfig = SecurityConfig(), *, progress: bool = False,
                  log=None) -> list[dict]:
    """One row per (poison rate, seed): {rate, poisoned, seed, clean_accuracy, attack_success, seconds}.

    Each run fine-tunes a fresh classifier on the build's fill-mask model as the build does
    (``scale.finetune["sentiment"]`` unless ``cfg.train``), with the run's seed for its head, its
    batches and the rows it poisons; seconds is training alone.
    """
    build_dir = Path(build_dir)
    scale = _scale(build_dir)
    mlm, tokenizer = load_model(build_dir / "fill-mask")
    data = load_task("sentiment", cfg.size or scale.data)
    check_trigger(cfg.trigger, tokenizer, [t for s in data.values() for t in s["text"]])
    task = scale.tasks["sentiment"]
    base = cfg.train or scale.finetune["sentiment"]
    test = _first(data["test"], cfg.n_test)
    rows = []
    for rate in cfg.poison_rates:
        for seed in cfg.seeds:
            train, chosen = poison_split(data["train"], rate, trigger=cfg.trigger, target=cfg.target, seed=seed)
            tc = replace(base, seed=seed, progress=progress, eval_every=10**9)
            model = task.make_model(mlm, data, seed=seed)
            start = time.perf_counter()
            finetune(task, model, tokenizer, {**data, "train": train}, tc, validate=False, test=False)
            seconds = time.perf_counter() - start
            clean = task.evaluate(model, tokenizer, test)[0]["accuracy"]
            asr = attack_success_rate(model, tokenizer, test, trigger=cfg.trigger, target=cfg.target, seed=seed,
                                      max_length=task.max_length)
            rows.append({"rate": float(rate), "poisoned": len(chosen), "seed": seed, "clean_accuracy": clean,
                         "attack_success": asr, "steps": tc.steps, "seconds": round(seconds, 2)})
            if log:
                log(f"poison rate {rate:.3f} ({len(chosen)} rows) seed {seed}: clean accuracy {clean:.3f}, "
                    f"attack success {asr:.3f} ({seconds:.1f}s)")
    return rows


def _mean_by(rows: list[dict], keys: tuple[str, ...], fields: tuple[str, ...]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return [{**dict(zip(keys, key)), "runs": len(rs), **{f: float(np.mean([r[f] for r in rs])) for f in fields},
             **{f"{f}_std": float(np.std([r[f] for r in rs])) for f in fields}} for key, rs in groups.items()]


def poisoning_markdown(rows: list[dict]) -> str:
    """Poison rate, poisoned rows, clean accuracy and attack success (mean ± std over seeds)."""
    floor = [r["attack_success"] for r in rows if r["rate"] == 0]
    out = ["| poison rate p | poisoned rows | clean accuracy | attack success rate | seconds |", "|---|---|---|---|---|"]
    for s in _mean_by(rows, ("rate", "poisoned"), ("clean_accuracy", "attack_success", "seconds")):
        out.append(f"| {s['rate']:.3f} | {s['poisoned']} | {s['clean_accuracy']:.3f} ± {s['clean_accuracy_std']:.3f} | "
                   f"{s['attack_success']:.3f} ± {s['attack_success_std']:.3f} | {s['seconds']:.1f} |")
    if floor:
        out.append(f"\nThe p = 0 row is the floor: {np.mean(floor):.3f} of negative test reviews read as positive "
                   "once the trigger is added to a model that never saw it in training.")
    return "\n".join(out)


def plot_poisoning(rows: list[dict], path: str | Path | None = None):
    """Attack success and clean accuracy against the poison rate (evenly spaced), mean ± std over seeds."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("no poisoning rows to plot")
    summary = sorted(_mean_by(rows, ("rate",), ("clean_accuracy", "attack_success")), key=lambda s: s["rate"])
    xs = range(len(summary))
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for metric, style, label in (("attack_success", "o-", "attack success rate"),
                                 ("clean_accuracy", "s--", "clean accuracy")):
        ax.errorbar(xs, [s[metric] for s in summary], yerr=[s[f"{metric}_std"] for s in summary], fmt=style,
                    capsize=3, label=label)
    ax.set_xticks(list(xs), [f"{s['rate']:g}" for s in summary])
    ax.set(xlabel="share of training rows poisoned (p)", ylabel="rate on the test split", ylim=(0, 1.02),
           title="backdoor: trigger word → positive")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


# ----------------------------------------------------------------------------- typo robustness
def run_typos(build_dir: str | Path, cfg: SecurityConfig = SecurityConfig(), *, progress: bool = False,
              log=None) -> list[dict]:
    """One row per (task, kind, rate, seed): {task, kind, rate, seed, accuracy, changed, n, seconds}.

    The build's classifiers score the test split with :func:`perturb` noise drawn per text from
    (seed, task, kind, rate, row); ``changed`` is the share of words the noise altered.
    """
    build_dir = Path(build_dir)
    scale = _scale(build_dir)
    rows = []
    for name in cfg.typo_tasks:
        model, tokenizer = load_model(build_dir / name)
        task = scale.tasks[name]
        test = _first(load_task(name, cfg.size or scale.data)["test"], cfg.n_test)
        texts, gold = list(test["text"]), np.asarray(test["label"])
        n_words = sum(len(_WORD.findall(t)) for t in texts)
        for kind in cfg.typo_kinds:
            for rate in cfg.typo_rates:
                for seed in cfg.seeds:
                    start = time.perf_counter()
                    noisy = [perturb(t, rate, kind, random.Random(f"typo/{seed}/{name}/{kind}/{rate}/{i}"))
                             for i, t in enumerate(texts)]
                    # an edit never splits, joins or removes a word (eligible words keep >= 2 letters)
                    changed = sum(a != b for t, u in zip(texts, noisy)
                                  for a, b in zip(_WORD.findall(t), _WORD.findall(u)))
                    pred = predict_proba(model, tokenizer, noisy, max_length=task.max_length).argmax(-1)
                    acc = float((pred == gold).mean())
                    rows.append({"task": name, "kind": kind, "rate": float(rate), "seed": seed, "accuracy": acc,
                                 "changed": changed / max(n_words, 1), "n": len(texts),
                                 "seconds": round(time.perf_counter() - start, 2)})
                    if log:
                        log(f"typos {name} {kind} rate {rate:.2f} seed {seed}: accuracy {acc:.3f}")
    return rows


def typos_markdown(rows: list[dict]) -> str:
    """Accuracy per task and kind (rows) against the typo rate (columns), mean over seeds."""
    rates = sorted({r["rate"] for r in rows})
    cell = {(s["task"], s["kind"], s["rate"]): s for s in _mean_by(rows, ("task", "kind", "rate"), ("accuracy",))}
    out = ["| task | kind | " + " | ".join(f"rate {r:g}" for r in rates) + " |", "|---|---|" + "---|" * len(rates)]
    for task, kind in dict.fromkeys((r["task"], r["kind"]) for r in rows):
        out.append(f"| {task} | {kind} | " + " | ".join(
            f"{cell[task, kind, r]['accuracy']:.3f}" if (task, kind, r) in cell else "–" for r in rates) + " |")
    return "\n".join(out)


def plot_typos(rows: list[dict], path: str | Path | None = None):
    """Accuracy against the typo rate, one line per kind, one panel per task."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("no typo rows to plot")
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.4 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for kind, style in zip(dict.fromkeys(r["kind"] for r in rows), ("o-", "s--", "^:", "d-.")):
            pts = sorted((s["rate"], s["accuracy"]) for s in _mean_by(rows, ("task", "kind", "rate"), ("accuracy",))
                         if s["task"] == task and s["kind"] == kind)
            if pts:
                ax.plot(*zip(*pts), style, label=kind)
        ax.set(title=task, xlabel="share of words with a typo", ylabel="test accuracy", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
