"""Move weights between labkit models and Hugging Face transformers' BERT classes.

labkit's modules have short teaching names (``layers.0.attn.query``); BERT checkpoints use
``encoder.layer.0.attention.self.query``. One renaming table maps every tensor, so a model
trained in the lab can be saved and opened with ``transformers`` and the other way round:

======================  ==========================================================
labkit                  transformers
======================  ==========================================================
``Encoder``             ``BertModel``
``MaskedLM``            ``BertForMaskedLM``
``PreTrainingModel``    ``BertForPreTraining`` (masked LM + next sentence)
``CausalLM``            ``BertLMHeadModel`` (``is_decoder=True``)
``Seq2Seq``             ``EncoderDecoderModel`` (BERT → BERT with cross-attention)
``SequenceClassifier``  ``BertForSequenceClassification``
``TokenClassifier``     ``BertForTokenClassification``
``QuestionAnswerer``    ``BertForQuestionAnswering``
``GPT``                 ``GPT2LMHeadModel`` (GPT-2: pre-layer-norm, tied output layer)
======================  ==========================================================

Every pair is registered here, and only here: the models themselves (``labkit.transformer``,
``labkit.heads``) are plain torch and never import transformers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertLMHeadModel,
    BertModel,
    EncoderDecoderConfig,
    EncoderDecoderModel,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
)

from .gpt import GPT, GPTConfig
from .heads import QuestionAnswerer, SequenceClassifier, TokenClassifier
from .transformer import CausalLM, Encoder, MaskedLM, PreTrainingModel, Seq2Seq, TransformerConfig

__all__ = ["from_hf", "to_hf", "to_bert_config", "from_bert_config", "to_gpt2_config", "from_gpt2_config",
           "transformers_name"]

_EMBEDDINGS = {"token": "word_embeddings", "position": "position_embeddings",
               "token_type": "token_type_embeddings", "norm": "LayerNorm"}
_BLOCK = {
    "attn.query": "attention.self.query", "attn.key": "attention.self.key",
    "attn.value": "attention.self.value", "attn.output": "attention.output.dense",
    "attn_norm": "attention.output.LayerNorm",
    "cross.query": "crossattention.self.query", "cross.key": "crossattention.self.key",
    "cross.value": "crossattention.self.value", "cross.output": "crossattention.output.dense",
    "cross_norm": "crossattention.output.LayerNorm",
    "ff.up": "intermediate.dense", "ff.down": "output.dense", "ff_norm": "output.LayerNorm",
}
_HEAD = {"head.dense": "cls.predictions.transform.dense", "head.norm": "cls.predictions.transform.LayerNorm",
         "head.bias": "cls.predictions.bias", "head.embedding": "cls.predictions.decoder"}


def _stack_key(key: str) -> str:
    """Rename a key inside an Encoder/Decoder (embeddings, layers, pooler) to BertModel's."""
    if m := re.fullmatch(r"embeddings\.(\w+)\.(weight|bias)", key):
        return f"embeddings.{_EMBEDDINGS[m[1]]}.{m[2]}"
    if m := re.fullmatch(r"layers\.(\d+)\.(.+)\.(weight|bias)", key):
        return f"encoder.layer.{m[1]}.{_BLOCK[m[2]]}.{m[3]}"
    if m := re.fullmatch(r"pooler\.(weight|bias)", key):
        return f"pooler.dense.{m[1]}"
    raise KeyError(key)


def _head_key(key: str) -> str:
    if key == "head.bias":
        return _HEAD["head.bias"]
    module, leaf = key.rsplit(".", 1)
    return f"{_HEAD[module]}.{leaf}"


def transformers_name(model: nn.Module, key: str) -> str:
    """The name transformers' twin of ``model`` gives the tensor ``model`` calls ``key`` (a state-dict key)."""
    return _spec_for(model).rename(key)


# ----------------------------------------------------------------------------- configs
def to_bert_config(config: TransformerConfig, **extra) -> BertConfig:
    """A transformers ``BertConfig`` with the same sizes (extra kwargs pass through)."""
    return BertConfig(
        vocab_size=config.vocab_size, hidden_size=config.d_model, num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads, intermediate_size=config.d_ff, hidden_act="gelu",
        hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.attention_dropout,
        max_position_embeddings=config.max_position, type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.layer_norm_eps, pad_token_id=config.pad_token_id,
        initializer_range=config.initializer_range, **extra,
    )


