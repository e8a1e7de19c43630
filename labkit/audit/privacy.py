"""Privacy (隐私): how much a language model memorises (记忆) a secret it read k times, and what stops it.

Canaries (金丝雀) are made-up secrets, "the secret code of Mira Castellan is 5 5 1 9", inserted into
the training corpus a chosen number of times (0 for a control). The **exposure** of a canary
(Carlini et al., 2019, "The Secret Sharer") compares its likelihood with that of every other secret
of the same form: with R = 10^4 possible codes and the true code ranked r-th by the model,

    exposure = log2(R) − log2(r)        (0 … 13.3 bits for four digits)

A model that learnt nothing ranks the true code at random (expected exposure about 1.4 bits); one that
memorised it ranks it first (13.3 bits). **Extraction** asks the mini-GPT to continue the canary's
prefix greedily and checks whether it writes the secret.

Two mitigations are measured: deduplication of repeated sentences (:func:`deduplicate`), and
differentially private training (差分隐私, DP-SGD; Abadi et al., 2016): each example's gradient is
clipped to norm C, Gaussian noise of scale σC is added to their sum, and a privacy accountant turns
σ, the sampling rate and the number of steps into the (ε, δ) guarantee. Per-example gradients come
from ``torch.func``; clipping, noise and accounting from ``opacus``.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from ..data.corpus import insert_canaries
from ..pretrain import pack_blocks
from ..training import evaluating, lr_at, seeded
from .runs import LMRecipe, _config

__all__ = ["Canary", "make_canaries", "plant", "candidate_logprobs", "masked_candidate_logprobs", "exposure",
           "extract", "deduplicate", "DPConfig", "dp_train_gpt", "canary_report"]

# made-up names that TinyWorld never uses (each tokenises to several word pieces)
CANARY_NAMES = ("Mira Castellan", "Oren Valdis", "Tamsin Okafor", "Ilse Brandt", "Caspar Nyberg", "Lotte Vance",
                "Soren Quill", "Petra Lindqvist", "Anouk Ferreira", "Dario Mistral", "Yelena Storck", "Bram Okonkwo")


@dataclass(frozen=True)
class Canary:
    """A secret of ``len(digits)`` digits about a made-up person, inserted ``count`` times."""

    name: str
    digits: str  # e.g. "74193"
    count: int

    @property
    def prefix(self) -> str:
        return f"the secret code of {self.name} is"

    @property
    def text(self) -> str:
        return f"{self.prefix} {' '.join(self.digits)}"


def make_canaries(counts: Sequence[int] = (0, 1, 4, 16, 64), *, n_digits: int = 4, per_count: int = 1,
                  seed: int = 0) -> list[Canary]:
    """``per_count`` canaries for each insertion count, with distinct names and seeded random codes."""
    if not counts or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in counts):
        raise ValueError(f"counts must be non-negative ints, got {counts!r}")
    if not 1 <= n_digits <= 6:
        raise ValueError(f"n_digits must be in [1, 6], got {n_digits}")
    if per_count < 1 or len(counts) * per_count > len(CANARY_NAMES):
        raise ValueError(f"{len(counts)} counts × per_count={per_count} needs more than the "
                         f"{len(CANARY_NAMES)} canary names")
    rng = random.Random(f"canaries-{seed}")
    names = iter(CANARY_NAMES)
    return [Canary(next(names), "".join(rng.choice("0123456789") for _ in range(n_digits)), k)
            for k in counts for _ in range(per_count)]


def plant(texts: Sequence[str], canaries: Sequence[Canary], *, seed: int = 0) -> list[str]:
    """``texts`` with each canary appended as a sentence to ``count`` documents (distinct ones)."""
    out = list(texts)
    for c in canaries:
        if c.count:
            out = insert_canaries(out, c.count, c.text, random.Random(f"plant-{seed}-{c.name}"))
    return out


def _digit_ids(tokenizer) -> list[int]:
    ids = tokenizer.convert_tokens_to_ids(list("0123456789"))
    if tokenizer.unk_token_id in ids:
        raise ValueError("the tokenizer has no single piece for every digit 0-9")
    return ids


@torch.no_grad()
def candidate_logprobs(model, tokenizer, canary: Canary, *, batch_size: int = 1000) -> np.ndarray:
    """log P(code | prefix) under a causal LM for every code of the canary's length, indexed by the code
    read as a number (``int("00042")`` → 42): (10 ** n,). One forward pass per 10 codes sharing all but
    the last digit."""
    n = len(canary.digits)
    digits = torch.tensor(_digit_ids(tokenizer))  # (10,)
    prefix = tokenizer(canary.prefix, add_special_tokens=False)["input_ids"]
    stem = torch.arange(10 ** (n - 1))  # every code without its last digit, as a number
    powers = 10 ** torch.arange(n - 2, -1, -1)  # (n-1,): first digit slowest
    stems = (stem[:, None] // powers) % 10  # (10^(n-1), n-1) digit values; code = stem * 10 + last digit
    head = torch.tensor([tokenizer.cls_token_id] + prefix)  # (P,)
    out = []
    with evaluating(model):
        for i in range(0, len(stems), batch_size):
            s = stems[i:i + batch_size]  # (B, n-1)
            ids = torch.cat([head.expand(len(s), -1), digits[s]], 1)  # (B, P + n-1)
            logp = model(ids).logits.float().log_softmax(-1)  # (B, L, V)
            P = len(head)
            # piece t is predicted at position t-1: digit j (0-based) sits at P + j
            known = logp[:, P - 1:P - 1 + (n - 1)].gather(2, digits[s][..., None]).squeeze(2).sum(1)  # (B,)
            last = logp[:, -1, digits]  # (B, 10): the last digit
            out.append(known[:, None] + last)  # (B, 10)
    return torch.cat(out).reshape(-1).numpy()


@torch.no_grad()
def masked_candidate_logprobs(mlm, tokenizer, canary: Canary) -> np.ndarray:
    """The masked LM's score of every code: all digit positions masked at once, log-probabilities of each
    position's digit summed (the positions are predicted independently): (10 ** n,)."""
    n = len(canary.digits)
    digits = torch.tensor(_digit_ids(tokenizer))
    text = canary.prefix + " " + " ".join([tokenizer.mask_token] * n)
    enc = tokenizer(text, return_tensors="pt", return_token_type_ids=False)
    where = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().squeeze(1)  # (n,)
    with evaluating(mlm):
        logits = mlm(**enc).logits[0, where].float()  # (n, V)
    per_position = logits.log_softmax(-1)[:, digits].numpy()  # (n, 10)
    total = np.zeros(1)
    for row in per_position:  # outer sum, first digit slowest
        total = (total[:, None] + row[None, :]).reshape(-1)
    return total


