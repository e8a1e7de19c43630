r"""In-context learning, measured: k examples in the prompt, a held-out question after them.

A k-shot prompt (少样本, few-shot; k = 0 is zero-shot, 零样本) is written the way TinyWorld's
pages are (:mod:`labkit.data.pages`): the page's title, k demonstrations drawn from the items
pages use, then a held-out query and the separator, for the model to continue::

    ratings . nice coffee : plus ; awful trip : minus ; superb walk :      -> "plus"?

The model decodes greedily until it writes ``;`` or ``.`` (or [SEP]); its answer is right
when it equals the gold answer in the prompt's layout. No weight changes: whatever improves
with k is learnt from the prompt alone. Three rates per cell:

* **accuracy** — the answer is exactly right;
* **partial** — the share of the gold answer's characters (names) or words written in the
  right place: a name with the right given name and the wrong family name scores 2/3;
* **format rate** — the answer is of the right *kind*: one of the page's two label words
  (ratings), a country name (quiz), Chinese characters (names). The gap between the two
  separates "has not understood the page" from "understood it, got the fact wrong".

Every prompt (one per held-out item and draw) gets a layout and demonstrations from its own
seeded stream, and the same ones at every k (the k-shot demonstrations start the 2k-shot
ones), so the curves compare like with like.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .data import build_world
from .data.pages import PAGE_TASKS, Item, PageFormat, formats, items
from .data.render import derive_rng
from .sampling import SamplingConfig, generate
from .translate import join_cjk

__all__ = ["ICLConfig", "Prompt", "few_shot_prompt", "prompts_for", "complete", "score", "evaluate_in_context",
           "majority_rate", "partial", "in_context_markdown", "plot_in_context"]

_CJK = re.compile(r"^[\u3400-\u9fff]+$")


@dataclass(frozen=True)
class ICLConfig:
    """Which tasks, how many shots, how many held-out prompts."""

    tasks: tuple[str, ...] = PAGE_TASKS
    shots: tuple[int, ...] = (0, 1, 2, 4, 8)
    n_items: int = 64  # held-out queries per task (all of them if fewer: quiz has 13)
    draws: int = 3  # demonstration draws per query
    seed: int = 0
    world_seed: int = 0  # the world the corpus was written from
    max_new_tokens: int = 8
    batch_size: int = 64

    def __post_init__(self):
        if unknown := [t for t in self.tasks if t not in PAGE_TASKS]:
            raise ValueError(f"unknown in-context tasks {unknown}; choose from {PAGE_TASKS}")
        if not self.shots or any(k < 0 for k in self.shots):
            raise ValueError(f"shots must be a non-empty list of numbers >= 0, got {self.shots}")
        if self.n_items < 1 or self.draws < 1:
            raise ValueError(f"n_items and draws must be at least 1, got {self.n_items} and {self.draws}")


@dataclass(frozen=True)
class Prompt:
    task: str
    shots: int
    text: str  # "title . q : a ; … ; query :"
    gold: str  # the answer as this layout writes it
    fmt: PageFormat


def few_shot_prompt(fmt: PageFormat, demos: Sequence[Item], query: Item) -> tuple[str, str]:
    """(prompt text, gold answer): the title, each demonstration as "q : a ;", then "query :"."""
    lines = "".join(f"{' : '.join(fmt.line(d))} ; " for d in demos)
    question, gold = fmt.line(query)
    return f"{fmt.title} . {lines}{question} :", gold


def _test_formats(task: str) -> list[PageFormat]:
    # names are asked one way only (pinyin -> characters); the other tasks in every layout pages use
    return [f for f in formats(task) if not f.reverse]


def prompts_for(task: str, cfg: ICLConfig = ICLConfig(), world=None) -> list[Prompt]:
    """Every prompt of ``task``: held-out queries × draws × shots, demonstrations from the page pool."""
    world = world or build_world(cfg.world_seed)
    test = items(task, world, heldout=True)
    pool = items(task, world, heldout=False)
    pick = derive_rng(cfg.seed, "in-context", task)
    queries = test if len(test) <= cfg.n_items else pick.sample(test, cfg.n_items)
    out = []
    for q, query in enumerate(queries):
        for draw in range(cfg.draws):
            rng = derive_rng(cfg.seed, "in-context", task, q, draw)
            fmt = rng.choice(_test_formats(task))
            demos = rng.sample(pool, max(cfg.shots))
            for k in cfg.shots:
                text, gold = few_shot_prompt(fmt, demos[:k], query)
                out.append(Prompt(task, k, text, gold, fmt))
    return out


def _normal(text: str) -> str:
    return join_cjk(" ".join(text.lower().split()))


@torch.no_grad()
def complete(model, tokenizer, texts: Sequence[str], *, max_new_tokens: int = 8, batch_size: int = 64) -> list[str]:
    """Greedy continuations of ``texts``, cut at the first ``;``, ``.`` or [SEP]."""
    stops = {tokenizer.convert_tokens_to_ids(t) for t in (";", ".")} | {tokenizer.sep_token_id}
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    encoded = [[tokenizer.cls_token_id, *ids] for ids in encoded]  # as the training blocks start
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = [""] * len(encoded)
    cfg = SamplingConfig(max_new_tokens=max_new_tokens)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        T = max(len(encoded[i]) for i in chunk)
        ids = torch.full((len(chunk), T), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), T), dtype=torch.long)
        for row, i in enumerate(chunk):  # left padding
            ids[row, T - len(encoded[i]):] = torch.tensor(encoded[i])
            mask[row, T - len(encoded[i]):] = 1
        new = generate(model, ids, mask, cfg, pad_token_id=tokenizer.pad_token_id)[:, T:]
        for row, i in enumerate(chunk):
            tokens = new[row].tolist()
            cut = next((j for j, t in enumerate(tokens) if t in stops), len(tokens))
            out[i] = _normal(tokenizer.decode(tokens[:cut], skip_special_tokens=True))
    return out


def partial(prompt: Prompt, answer: str) -> float:
    """Share of the gold answer's characters (names) or words (the rest) that the answer has in the same place."""
    gold, mine = _normal(prompt.gold), _normal(answer)
    if prompt.task != "names":
        gold, mine = gold.split(), mine.split()
    return sum(a == b for a, b in zip(gold, mine)) / max(len(gold), 1)