def from_bert_config(bc: BertConfig, n_decoder_layers: int = 0) -> TransformerConfig:
    """A labkit config from a transformers ``BertConfig`` (ValueError if BERT uses a variant labkit lacks)."""
    if bc.hidden_act != "gelu":
        raise ValueError(f"labkit implements BERT's exact GELU; this config uses hidden_act={bc.hidden_act!r}")
    pos = getattr(bc, "position_embedding_type", "absolute") or "absolute"
    if pos != "absolute":
        raise ValueError(f"labkit implements absolute position embeddings; got position_embedding_type={pos!r}")
    return TransformerConfig(
        vocab_size=bc.vocab_size, max_position=bc.max_position_embeddings, type_vocab_size=bc.type_vocab_size,
        d_model=bc.hidden_size, n_layers=bc.num_hidden_layers, n_decoder_layers=n_decoder_layers,
        n_heads=bc.num_attention_heads, d_ff=bc.intermediate_size, dropout=bc.hidden_dropout_prob,
        attention_dropout=bc.attention_probs_dropout_prob, layer_norm_eps=bc.layer_norm_eps,
        pad_token_id=bc.pad_token_id if bc.pad_token_id is not None else 0, initializer_range=bc.initializer_range,
    )


# ----------------------------------------------------------------------------- pairs
@dataclass
class _Spec:
    labkit_cls: type
    hf_cls: type
    rename: Callable[[str], str]  # labkit state-dict key -> transformers key
    build_labkit: Callable[[PreTrainedModel], nn.Module]
    build_hf: Callable[[nn.Module, dict], PreTrainedModel]
    ignore_hf: tuple[str, ...] = ()  # transformers keys with no labkit counterpart (regexes)
    transposed: Callable[[str], bool] = lambda hf_key: False  # stored (in, out) there, (out, in) here


_SPECS: list[_Spec] = []


def _register(labkit_cls: type, hf_cls: type, rename, build_labkit, build_hf,
              ignore_hf: tuple[str, ...] = (), transposed=lambda hf_key: False) -> None:
    """Add a (labkit class, transformers class) pair; later registrations take precedence."""
    _SPECS.insert(0, _Spec(labkit_cls, hf_cls, rename, build_labkit, build_hf, ignore_hf, transposed))


def _prefixed(prefix_lab: str, prefix_hf: str, inner: Callable[[str], str]):
    def rename(key: str) -> str:
        if not key.startswith(prefix_lab):
            raise KeyError(key)
        return prefix_hf + inner(key[len(prefix_lab):])
    return rename


def _with_head(body: Callable[[str], str], head_prefix: str = ""):
    def rename(key: str) -> str:
        return head_prefix + _head_key(key) if key.startswith("head.") else body(key)
    return rename


def _seq2seq_config(m: EncoderDecoderModel) -> TransformerConfig:
    enc, dec = m.config.encoder, m.config.decoder
    cfg = from_bert_config(enc, n_decoder_layers=dec.num_hidden_layers)
    for a, b in (("hidden_size", "d_model"), ("num_attention_heads", "n_heads"), ("intermediate_size", "d_ff"),
                 ("vocab_size", "vocab_size"), ("max_position_embeddings", "max_position")):
        if getattr(dec, a) != getattr(cfg, b):
            raise ValueError(f"labkit's Seq2Seq shares sizes between encoder and decoder; {a} differs: "
                             f"encoder {getattr(enc, a)}, decoder {getattr(dec, a)}")
    return cfg


def _seq2seq_hf(model: Seq2Seq, extra: dict) -> EncoderDecoderModel:
    enc_cfg = to_bert_config(model.config)
    dec_cfg = to_bert_config(model.config, is_decoder=True, add_cross_attention=True)
    dec_cfg.num_hidden_layers = model.config.n_decoder_layers
    cfg = EncoderDecoderConfig.from_encoder_decoder_configs(enc_cfg, dec_cfg)
    for k, v in extra.items():
        setattr(cfg, k, v)
    return EncoderDecoderModel(config=cfg)


_register(Encoder, BertModel, _stack_key,
          lambda m: Encoder(from_bert_config(m.config), pooler=m.pooler is not None),
          lambda m, kw: BertModel(to_bert_config(m.config, **kw), add_pooling_layer=m.pooler is not None))
_register(MaskedLM, BertForMaskedLM, _with_head(_prefixed("encoder.", "bert.", _stack_key)),
          lambda m: MaskedLM(from_bert_config(m.config)),
          lambda m, kw: BertForMaskedLM(to_bert_config(m.config, **kw)))
_register(PreTrainingModel, BertForPreTraining,
          lambda k: "cls.seq_relationship." + k.split(".", 1)[1] if k.startswith("next_sentence.")
          else _with_head(_prefixed("encoder.", "bert.", _stack_key))(k),
          lambda m: PreTrainingModel(from_bert_config(m.config)),
          lambda m, kw: BertForPreTraining(to_bert_config(m.config, **kw)))
_register(CausalLM, BertLMHeadModel, _with_head(_prefixed("decoder.", "bert.", _stack_key)),
          lambda m: CausalLM(from_bert_config(m.config, n_decoder_layers=m.config.num_hidden_layers)),
          lambda m, kw: BertLMHeadModel(_decoder_config(m.config, **kw)))
