r"""A mini-GPT: a decoder-only Transformer with GPT-2's architecture, and its key–value cache.

Where the mini-BERT (:mod:`labkit.transformer`) reads a whole text at once and fills in masked
words, a GPT reads left to right and predicts the next token, :math:`P(x_t \mid x_{<t})`.
GPT-2's block normalises *before* each sublayer (pre-layer-norm), so the residual stream
carries the input unchanged from the embeddings to a final LayerNorm:

.. math::

    a = h + \mathrm{MHA}(\mathrm{LN}_1(h)), \qquad h' = a + W_2\,\mathrm{GELU}(W_1\,\mathrm{LN}_2(a))

Learned position embeddings, GELU in its tanh form (GPT-2's ``gelu_new``), and the output
layer tied to the token embeddings: logits = LN_f(h) E^T, no bias.

Generating one token at a time, the keys and values of every earlier position never change
(a token attends only to the past), so they are kept in a :class:`KVCache` and each new step
computes the projections of the newest token alone. ``labkit.hf`` pairs :class:`GPT` with
transformers' ``GPT2LMHeadModel``.

The lab's GPT reads the mini-BERT's WordPiece tokens (Chinese one character per token), not GPT-2's
byte-level BPE: with one tokenizer and one corpus, masked and causal pretraining differ only in
their objective, which is what chapter 08 compares.

Shape letters: B batch, T new tokens, P cached (past) tokens, S = P + T, C d_model, V vocab
size, nh heads, hs head size.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import KVCache, scaled_dot_product_attention
from .masking import IGNORE_INDEX

__all__ = ["GPTConfig", "GPT", "GPTOutput", "KVCache", "position_ids_from_mask"]


@dataclass(kw_only=True)
class GPTConfig:
    """Sizes of a mini-GPT (defaults: about 1M parameters with a 4,000-piece vocabulary)."""

    vocab_size: int = 4000
    max_position: int = 256  # longest sequence (prompt + generated) the position table covers
    d_model: int = 128  # width C of the residual stream
    n_layers: int = 4
    n_heads: int = 4  # must divide d_model
    d_ff: int = 512  # hidden width of the feed-forward sublayer (GPT-2: 4 * d_model)
    dropout: float = 0.1  # on embeddings, attention weights and sublayer outputs
    layer_norm_eps: float = 1e-5  # GPT-2's value
    initializer_range: float = 0.02
    bos_token_id: int = 0  # also the end of a text in GPT-2's convention
    eos_token_id: int = 0
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_position", "d_model", "n_layers", "n_heads", "d_ff"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} does not divide d_model={self.d_model}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(f"{name}={getattr(self, name)} is outside the vocabulary [0, {self.vocab_size})")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GPTOutput:
    logits: torch.Tensor  # (B, T, V)
    loss: torch.Tensor | None = None
    cache: "KVCache | None" = None
    attentions: tuple[torch.Tensor, ...] | None = None  # per layer (B, nh, T, S)


def position_ids_from_mask(attention_mask: torch.Tensor, T: int) -> torch.Tensor:
    """Positions of the last T tokens counted over real tokens only: (B, S) -> (B, T).

    With right padding this is 0, 1, 2, ...; with left padding a row's first real token still
    gets position 0, so a padded prompt reads exactly as an unpadded one."""
    pos = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, S)
    return pos[:, -T:]


class CausalSelfAttention(nn.Module):
    """Masked multi-head self-attention with an optional cache of past keys and values."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        C = config.d_model
        self.n_heads, self.head_size = config.n_heads, C // config.n_heads
        self.qkv = nn.Linear(C, 3 * C)  # query, key and value in one matrix, as GPT-2's c_attn
        self.proj = nn.Linear(C, C)
        self.dropout = config.dropout

    def forward(self, x, mask, cache: KVCache | None = None, layer: int = 0, need_weights: bool = False):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.n_heads, self.head_size).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, nh, S, hs): the past and this step
        p = self.dropout if self.training else 0.0
        if need_weights:
            y, weights = scaled_dot_product_attention(q, k, v, mask=mask, dropout_p=p)  # (B, nh, T, hs)
        else:
            y, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, nh, T, hs) -> (B, T, C)
        return self.proj(y), weights


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.up = nn.Linear(config.d_model, config.d_ff)
        self.down = nn.Linear(config.d_ff, config.d_model)

    def forward(self, x):
        return self.down(F.gelu(self.up(x), approximate="tanh"))  # (B, T, C) -> (B, T, d_ff) -> (B, T, C)


