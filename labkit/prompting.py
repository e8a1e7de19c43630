r"""Cloze prompting: a masked LM classifies text by filling in one blank, with or without labels.

A *pattern* wraps the input around a ``[MASK]`` (``"{text} Overall, it was [MASK]."``); a
*verbalizer* names one word piece per label (positive → great, negative → terrible). The
masked LM scores every word of its vocabulary at the ``[MASK]``; the prediction is the label
whose word scores highest. No new weights: the vocabulary head that pretraining trained is
the classifier, so the prompt works with **zero** labelled examples (PET, Schick and Schütze,
2021; LM-BFF, Gao et al., 2021).

With a few labels the same prompt trains the whole masked LM (:func:`train_cloze`): the
loss is the cross-entropy of the gold label's word among the K verbalizer words only,

.. math::

    p(y \mid x) = \frac{\exp s_{v(y)}(x)}{\sum_{k=1}^{K} \exp s_{v(k)}(x)}, \qquad
    L_{\text{prompt}} = -\frac{1}{N} \sum_{i=1}^{N} \log p(y_i \mid x_i)

where :math:`s_w(x)` is the masked LM's logit of word :math:`w` at the ``[MASK]`` and :math:`v(k)` is
label :math:`k`'s verbalizer word.
:func:`run_prompting` compares that with fine-tuning a new classifier head
(:func:`labkit.transfer.finetune_lpft`) at 0, 32 and 128 labels, same subsamples and seeds.

    prompt = ClozePrompt("{text} It was [MASK].", {"negative": "terrible", "positive": "great"})
    zero_shot(mlm, tokenizer, prompt, data["sentiment"]["test"]).accuracy

Shape letters: N texts, B batch, T tokens, C d_model, V vocabulary, K labels.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import metrics as M
from .finetune import subsample
from .heads import ClassifierOutput
from .tasks import TASKS, ClassificationTask
from .training import History, TrainConfig, batches, evaluating, fit, pad, seeded
from .transfer import TransferConfig, finetune_lpft
from .transformer import MaskedLM

__all__ = ["ClozePrompt", "ClozeClassifier", "ClozeScore", "ClozeRun", "cloze_logits", "zero_shot", "train_cloze",
           "majority_baseline", "PROMPTS", "PATTERNS", "VERBALIZERS", "prompt_grid", "sensitivity_markdown",
           "METHODS", "PromptingConfig", "run_prompting", "summarise", "prompting_markdown", "plot_prompting"]

TEXT, MASK = "{text}", "[MASK]"


# ----------------------------------------------------------------------------- the prompt
@dataclass(frozen=True)
class ClozePrompt:
    """A pattern with one ``{text}`` and one ``[MASK]``, and a verbalizer: label name → one word piece.

    The K labels are the verbalizer's keys, in its order; that is the order of the K columns of
    :func:`cloze_logits`.
    """

    pattern: str  # e.g. "{text} Overall, it was [MASK]."
    verbalizer: Mapping[str, str]  # label name -> its word, e.g. {"negative": "bad", "positive": "good"}

    def __post_init__(self):
        if not isinstance(self.pattern, str) or self.pattern.count(TEXT) != 1:
            raise ValueError(f"a pattern needs exactly one {TEXT} where the input goes, got {self.pattern!r}")
        if self.pattern.count(MASK) != 1:
            raise ValueError(f"a pattern needs exactly one {MASK}, the blank the model fills, got {self.pattern!r}")
        if not isinstance(self.verbalizer, Mapping) or len(self.verbalizer) < 2:
            raise ValueError(f"a verbalizer maps at least two label names to words, got {self.verbalizer!r}")
        words = list(self.verbalizer.values())
        if bad := [w for w in words if not isinstance(w, str) or not w.strip() or len(w.split()) != 1]:
            raise ValueError(f"each verbalizer word must be one non-empty word, got {bad}")
        if len({w.strip().lower() for w in words}) != len(words):
            raise ValueError(f"two labels share a verbalizer word: {dict(self.verbalizer)}")
        object.__setattr__(self, "verbalizer", dict(self.verbalizer))

    @property
    def labels(self) -> list[str]:
        """The K label names, in the verbalizer's order."""
        return list(self.verbalizer)

    def label_word_ids(self, tokenizer) -> list[int]:
        """The K vocabulary ids of the verbalizer words; ValueError naming a word the tokenizer splits."""
        ids = []
        for label, word in self.verbalizer.items():
            pieces = tokenizer.tokenize(word.strip())
            if len(pieces) != 1 or pieces[0] == tokenizer.unk_token:
                raise ValueError(f"verbalizer word {word!r} (label {label!r}) is not a single word piece of this "
                                 f"tokenizer: it becomes {pieces}; choose a word the vocabulary holds whole")
            ids.append(tokenizer.convert_tokens_to_ids(pieces[0]))
        return ids

    def label_index(self, names: Sequence[str]) -> list[int]:
        """For each name, its column among the K labels; ValueError naming an unknown label."""
        if unknown := sorted({n for n in names if n not in self.verbalizer}):
            raise ValueError(f"labels {unknown} have no verbalizer word; the prompt knows {self.labels}")
        return [self.labels.index(n) for n in names]

    def _fixed_parts(self, tokenizer) -> tuple[list[int], list[int]]:
        """Word-piece ids of the pattern before and after ``{text}`` (no [CLS]/[SEP])."""
        before, after = self.pattern.split(TEXT)
        pre = tokenizer(before, add_special_tokens=False)["input_ids"] if before.strip() else []
        post = tokenizer(after, add_special_tokens=False)["input_ids"] if after.strip() else []
        if (pre + post).count(tokenizer.mask_token_id) != 1:
            raise ValueError(f"the tokenizer does not read {MASK} in {self.pattern!r} as its mask token "
                             f"{tokenizer.mask_token!r}")
        return pre, post

    def rows(self, tokenizer, texts: Sequence[str], *, max_length: int = 128) -> tuple[list[list[int]], list[int]]:
        """Unpadded ids ``[CLS] pattern-with-text [SEP]`` per text and the index of its ``[MASK]``.

        A text too long for ``max_length`` loses word pieces from its end; the pattern's fixed
        words, the ``[MASK]`` among them, are always kept whole.
        """
        texts = _check_texts(texts)
        pre, post = self._fixed_parts(tokenizer)
        room = max_length - 2 - len(pre) - len(post)  # word pieces left for the text
        if room < 1:
            raise ValueError(f"max_length={max_length} leaves no room for the text: the pattern takes "
                             f"{len(pre) + len(post) + 2} word pieces with [CLS] and [SEP]")
        body = tokenizer(texts, add_special_tokens=False)["input_ids"]
        mask_id = tokenizer.mask_token_id
        ids, positions = [], []
        for b in body:
            b = b[:room]
            ids.append([tokenizer.cls_token_id, *pre, *b, *post, tokenizer.sep_token_id])
            # the pattern's [MASK], found in the fixed part (the text may hold a literal "[MASK]" too)
            positions.append(1 + pre.index(mask_id) if mask_id in pre else 1 + len(pre) + len(b) + post.index(mask_id))
        return ids, positions

    def encode(self, tokenizer, texts: Sequence[str], *, max_length: int = 128) -> dict[str, torch.Tensor]:
        """A named batch: input_ids (N, T), attention_mask (N, T), mask_positions (N,)."""
        ids, positions = self.rows(tokenizer, texts, max_length=max_length)
        x, m = pad(ids, tokenizer.pad_token_id)  # (N, T), (N, T)
        return {"input_ids": x, "attention_mask": m, "mask_positions": torch.tensor(positions)}


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, not one string")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: nothing to classify")
    if bad := [type(t).__name__ for t in texts if not isinstance(t, str)]:
        raise ValueError(f"texts must be strings, got {sorted(set(bad))}")
    return texts