_register(Seq2Seq, EncoderDecoderModel,
          _with_head(lambda k: _prefixed("encoder.", "encoder.", _stack_key)(k) if k.startswith("encoder.")
                     else _prefixed("decoder.", "decoder.bert.", _stack_key)(k), head_prefix="decoder."),
          lambda m: Seq2Seq(_seq2seq_config(m)), _seq2seq_hf, ignore_hf=(r"encoder\.pooler\..*",))


def _decoder_config(config: TransformerConfig, **kw) -> BertConfig:
    bc = to_bert_config(config, is_decoder=True, **kw)
    bc.num_hidden_layers = config.n_decoder_layers
    return bc


def _head_rename(head_names: tuple[str, ...]):
    """A task head's key renamer: the encoder under ``bert.``, the head's own layers unchanged."""
    body = _prefixed("encoder.", "bert.", _stack_key)

    def rename(key: str) -> str:
        return key if key.split(".")[0] in head_names else body(key)
    return rename


def _head_builders(cls: type, hf_cls: type):
    """(transformers model -> labkit head, labkit head -> transformers model) for one task head.

    The label names travel in the config (id2label, label2id); a span head has none.
    """
    def build_labkit(m: PreTrainedModel) -> nn.Module:
        labels = {} if cls is QuestionAnswerer else {"id2label": {int(k): v for k, v in m.config.id2label.items()}}
        return cls(from_bert_config(m.config), num_labels=m.config.num_labels, **labels)

    def build_hf(m: nn.Module, kw: dict) -> PreTrainedModel:
        labels = {} if cls is QuestionAnswerer else {"id2label": m.id2label,
                                                    "label2id": {v: k for k, v in m.id2label.items()}}
        return hf_cls(to_bert_config(m.config, num_labels=m.num_labels, **{**labels, **kw}))
    return build_labkit, build_hf


_register(SequenceClassifier, BertForSequenceClassification, _head_rename(("classifier",)),
          *_head_builders(SequenceClassifier, BertForSequenceClassification))
_register(TokenClassifier, BertForTokenClassification, _head_rename(("classifier",)),
          *_head_builders(TokenClassifier, BertForTokenClassification))
_register(QuestionAnswerer, BertForQuestionAnswering, _head_rename(("qa_outputs",)),
          *_head_builders(QuestionAnswerer, BertForQuestionAnswering))


# ----------------------------------------------------------------------------- GPT-2
def to_gpt2_config(config: GPTConfig, **extra) -> GPT2Config:
    """A transformers ``GPT2Config`` with the same sizes (extra kwargs pass through)."""
    return GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.max_position, n_embd=config.d_model, n_layer=config.n_layers,
        n_head=config.n_heads, n_inner=config.d_ff, activation_function="gelu_new", resid_pdrop=config.dropout,
        embd_pdrop=config.dropout, attn_pdrop=config.dropout, layer_norm_epsilon=config.layer_norm_eps,
        initializer_range=config.initializer_range, bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, tie_word_embeddings=True, **extra)


