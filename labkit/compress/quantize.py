r"""Quantisation (量化): the same weights in fewer bits.

**Weight-only symmetric absmax quantisation**, written out. A weight matrix W (N outputs × K inputs)
is cut into blocks that share one scale: a whole row for int8 (*per channel*), a group of g inputs
of a row for int4 (*group-wise*). In a block,

.. math::
   s = \frac{\max_j |w_j|}{q_{\max}}, \qquad q_j = \mathrm{round}(w_j / s) \in [-q_{\max}, q_{\max}],
   \qquad \hat w_j = s\, q_j, \qquad |w_j - \hat w_j| \le s / 2,

with :math:`q_{\max} = 127` for 8 bits and 7 for 4 bits; two 4-bit codes share a byte. A block with
one large weight gets a coarse grid for all its others, which is why int4 needs small groups.
:class:`QuantLinear` and :class:`QuantEmbedding` hold the codes and scales and rebuild the float
weight on every call: the model gets smaller on disk and in memory, not faster.

**PyTorch's post-training dynamic int8** (:func:`dynamic_int8`) quantises the weights of every
``nn.Linear`` per tensor, the activations on the fly per batch, and multiplies int8 by int8 with the
CPU's integer kernels (fbgemm/onednn): smaller *and* faster where the matrix products dominate.

    qt = quantize(w, bits=4, group_size=32)          # QuantizedTensor
    w_hat = dequantize(qt)                           # (N, K), |w - w_hat| <= scale / 2
    small = quantize_model(model, bits=8)            # a copy, every Linear and Embedding in int8
    fast = dynamic_int8(model)                       # a copy, PyTorch's dynamic int8 Linear layers

Shape letters: N output features (rows), K input features, G groups per row (K / g).
"""
from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["QuantizedTensor", "quantize", "dequantize", "pack_int4", "unpack_int4", "QuantLinear", "QuantEmbedding",
           "quantize_model", "dynamic_int8", "size_bytes", "BITS"]

BITS = (8, 4)  # the weight-only formats written here
_QMAX = {8: 127, 4: 7}


@dataclass(frozen=True)
class QuantizedTensor:
    """A weight matrix as integer codes and one float scale per block."""

    codes: torch.Tensor  # int8 (N, K) for 8 bits; uint8 (N, K/2), two codes a byte, for 4 bits
    scale: torch.Tensor  # float32 (N, G): one scale per row (G = 1) or per group of group_size inputs
    bits: int
    shape: tuple[int, int]  # (N, K) of the float matrix

    @property
    def group_size(self) -> int:
        return self.shape[1] // self.scale.shape[1]

    def nbytes(self) -> int:
        return self.codes.numel() * self.codes.element_size() + self.scale.numel() * self.scale.element_size()


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """Codes in [-8, 7] (N, K), K even → uint8 (N, K/2): the first of each pair in the low nibble."""
    if codes.dim() != 2 or codes.shape[1] % 2:
        raise ValueError(f"pack_int4 needs an (N, K) tensor with K even, got shape {tuple(codes.shape)}")
    if codes.min() < -8 or codes.max() > 7:
        raise ValueError("int4 codes must lie in [-8, 7]")
    nibbles = (codes.to(torch.int16) & 0xF).to(torch.uint8)  # two's complement in 4 bits: -1 -> 0b1111
    return nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)  # (N, K/2)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """uint8 (N, K/2) → int8 codes (N, K), the inverse of :func:`pack_int4`."""
    low, high = (packed & 0xF).to(torch.int8), (packed >> 4).to(torch.int8)  # (N, K/2) each, values 0..15
    low, high = torch.where(low > 7, low - 16, low), torch.where(high > 7, high - 16, high)
    return torch.stack([low, high], dim=-1).flatten(1)  # (N, K/2, 2) -> (N, K)