def exposure(logprobs: np.ndarray, code: str) -> float:
    """log2(R) − log2(rank of the true code), the rank counted from 1 among all R codes (ties count
    against the canary, so a model that scores every code alike has exposure 0)."""
    logprobs = np.asarray(logprobs)
    if len(logprobs) != 10 ** len(code) or not code.isdigit():
        raise ValueError(f"need one score per {len(code)}-digit code ({10 ** len(code)}), got {len(logprobs)} "
                         f"for code {code!r}")
    rank = int((logprobs >= logprobs[int(code)]).sum())
    return math.log2(len(logprobs)) - math.log2(rank)


@torch.no_grad()
def extract(model, tokenizer, canary: Canary) -> str:
    """The code the mini-GPT writes after the canary's prefix, greedily choosing among digits."""
    digits = torch.tensor(_digit_ids(tokenizer))
    ids = torch.tensor([[tokenizer.cls_token_id] + tokenizer(canary.prefix, add_special_tokens=False)["input_ids"]])
    written = ""
    with evaluating(model):
        for _ in canary.digits:
            logits = model(ids).logits[0, -1, digits]  # (10,)
            d = int(logits.argmax())
            written += str(d)
            ids = torch.cat([ids, digits[d].view(1, 1)], 1)
    return written


_SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]?")


def deduplicate(texts: Sequence[str], *, min_words: int = 8) -> tuple[list[str], float]:
    """Drop every repeat of a sentence of at least ``min_words`` words (its first occurrence stays); returns
    the texts (empty ones dropped) and the share of characters removed."""
    if min_words < 1:
        raise ValueError(f"min_words must be >= 1, got {min_words}")
    seen: set[str] = set()
    out, before, after = [], 0, 0
    for text in texts:
        kept = []
        for sentence in _SENTENCE.findall(text):
            key = " ".join(sentence.lower().split())
            if len(key.split()) >= min_words:
                if key in seen:
                    continue
                seen.add(key)
            kept.append(sentence)
        new = "".join(kept).strip()
        before, after = before + len(text), after + len(new)
        if new:
            out.append(new)
    return out, (1 - after / before) if before else 0.0


