r"""Self-attention from scratch: score → softmax → weighted sum.

.. math::

    \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V

Shape letters used in the comments:
    B  batch size            T, Lq  query length      S, Lk  key/value length
    C  model width (d_model) nh  number of heads      hs  head size (C // nh)
    d  size of one query/key vector

Masks are boolean and follow one convention throughout the lab:
``True`` means "this query may attend to this key".
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "MultiHeadAttention",
    "KVCache",
]


def _check_mask(mask: torch.Tensor, scores_shape: torch.Size) -> None:
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}")
    try:
        torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the attention "
            f"scores of shape {tuple(scores_shape)} (..., Lq, Lk)"
        ) from None


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out step by step; returns ``(output, weights)``.

    Args:
        q: queries, (..., Lq, d).
        k: keys, (..., Lk, d).
        v: values, (..., Lk, dv).
        mask: optional boolean tensor broadcastable to (..., Lq, Lk); True = may attend.
        dropout_p: dropout applied to the weights (use 0.0 in eval).

    Returns:
        output (..., Lq, dv) and the attention weights (..., Lq, Lk), each row summing to 1.

    A query row whose mask allows no key at all has nothing to attend to: its weights are
    all zero and its output is a zero vector (instead of the NaN that softmax over only
    ``-inf`` would give).
    """
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(f"q, k, v need at least 2 dims (..., L, d); got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k must share their last dim d; got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.size(-2) != v.size(-2):
        raise ValueError(f"k and v must have the same length Lk; got k {tuple(k.shape)} and v {tuple(v.shape)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")

    d = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (..., Lq, d) @ (..., d, Lk) -> (..., Lq, Lk)
    if mask is not None:
        _check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))  # (..., Lq, Lk)
    weights = torch.softmax(scores, dim=-1)  # (..., Lq, Lk), rows sum to 1
    if mask is not None:
        # A fully masked row is softmax(-inf, ..., -inf) = NaN; define it as all zeros.
        weights = weights.masked_fill(~mask, 0.0)  # (..., Lq, Lk)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    output = weights @ v  # (..., Lq, Lk) @ (..., Lk, dv) -> (..., Lq, dv)
    return output, weights


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean (T, T) mask where position i may attend to positions 0..i (lower triangle)."""
    if T <= 0:
        raise ValueError(f"T must be a positive length, got {T}")
    return torch.tril(torch.ones(T, T, dtype=torch.bool, device=device))  # (T, T)


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a tokenizer's (B, S) attention_mask (1 = real token, 0 = padding) into a
    boolean mask (B, 1, 1, S) that broadcasts over heads and query positions."""
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (B, S), got shape {tuple(attention_mask.shape)}")
    return attention_mask.bool()[:, None, None, :]  # (B, S) -> (B, 1, 1, S)