def quantize(weight: torch.Tensor, bits: int = 8, group_size: int | None = None) -> QuantizedTensor:
    """Symmetric absmax quantisation of a 2-D weight (N, K): per row for ``group_size=None``, else per group of
    ``group_size`` consecutive inputs of a row (K must divide into groups; 4 bits also need K even)."""
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits!r}")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError(f"weight must be a 2-D float tensor, got {getattr(weight, 'shape', type(weight).__name__)}")
    n, k = weight.shape
    g = k if group_size is None else group_size
    if not isinstance(g, int) or g < 1 or k % g:
        raise ValueError(f"group_size must be a positive divisor of the {k} input features, got {group_size!r}")
    if bits == 4 and k % 2:
        raise ValueError(f"4-bit codes are packed two a byte: the input features ({k}) must be even")
    blocks = weight.detach().float().reshape(n, k // g, g)  # (N, G, g)
    scale = blocks.abs().amax(-1) / _QMAX[bits]  # (N, G)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero block: any scale, codes 0
    codes = torch.round(blocks / scale[..., None]).clamp(-_QMAX[bits], _QMAX[bits]).to(torch.int8).reshape(n, k)
    return QuantizedTensor(pack_int4(codes) if bits == 4 else codes, scale, bits, (n, k))


def dequantize(qt: QuantizedTensor) -> torch.Tensor:
    """The float32 matrix (N, K) the codes stand for: code × its block's scale."""
    n, k = qt.shape
    codes = unpack_int4(qt.codes) if qt.bits == 4 else qt.codes  # (N, K) int8
    groups = qt.scale.shape[1]
    return (codes.float().reshape(n, groups, k // groups) * qt.scale[..., None]).reshape(n, k)  # (N, G, g) -> (N, K)


class _Quantized(nn.Module):
    """Holds one quantised weight as buffers (saved with the state dict) and rebuilds it on demand."""

    def _store(self, qt: QuantizedTensor):
        self.bits, self.shape = qt.bits, qt.shape
        self.register_buffer("codes", qt.codes)
        self.register_buffer("scale", qt.scale)

    def weight_float(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return dequantize(QuantizedTensor(self.codes, self.scale, self.bits, self.shape)).to(dtype)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, bits={self.bits}, group_size={self.shape[1] // self.scale.shape[1]}"


class QuantLinear(_Quantized):
    """An ``nn.Linear`` with a weight-only quantised weight (the bias stays float)."""

    def __init__(self, linear: nn.Linear, bits: int = 8, group_size: int | None = None):
        super().__init__()
        self._store(quantize(linear.weight, bits, group_size))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def forward(self, x):  # (..., K) -> (..., N)
        return F.linear(x, self.weight_float(x.dtype), self.bias)


class QuantEmbedding(_Quantized):
    """An ``nn.Embedding`` whose table is quantised per row (one scale per token's vector, or per group)."""

    def __init__(self, embedding: nn.Embedding, bits: int = 8, group_size: int | None = None):
        super().__init__()
        self._store(quantize(embedding.weight, bits, group_size))
        self.padding_idx = embedding.padding_idx

    @property
    def weight(self) -> torch.Tensor:  # (V, C), for code that reads an embedding's table (tied output layers)
        return self.weight_float()

    def forward(self, ids):  # (B, T) -> (B, T, C)
        return F.embedding(ids, self.weight_float(), self.padding_idx)


def quantize_model(model: nn.Module, bits: int = 8, group_size: int | None = None, *,
                   embeddings: bool = True) -> nn.Module:
    """A copy of ``model`` in eval mode with every ``nn.Linear`` (and, with ``embeddings``, every ``nn.Embedding``)
    weight-only quantised. A layer whose input size ``group_size`` does not divide keeps one scale per row."""
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits!r}")
    if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
        raise ValueError(f"group_size must be a positive integer or None, got {group_size!r}")
    model = copy.deepcopy(model).cpu().float().eval()

    def fits(k: int) -> int | None:
        return group_size if group_size is not None and k % group_size == 0 else None

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, QuantLinear(child, bits, fits(child.in_features)))
            elif embeddings and isinstance(child, nn.Embedding):
                setattr(parent, name, QuantEmbedding(child, bits, fits(child.embedding_dim)))
    return model


def dynamic_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with PyTorch's post-training dynamic int8 ``nn.Linear`` layers (CPU only)."""
    from torch.ao.quantization import quantize_dynamic

    model = copy.deepcopy(model).cpu().float().eval()
    with warnings.catch_warnings():  # torch announces a move of these APIs to torchao; they still run
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def size_bytes(model: nn.Module) -> int:
    """Bytes of ``model``'s state dict as ``torch.save`` writes it (what a checkpoint file would take)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model.state_dict(), buffer)
    return buffer.tell()