# ----------------------------------------------------------------------------- the model
class ClozeClassifier(nn.Module):
    """A masked LM read at the ``[MASK]``: its K verbalizer-word logits are the class logits.

    No new parameters: ``mlm`` (a :class:`labkit.transformer.MaskedLM`, a PreTrainingModel
    included) is used as it is, and training it changes the masked LM itself.
    """

    def __init__(self, mlm: MaskedLM, word_ids: Sequence[int]):
        super().__init__()
        if not isinstance(mlm, MaskedLM):
            raise ValueError(f"a cloze prompt needs a labkit MaskedLM (the build's fill-mask model), "
                             f"got {type(mlm).__name__}")
        if len(word_ids) < 2 or any(not 0 <= int(i) < mlm.config.vocab_size for i in word_ids):
            raise ValueError(f"need at least two word ids in [0, {mlm.config.vocab_size}), got {list(word_ids)}")
        self.mlm = mlm
        self.register_buffer("word_ids", torch.tensor([int(i) for i in word_ids]), persistent=False)  # (K,)

    def forward(self, input_ids, attention_mask=None, mask_positions=None, labels=None) -> ClassifierOutput:
        """labels (B,): the gold label's column among the K (0..K-1)."""
        if mask_positions is None or mask_positions.shape != input_ids.shape[:1]:
            raise ValueError(f"mask_positions must be ({input_ids.shape[0]},), the [MASK] index of each row")
        B = input_ids.shape[0]
        h = self.mlm.encoder(input_ids, attention_mask).last_hidden_state  # (B, T, C)
        at_mask = h[torch.arange(B, device=h.device), mask_positions]  # (B, C)
        logits = self.mlm.head(at_mask)[:, self.word_ids]  # (B, V) -> (B, K)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None  # softmax over K words
        return ClassifierOutput(logits, loss)


