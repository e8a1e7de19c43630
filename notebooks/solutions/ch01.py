"""Reference solutions for chapter 01 (self-attention). Each ``solution_<name>()`` returns the
answer that ``labkit.exercises.ch01.check_<name>`` accepts."""
import math

import torch

from labkit.attention import causal_mask, padding_mask
from labkit.exercises.ch01 import (DECODER_ATTENTION_MASK, MASKED_ROW_MASK, MASKED_ROW_SCORES, permutation_inputs,
                                   scaled_scores_inputs, split_heads_inputs)


def solution_scaled_scores():
    q, k = scaled_scores_inputs()  # (4, d_k), (6, d_k)
    d_k = q.size(-1)
    return q @ k.T / math.sqrt(d_k)  # (4, d_k) @ (d_k, 6) -> (4, 6)


def solution_decoder_mask():
    attention_mask = torch.tensor(DECODER_ATTENTION_MASK)  # (B, S): 1 = real token, 0 = [PAD]
    return causal_mask(5) & padding_mask(attention_mask)  # (T, T) & (B, 1, 1, S) -> (B, 1, T, S)


def solution_split_heads():
    x, nh = split_heads_inputs()  # (B, T, C), number of heads
    B, T, C = x.shape
    return x.view(B, T, nh, C // nh).transpose(1, 2)  # (B, T, nh, hs) -> (B, nh, T, hs)


def solution_masked_row():
    scores = torch.tensor(MASKED_ROW_SCORES)  # (5,) scaled scores of one query
    mask = torch.tensor(MASKED_ROW_MASK)  # (5,) True = may attend
    # The mask acts before the softmax: a forbidden score becomes -inf, exp(-inf) = 0, and the
    # remaining keys share all of the weight. (By hand: exp(2), exp(0), exp(1) over their sum.)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # (5,)


def solution_permuted_outputs():
    out, perm = permutation_inputs()  # (T, C) outputs of the original order; perm: new position -> old token
    # Self-attention without positions is permutation-equivariant: Attn(PX) = P Attn(X). Position i of
    # the shuffled sentence holds token perm[i], so it gets that token's original output.
    return out[perm]  # (T, C)