class GPTBlock(nn.Module):
    """Pre-layer-norm block: h + attention(LN(h)), then + MLP(LN(.))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, h, mask, cache=None, layer=0, need_weights=False):
        a, weights = self.attn(self.ln1(h), mask, cache, layer, need_weights)
        h = h + self.drop(a)  # (B, T, C)
        return h + self.drop(self.mlp(self.ln2(h))), weights


class GPT(nn.Module):
    """A decoder-only language model, GPT-2's architecture: it owns its next-token loss."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token = nn.Embedding(config.vocab_size, config.d_model)
        self.position = nn.Embedding(config.max_position, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(GPTBlock(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.apply(self._init)
        # GPT-2 scales the init of each residual branch's last layer by 1/sqrt(2 L)
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.down.weight")):
                nn.init.normal_(p, 0.0, config.initializer_range / math.sqrt(2 * config.n_layers))

    def _init(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, self.config.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, input_ids, attention_mask=None, labels=None, *, cache: KVCache | None = None,
                position_ids=None, use_cache: bool = False, output_attentions: bool = False) -> GPTOutput:
        """input_ids (B, T): the new tokens. attention_mask (B, P + T): 1 for real tokens of the
        cached past and of this step, 0 for padding. labels (B, T): the inputs themselves, shifted
        here (position t predicts token t+1; IGNORE_INDEX where there is no loss).
        cache: keys and values of P earlier positions (updated in place); use_cache=True starts one."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (B, T), got shape {tuple(input_ids.shape)}")
        B, T = input_ids.shape
        if use_cache and cache is None:
            cache = KVCache(self.config.n_layers)
        P = cache.length if cache is not None else 0
        S = P + T
        if S > self.config.max_position:
            raise ValueError(f"{S} positions exceed max_position={self.config.max_position}")
        # (inside torch.func.vmap, as for per-example gradients in DP-SGD, or while torch.export traces the
        # model, the ids' values cannot be read)
        readable = not (torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(input_ids))
        if readable and input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= self.config.vocab_size):
            raise ValueError(f"input_ids has ids outside [0, {self.config.vocab_size})")
        device = input_ids.device
        if attention_mask is None:
            attention_mask = torch.ones(B, S, dtype=torch.long, device=device)
        if attention_mask.shape != (B, S):
            raise ValueError(f"attention_mask must be (B, P + T) = {(B, S)}, got {tuple(attention_mask.shape)}")
        if position_ids is None:
            position_ids = position_ids_from_mask(attention_mask, T)  # (B, T)
        # query t (absolute position P + t) may see key s when s <= P + t and s is a real token
        causal = torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=P)  # (T, S)
        mask = causal[None, None] & attention_mask.bool()[:, None, None, :]  # (B, 1, T, S)
        mask = mask | ~mask.any(-1, keepdim=True)  # a padding query that sees nothing sees all (output unused)
        h = self.drop(self.token(input_ids) + self.position(position_ids))  # (B, T, C)
        attentions = []
        for i, block in enumerate(self.blocks):
            h, w = block(h, mask, cache, i, output_attentions)
            attentions.append(w)
        logits = self.norm(h) @ self.token.weight.T  # tied output layer: (B, T, C) @ (C, V) -> (B, T, V)
        loss = None
        if labels is not None:
            if labels.shape != (B, T):
                raise ValueError(f"labels must be (B, T) = {(B, T)}, got {tuple(labels.shape)}")
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                   ignore_index=IGNORE_INDEX)
        return GPTOutput(logits, loss, cache, tuple(attentions) if output_attentions else None)
