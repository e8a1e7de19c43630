r"""A mini-Transformer: a BERT-architected encoder, a decoder, an encoder–decoder and an MLM head.

Each layer refines the previous one, :math:`h^{(l)} = \mathrm{Transformer}(h^{(l-1)})`, with
post-layer-norm residual blocks as in BERT:

.. math::

    a = \mathrm{LN}(h + \mathrm{MHA}(h)), \qquad h' = \mathrm{LN}(a + W_2\,\mathrm{GELU}(W_1 a))

Shape letters: B batch, T target/query length, S source length, C d_model, V vocab size,
L number of layers, nh heads.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import KVCache, MultiHeadAttention, causal_mask, padding_mask
from .masking import IGNORE_INDEX

__all__ = [
    "TransformerConfig",
    "PreTrainingModel",
    "Encoder",
    "Decoder",
    "Seq2Seq",
    "MaskedLM",
    "CausalLM",
    "EncoderOutput",
    "DecoderOutput",
    "LMOutput",
    "Seq2SeqOutput",
]


@dataclass(kw_only=True)
class TransformerConfig:
    """Sizes of a mini-Transformer. Defaults give a laptop-sized model (~1.5M parameters)."""

    vocab_size: int = 8000  # word pieces in the tokenizer
    max_position: int = 512  # longest sequence the learned position table covers
    type_vocab_size: int = 2  # segment ids: sentence A = 0, sentence B = 1
    d_model: int = 128  # width C of every hidden vector
    n_layers: int = 2  # encoder blocks
    n_decoder_layers: int = 2  # decoder blocks (Seq2Seq / CausalLM)
    n_heads: int = 4  # attention heads; must divide d_model
    d_ff: int = 512  # hidden width of the feed-forward sublayer (usually 4 * d_model)
    dropout: float = 0.1  # on embeddings and sublayer outputs
    attention_dropout: float = 0.1  # on attention weights
    layer_norm_eps: float = 1e-12  # BERT's value
    pad_token_id: int = 0
    initializer_range: float = 0.02  # std of the normal initialisation

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_position", "type_vocab_size", "d_model", "n_layers", "n_heads", "d_ff"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.n_decoder_layers < 0:
            raise ValueError(f"n_decoder_layers must be >= 0, got {self.n_decoder_layers}")
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"n_heads={self.n_heads} does not divide d_model={self.d_model}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @classmethod
    def bert_base(cls) -> "TransformerConfig":
        """The sizes of bert-base-uncased (110M parameters)."""
        return cls(vocab_size=30522, max_position=512, d_model=768, n_layers=12, n_heads=12, d_ff=3072)

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- outputs
@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor  # (B, S, C)
    pooler_output: torch.Tensor | None = None  # (B, C): tanh(W h_[CLS])
    hidden_states: tuple[torch.Tensor, ...] | None = None  # L+1 of (B, S, C), embeddings first
    attentions: tuple[torch.Tensor, ...] | None = None  # L of (B, nh, S, S)


@dataclass
class DecoderOutput:
    last_hidden_state: torch.Tensor  # (B, T, C)
    hidden_states: tuple[torch.Tensor, ...] | None = None  # L+1 of (B, T, C)
    attentions: tuple[torch.Tensor, ...] | None = None  # L of (B, nh, T, T)
    cross_attentions: tuple[torch.Tensor, ...] | None = None  # L of (B, nh, T, S)


@dataclass
class LMOutput:
    logits: torch.Tensor  # (B, T, V)
    loss: torch.Tensor | None = None  # mean cross-entropy over positions whose label != IGNORE_INDEX
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class Seq2SeqOutput:
    logits: torch.Tensor  # (B, T, V)
    loss: torch.Tensor | None = None
    encoder: EncoderOutput | None = None
    decoder: DecoderOutput | None = None


# ----------------------------------------------------------------------------- blocks
class Embeddings(nn.Module):
    """token + learned position + token type (segment) embeddings, then LayerNorm and dropout."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.token = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.position = nn.Embedding(config.max_position, config.d_model)
        self.token_type = nn.Embedding(config.type_vocab_size, config.d_model)
        self.norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.max_position = config.max_position

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None, start: int = 0) -> torch.Tensor:
        B, T = input_ids.shape
        if start + T > self.max_position:
            raise ValueError(f"sequence of length {start + T} exceeds max_position={self.max_position}")
        positions = torch.arange(start, start + T, device=input_ids.device)  # (T,)
        x = self.token(input_ids) + self.position(positions)  # (B, T, C) + (T, C) -> (B, T, C)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)  # one segment
        x = x + self.token_type(token_type_ids)  # (B, T, C)
        return self.dropout(self.norm(x))


