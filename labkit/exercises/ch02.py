"""Checks for chapter 02 (the mini-Transformer): counting parameters, a pre-LN block.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import torch
from torch import nn

from . import Feedback, checked, failed, passed

__all__ = ["MLM_HEAD_SIZES", "check_mlm_head_parameters", "BERT_LARGE", "check_bert_large_parameters",
           "check_pre_ln_block"]

MLM_HEAD_SIZES = {"vocab_size": 6000, "d_model": 128}  # exercise 1: the cpu scale's configured sizes
BERT_LARGE = {"vocab_size": 30522, "max_position": 512, "type_vocab_size": 2, "d_model": 1024,
              "n_layers": 24, "n_heads": 16, "d_ff": 4096}  # exercise 2: bert-large-uncased, with pooler


def _as_int(answer) -> int | None:
    if isinstance(answer, bool):
        return None
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    return answer if isinstance(answer, int) else None


@checked("the masked-LM head")
def check_mlm_head_parameters(answer) -> Feedback:
    """answer: how many parameters ``MaskedLM`` adds on top of its encoder (``MLM_HEAD_SIZES``), an int."""
    from ..transformer import Encoder, MaskedLM, TransformerConfig, count_parameters

    name = "the masked-LM head"
    given = _as_int(answer)
    if given is None:
        return failed(name, f"give a whole number (int); got {answer!r}")
    V, C = MLM_HEAD_SIZES["vocab_size"], MLM_HEAD_SIZES["d_model"]
    cfg = TransformerConfig(**MLM_HEAD_SIZES)
    with torch.device("meta"):
        expected = count_parameters(MaskedLM(cfg)) - count_parameters(Encoder(cfg, pooler=False))
    if given == expected:
        return passed(name, f"dense C²+C, LayerNorm 2C, output bias V = {expected:,}: the V×C projection is "
                            "the token-embedding table itself (weight tying).")
    if given == expected + V * C:
        return failed(name, "the projection to the vocabulary is not a new matrix: it reuses the token "
                            "embeddings (weight tying, see LMHead in labkit/transformer.py).")
    if given == expected - V:
        return failed(name, "you missed the output bias: one number per vocabulary entry.")
    return failed(name, "read LMHead in labkit/transformer.py: dense → GELU → LayerNorm → h Eᵀ + b.")


@checked("bert-large's parameters")
def check_bert_large_parameters(answer) -> Feedback:
    """answer: the parameters of a BERT encoder with ``BERT_LARGE`` sizes, pooler included (an int)."""
    from ..transformer import Encoder, TransformerConfig, count_parameters

    name = "bert-large's parameters"
    given = _as_int(answer)
    if given is None:
        return failed(name, f"give a whole number (int); got {answer!r}")
    with torch.device("meta"):  # shapes only: no memory for 335M numbers
        expected = count_parameters(Encoder(TransformerConfig(**BERT_LARGE)))
    C = BERT_LARGE["d_model"]
    if given == expected:
        return passed(name, f"{expected:,} — the '340M' of the BERT paper.")
    if given == expected - (C * C + C):
        return failed(name, "add the pooler: one C×C Linear with bias on the [CLS] vector.")
    if abs(given - expected) < 0.01 * expected:
        return failed(name, "close: recount the embeddings (token, position, token type, LayerNorm).")
    return failed(name, "embeddings (V + P + 2)·C + 2C, then L blocks as in exercise 1, then the pooler C² + C.")


def _torch_layer_like(block, layer: nn.TransformerEncoderLayer) -> None:
    """Copy a labkit Block's weights into an nn.TransformerEncoderLayer (norm1 = attn_norm, norm2 = ff_norm)."""
    attn = block.attn
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(torch.cat([attn.query.weight, attn.key.weight, attn.value.weight]))
        layer.self_attn.in_proj_bias.copy_(torch.cat([attn.query.bias, attn.key.bias, attn.value.bias]))
        layer.self_attn.out_proj.load_state_dict(attn.output.state_dict())
        layer.linear1.load_state_dict(block.ff.up.state_dict())
        layer.linear2.load_state_dict(block.ff.down.state_dict())
        layer.norm1.load_state_dict(block.attn_norm.state_dict())
        layer.norm2.load_state_dict(block.ff_norm.state_dict())


@checked("a pre-LN block")
def check_pre_ln_block(answer) -> Feedback:
    """answer: a function ``(block, h) -> h'`` computing the pre-LN variant of a labkit Block,
    h + MHA(LN₁(h)), then + FFN(LN₂(·)), with LN₁ = block.attn_norm and LN₂ = block.ff_norm.
    It is compared with ``nn.TransformerEncoderLayer(norm_first=True)`` holding the same weights."""
    from ..transformer import Block, TransformerConfig

    name = "a pre-LN block"
    if not callable(answer):
        return failed(name, "give a function: def pre_ln_block(block, h): ... return h")
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=32, n_heads=4, d_ff=64)
    block = Block(cfg).eval()
    for p in block.parameters():  # non-trivial weights, so that every difference shows
        nn.init.normal_(p, std=0.3)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu", layer_norm_eps=cfg.layer_norm_eps,
                                       batch_first=True, norm_first=True).eval()
    _torch_layer_like(block, layer)
    h = torch.randn(2, 6, 32)  # (B, T, C)
    with torch.no_grad():
        expected = layer(h)
        given = answer(block, h.clone())
        post_ln, _, _ = block(h)
    if isinstance(given, tuple):
        return failed(name, "return the tensor h' alone, not a tuple.")
    given = torch.as_tensor(given)
    if given.shape != expected.shape:
        return failed(name, f"expected shape {tuple(expected.shape)}, got {tuple(given.shape)}.")
    if torch.allclose(given, expected, atol=1e-5):
        return passed(name, "h + MHA(LN(h)), then + FFN(LN(·)): the residual path stays un-normalised.")
    if torch.allclose(given, post_ln, atol=1e-5):
        return failed(name, "this is the post-LN block (block(h)); normalise *before* each sublayer instead.")
    return failed(name, "a = h + block.attn(x, x, x)[0] with x = block.attn_norm(h); then "
                        "a + block.ff(block.ff_norm(a)). No LayerNorm after the sums.")