@torch.no_grad()
def cloze_logits(mlm: MaskedLM, tokenizer, prompt: ClozePrompt, texts: Sequence[str], *, max_length: int = 128,
                 batch_size: int = 64) -> torch.Tensor:
    """The masked LM's logits of the K verbalizer words at the ``[MASK]``: (N, K), float, on the CPU."""
    model = ClozeClassifier(mlm, prompt.label_word_ids(tokenizer))
    model.train(mlm.training)  # a new module starts in train mode; evaluating() restores this, i.e. mlm's own mode
    texts, out = _check_texts(texts), []
    device = next(mlm.parameters()).device
    with evaluating(model):
        for i in range(0, len(texts), batch_size):
            batch = prompt.encode(tokenizer, texts[i:i + batch_size], max_length=max_length)
            out.append(model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu())  # (B, K)
    return torch.cat(out)  # (N, K)


@dataclass
class ClozeScore:
    """How a prompt scores on a labelled split."""

    accuracy: float
    macro_f1: float
    predictions: list[str]  # (N,) predicted label names
    logits: torch.Tensor  # (N, K) verbalizer-word logits, columns in the prompt's label order


def _label_names(split, label_column: str) -> list[str]:
    names = split.features[label_column].names
    return [names[y] for y in split[label_column]]


def zero_shot(mlm: MaskedLM, tokenizer, prompt: ClozePrompt, split, *, calibrate: bool = False,
              text_column: str = "text", label_column: str = "label", max_length: int = 128) -> ClozeScore:
    """Score a masked LM through ``prompt`` on a labelled split (a ``datasets.Dataset`` with a
    ClassLabel column), with no training: accuracy, macro-F1 and the predictions.

    calibrate: subtract from each verbalizer word's logit its mean over the split's texts before
    taking the argmax, so a word the model likes at that place whatever the text says does not
    win everywhere (the labels are not used; in the spirit of Zhao et al., 2021, "Calibrate
    before use"). The split's label names must all be verbalizer keys. Scores a trained masked
    LM the same way (``train_cloze(...).model.mlm``).
    """
    gold = _label_names(split, label_column)
    prompt.label_index(gold)  # every gold label has a word
    logits = cloze_logits(mlm, tokenizer, prompt, list(split[text_column]), max_length=max_length)  # (N, K)
    if calibrate:
        logits = logits - logits.mean(0)  # (N, K) - (K,)
    pred = [prompt.labels[k] for k in logits.argmax(-1).tolist()]
    return ClozeScore(M.accuracy(pred, gold), M.precision_recall_f1(pred, gold)["f1"], pred, logits)


def majority_baseline(split, *, label_column: str = "label") -> float:
    """Accuracy of always answering the most frequent label of ``split`` (what a constant guess can reach)."""
    labels = list(split[label_column])
    if not labels:
        raise ValueError("the split is empty")
    return float(np.bincount(labels).max() / len(labels))


# ----------------------------------------------------------------------------- few-label training
@dataclass
class ClozeRun:
    """A masked LM trained through a prompt: the trained copy, its history, its test score."""

    model: ClozeClassifier  # .mlm is the trained masked LM
    history: History
    test: ClozeScore | None  # None when the test split was not scored