class FeedForward(nn.Module):
    """Position-wise W_2 GELU(W_1 x): C -> d_ff -> C."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.up = nn.Linear(config.d_model, config.d_ff)
        self.down = nn.Linear(config.d_ff, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))  # (B, T, C) -> (B, T, d_ff) -> (B, T, C)


class Block(nn.Module):
    """One post-LN Transformer block: self-attention, optional cross-attention, feed-forward."""

    def __init__(self, config: TransformerConfig, cross_attention: bool = False):
        super().__init__()
        C, eps = config.d_model, config.layer_norm_eps
        self.attn = MultiHeadAttention(C, config.n_heads, dropout=config.attention_dropout)
        self.attn_norm = nn.LayerNorm(C, eps=eps)
        self.cross = MultiHeadAttention(C, config.n_heads, dropout=config.attention_dropout) if cross_attention else None
        self.cross_norm = nn.LayerNorm(C, eps=eps) if cross_attention else None
        self.ff = FeedForward(config)
        self.ff_norm = nn.LayerNorm(C, eps=eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, mask=None, memory=None, memory_mask=None, need_weights=False, cache: KVCache | None = None,
                layer: int = 0):
        """cache: a decoder's keys and values from earlier steps (this step's are appended to it);
        x then holds the new positions only."""
        kv = cache.update(layer, *self.attn.project_kv(x, x)) if cache is not None else None  # past + new
        a, w_self = self.attn(x, x, x, mask=mask, need_weights=need_weights, kv=kv)  # (B, T, C)
        x = self.attn_norm(x + self.dropout(a))
        w_cross = None
        if self.cross is not None:
            cross_kv = None
            if cache is not None:  # the encoder's keys and values never change: project them once
                if cache.cross[layer] is None:
                    cache.cross[layer] = self.cross.project_kv(memory, memory)
                cross_kv = cache.cross[layer]
            c, w_cross = self.cross(x, memory, memory, mask=memory_mask, need_weights=need_weights,
                                    kv=cross_kv)  # (B, T, C)
            x = self.cross_norm(x + self.dropout(c))
        x = self.ff_norm(x + self.dropout(self.ff(x)))  # (B, T, C)
        return x, w_self, w_cross


def _init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: N(0, std) weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------- models
class Encoder(nn.Module):
    """A BERT encoder: embeddings, n_layers bidirectional blocks, and a [CLS] pooler."""

    def __init__(self, config: TransformerConfig, pooler: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.pooler = nn.Linear(config.d_model, config.d_model) if pooler else None
        self.apply(lambda m: _init_weights(m, config.initializer_range))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> EncoderOutput:
        """Encode (B, S) token ids; attention_mask (B, S) has 1 for real tokens, 0 for padding."""
        _check_ids(input_ids, "input_ids", self.config.vocab_size)
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape {tuple(input_ids.shape)}")
        if token_type_ids is not None and token_type_ids.shape != input_ids.shape:
            raise ValueError(f"token_type_ids shape {tuple(token_type_ids.shape)} != input_ids shape {tuple(input_ids.shape)}")
        mask = padding_mask(attention_mask) if attention_mask is not None else None  # (B, 1, 1, S)
        h = self.embeddings(input_ids, token_type_ids)  # (B, S, C)
        hidden, attns = [h], []
        for block in self.layers:
            h, w, _ = block(h, mask=mask, need_weights=output_attentions)
            hidden.append(h)
            attns.append(w)
        pooled = torch.tanh(self.pooler(h[:, 0])) if self.pooler is not None else None  # (B, C)
        return EncoderOutput(
            last_hidden_state=h,
            pooler_output=pooled,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attns) if output_attentions else None,
        )


class Decoder(nn.Module):
    """A Transformer decoder: causal self-attention, then (optionally) cross-attention to an
    encoder's output ("memory"), then feed-forward, in each of n_decoder_layers blocks."""

    def __init__(self, config: TransformerConfig, cross_attention: bool = True):
        super().__init__()
        if config.n_decoder_layers <= 0:
            raise ValueError(f"a Decoder needs n_decoder_layers > 0, got {config.n_decoder_layers}")
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(Block(config, cross_attention=cross_attention) for _ in range(config.n_decoder_layers))
        self.apply(lambda m: _init_weights(m, config.initializer_range))

    def forward(
        self,
        input_ids: torch.Tensor,
        memory: torch.Tensor | None = None,
        memory_attention_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        cache: KVCache | None = None,
    ) -> DecoderOutput:
        """Decode (B, T) ids; memory is the encoder output (B, S, C) with its (B, S) mask.

        cache: keys and values of P earlier positions (a :class:`KVCache`, updated in place);
        input_ids are then the T new tokens, at positions P .. P+T-1, and attention_mask, if
        given, covers all P + T."""
        _check_ids(input_ids, "input_ids", self.config.vocab_size)
        B, T = input_ids.shape
        P = cache.length if cache is not None else 0
        has_cross = self.layers[0].cross is not None
        if has_cross and memory is None:
            raise ValueError("this decoder has cross-attention: pass memory (B, S, C) from an encoder")
        if memory is not None and (memory.dim() != 3 or memory.size(0) != B or memory.size(-1) != self.config.d_model):
            raise ValueError(f"memory must be ({B}, S, {self.config.d_model}), got {tuple(memory.shape)}")
        if P == 0:
            mask = causal_mask(T, device=input_ids.device)  # (T, T)
        else:  # new query t sits at position P + t: it sees keys 0 .. P + t
            mask = torch.ones(T, P + T, dtype=torch.bool, device=input_ids.device).tril(diagonal=P)  # (T, P + T)
        if attention_mask is not None:
            mask = mask & padding_mask(attention_mask)  # (T, P+T) & (B, 1, 1, P+T) -> (B, 1, T, P+T)
        mem_mask = padding_mask(memory_attention_mask) if memory_attention_mask is not None else None  # (B, 1, 1, S)
        h = self.embeddings(input_ids, start=P)  # (B, T, C)
        hidden, self_w, cross_w = [h], [], []
        for i, block in enumerate(self.layers):
            h, ws, wc = block(h, mask=mask, memory=memory, memory_mask=mem_mask, need_weights=output_attentions,
                              cache=cache, layer=i)
            hidden.append(h)
            self_w.append(ws)
            cross_w.append(wc)
        return DecoderOutput(
            last_hidden_state=h,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(self_w) if output_attentions else None,
            cross_attentions=tuple(cross_w) if (output_attentions and has_cross) else None,
        )