def from_gpt2_config(gc: GPT2Config) -> GPTConfig:
    """A labkit GPTConfig from a transformers ``GPT2Config`` (ValueError for a variant labkit lacks)."""
    if gc.activation_function != "gelu_new":
        raise ValueError(f"labkit's GPT uses GPT-2's gelu_new; this config uses {gc.activation_function!r}")
    if not gc.scale_attn_weights or gc.scale_attn_by_inverse_layer_idx or gc.reorder_and_upcast_attn:
        raise ValueError("labkit's GPT scales attention by 1/sqrt(head size) only, as GPT-2 does")
    if not getattr(gc, "tie_word_embeddings", True):
        raise ValueError("labkit's GPT ties its output layer to the token embeddings; this config does not")
    ids = {k: getattr(gc, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    default = ids["eos_token_id"] if ids["eos_token_id"] is not None else 0
    return GPTConfig(
        vocab_size=gc.vocab_size, max_position=gc.n_positions, d_model=gc.n_embd, n_layers=gc.n_layer,
        n_heads=gc.n_head, d_ff=gc.n_inner or 4 * gc.n_embd, dropout=gc.resid_pdrop,
        layer_norm_eps=gc.layer_norm_epsilon, initializer_range=gc.initializer_range,
        **{k: (v if v is not None else default) for k, v in ids.items()})


_GPT_BLOCK = {"ln1": "ln_1", "ln2": "ln_2", "attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj",
              "mlp.up": "mlp.c_fc", "mlp.down": "mlp.c_proj"}
_GPT_TOP = {"token.weight": "transformer.wte.weight", "position.weight": "transformer.wpe.weight",
            "norm.weight": "transformer.ln_f.weight", "norm.bias": "transformer.ln_f.bias"}


def _gpt_key(key: str) -> str:
    if key in _GPT_TOP:
        return _GPT_TOP[key]
    if m := re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", key):
        return f"transformer.h.{m[1]}.{_GPT_BLOCK[m[2]]}.{m[3]}"
    raise KeyError(key)


_register(GPT, GPT2LMHeadModel, _gpt_key, lambda m: GPT(from_gpt2_config(m.config)),
          lambda m, kw: GPT2LMHeadModel(to_gpt2_config(m.config, **kw)),
          ignore_hf=(r"lm_head\.weight", r"transformer\.h\.\d+\.attn\.(masked_)?bias"),
          # GPT-2's Conv1D layers keep their weight as (in, out), nn.Linear as (out, in)
          transposed=lambda k: bool(re.search(r"\.(c_attn|c_proj|c_fc)\.weight$", k)))


def _spec_for(obj) -> _Spec:
    for spec in _SPECS:
        if isinstance(obj, spec.labkit_cls) or (isinstance(obj, type) and issubclass(obj, spec.labkit_cls)):
            return spec
    raise ValueError(f"no transformers counterpart registered for {type(obj).__name__}; "
                     f"known: {[s.labkit_cls.__name__ for s in _SPECS]}")


def _hf_spec_for(model: PreTrainedModel) -> _Spec:
    for spec in _SPECS:
        if type(model) is spec.hf_cls:
            return spec
    raise ValueError(f"cannot convert {type(model).__name__}; supported transformers classes: "
                     f"{[s.hf_cls.__name__ for s in _SPECS]}")


# ----------------------------------------------------------------------------- conversion
def _copy(src: dict[str, torch.Tensor], dst: nn.Module, skip: Callable[[str], bool] = lambda k: False) -> None:
    """Copy src[k] into every tensor k of dst (same names), checking names and shapes.

    Tied tensors (one Parameter under several names, e.g. BERT's decoder bias) are copied
    once, from whichever of their names the source has."""
    groups: dict[int, list[str]] = {}
    tensors = dst.state_dict(keep_vars=True)
    for key, tensor in tensors.items():
        if not skip(key):
            groups.setdefault(id(tensor), []).append(key)
    with torch.no_grad():
        for keys in groups.values():
            found = [k for k in keys if k in src]
            if not found:
                raise ValueError(f"the source model has no tensor for {keys[0]!r}")
            key, tensor = found[0], tensors[keys[0]]
            if src[key].shape != tensor.shape:
                raise ValueError(f"shape mismatch for {key!r}: target {tuple(tensor.shape)}, source {tuple(src[key].shape)}")
            tensor.copy_(src[key])


def _oriented(spec: _Spec, hf_key_: str, tensor: torch.Tensor) -> torch.Tensor:
    """The tensor laid out for the other side (transposed where the two store it differently)."""
    return tensor.T if spec.transposed(hf_key_) else tensor


def _ignored(spec: _Spec, hf_key_: str) -> bool:
    return hf_key_.endswith("position_ids") or any(re.fullmatch(p, hf_key_) for p in spec.ignore_hf)


def from_hf(model: PreTrainedModel) -> nn.Module:
    """Build the labkit model equal to a transformers one (same weights, same outputs)."""
    spec = _hf_spec_for(model)
    ours = spec.build_labkit(model)
    theirs = model.state_dict(keep_vars=True)
    names = {k: spec.rename(k) for k in ours.state_dict()}  # labkit key -> transformers key
    _copy({k: _oriented(spec, v, theirs[v].detach()) for k, v in names.items() if v in theirs}, ours)
    used = {id(theirs[v]) for v in names.values() if v in theirs}  # tied names share one tensor
    dropped = sorted(k for k, t in theirs.items() if id(t) not in used and not _ignored(spec, k))
    if dropped:
        raise ValueError(f"{type(model).__name__} has weights labkit's {type(ours).__name__} would drop: {dropped[:5]}")
    ours.to(next(model.parameters()).dtype)
    return ours.train(model.training)


def to_hf(model: nn.Module, **config_kwargs) -> PreTrainedModel:
    """The transformers model equal to a labkit one; config_kwargs go to its config
    (e.g. ``id2label``, ``attn_implementation="eager"`` for attention outputs)."""
    spec = _spec_for(model)
    attn = config_kwargs.pop("attn_implementation", None)
    hf = spec.build_hf(model, config_kwargs)
    if attn is not None:
        hf.set_attn_implementation(attn)
    _copy({spec.rename(k): _oriented(spec, spec.rename(k), v) for k, v in model.state_dict().items()}, hf,
          skip=lambda k: _ignored(spec, k))
    return hf.to(next(model.parameters()).dtype).train(model.training)