class KVCache:
    """What a decoder keeps between generation steps, per layer: the self-attention keys and values
    of every position seen so far (each (B, nh, P, hs)), and for an encoder–decoder the
    cross-attention keys and values of the encoder's output, computed once (each (B, nh, S, hs)).

    The keys and values live in a buffer with room to spare (doubled when full), so a step writes
    its own rows in place instead of copying the whole past into a new tensor (``torch.cat`` each
    step made decoding copy O(T²) numbers, measured at 30% of the mini-GPT's decoding time)."""

    def __init__(self, n_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layers  # (B, nh, P, hs): views of the buffers
        self.values: list[torch.Tensor | None] = [None] * n_layers
        self.cross: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layers
        self._buffers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layers  # (B, nh, capacity, hs)

    @property
    def length(self) -> int:
        """P: how many positions are cached."""
        return 0 if self.keys[0] is None else self.keys[0].size(2)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's (B, nh, T, hs) keys and values; return the whole (B, nh, P+T, hs)."""
        past_k, past_v = self.keys[layer], self.values[layer]
        P = 0 if past_k is None else past_k.size(2)
        S = P + k.size(2)
        buf = self._buffers[layer]
        if (buf is None or buf[0].size(2) < S or buf[0].shape[:2] != k.shape[:2]
                or (past_k is not None and past_k.data_ptr() != buf[0].data_ptr())):  # no room, or set from outside
            B, nh, _, hs = k.shape
            capacity = max(2 * S, 16)
            buf = (k.new_empty(B, nh, capacity, hs), v.new_empty(B, nh, capacity, v.size(-1)))
            if P:
                buf[0][:, :, :P] = past_k
                buf[1][:, :, :P] = past_v
            self._buffers[layer] = buf
        buf[0][:, :, P:S] = k
        buf[1][:, :, P:S] = v
        self.keys[layer], self.values[layer] = buf[0][:, :, :S], buf[1][:, :, :S]
        return self.keys[layer], self.values[layer]

    def select(self, index: torch.Tensor) -> "KVCache":
        """Keep the rows ``index`` of the batch (beam search reorders its hypotheses)."""
        out = KVCache(len(self.keys))
        out.keys = [None if k is None else k.index_select(0, index) for k in self.keys]
        out.values = [None if v is None else v.index_select(0, index) for v in self.values]
        out.cross = [None if c is None else (c[0].index_select(0, index), c[1].index_select(0, index))
                     for c in self.cross]
        return out


class MultiHeadAttention(nn.Module):
    """Multi-head attention: nh heads of size hs = d_model // nh, run in parallel.

    The projections are named ``query``, ``key``, ``value`` and ``output`` so that weights
    copy one-to-one from BERT-style checkpoints.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model <= 0 or n_heads <= 0:
            raise ValueError(f"d_model and n_heads must be positive, got d_model={d_model}, n_heads={n_heads}")
        if d_model % n_heads != 0:
            raise ValueError(f"n_heads={n_heads} does not divide d_model={d_model}")
        self.d_model, self.n_heads, self.head_size = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        self.query = nn.Linear(d_model, d_model, bias=bias)
        self.key = nn.Linear(d_model, d_model, bias=bias)
        self.value = nn.Linear(d_model, d_model, bias=bias)
        self.output = nn.Linear(d_model, d_model, bias=bias)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, self.n_heads, self.head_size).transpose(1, 2)  # (B, T, C) -> (B, nh, T, hs)

    def project_kv(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys and values, split into heads: (B, S, C) -> 2 x (B, nh, S, hs). A decoder caches these."""
        return self._split_heads(self.key(key)), self._split_heads(self.value(value))

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None,
        value: torch.Tensor | None,
        mask: torch.Tensor | None = None,
        need_weights: bool = False,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``query`` (B, T, C) to ``key``/``value`` (B, S, C).

        Args:
            mask: boolean, broadcastable to (B, nh, T, S); True = may attend.
            need_weights: also return the (B, nh, T, S) weights. This takes the teaching
                path; otherwise the fused ``F.scaled_dot_product_attention`` is used.
            kv: keys and values already projected (``project_kv``, e.g. from a cache), each
                (B, nh, S, hs); then ``key`` and ``value`` are not used.

        Returns:
            ``(output (B, T, C), weights (B, nh, T, S) or None)``.
        """
        if kv is None:
            for name, t in (("query", query), ("key", key), ("value", value)):
                if t is None or t.dim() != 3 or t.size(-1) != self.d_model:
                    raise ValueError(f"{name} must be (B, L, {self.d_model}), got "
                                     f"{'None' if t is None else tuple(t.shape)}")
            if key.shape[:2] != value.shape[:2] or query.size(0) != key.size(0):
                raise ValueError(
                    f"batch/length mismatch: query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}"
                )
        elif query.dim() != 3 or query.size(-1) != self.d_model:
            raise ValueError(f"query must be (B, L, {self.d_model}), got shape {tuple(query.shape)}")
        B, T, C = query.shape
        q = self._split_heads(self.query(query))  # (B, nh, T, hs)
        k, v = kv if kv is not None else self.project_kv(key, value)  # (B, nh, S, hs) each
        S = k.size(2)
        if mask is not None:
            _check_mask(mask, torch.Size((B, self.n_heads, T, S)))
        p = self.dropout if self.training else 0.0

        if need_weights:
            y, weights = scaled_dot_product_attention(q, k, v, mask=mask, dropout_p=p)  # (B, nh, T, hs)
        else:
            weights = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, nh, T, hs)
            if mask is not None:
                # Match the teaching path on rows with no allowed key: output zeros.
                any_allowed = mask.any(dim=-1, keepdim=True)  # broadcasts to (B, nh, T, 1): no need to expand first
                y = y.masked_fill(~any_allowed, 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, nh, T, hs) -> (B, T, C)
        return self.output(y), weights