class LMHead(nn.Module):
    """BERT's prediction head: dense → GELU → LayerNorm → tied projection to the vocabulary.

    P(w_i | x) = softmax(h_i E^T + b), where E is the token embedding table.
    """

    def __init__(self, config: TransformerConfig, embedding: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(config.d_model, config.d_model)
        self.norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.embedding = embedding  # shared with the model's input embeddings (weight tying)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        _init_weights(self.dense, config.initializer_range)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.norm(F.gelu(self.dense(h)))  # (B, T, C)
        # h E^T + b in one fused call (addmm): no second (B, T, V) tensor for the bias
        return F.linear(h, self.embedding.weight, self.bias)  # (B, T, C) @ (C, V) -> (B, T, V)


def _lm_loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    if labels is None:
        return None
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels shape {tuple(labels.shape)} != logits shape without vocab {tuple(logits.shape[:-1])}")
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)  # (B*T, V) vs (B*T,)


def _check_ids(ids: torch.Tensor, name: str, vocab_size: int) -> None:
    if ids.dim() != 2 or ids.dtype not in (torch.long, torch.int32, torch.int64):
        raise ValueError(f"{name} must be an integer tensor (B, T), got shape {tuple(ids.shape)} dtype {ids.dtype}")
    # the values cannot be read while torch.export traces the model (ONNX export) or inside torch.func
    traced = torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(ids)
    if not traced and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"{name} has ids outside [0, {vocab_size}): min {int(ids.min())}, max {int(ids.max())}")