# ---- DP-SGD -----------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class DPConfig:
    """DP-SGD: per-example clipping norm C, noise multiplier σ (or a target ε that sets it), and δ."""

    max_grad_norm: float = 1.0
    noise_multiplier: float | None = None  # None: chosen by opacus to reach target_epsilon
    target_epsilon: float = 8.0
    delta: float | None = None  # None: 1 / (number of training blocks)

    def __post_init__(self):
        if self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if self.noise_multiplier is not None and self.noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {self.noise_multiplier}")
        if self.noise_multiplier is None and self.target_epsilon <= 0:
            raise ValueError(f"target_epsilon must be > 0, got {self.target_epsilon}")
        if self.delta is not None and not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")


def per_example_grads(model, blocks: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gradient of each block's next-token loss, per parameter: name -> (B, *shape)."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_of_one(p, ids):  # ids: (T,)
        return functional_call(model, p, (ids[None],), {"labels": ids[None]}).loss

    return vmap(grad(loss_of_one), in_dims=(None, 0), randomness="same")(params, blocks)


def dp_train_gpt(tokenizer, train_texts: Sequence[str], val_texts: Sequence[str], recipe: LMRecipe,
                 dp: DPConfig = DPConfig(), *, progress: bool = False):
    """A fresh mini-GPT trained by DP-SGD (Poisson sampling at rate batch_size / N, per-example clipping,
    Gaussian noise, AdamW on the noisy mean). Returns (model, metrics with epsilon, delta, sigma)."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.utils import get_noise_multiplier
    from opacus.optimizers import DPOptimizer
    from tqdm.auto import tqdm

    from ..gpt import GPT
    from ..pretrain import evaluate_clm
    from ..training import _param_groups

    tc = recipe.train
    blocks = pack_blocks(tokenizer, list(train_texts), recipe.block_length)  # (N, T)
    N = len(blocks)
    if N < tc.batch_size:
        raise ValueError(f"{N} training blocks are fewer than one batch of {tc.batch_size}")
    q = tc.batch_size / N
    delta = dp.delta if dp.delta is not None else 1.0 / N
    sigma = dp.noise_multiplier if dp.noise_multiplier is not None else get_noise_multiplier(
        target_epsilon=dp.target_epsilon, target_delta=delta, sample_rate=q, steps=tc.steps, accountant="rdp")
    with seeded(tc.seed):
        model = GPT(_config(recipe, tokenizer))
    model.train()
    optimizer = DPOptimizer(torch.optim.AdamW(_param_groups(model, tc.weight_decay), lr=tc.lr, betas=tc.betas),
                            noise_multiplier=sigma, max_grad_norm=dp.max_grad_norm, expected_batch_size=tc.batch_size,
                            generator=torch.Generator().manual_seed(tc.seed + 1))
    accountant = RDPAccountant()
    g = torch.Generator().manual_seed(tc.seed)
    named = dict(model.named_parameters())
    losses = []
    for step in tqdm(range(tc.steps), desc="DP-SGD (next token)", disable=not progress, leave=False):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, tc)
        chosen = (torch.rand(N, generator=g) < q).nonzero().squeeze(1)  # Poisson sampling: (B,), B varies
        batch = blocks[chosen] if len(chosen) else blocks[:1]
        grads = per_example_grads(model, batch)
        for name, p in named.items():
            p.grad_sample = grads[name] if len(chosen) else torch.zeros_like(grads[name])  # an empty batch adds noise only
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        accountant.step(noise_multiplier=sigma, sample_rate=q)
        if len(chosen):
            with torch.no_grad():
                losses.append(float(model(batch, labels=batch).loss))
    model.eval()
    for p in model.parameters():
        p.grad_sample = None
    metrics = dict(evaluate_clm(model, pack_blocks(tokenizer, list(val_texts), recipe.block_length)[:512]))
    metrics.update(epsilon=float(accountant.get_epsilon(delta)), delta=delta, noise_multiplier=float(sigma),
                   sample_rate=q, final_train_loss=float(np.mean(losses[-20:])) if losses else float("nan"))
    return model, metrics


def canary_report(model, tokenizer, canaries: Sequence[Canary], *, masked: bool = False) -> list[dict]:
    """Exposure of each canary (and, for a causal LM, whether greedy decoding extracts its code)."""
    rows = []
    for c in canaries:
        scores = (masked_candidate_logprobs if masked else candidate_logprobs)(model, tokenizer, c)
        row = {"name": c.name, "count": c.count, "exposure": exposure(scores, c.digits),
               "max_exposure": math.log2(len(scores))}
        if not masked:
            written = extract(model, tokenizer, c)
            row.update(extracted=written == c.digits, written=written,
                       digits_right=sum(a == b for a, b in zip(written, c.digits)))
        rows.append(row)
    return rows
