r"""Prompt tuning with soft prompts: a frozen masked LM, P learned vectors in front of its input.

A cloze prompt (:mod:`labkit.prompting`) is made of words. A *soft prompt* is made of P
vectors that are not words at all: P × C free parameters, placed before the input's token
embeddings, which the masked LM reads as if they were tokens. Training changes those
vectors and nothing else; every weight of the pretrained model stays as it was (Lester,
Al-Rfou and Constant, 2021, "The Power of Scale for Parameter-Efficient Prompt Tuning").

With :math:`e(x_t)` the token embedding of input word piece :math:`x_t` (the cloze pattern
with its ``[MASK]``, as :class:`~labkit.prompting.ClozePrompt` renders it) and
:math:`p_1, \dots, p_P \in \mathbb{R}^C` the soft prompt, the encoder reads

.. math::

    X = [\,p_1; \dots; p_P;\ e(x_1); \dots; e(x_T)\,] \in \mathbb{R}^{(P+T) \times C}

(position and segment embeddings are added to all P + T rows, as to any token's). The
classifier is the cloze one: the masked LM's logits :math:`s_w` of the K verbalizer words at
the ``[MASK]``, and the loss is :class:`~labkit.prompting.ClozeClassifier`'s
:math:`L_{\text{prompt}}`; only the prompt learns:

.. math::

    \min_{p_1, \dots, p_P}\ L_{\text{prompt}}
    = -\frac{1}{N} \sum_{i=1}^{N} \log \frac{\exp s_{v(y_i)}(X_i)}{\sum_{k=1}^{K} \exp s_{v(k)}(X_i)},
    \qquad \theta_{\text{masked LM}} \text{ fixed.}

Where the vectors go is peft's choice for its ``PromptTuningConfig``: at the very start of
the sequence, before ``[CLS]``, with the attention mask extended by P ones; the position
embeddings then number the prompt 0 … P−1 and the real tokens P … P+T−1. The outputs at
the P virtual positions are dropped, so the model returns states and logits for the T real
positions only, in the order the tokenizer gave them (tests/test_prompt_tuning.py checks
the logits against peft within 1e-5).

    model = SoftPromptModel(mlm, PROMPTS["sentiment"].label_word_ids(tokenizer), n_tokens=20)
    count_trainable(model)  # 20 × 64 = 1,280 at cpu scale, against 377,451 in the masked LM
    run = train_soft_prompt(mlm, tokenizer, PROMPTS["sentiment"], data, SoftPromptConfig(), n_train=32, seed=0)
    run.test.accuracy

:func:`run_prompt_tuning` runs the same grid as :func:`labkit.prompting.run_prompting` (same
tasks, label counts, seeds, training subsets and test split) and gives rows that merge with
its rows; :func:`tuning_markdown` tables all three ways to use few labels with their
trainable-parameter counts.

Shape letters: N texts, B batch, P prompt vectors, T tokens, C d_model, V vocabulary, K labels.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import torch
from torch import nn

from .attention import padding_mask
from .finetune import subsample
from .prompting import (PROMPTS, ClozeClassifier, ClozePrompt, ClozeScore, PromptingConfig, _cloze_batches, summarise,
                        zero_shot)
from .tasks import TASKS
from .training import History, TrainConfig, fit, seeded
from .transformer import Encoder, EncoderOutput, MaskedLM, _check_ids, count_parameters

__all__ = ["INITS", "SoftPromptConfig", "PromptedEncoder", "SoftPromptMLM", "SoftPromptModel", "SoftPromptRun",
           "count_trainable", "frozen", "training_subset", "train_soft_prompt", "run_prompt_tuning",
           "add_trainable_counts", "tuning_markdown"]

INITS = ("vocab", "random")  # where the P vectors start: rows of the embedding table, or Gaussian noise


# ----------------------------------------------------------------------------- the config
@dataclass(frozen=True, kw_only=True)
class SoftPromptConfig:
    """How many prompt vectors, where they start, and how they train (the masked LM never does)."""

    n_tokens: int = 16  # P, the number of soft-prompt vectors (P, lr and steps: best of a small grid on
    #                     the cpu build's validation split, 32 and 128 labels, sentiment and topic)
    init: str = "vocab"  # "vocab": P random word pieces' embeddings; "random": N(0, σ²), σ the table's std
    lr: float = 0.3  # peak learning rate of the prompt; prompt tuning takes far larger ones than fine-tuning
    steps: int = 300  # optimiser steps (7-10 s a run at cpu scale on 2 cores)
    batch_size: int = 16
    weight_decay: float = 0.0  # AdamW decay on the prompt (0: let the vectors go where the loss wants)
    max_length: int = 128  # word pieces of the cloze input, pattern included (the P vectors come on top)

    def __post_init__(self):
        for name in ("n_tokens", "steps", "batch_size", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if not _is_number(self.lr) or not self.lr > 0:
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not _is_number(self.weight_decay) or not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")

    def train_config(self, seed: int, *, device: str | None = None, progress: bool = False) -> TrainConfig:
        """The TrainConfig of one run on ``device`` (no validation during training)."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                           seed=seed, eval_every=10**9, device=device, progress=progress)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ----------------------------------------------------------------------------- the model