def _cloze_batches(tokenizer, prompt: ClozePrompt, train, cfg: TrainConfig, *, text_column: str, label_column: str,
                   max_length: int) -> Iterator[dict[str, torch.Tensor]]:
    """Endless named batches (input_ids, attention_mask, mask_positions, labels) in an order drawn from cfg.seed."""
    ids, positions = prompt.rows(tokenizer, list(train[text_column]), max_length=max_length)
    labels = torch.tensor(prompt.label_index(_label_names(train, label_column)))  # (N,)
    positions = torch.tensor(positions)  # (N,)
    for idx in batches(len(ids), cfg.batch_size, seed=cfg.seed):
        x, m = pad([ids[i] for i in idx], tokenizer.pad_token_id)  # (B, T), (B, T)
        yield {"input_ids": x, "attention_mask": m, "mask_positions": positions[idx], "labels": labels[idx]}


def train_cloze(mlm: MaskedLM, tokenizer, prompt: ClozePrompt, data, cfg: TrainConfig, *, n_train: int | None = None,
                test: bool = True, text_column: str = "text", label_column: str = "label",
                max_length: int = 128) -> ClozeRun:
    """Fine-tune a copy of the whole masked LM with the prompt's loss on ``n_train`` labelled examples.

    The same class-balanced subsample as :func:`labkit.finetune.finetune` with the same
    ``cfg.seed`` (so a head fine-tuned with that seed saw the same examples); batch order
    comes from ``cfg.seed`` too. ``mlm`` itself is left as it was. data: a DatasetDict with a
    "train" split (and "test" when ``test``).
    """
    if "train" not in data or (test and "test" not in data):
        raise ValueError(f"data needs a 'train' split{' and a test split' if test else ''}, got {list(data)}")
    model = ClozeClassifier(copy.deepcopy(mlm), prompt.label_word_ids(tokenizer))
    with seeded(cfg.seed):
        train = subsample(data["train"], n_train, cfg.seed, label_column)
        history = fit(model, _cloze_batches(tokenizer, prompt, train, cfg, text_column=text_column,
                                            label_column=label_column, max_length=max_length),
                      cfg=cfg, desc=f"cloze training ({len(train)} labels)")
    score = zero_shot(model.mlm, tokenizer, prompt, data["test"], text_column=text_column, label_column=label_column,
                      max_length=max_length) if test else None
    return ClozeRun(model.eval(), history, score)


# ----------------------------------------------------------------------------- the prompts
# Patterns and words TinyWorld's corpus uses. Stories say "It was awful, and he frowned.", reviews
# end "Overall, it was great."; a news item often opens on a word of its topic ("Shares of ...",
# "Doctors at ..."), hence a [MASK] before the text, and its sentences name shares, matches,
# software, patients and ministers. The first of each is the default (the best on the validation split
# of the cpu build made before the corpus gained its pages; on the current build the topic default is
# 15 points below the best pattern, a case of prompt sensitivity chapter 09 shows); every verbalizer
# word is one word piece of the ci and cpu builds' tokenizers.
PATTERNS: dict[str, tuple[str, ...]] = {
    "sentiment": ("{text} It was [MASK].", "{text} Overall, it was [MASK].", "{text} All in all, [MASK]."),
    "topic": ("[MASK] {text}", "[MASK] news: {text}", "{text} This is about [MASK]."),
}
VERBALIZERS: dict[str, tuple[dict[str, str], ...]] = {
    "sentiment": ({"negative": "terrible", "positive": "great"},
                  {"negative": "bad", "positive": "good"},
                  {"negative": "awful", "positive": "excellent"}),
    "topic": ({"business": "shares", "sports": "match", "technology": "software", "health": "patients",
               "politics": "minister"},
              {"business": "market", "sports": "match", "technology": "technology", "health": "health",
               "politics": "election"},
              {"business": "profit", "sports": "league", "technology": "app", "health": "hospital",
               "politics": "parliament"}),
}
PROMPTS: dict[str, ClozePrompt] = {task: ClozePrompt(PATTERNS[task][0], VERBALIZERS[task][0])
                                   for task in PATTERNS}  # the default prompt per task


def _words(verbalizer: Mapping[str, str]) -> str:
    return "/".join(verbalizer.values())


def prompt_grid(mlm: MaskedLM, tokenizer, split, patterns: Sequence[str], verbalizers: Sequence[Mapping[str, str]],
                *, max_length: int = 128) -> list[dict]:
    """Zero-shot accuracy of every pattern × verbalizer on ``split``, as it is and calibrated
    (:func:`zero_shot`): rows of {pattern, verbalizer, accuracy, calibrated}."""
    rows = []
    for pattern in patterns:
        for verbalizer in verbalizers:
            prompt = ClozePrompt(pattern, verbalizer)
            score = zero_shot(mlm, tokenizer, prompt, split, max_length=max_length)
            gold = torch.tensor(prompt.label_index(_label_names(split, "label")))  # (N,)
            centred = score.logits - score.logits.mean(0)  # (N, K): as zero_shot(..., calibrate=True)
            rows.append({"pattern": pattern, "verbalizer": _words(verbalizer), "accuracy": score.accuracy,
                         "calibrated": (centred.argmax(-1) == gold).float().mean().item()})
    return rows


