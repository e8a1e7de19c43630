"""labkit against transformers on the same weights: training, inference and decoding speed, side by side.

Each comparison builds one labkit model, converts it with :func:`labkit.hf.to_hf` (so both hold the same
weights and compute the same function), and times the two alternately in one process: rounds of
``labkit, transformers, labkit, transformers, …``, so that a slower moment of the machine hits both. The
ratio is labkit's speed over transformers' (above 1: labkit is faster). Only ratios are meaningful on
a shared machine; tests check what is computed, never how fast.

    training_ratio(TransformerConfig(vocab_size=6000, d_model=64, n_layers=2, n_heads=4, d_ff=256))
    decoding_ratio(GPTConfig(vocab_size=6000, d_model=128, n_layers=4, n_heads=4, d_ff=512))

Shape letters: B sequences, T tokens each, V vocabulary.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from ..gpt import GPT, GPTConfig
from ..hf import to_hf
from ..sampling import SamplingConfig, generate
from ..training import seeded
from ..transformer import MaskedLM, TransformerConfig

__all__ = ["alternate", "training_ratio", "inference_ratio", "decoding_ratio", "SIZES"]

# The two encoder sizes the bench compares at: the cpu build's, and a wider and deeper one.
SIZES = {"cpu size (64 wide, 2 layers)": dict(d_model=64, n_layers=2, n_heads=4, d_ff=256),
         "256 wide, 4 layers": dict(d_model=256, n_layers=4, n_heads=4, d_ff=1024)}


def alternate(fns: dict[str, Callable[[], None]], rounds: int, calls: int) -> dict[str, float]:
    """Median seconds of one call of each function, timed in alternating rounds of ``calls`` calls (after one
    untimed round each)."""
    if rounds < 1 or calls < 1:
        raise ValueError(f"rounds and calls must be positive, got {rounds}, {calls}")
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(rounds + 1):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            if r:
                times[name].append((time.perf_counter() - start) / calls)
    return {name: float(np.median(t)) for name, t in times.items()}


def _batch(vocab: int, batch: int, length: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, length), generator=g)  # (B, T)
    labels = torch.where(torch.rand(batch, length, generator=g) < 0.15, ids, torch.full_like(ids, -100))  # (B, T)
    return ids, torch.ones_like(ids), labels


def _config(vocab: int, max_position: int, **size) -> TransformerConfig:
    return TransformerConfig(vocab_size=vocab, max_position=max_position, dropout=0.0, attention_dropout=0.0, **size)


def training_ratio(size: dict, *, vocab: int = 6000, batch: int = 32, length: int = 64, rounds: int = 5,
                   calls: int = 3) -> dict:
    """Masked-LM training steps (forward, loss, backward, AdamW) per second: labkit's MaskedLM against
    transformers' BertForMaskedLM (SDPA attention) with the same weights and batch."""
    with seeded(0):
        ours = MaskedLM(_config(vocab, length, **size)).train()
    theirs = to_hf(ours).train()
    ids, mask, labels = _batch(vocab, batch, length)
    with torch.no_grad():  # same weights, same loss: the comparison is of one computation
        a = ours(ids, mask, labels=labels).loss
        b = theirs(input_ids=ids, attention_mask=mask, labels=labels).loss
    if not torch.allclose(a, b, atol=1e-4):
        raise RuntimeError(f"labkit and transformers disagree on the loss ({a.item():.5f} vs {b.item():.5f})")
    steps = {}
    for name, model in (("labkit", ours), ("transformers", theirs)):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(model=model, opt=opt, name=name):
            loss = (model(ids, mask, labels=labels) if name == "labkit"
                    else model(input_ids=ids, attention_mask=mask, labels=labels)).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        steps[name] = step
    t = alternate(steps, rounds, calls)
    return {"labkit_tokens_per_s": batch * length / t["labkit"],
            "transformers_tokens_per_s": batch * length / t["transformers"],
            "ratio": t["transformers"] / t["labkit"]}


def inference_ratio(size: dict, *, vocab: int = 6000, batch: int = 32, length: int = 64, rounds: int = 5,
                    calls: int = 5) -> dict:
    """Masked-LM forward passes (no gradients) per second, labkit against transformers, same weights."""
    with seeded(0):
        ours = MaskedLM(_config(vocab, length, **size)).eval()
    theirs = to_hf(ours).eval()
    ids, mask, _ = _batch(vocab, batch, length)
    with torch.inference_mode():
        torch.testing.assert_close(ours(ids, mask).logits, theirs(input_ids=ids, attention_mask=mask).logits,
                                   atol=1e-4, rtol=1e-4)
        t = alternate({"labkit": lambda: ours(ids, mask),
                       "transformers": lambda: theirs(input_ids=ids, attention_mask=mask)}, rounds, calls)
    return {"labkit_tokens_per_s": batch * length / t["labkit"],
            "transformers_tokens_per_s": batch * length / t["transformers"],
            "ratio": t["transformers"] / t["labkit"]}


def decoding_ratio(config: GPTConfig, *, batch: int = 1, prompt: int = 16, new_tokens: int = 48, rounds: int = 3,
                   calls: int = 2) -> dict:
    """Greedy decoding with a KV cache, new tokens per second: labkit's :func:`~labkit.sampling.generate` on
    its GPT against transformers' ``generate`` on the same weights (GPT2LMHeadModel); the tokens must agree."""
    config = replace(config, max_position=max(config.max_position, prompt + new_tokens), dropout=0.0)
    with seeded(0):
        ours = GPT(config).eval()
    theirs = to_hf(ours).eval()
    ids = torch.randint(5, config.vocab_size, (batch, prompt), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    cfg = SamplingConfig(max_new_tokens=new_tokens)

    def hf():
        return theirs.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=new_tokens,
                               min_new_tokens=new_tokens, pad_token_id=0, eos_token_id=None)

    with torch.inference_mode():
        if not torch.equal(generate(ours, ids, mask, cfg), hf()):
            raise RuntimeError("labkit and transformers decode different tokens from the same weights")
        t = alternate({"labkit": lambda: generate(ours, ids, mask, cfg), "transformers": hf}, rounds, calls)
    return {"labkit_tokens_per_s": batch * new_tokens / t["labkit"],
            "transformers_tokens_per_s": batch * new_tokens / t["transformers"],
            "ratio": t["transformers"] / t["labkit"]}