def _initial_prompt(embedding: nn.Embedding, n_tokens: int, init: str, exclude: Sequence[int]) -> torch.Tensor:
    """(P, C) starting vectors, drawn from torch's global stream (seed it around the call)."""
    table = embedding.weight.detach()  # (V, C)
    if init == "random":
        return torch.randn(n_tokens, table.shape[1], device=table.device, dtype=table.dtype) * table.std()  # (P, C)
    keep = torch.ones(table.shape[0], dtype=torch.bool)
    keep[[i for i in {*exclude, embedding.padding_idx} if i is not None and 0 <= i < table.shape[0]]] = False
    ids = torch.nonzero(keep).squeeze(1)  # (V',) ordinary word pieces
    if len(ids) < n_tokens:
        raise ValueError(f"init='vocab' needs {n_tokens} distinct word pieces, the vocabulary has {len(ids)}")
    chosen = ids[torch.randperm(len(ids))[:n_tokens]]  # (P,) distinct ids
    return table[chosen.to(table.device)].clone()  # (P, C)


class PromptedEncoder(nn.Module):
    """A frozen :class:`~labkit.transformer.Encoder` that reads P learned vectors before every input.

    ``prompt`` (P, C) is this module's only own parameter; the encoder's are shared with the
    masked LM it came from, not copied. forward returns the states of the T real positions.
    """

    def __init__(self, encoder: Encoder, prompt: torch.Tensor):
        super().__init__()
        if prompt.dim() != 2 or prompt.shape[1] != encoder.config.d_model:
            raise ValueError(f"prompt must be (P, {encoder.config.d_model}), got {tuple(prompt.shape)}")
        self.config = encoder.config
        self.encoder = encoder
        self.prompt = nn.Parameter(prompt.detach().clone())  # (P, C)

    @property
    def n_tokens(self) -> int:
        return self.prompt.shape[0]

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, *, output_hidden_states: bool = False,
                output_attentions: bool = False) -> EncoderOutput:
        """input_ids (B, T), attention_mask (B, T) as :meth:`Encoder.forward`; last_hidden_state (B, T, C)
        and hidden_states hold the real positions only, attentions (B, nh, P+T, P+T) all of them."""
        _check_ids(input_ids, "input_ids", self.config.vocab_size)
        B, T = input_ids.shape
        P = self.n_tokens
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape {tuple(input_ids.shape)}")
        if token_type_ids is not None and token_type_ids.shape != input_ids.shape:
            raise ValueError(f"token_type_ids shape {tuple(token_type_ids.shape)} != input_ids shape {tuple(input_ids.shape)}")
        if P + T > self.config.max_position:
            raise ValueError(f"{P} prompt vectors + {T} tokens exceed max_position={self.config.max_position}")
        emb, device = self.encoder.embeddings, input_ids.device
        x = torch.cat([self.prompt.expand(B, P, -1), emb.token(input_ids)], dim=1)  # (B, P, C) ++ (B, T, C) -> (B, P+T, C)
        types = torch.zeros(B, P + T, dtype=torch.long, device=device)  # (B, P+T): segment 0 for the prompt...
        if token_type_ids is not None:
            types[:, P:] = token_type_ids  # ...and the input's own segments after it
        x = x + emb.position(torch.arange(P + T, device=device)) + emb.token_type(types)  # (B, P+T, C) + (P+T, C)
        h = emb.dropout(emb.norm(x))  # as Embeddings.forward, from here on the encoder's own blocks
        mask = None
        if attention_mask is not None:  # the prompt is always attended to, as peft's P ones
            ones = torch.ones(B, P, dtype=attention_mask.dtype, device=device)  # (B, P)
            mask = padding_mask(torch.cat([ones, attention_mask], dim=1))  # (B, P+T) -> (B, 1, 1, P+T)
        hidden, attns = [h], []
        for block in self.encoder.layers:
            h, w, _ = block(h, mask=mask, need_weights=output_attentions)  # (B, P+T, C)
            hidden.append(h)
            attns.append(w)
        real = h[:, P:]  # (B, P+T, C) -> (B, T, C): the virtual positions' outputs are dropped
        pooled = torch.tanh(self.encoder.pooler(real[:, 0])) if self.encoder.pooler is not None else None  # (B, C)
        return EncoderOutput(
            last_hidden_state=real,
            pooler_output=pooled,
            hidden_states=tuple(s[:, P:] for s in hidden) if output_hidden_states else None,
            attentions=tuple(attns) if output_attentions else None,
        )