def sensitivity_markdown(rows: list[dict]) -> str:
    """A table of :func:`prompt_grid` rows: one line per pattern, one column per verbalizer;
    each cell "accuracy (calibrated)"."""
    verbs = list(dict.fromkeys(r["verbalizer"] for r in rows))
    keyed = {(r["pattern"], r["verbalizer"]): r for r in rows}
    out = ["| pattern | " + " | ".join(verbs) + " |", "|---|" + "---|" * len(verbs)]
    for pattern in dict.fromkeys(r["pattern"] for r in rows):
        cells = [f"{keyed[(pattern, v)]['accuracy']:.3f} ({keyed[(pattern, v)]['calibrated']:.3f})"
                 if (pattern, v) in keyed else "" for v in verbs]
        out.append(f"| `{pattern}` | " + " | ".join(cells) + " |")
    return "\n".join(out)


# ----------------------------------------------------------------------------- the comparison
METHODS = ("cloze", "head")  # cloze prompting vs a new classifier head (LP-FT)


@dataclass(frozen=True, kw_only=True)
class PromptingConfig:
    """The grid: tasks × label counts × seeds, each run as cloze prompting and as head fine-tuning.

    ``recipe`` is the transfer experiment's: the head trains alone for ``probe_steps``, then the
    whole classifier for ``recipe.steps_for(n)``; cloze training has no new head to warm up and
    trains the whole masked LM for the same ``recipe.steps_for(n)`` steps at ``cloze_lr``.
    0 labels: cloze is zero-shot; the head, with nothing to learn from, is the majority-class
    answer on the test split.
    """

    tasks: tuple[str, ...] = ("sentiment", "topic")  # classification tasks of labkit.tasks.TASKS
    label_counts: tuple[int, ...] = (0, 32, 128)
    seeds: tuple[int, ...] = (0, 1, 2)
    recipe: TransferConfig = field(default_factory=TransferConfig)  # steps and batch size of both; the head's lrs
    cloze_lr: float = 1e-3  # peak lr of the whole masked LM; the recipe's own lr, best or near it on validation
    max_length: int = 128  # word pieces per input, pattern included
    n_test: int | None = None  # score only the first n test examples (None: all)

    def __post_init__(self):
        if not self.tasks or not self.label_counts or not self.seeds:
            raise ValueError("PromptingConfig needs at least one task, one label count and one seed")
        if unknown := [t for t in self.tasks if not isinstance(TASKS.get(t), ClassificationTask)]:
            raise ValueError(f"prompting takes classification tasks; {unknown} are not among "
                             f"{[k for k, v in TASKS.items() if isinstance(v, ClassificationTask)]}")
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in self.label_counts):
            raise ValueError(f"label counts must be integers >= 0, got {self.label_counts}")
        if self.cloze_lr <= 0:
            raise ValueError(f"cloze_lr must be positive, got {self.cloze_lr}")

    def cloze_train_config(self, n: int, seed: int, *, progress: bool = False) -> TrainConfig:
        """The TrainConfig of one cloze run on ``n`` labels."""
        return TrainConfig(steps=self.recipe.steps_for(n), batch_size=self.recipe.batch_size, lr=self.cloze_lr,
                           seed=seed, eval_every=10**9, progress=progress)


