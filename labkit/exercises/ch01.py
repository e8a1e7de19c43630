"""Checks for chapter 01 (self-attention): scaled scores, a decoder's mask, splitting heads,
what a mask does to one row of weights, and what shuffling the tokens does to the outputs.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
The ``*_inputs()`` functions and the constants give every learner the same tensors to work on.
"""
from __future__ import annotations

import math

import torch

from . import Feedback, checked, failed, passed

__all__ = ["scaled_scores_inputs", "check_scaled_scores", "DECODER_ATTENTION_MASK", "check_decoder_mask",
           "split_heads_inputs", "check_split_heads", "MASKED_ROW_SCORES", "MASKED_ROW_MASK", "check_masked_row",
           "permutation_inputs", "check_permuted_outputs"]

# Exercise 2: two target sequences of length 5; the second ends with two [PAD] tokens.
DECODER_ATTENTION_MASK = ((1, 1, 1, 1, 1), (1, 1, 1, 0, 0))

# Exercise 4: one query's scaled scores over five keys, and which keys it may attend to.
MASKED_ROW_SCORES = (2.0, 0.0, 1.0, 5.0, -1.0)
MASKED_ROW_MASK = (True, True, True, False, False)  # keys 3 and 4 are [PAD]


def scaled_scores_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Queries (4, 8) and keys (6, 8) for exercise 1 (the same for everyone)."""
    g = torch.Generator().manual_seed(101)
    return torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g)


def split_heads_inputs() -> tuple[torch.Tensor, int]:
    """A (B=2, T=5, C=12) tensor and the number of heads nh=3, for exercise 3."""
    g = torch.Generator().manual_seed(103)
    return torch.randn(2, 5, 12, generator=g), 3


def _as_tensor(answer) -> torch.Tensor | None:
    """A learner's answer as a float tensor, or None when it is not numbers."""
    try:
        t = torch.as_tensor(answer)
    except (TypeError, ValueError, RuntimeError):
        return None
    if t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        return None
    return t.detach().to(torch.float32)


@checked("scaled scores", hints=(
    "One score per (query, key) pair: the dot product of that query with that key, then a fixed division.",
    "Multiply the queries by the transposed keys to get all 4 × 6 dot products at once.",
    "Divide every dot product by the square root of d_k, the length of one query vector (8 here).",
))
def check_scaled_scores(answer) -> Feedback:
    """answer: the (4, 6) matrix QKᵀ/√d_k for ``q, k = scaled_scores_inputs()``."""
    name = "scaled scores"
    q, k = scaled_scores_inputs()
    given = _as_tensor(answer)
    if given is None:
        return failed(name, "give the scores as a tensor (or nested list) of numbers.")
    if given.shape != (4, 6):
        hint = " Did you transpose Q instead of K?" if given.shape == (8, 8) or given.shape == (6, 4) else ""
        return failed(name, f"expect one score per (query, key) pair: shape (4, 6); got {tuple(given.shape)}.{hint}")
    raw = q @ k.T  # (4, 8) @ (8, 6) -> (4, 6)
    if torch.allclose(given, raw / math.sqrt(q.size(-1)), atol=1e-4):
        return passed(name, "QKᵀ/√d_k with d_k = 8.")
    if torch.allclose(given, raw, atol=1e-4):
        return failed(name, "these are the raw dot products QKᵀ: divide by √d_k.")
    if torch.allclose(given, raw / q.size(-1), atol=1e-4):
        return failed(name, "you divided by d_k; divide by its square root.")
    if torch.allclose(given.sum(-1), torch.ones(4), atol=1e-4):
        return failed(name, "these look like softmax weights; the exercise asks for the scores before softmax.")
    return failed(name)


@checked("a decoder's mask", hints=(
    "Two rules must both hold for a query to see a key: the key is not later than the query, "
    "and the key is a real token.",
    "Build the causal part (a lower triangle, 5 × 5) and the padding part (one row of keys per "
    "sequence) separately, then keep only the places where both say True.",
    "labkit.attention has a function for each part; combine them with logical AND, and let "
    "broadcasting give the (2, 1, 5, 5) result.",
))
def check_decoder_mask(answer) -> Feedback:
    """answer: a boolean mask broadcastable to (2, nh, 5, 5), True = may attend, for a decoder
    reading the batch described by ``DECODER_ATTENTION_MASK``: causal AND not padding."""
    name = "a decoder's mask"
    try:
        given = torch.as_tensor(answer)
    except (TypeError, ValueError, RuntimeError):
        return failed(name, "give the mask as a boolean tensor.")
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
    if torch.equal(given, causal.T.expand(2, 1, 5, 5) & keys):
        return failed(name, "upper triangle: that lets each query see the *later* keys. Rows are queries, "
                            "columns are keys.")
    if torch.equal(given, causal | keys):
        return failed(name, "a key must pass both rules, not just one of them.")
    return failed(name)