class SoftPromptMLM(MaskedLM):
    """A masked LM whose encoder reads a soft prompt first: ``mlm``'s weights (shared, not copied),
    plus P × C new ones. Anything that takes a MaskedLM takes it (``zero_shot``, ``cloze_logits``).

    exclude: ids ``init="vocab"`` never draws (the tokenizer's special tokens; padding is always
    excluded). The starting vectors come from torch's global stream: seed it for a repeatable draw.
    """

    def __init__(self, mlm: MaskedLM, n_tokens: int = 16, *, init: str = "vocab", exclude: Sequence[int] = ()):
        nn.Module.__init__(self)  # not MaskedLM.__init__: the encoder and head are mlm's, not new ones
        if not isinstance(mlm, MaskedLM) or isinstance(mlm, SoftPromptMLM):
            raise ValueError(f"a soft prompt goes in front of a labkit MaskedLM, got {type(mlm).__name__}")
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens <= 0:
            raise ValueError(f"n_tokens must be a positive integer, got {n_tokens!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.config = mlm.config
        self.encoder = PromptedEncoder(mlm.encoder, _initial_prompt(mlm.encoder.embeddings.token, n_tokens, init,
                                                                    exclude))
        self.head = mlm.head

    @property
    def prompt(self) -> nn.Parameter:
        """The soft prompt, (P, C)."""
        return self.encoder.prompt


class SoftPromptModel(ClozeClassifier):
    """A frozen masked LM behind a soft prompt, read at the ``[MASK]``: K verbalizer-word logits.

    forward(input_ids, attention_mask, mask_positions, labels) is :class:`ClozeClassifier`'s on
    the tokenised cloze input (``ClozePrompt.encode``), and so is the loss L_prompt.
    :meth:`trainable_parameters` is the prompt alone; :func:`train_soft_prompt` freezes the rest.
    """

    def __init__(self, mlm: MaskedLM, word_ids: Sequence[int], n_tokens: int = 16, *, init: str = "vocab",
                 exclude: Sequence[int] = ()):
        super().__init__(SoftPromptMLM(mlm, n_tokens, init=init, exclude=exclude), word_ids)

    @property
    def prompt(self) -> nn.Parameter:
        """The soft prompt, (P, C)."""
        return self.mlm.prompt

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What prompt tuning trains: the soft prompt alone."""
        return [self.prompt]


def count_trainable(model: nn.Module) -> int:
    """How many numbers training changes: P × C for a :class:`SoftPromptModel` (e.g. 16 × 64 = 1,024);
    every parameter that requires a gradient for any other module."""
    if isinstance(model, SoftPromptModel):
        return sum(p.numel() for p in model.trainable_parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@contextlib.contextmanager
def frozen(model: nn.Module):
    """Inside the block no parameter of ``model`` requires a gradient; after it, each requires one as
    before and each submodule is back in the train/eval mode it had (training a wrapper around a
    shared model switches its mode)."""
    grads = [(p, p.requires_grad) for p in model.parameters()]
    modes = [(m, m.training) for m in model.modules()]
    try:
        for p, _ in grads:
            p.requires_grad_(False)
        yield model
    finally:
        for p, flag in grads:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


# ----------------------------------------------------------------------------- training
@dataclass
class SoftPromptRun:
    """A soft prompt trained in front of a frozen masked LM: the model, its history, its test score."""

    model: SoftPromptModel  # .prompt is the trained (P, C) prompt; .mlm.encoder.encoder is the frozen one
    history: History
    test: ClozeScore | None  # None when the test split was not scored
    seconds: float  # training alone


def training_subset(split, n_train: int | None, seed: int, label_column: str = "label"):
    """The labelled examples a run with ``seed`` trains on: the class-balanced subsample that
    :func:`labkit.prompting.train_cloze` and head fine-tuning draw with the same seed."""
    return subsample(split, n_train, seed, label_column)


def train_soft_prompt(mlm: MaskedLM, tokenizer, prompt: ClozePrompt, data, cfg: SoftPromptConfig = SoftPromptConfig(),
                      *, n_train: int | None, seed: int, test: bool = True, text_column: str = "text",
                      label_column: str = "label", progress: bool = False) -> SoftPromptRun:
    """Train a soft prompt for ``prompt``'s cloze task on ``n_train`` labelled examples; ``mlm`` stays frozen.

    The examples are :func:`training_subset`'s (those the cloze and head runs of
    :func:`labkit.prompting.run_prompting` see with the same seed); the prompt's starting
    vectors and the batch order are drawn from ``seed`` alone. ``mlm`` is used in place, not
    copied: its weights come out unchanged, and its requires_grad flags and train/eval modes
    as they went in. data: a DatasetDict with a "train" split (and "test" when ``test``).
    """
    if "train" not in data or (test and "test" not in data):
        raise ValueError(f"data needs a 'train' split{' and a test split' if test else ''}, got {list(data)}")
    if not isinstance(cfg, SoftPromptConfig):
        raise ValueError(f"cfg must be a SoftPromptConfig, got {type(cfg).__name__}")
    word_ids = prompt.label_word_ids(tokenizer)
    tc = cfg.train_config(seed, device=str(next(mlm.parameters()).device), progress=progress)
    with frozen(mlm), seeded(seed):
        train = training_subset(data["train"], n_train, seed, label_column)
        model = SoftPromptModel(mlm, word_ids, cfg.n_tokens, init=cfg.init, exclude=tokenizer.all_special_ids)
        t0 = time.perf_counter()
        history = fit(model, _cloze_batches(tokenizer, prompt, train, tc, text_column=text_column,
                                            label_column=label_column, max_length=cfg.max_length),
                      cfg=tc, desc=f"prompt tuning ({len(train)} labels)")
        seconds = time.perf_counter() - t0
        # scored inside the block: zero_shot leaves the model it reads in train mode, and frozen() puts mlm's back
        score = zero_shot(model.mlm, tokenizer, prompt, data["test"], text_column=text_column,
                          label_column=label_column, max_length=cfg.max_length) if test else None
    for m in (model, model.mlm, model.mlm.encoder):  # the wrapper's own modules to eval mode; mlm's are as they were
        m.training = False
    return SoftPromptRun(model, history, score, seconds)


# ----------------------------------------------------------------------------- the comparison
METHOD = "soft prompt"


def run_prompt_tuning(mlm: MaskedLM, tokenizer, data: dict, cfg: SoftPromptConfig = SoftPromptConfig(),
                      grid: PromptingConfig = PromptingConfig(), *, prompts: Mapping[str, ClozePrompt] | None = None,
                      progress: bool = False, log=None) -> list[dict]:
    """Soft prompts on :func:`labkit.prompting.run_prompting`'s grid: one row per (task, label count,
    seed) with its keys {task, labels, method="soft prompt", seed, accuracy, seconds}, plus
    ``trainable`` (P × C). Label count 0 is skipped (a soft prompt learns from labels or not at all).

    grid: the run_prompting config whose tasks, label counts, seeds and test split (its
    ``n_test``) to use; its ``max_length`` wins over ``cfg``'s, so both see the same inputs.
    """
    prompts = {**PROMPTS, **(prompts or {})}
    if missing := [t for t in grid.tasks if t not in data or t not in prompts]:
        raise ValueError(f"no data or no prompt for tasks {missing}")
    if cfg.max_length != grid.max_length:
        cfg = replace(cfg, max_length=grid.max_length)
    trainable = cfg.n_tokens * mlm.config.d_model
    rows = []
    for name in grid.tasks:
        ds = data[name]
        test = ds["test"] if grid.n_test is None else ds["test"].select(range(min(grid.n_test, len(ds["test"]))))
        for n in grid.label_counts:
            n_eff = min(n, len(ds["train"]))
            if n_eff == 0:
                continue
            for seed in grid.seeds:
                run = train_soft_prompt(mlm, tokenizer, prompts[name], {"train": ds["train"], "test": test}, cfg,
                                        n_train=n_eff, seed=seed, progress=progress)
                rows.append({"task": name, "labels": n_eff, "method": METHOD, "seed": seed,
                             "accuracy": run.test.accuracy, "seconds": run.seconds, "trainable": trainable})
                if log:
                    log(f"{name:<9} {n_eff:>4} labels {METHOD} seed {seed}: accuracy {run.test.accuracy:.3f} "
                        f"({run.seconds:.1f}s)")
    return rows


def _mlm_parameters(mlm: MaskedLM) -> int:
    """The weights the cloze loss reaches: embeddings, blocks and MLM head (no pooler, no NSP head)."""
    return count_parameters(nn.ModuleList([mlm.encoder.embeddings, mlm.encoder.layers, mlm.head]))


def add_trainable_counts(rows: list[dict], mlm: MaskedLM, data: dict) -> list[dict]:
    """run_prompting's rows (and any others) with a ``trainable`` count where they lack one: 0 at 0
    labels (zero-shot and the majority answer train nothing), the masked LM's weights for cloze
    training, the classifier's (encoder, pooler, new head) for head fine-tuning."""
    heads: dict[str, int] = {}
    out = []
    for r in rows:
        if "trainable" not in r:
            if r["labels"] == 0:
                count = 0
            elif r["method"] == "cloze":
                count = _mlm_parameters(mlm)
            elif r["method"] == "head":
                if r["task"] not in heads:
                    heads[r["task"]] = count_parameters(TASKS[r["task"]].make_model(mlm, data[r["task"]], seed=0))
                count = heads[r["task"]]
            else:
                raise ValueError(f"no trainable count for method {r['method']!r}; give the row a 'trainable' key")
            r = {**r, "trainable": count}
        out.append(r)
    return out