class MaskedLM(nn.Module):
    """An Encoder with BERT's masked-language-model head (no pooler, as BertForMaskedLM)."""

    pooler = False

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, pooler=self.pooler)
        self.head = LMHead(config, self.encoder.embeddings.token)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, *,
                output_hidden_states: bool = False, output_attentions: bool = False) -> LMOutput:
        """labels (B, S): the original id at masked positions, IGNORE_INDEX (-100) elsewhere."""
        enc = self.encoder(input_ids, attention_mask, token_type_ids,
                           output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        logits = self.head(enc.last_hidden_state)  # (B, S, V)
        return LMOutput(logits, _lm_loss(logits, labels), enc.hidden_states, enc.attentions)


@dataclass
class PreTrainingOutput:
    logits: torch.Tensor  # (B, T, V) masked-LM scores
    next_sentence_logits: torch.Tensor  # (B, 2): 0 = B follows A, 1 = B is a random sentence
    loss: torch.Tensor | None = None  # masked-LM loss + next-sentence loss (each when its labels are given)
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class PreTrainingModel(MaskedLM):
    """BERT's two pretraining objectives (as BertForPreTraining): the masked-LM head, and a
    next-sentence head that reads the pooled [CLS] vector, [CLS] → pooler (tanh) → linear(2).

    The second objective is what trains [CLS] and the pooler, the very path a sequence
    classifier fine-tunes; masked LM alone never puts a loss on them.
    """

    pooler = True

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self.next_sentence = nn.Linear(config.d_model, 2)
        _init_weights(self.next_sentence, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, next_sentence_label=None, *,
                output_hidden_states: bool = False, output_attentions: bool = False) -> PreTrainingOutput:
        """labels (B, S) as MaskedLM; next_sentence_label (B,) 0 = real continuation, 1 = random."""
        enc = self.encoder(input_ids, attention_mask, token_type_ids,
                           output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        logits = self.head(enc.last_hidden_state)  # (B, S, V)
        nsp = self.next_sentence(enc.pooler_output)  # (B, C) -> (B, 2)
        loss = _lm_loss(logits, labels)  # with labels only, the masked-LM loss, as MaskedLM
        if next_sentence_label is not None:
            nsp_loss = F.cross_entropy(nsp.float(), next_sentence_label)
            loss = nsp_loss if loss is None else loss + nsp_loss
        return PreTrainingOutput(logits, nsp, loss, enc.hidden_states, enc.attentions)


class CausalLM(nn.Module):
    """A decoder-only language model predicting the next token: P(x_t | x_<t)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.decoder = Decoder(config, cross_attention=False)
        self.head = LMHead(config, self.decoder.embeddings.token)

    def forward(self, input_ids, attention_mask=None, labels=None, *, output_attentions: bool = False) -> LMOutput:
        """labels (B, T) are the inputs themselves; they are shifted here (predict t+1 from <= t)."""
        dec = self.decoder(input_ids, attention_mask=attention_mask, output_attentions=output_attentions)
        logits = self.head(dec.last_hidden_state)  # (B, T, V)
        loss = None
        if labels is not None:
            loss = _lm_loss(logits[:, :-1], labels[:, 1:])  # position t predicts token t+1
        return LMOutput(logits, loss, None, dec.attentions)


class Seq2Seq(nn.Module):
    """Encoder–decoder: a BERT encoder reads the source, a decoder writes the target while
    cross-attending to it. Source and target share one (bilingual) vocabulary."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, pooler=False)
        self.decoder = Decoder(config, cross_attention=True)
        self.head = LMHead(config, self.decoder.embeddings.token)

    def forward(self, input_ids, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                labels=None, *, output_attentions: bool = False) -> Seq2SeqOutput:
        """input_ids (B, S) source; decoder_input_ids (B, T) target shifted right; labels (B, T)."""
        if decoder_input_ids is None:
            raise ValueError("decoder_input_ids (B, T) is required: the target shifted right, starting with [CLS]")
        enc = self.encoder(input_ids, attention_mask, output_attentions=output_attentions)
        dec = self.decoder(decoder_input_ids, enc.last_hidden_state, attention_mask, decoder_attention_mask,
                           output_attentions=output_attentions)
        logits = self.head(dec.last_hidden_state)  # (B, T, V)
        return Seq2SeqOutput(logits, _lm_loss(logits, labels), enc, dec)


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())