def run_prompting(mlm: MaskedLM, tokenizer, data: dict, cfg: PromptingConfig = PromptingConfig(), *,
                  prompts: Mapping[str, ClozePrompt] | None = None, progress: bool = False, log=None) -> list[dict]:
    """One row per run: {task, labels, method, seed, accuracy, seconds} (seconds: training alone,
    scoring excluded).

    data[task]: the task's DatasetDict. prompts[task] overrides :data:`PROMPTS`. Each run depends
    on its seed alone; at 0 labels every seed gives the same score (nothing is drawn).
    """
    prompts = {**PROMPTS, **(prompts or {})}
    if missing := [t for t in cfg.tasks if t not in data or t not in prompts]:
        raise ValueError(f"no data or no prompt for tasks {missing}")
    rows = []
    for name in cfg.tasks:
        task, ds, prompt = TASKS[name], data[name], prompts[name]
        test = ds["test"] if cfg.n_test is None else ds["test"].select(range(min(cfg.n_test, len(ds["test"]))))
        scored = {"train": ds["train"], "validation": ds["validation"], "test": test}
        zero = zero_shot(mlm, tokenizer, prompt, test, max_length=cfg.max_length).accuracy  # nothing drawn: once
        for n in cfg.label_counts:
            n_eff = min(n, len(ds["train"]))
            for method in METHODS:
                for seed in cfg.seeds:
                    t0 = time.perf_counter()
                    if n_eff == 0:
                        seconds, acc = 0.0, zero if method == "cloze" else majority_baseline(test)
                    elif method == "cloze":
                        run = train_cloze(mlm, tokenizer, prompt, scored, cfg.cloze_train_config(n_eff, seed,
                                          progress=progress), n_train=n_eff, test=False, max_length=cfg.max_length)
                        seconds = time.perf_counter() - t0
                        acc = zero_shot(run.model.mlm, tokenizer, prompt, test, max_length=cfg.max_length).accuracy
                    else:
                        model = task.make_model(mlm, ds, seed=seed)
                        finetune_lpft(task, model, tokenizer, scored, cfg.recipe, n_train=n_eff, seed=seed,
                                      progress=progress, test=False)
                        seconds = time.perf_counter() - t0
                        acc = task.evaluate(model, tokenizer, test)[0]["accuracy"]
                    rows.append({"task": name, "labels": n_eff, "method": method, "seed": seed, "accuracy": acc,
                                 "seconds": seconds})
                    if log:
                        log(f"{name:<9} {n_eff:>4} labels {method:<5} seed {seed}: accuracy {acc:.3f} ({seconds:.1f}s)")
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds: one row per (task, labels, method)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["labels"], r["method"]), []).append(r)
    return [{"task": t, "labels": n, "method": m, "seeds": len(runs),
             "mean": float(np.mean([r["accuracy"] for r in runs])), "std": float(np.std([r["accuracy"] for r in runs])),
             "seconds": float(np.mean([r["seconds"] for r in runs]))}
            for (t, n, m), runs in groups.items()]


def prompting_markdown(rows: list[dict]) -> str:
    """The table: task, labels, then cloze prompting and head fine-tuning accuracy (mean ± std over
    seeds) and the difference in points."""
    keyed = {(s["task"], s["labels"], s["method"]): s for s in summarise(rows)}
    out = ["| task | labels | cloze prompting | head fine-tuning | cloze − head (points) |", "|---|---|---|---|---|"]
    for task, n in dict.fromkeys((r["task"], r["labels"]) for r in rows):
        c, h = keyed.get((task, n, "cloze")), keyed.get((task, n, "head"))
        cell = lambda s: f"{s['mean']:.3f} ± {s['std']:.3f}" if s else "–"  # noqa: E731
        gain = f"{100 * (c['mean'] - h['mean']):+.1f}" if c and h else "–"
        out.append(f"| {task} | {n} | {cell(c)} | {cell(h)} | {gain} |")
    return "\n".join(out)


def plot_prompting(rows: list[dict], path: str | Path | None = None):
    """Test accuracy against labelled examples (0, 32, 128, evenly spaced), one line per method (cloze
    prompting, head fine-tuning, and soft prompts when the rows have them), one panel per task; mean
    over seeds with the standard deviation as an error bar."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    summary = summarise(rows)
    tasks = list(dict.fromkeys(s["task"] for s in summary))
    counts = sorted({s["labels"] for s in summary})
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.6), squeeze=False)
    names = {"cloze": "cloze prompting", "head": "head fine-tuning", "soft prompt": "soft prompt (model frozen)"}
    for ax, task in zip(axes[0], tasks):
        for method, style in (("cloze", "o-"), ("soft prompt", "^:"), ("head", "s--")):
            pts = sorted((s["labels"], s["mean"], s["std"]) for s in summary
                         if s["task"] == task and s["method"] == method)
            if pts:
                xs, ys, es = zip(*pts)
                ax.errorbar([counts.index(x) for x in xs], ys, yerr=es, fmt=style, capsize=3, label=names[method])
        ax.set_xticks(range(len(counts)), [str(n) for n in counts])
        ax.set_xlabel("labelled training examples")
        ax.set_ylabel("test accuracy")
        ax.set_title(task)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