_ORDER = {"cloze": 0, METHOD: 1, "head": 2}


def _describe(method: str, n: int) -> str:
    if n == 0:
        return {"cloze": "cloze prompt, zero-shot", "head": "majority class (no training)"}.get(method, method)
    return {"cloze": "cloze prompt, whole model trained", METHOD: "soft prompt, model frozen",
            "head": "new head, whole model trained"}.get(method, method)


def tuning_markdown(rows: list[dict]) -> str:
    """When to prompt, prompt-tune or fine-tune: per task and label count, each method's accuracy
    (mean ± sd over seeds) and how many parameters it trains. rows: run_prompting's and
    run_prompt_tuning's, with ``trainable`` counts (:func:`add_trainable_counts`)."""
    if missing := sorted({r["method"] for r in rows if "trainable" not in r}):
        raise ValueError(f"rows of {missing} have no 'trainable' count: pass them through add_trainable_counts")
    trainable = {(r["task"], r["labels"], r["method"]): r["trainable"] for r in rows}
    tasks = list(dict.fromkeys(r["task"] for r in rows))  # in the rows' order
    summary = sorted(summarise(rows), key=lambda s: (tasks.index(s["task"]), s["labels"], _ORDER.get(s["method"], 9)))
    out = ["| task | labelled examples | method | accuracy (mean ± sd) | trainable parameters |",
           "|---|---|---|---|---|"]
    for s in summary:
        key = (s["task"], s["labels"], s["method"])
        out.append(f"| {s['task']} | {s['labels']} | {_describe(s['method'], s['labels'])} | "
                   f"{s['mean']:.3f} ± {s['std']:.3f} | {trainable[key]:,} |")
    return "\n".join(out)