@checked("splitting heads", hints=(
    "Each token's C = 12 numbers are cut into nh = 3 consecutive pieces of hs = 4: piece h belongs to head h.",
    "First reshape the last axis into (nh, hs) so that each token holds a 3 × 4 block, giving (B, T, nh, hs).",
    "Then swap the T and nh axes, so that each head holds all T tokens: (B, nh, T, hs).",
))
def check_split_heads(answer) -> Feedback:
    """answer: ``x`` from ``split_heads_inputs()`` reshaped to (B, nh, T, hs) = (2, 3, 5, 4)."""
    name = "splitting heads"
    x, nh = split_heads_inputs()
    given = _as_tensor(answer)
    if given is None:
        return failed(name, "give the result as a tensor.")
    if given.shape != (2, 3, 5, 4):
        return failed(name, f"expect (B, nh, T, hs) = (2, 3, 5, 4); got {tuple(given.shape)}.")
    if torch.equal(given, x.view(2, 5, nh, 4).transpose(1, 2)):
        return passed(name, "view (B, T, nh, hs), then transpose(1, 2).")
    if torch.equal(given, x.view(2, nh, 5, 4)):
        return failed(name, "a direct view to (2, 3, 5, 4) mixes positions: view as (B, T, nh, hs) first, "
                            "then swap the T and nh axes.")
    if torch.equal(given, x.view(2, 5, 4, nh).permute(0, 3, 1, 2)):
        return failed(name, "you cut each token into 4 pieces of 3 and took every third number for a head; "
                            "a head's 4 numbers sit next to each other.")
    return failed(name)


@checked("a masked row", hints=(
    "A masked key's score becomes minus infinity *before* the softmax. What is exp(−∞)?",
    "So the masked keys get weight 0, and the softmax shares all of the weight among the keys that are left.",
    "Only the scores of keys 0, 1 and 2 take part: exp of each, divided by the sum of those three.",
))
def check_masked_row(answer) -> Feedback:
    """answer: the five attention weights of the query whose scaled scores are ``MASKED_ROW_SCORES``
    under ``MASKED_ROW_MASK`` (True = may attend)."""
    name = "a masked row"
    given = _as_tensor(answer)
    if given is None:
        return failed(name, "give the five weights as a tensor or a list of numbers.")
    if given.numel() != 5:
        return failed(name, f"give one weight per key: 5 numbers, got {given.numel()}.")
    given = given.flatten()
    scores = torch.tensor(MASKED_ROW_SCORES)
    mask = torch.tensor(MASKED_ROW_MASK)
    expected = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    if torch.allclose(given, expected, atol=1e-3):
        return passed(name, "the padding keys get exactly 0, and the allowed keys share all of the weight: "
                            "the row still sums to 1. Key 3's large score no longer matters.")
    if torch.allclose(given, torch.softmax(scores, -1), atol=1e-3):
        return failed(name, "this ignores the mask: key 3 is padding, yet it took most of the weight.")
    if torch.allclose(given, torch.softmax(scores, -1) * mask, atol=1e-3):
        return failed(name, "you took the softmax first and zeroed the masked weights after: the row no longer "
                            "sums to 1. The mask acts on the scores, before the softmax.")
    if torch.allclose(given, torch.softmax(scores * mask, -1), atol=1e-3):
        return failed(name, "a masked score set to 0 still has exp(0) = 1 and takes weight; "
                            "it must become −∞.")
    if torch.allclose(given, mask / mask.sum(), atol=1e-3):
        return failed(name, "the allowed keys do not share equally: their scores still decide the split.")
    return failed(name)


def permutation_inputs() -> tuple[torch.Tensor, list[int]]:
    """For exercise 5: the outputs (T=6, C=4) of self-attention without positions for six tokens,
    and a permutation ``perm``: the shuffled sentence's position i holds the original token perm[i]."""
    from ..attention import MultiHeadAttention

    g = torch.Generator().manual_seed(105)
    x = torch.randn(1, 6, 4, generator=g)  # (B, T, C)
    attention = MultiHeadAttention(d_model=4, n_heads=2).eval()
    with torch.no_grad():
        for p in attention.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        out, _ = attention(x, x, x)  # (1, T, C)
    return out[0], [2, 0, 5, 1, 3, 4]


@checked("shuffled tokens", hints=(
    "Attention without positions treats the sentence as a bag of tokens: each token gets the same "
    "output wherever it stands.",
    "So the shuffled sentence's outputs are the original outputs, moved along with their tokens.",
    "Position i of the shuffled sentence holds original token perm[i]; so its output is the original "
    "output of token perm[i].",
))
def check_permuted_outputs(answer) -> Feedback:
    """answer: the (6, 4) outputs for the shuffled sentence, from ``out, perm = permutation_inputs()``."""
    name = "shuffled tokens"
    out, perm = permutation_inputs()
    given = _as_tensor(answer)
    if given is None:
        return failed(name, "give the outputs as a (6, 4) tensor.")
    if given.shape != (6, 4):
        return failed(name, f"one output vector per token: shape (6, 4); got {tuple(given.shape)}.")
    inverse = [perm.index(i) for i in range(6)]
    if torch.allclose(given, out[perm], atol=1e-5):
        return passed(name, "Attn(PX) = P·Attn(X): the outputs move with their tokens and nothing else changes. "
                            "Attention alone cannot tell the two orders apart.")
    if torch.allclose(given, out, atol=1e-5):
        return failed(name, "these are the original outputs in the original order: that would make position i "
                            "keep its output although a different token now stands there.")
    if torch.allclose(given, out[inverse], atol=1e-5):
        return failed(name, "you moved the outputs the opposite way: the shuffled sentence's position i holds "
                            "original token perm[i], not the token that was at position i.")
    return failed(name)