def score(prompt: Prompt, answer: str, countries: set[str] | None = None) -> tuple[bool, bool]:
    """(right, right kind) for one answer."""
    answer = _normal(answer)
    right = answer == _normal(prompt.gold)
    if prompt.task == "ratings":
        kind = answer in prompt.fmt.answers()
    elif prompt.task == "quiz":
        kind = answer in (countries or set())
    else:
        kind = bool(_CJK.match(answer))
    return right, kind


def majority_rate(task: str, cfg: ICLConfig = ICLConfig(), world=None) -> float:
    """Accuracy of always giving the most common held-out answer (the floor a guesser reaches)."""
    world = world or build_world(cfg.world_seed)
    answers = [i.answer for i in items(task, world, heldout=True)]
    return max(answers.count(a) for a in set(answers)) / len(answers)


def evaluate_in_context(model, tokenizer, cfg: ICLConfig = ICLConfig()) -> list[dict]:
    """One row per task and k: accuracy, format rate, the number of prompts, and examples."""
    world = build_world(cfg.world_seed)
    countries = {c.lower() for c in world.countries}
    rows = []
    for task in cfg.tasks:
        prompts = prompts_for(task, cfg, world)
        replies = complete(model, tokenizer, [p.text for p in prompts], max_new_tokens=cfg.max_new_tokens,
                           batch_size=cfg.batch_size)
        floor = majority_rate(task, cfg, world)
        for k in cfg.shots:
            cell = [(p, a, *score(p, a, countries)) for p, a in zip(prompts, replies) if p.shots == k]
            examples = [{"prompt": p.text, "gold": p.gold, "answer": a} for p, a, _, _ in cell[:3]]
            rows.append({"task": task, "shots": k, "accuracy": sum(r for *_, r, _ in cell) / len(cell),
                         "format_rate": sum(f for *_, f in cell) / len(cell),
                         "partial": sum(partial(p, a) for p, a, *_ in cell) / len(cell), "n": len(cell),
                         "majority": floor, "examples": examples})
    return rows


def in_context_markdown(rows: list[dict]) -> str:
    """Accuracy (format rate) per task and number of shots."""
    shots = sorted({r["shots"] for r in rows})
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    cell = {(r["task"], r["shots"]): r for r in rows}
    lines = ["| task | " + " | ".join(f"{k}-shot" for k in shots) + " | always the commonest answer |",
             "|---" * (len(shots) + 2) + "|"]
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(f"{cell[t, k]['accuracy']:.2f} ({cell[t, k]['format_rate']:.2f})"
                                              for k in shots) + f" | {cell[t, shots[0]]['majority']:.2f} |")
    return "\n".join(lines) + "\n\nEach cell: accuracy (share of answers of the right kind)."


def plot_in_context(curves: dict[str, list[dict]], path: str | Path | None = None):
    """Accuracy against shots, one panel per task, one line per model (``{label: rows}``)."""
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for rows in curves.values() for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for label, rows in curves.items():
            mine = sorted((r for r in rows if r["task"] == task), key=lambda r: r["shots"])
            ax.plot([r["shots"] for r in mine], [r["accuracy"] for r in mine], "o-", label=label)
            ax.plot([r["shots"] for r in mine], [r["format_rate"] for r in mine], ":", alpha=0.5,
                    color=ax.lines[-1].get_color())
        if mine:
            ax.axhline(mine[0]["majority"], color="grey", lw=0.8, ls="--")
        ax.set(title=task, xlabel="examples in the prompt (k)", ylim=(0, 1.02), xticks=[0, 1, 2, 4, 8])
    axes[0][0].set_ylabel("held-out accuracy (dotted: right kind)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
