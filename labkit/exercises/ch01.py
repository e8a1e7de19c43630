"""Checks for chapter 01 (self-attention): scaled scores, a decoder's mask, splitting heads.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
The ``*_inputs()`` functions give every learner the same tensors to work on.
"""
from __future__ import annotations

import math

import torch

from . import Feedback, checked, failed, passed

__all__ = ["scaled_scores_inputs", "check_scaled_scores", "DECODER_ATTENTION_MASK", "check_decoder_mask",
           "split_heads_inputs", "check_split_heads"]

# Exercise 2: two target sequences of length 5; the second ends with two [PAD] tokens.
DECODER_ATTENTION_MASK = ((1, 1, 1, 1, 1), (1, 1, 1, 0, 0))


def scaled_scores_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Queries (4, 8) and keys (6, 8) for exercise 1 (the same for everyone)."""
    g = torch.Generator().manual_seed(101)
    return torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g)


def split_heads_inputs() -> tuple[torch.Tensor, int]:
    """A (B=2, T=5, C=12) tensor and the number of heads nh=3, for exercise 3."""
    g = torch.Generator().manual_seed(103)
    return torch.randn(2, 5, 12, generator=g), 3


@checked("scaled scores")
def check_scaled_scores(answer) -> Feedback:
    """answer: the (4, 6) matrix QKᵀ/√d_k for ``q, k = scaled_scores_inputs()``."""
    name = "scaled scores"
    q, k = scaled_scores_inputs()
    given = torch.as_tensor(answer, dtype=torch.float32)
    if given.shape != (4, 6):
        return failed(name, f"expect one score per (query, key) pair: shape (4, 6); got {tuple(given.shape)}. "
                            "Did you transpose K?")
    raw = q @ k.T  # (4, 8) @ (8, 6) -> (4, 6)
    if torch.allclose(given, raw / math.sqrt(q.size(-1)), atol=1e-4):
        return passed(name, "QKᵀ/√d_k with d_k = 8.")
    if torch.allclose(given, raw, atol=1e-4):
        return failed(name, "these are the raw dot products QKᵀ: divide by √d_k.")
    if torch.allclose(given, raw / q.size(-1), atol=1e-4):
        return failed(name, "you divided by d_k; divide by its square root.")
    if torch.allclose(given.sum(-1), torch.ones(4), atol=1e-4):
        return failed(name, "these look like softmax weights; the exercise asks for the scores before softmax.")
    return failed(name, "compute q @ k.T / math.sqrt(d_k), with d_k the last dimension of q.")


@checked("a decoder's mask")
def check_decoder_mask(answer) -> Feedback:
    """answer: a boolean mask broadcastable to (2, nh, 5, 5), True = may attend, for a decoder
    reading the batch described by ``DECODER_ATTENTION_MASK``: causal AND not padding."""
    name = "a decoder's mask"
    given = torch.as_tensor(answer)
    if given.dtype != torch.bool:
        return failed(name, f"the lab's masks are boolean (True = may attend); got dtype {given.dtype}.")
    try:
        given = given.expand(2, 1, 5, 5) if given.dim() == 4 else given.expand(2, 5, 5)[:, None]
    except RuntimeError:
        return failed(name, f"shape {tuple(given.shape)} does not broadcast to (2, 1, 5, 5).")
    causal = torch.tril(torch.ones(5, 5, dtype=torch.bool))  # (T, T)
    keys = torch.tensor(DECODER_ATTENTION_MASK, dtype=torch.bool)[:, None, None, :]  # (B, 1, 1, S)
    expected = causal & keys  # (B, 1, T, S)
    if torch.equal(given, expected):
        return passed(name, "query i sees keys 0..i, and never a [PAD] key.")
    if torch.equal(given, causal.expand(2, 1, 5, 5)):
        return failed(name, "this is only the causal part: the second sequence's last two keys are padding.")
    if torch.equal(given, keys.expand(2, 1, 5, 5)):
        return failed(name, "this is only the padding part: a decoder must not look at later tokens either.")
    if torch.equal(given, ~expected):
        return failed(name, "inverted: in the lab True means 'may attend'.")
    return failed(name, "combine labkit.attention.causal_mask(5) and padding_mask(...) with &.")


@checked("splitting heads")
def check_split_heads(answer) -> Feedback:
    """answer: ``x`` from ``split_heads_inputs()`` reshaped to (B, nh, T, hs) = (2, 3, 5, 4)."""
    name = "splitting heads"
    x, nh = split_heads_inputs()
    given = torch.as_tensor(answer, dtype=torch.float32)
    if given.shape != (2, 3, 5, 4):
        return failed(name, f"expect (B, nh, T, hs) = (2, 3, 5, 4); got {tuple(given.shape)}.")
    if torch.equal(given, x.view(2, 5, nh, 4).transpose(1, 2)):
        return passed(name, "view (B, T, nh, hs), then transpose(1, 2).")
    if torch.equal(given, x.view(2, nh, 5, 4)):
        return failed(name, "a direct view to (2, 3, 5, 4) mixes positions: view as (B, T, nh, hs) first, "
                            "then swap the T and nh axes.")
    return failed(name, "head h of token t should hold x[:, t, 4*h : 4*h+4].")
