"""Checks for chapter 02 (the mini-Transformer): where a block mixes positions, what the residual
path carries, the masked-LM head's parameters, a pre-LN block.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
The exercises build their inputs from the functions and constants here, so each exercise cell
runs on its own.
"""
from __future__ import annotations

import numbers

import torch
from torch import nn

from . import Feedback, checked, failed, passed

__all__ = ["CHANGED_POSITION", "block_inputs", "check_mixing_positions", "switched_off_inputs",
           "check_residual_path", "MLM_HEAD_SIZES", "check_mlm_head_parameters", "check_pre_ln_block"]

CHANGED_POSITION = 2  # exercise 1: the position whose input vector the exercise changes
# Exercise 3: the cpu scale's configured sizes (labkit.scales.SCALES["cpu"].model: vocabulary
# 6000, d_model 64; the head does not depend on the number of layers).
MLM_HEAD_SIZES = {"vocab_size": 6000, "d_model": 64}

_SIZES = dict(d_model=32, n_heads=4, d_ff=64, dropout=0.0, attention_dropout=0.0)
_CHANGED = 1e-6  # an output vector "changed" when one of its features moved by more than this


def _block(seed: int = 0):
    """A small labkit Block with non-trivial weights (std 0.3), in eval mode."""
    from ..transformer import Block, TransformerConfig

    torch.manual_seed(seed)
    block = Block(TransformerConfig(**_SIZES)).eval()
    with torch.no_grad():
        for p in block.parameters():  # big enough weights that every difference shows
            nn.init.normal_(p, std=0.3)
    return block


def block_inputs():
    """Exercise 1: ``(block, h)`` — a labkit Block (C = 32, 4 heads) and one sequence h of shape (1, 6, 32)."""
    block = _block(0)
    h = torch.randn(1, 6, _SIZES["d_model"], generator=torch.Generator().manual_seed(1))  # (B, T, C)
    return block, h


def _positions(answer_value) -> list[int] | None:
    """A learner's list/set/tuple/tensor of positions as a sorted list of ints, or None if it is not one."""
    if isinstance(answer_value, torch.Tensor):
        answer_value = answer_value.flatten().tolist()
    if isinstance(answer_value, (str, bytes, dict)) or not hasattr(answer_value, "__iter__"):
        return None
    values = list(answer_value)
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        return None
    return sorted({int(v) for v in values})


def _changed_positions(before: torch.Tensor, after: torch.Tensor) -> list[int]:
    moved = (after - before).abs().amax(-1)[0]  # (T,): the largest change of each position's vector
    return [t for t, m in enumerate(moved.tolist()) if m > _CHANGED]


@checked("which part mixes positions", hints=(
    "Change the input vector at CHANGED_POSITION only (add something to it, on a copy of h), run each part on "
    "the original and on the changed input, and list the positions whose output vector moved.",
    "The feed-forward network is applied to each position's vector on its own; self-attention lets every "
    "query read every key. Which of the two can carry a change at one position to the others?",
    "Give a dict with the keys 'feed-forward', 'attention' and 'block', each a list of output positions "
    "(0 to 5) that changed. Self-attention takes h three times (query, key, value) and returns a pair: "
    "compare its first element; the block also returns several values, its output comes first.",
))
def check_mixing_positions(answer) -> Feedback:
    """answer: a dict {"feed-forward": [...], "attention": [...], "block": [...]} — the output positions
    that change when the input vector at ``CHANGED_POSITION`` changes, for ``block_inputs()``."""
    name = "which part mixes positions"
    parts = ("feed-forward", "attention", "block")
    if not isinstance(answer, dict) or set(answer) != set(parts):
        return failed(name, f"give a dict with exactly the keys {list(parts)}, each a list of positions.")
    given = {part: _positions(answer[part]) for part in parts}
    if any(v is None for v in given.values()):
        return failed(name, "each value should be a list of whole-number positions, e.g. the positions 0 to 5 that moved.")
    block, h = block_inputs()
    changed = h.clone()
    changed[0, CHANGED_POSITION] += 1.0  # (1, T, C): one position's vector moves
    with torch.no_grad():
        expected = {
            "feed-forward": _changed_positions(block.ff(h), block.ff(changed)),
            "attention": _changed_positions(block.attn(h, h, h)[0], block.attn(changed, changed, changed)[0]),
            "block": _changed_positions(block(h)[0], block(changed)[0]),
        }
    if given == expected:
        return passed(name, f"only the attention sublayer mixes positions: the feed-forward network changed position "
                            f"{CHANGED_POSITION} alone, attention changed all {h.shape[1]}, and so does the whole block. "
                            "A stack alternates the two: attention moves information between tokens, the "
                            "feed-forward network transforms each token's vector.")
    everywhere = list(range(h.shape[1]))
    if given["feed-forward"] == everywhere and given["attention"] == [CHANGED_POSITION]:
        return failed(name, "you swapped the two sublayers: which one looks at other positions at all?")
    if given["feed-forward"] == everywhere:
        return failed(name, "the feed-forward network sees one position's vector at a time (it is 'position-wise'): "
                            "it cannot move a change to another position.")
    if given["attention"] == [CHANGED_POSITION]:
        return failed(name, "every query of self-attention reads the changed position's key and value, so every "
                            "position's output moves, not only the changed one.")
    if given["feed-forward"] == expected["feed-forward"] and given["attention"] == expected["attention"]:
        return failed(name, "the two sublayers are right; the block contains self-attention, so what happens "
                            "to its output?")
    return failed(name)


def switched_off_inputs():
    """Exercise 2: ``(block, h)`` — a labkit Block whose two sublayers output zeros (the last Linear of
    attention and of the feed-forward network is all zeros), and h (1, 5, 32) whose token vectors are
    already normalised (mean 0 and variance 1 over the features, as the embeddings' LayerNorm leaves them)."""
    block = _block(1)
    with torch.no_grad():
        for last in (block.attn.output, block.ff.down):  # the sublayers' last projections
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        for norm in (block.attn_norm, block.ff_norm):  # LayerNorms as initialised: γ = 1, β = 0
            nn.init.ones_(norm.weight)
            nn.init.zeros_(norm.bias)
    x = torch.randn(1, 5, _SIZES["d_model"], generator=torch.Generator().manual_seed(2))
    h = nn.functional.layer_norm(x, (_SIZES["d_model"],), eps=block.attn_norm.eps)  # (1, 5, C): each token normalised
    return block, h


def _tensor(value) -> torch.Tensor | None:
    if isinstance(value, tuple) and value and isinstance(value[0], torch.Tensor):
        return None  # a whole (output, weights, ...) tuple
    try:
        return torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        return None


@checked("what the residual path carries", hints=(
    "Run the block as it is for the first tensor. For the second, write the block again without the two "
    "residual sums: each LayerNorm normalises its sublayer's output alone, instead of input plus output.",
    "Without residuals: normalise the self-attention output with the block's attention LayerNorm, feed that to "
    "the feed-forward network, and normalise its output with the feed-forward LayerNorm. Both results have "
    "the shape of h.",
    "Give a pair (with_residual, without_residual) of tensors. Before comparing them with h, think about what "
    "a LayerNorm gives for a vector that is all zeros (γ = 1, β = 0), and for one that is already normalised.",
))
def check_residual_path(answer) -> Feedback:
    """answer: a pair ``(with_residual, without_residual)`` — the outputs, for ``switched_off_inputs()``, of
    the block itself and of the same block with its residual connections removed."""
    name = "what the residual path carries"
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return failed(name, "give a pair of tensors: (the block's output, the output without residual connections).")
    with_res, without_res = (_tensor(a) for a in answer)
    if with_res is None or without_res is None:
        return failed(name, "each of the two should be one tensor of the shape of h; the block returns several "
                            "values, and its output comes first.")
    block, h = switched_off_inputs()
    if with_res.shape != h.shape or without_res.shape != h.shape:
        return failed(name, f"both outputs should have the shape of h, {tuple(h.shape)}; "
                            f"got {tuple(with_res.shape)} and {tuple(without_res.shape)}.")
    zeros = torch.zeros_like(h)
    close = lambda a, b: torch.allclose(a, b, atol=1e-4)  # noqa: E731
    if close(with_res, h) and close(without_res, zeros):
        return passed(name, "with its residual connections the switched-off block hands h on unchanged (a "
                            "normalised vector plus zero, normalised again, is itself); without them it outputs "
                            "LayerNorm(0) = β = 0 for every token, and the input is lost. A residual block only "
                            "adds a correction to h: at initialisation, with tiny weights, every block is close to "
                            "the identity, so a deep stack starts by passing its input through.")
    if close(with_res, zeros) and close(without_res, h):
        return failed(name, "the two are swapped: which version still adds the input h to what the sublayer returns?")
    if close(with_res, without_res):
        return failed(name, "your two outputs are the same: one of them should skip both residual sums.")
    if close(without_res, h):
        return failed(name, "the second output still carries h: remove both residual sums, so that each LayerNorm "
                            "sees only its sublayer's output.")
    return failed(name)


@checked("the masked-LM head", hints=(
    "Read LMHead in labkit/transformer.py: list the parameters its constructor creates (a Linear, a "
    "LayerNorm, a bias) and count each for the sizes in MLM_HEAD_SIZES.",
    "A Linear from C to C has C·C weights and C biases; a LayerNorm over C features has γ and β, C each; "
    "the output bias has one number per vocabulary entry.",
    "The projection from C to the V vocabulary scores is not a new matrix: it is the token-embedding table, "
    "shared with the encoder (weight tying), so the head adds none of its V·C numbers.",
))
def check_mlm_head_parameters(answer) -> Feedback:
    """answer: how many parameters ``MaskedLM`` adds on top of its encoder (``MLM_HEAD_SIZES``), an int."""
    from ..transformer import Encoder, MaskedLM, TransformerConfig, count_parameters

    name = "the masked-LM head"
    given = _as_int(answer)
    if given is None:
        return failed(name, f"give a whole number (an int); got {answer!r}")
    V, C = MLM_HEAD_SIZES["vocab_size"], MLM_HEAD_SIZES["d_model"]
    cfg = TransformerConfig(**MLM_HEAD_SIZES)
    with torch.device("meta"):  # shapes only
        expected = count_parameters(MaskedLM(cfg)) - count_parameters(Encoder(cfg, pooler=False))
    if given == expected:
        return passed(name, f"dense C²+C, LayerNorm 2C, output bias V = {expected:,}: the V×C projection is "
                            "the token-embedding table itself (weight tying).")
    if given == expected + V * C:
        return failed(name, "the projection to the vocabulary is not a new matrix: it reuses the token "
                            "embeddings (weight tying, see LMHead in labkit/transformer.py).")
    if given == expected - V:
        return failed(name, "you missed the output bias: one number per vocabulary entry.")
    if given == expected + C * C + C:
        return failed(name, "MaskedLM's encoder has no pooler (the [CLS] layer): don't count one.")
    return failed(name)


def _as_int(answer) -> int | None:
    """An int from an int, a whole-valued float or a one-element tensor; None otherwise (2.7 is not 2)."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, numbers.Integral):
        return int(answer)
    if isinstance(answer, float) and answer.is_integer():
        return int(answer)
    return None


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


@checked("a pre-LN block", hints=(
    "Pre-LN moves each LayerNorm from after the residual sum to the input of its sublayer; the running sum "
    "itself is never normalised.",
    "First sublayer: normalise h with the block's attention LayerNorm, run self-attention on the result (it is "
    "query, key and value at once) and add attention's output to the un-normalised h.",
    "Second sublayer: normalise that sum with the feed-forward LayerNorm, run the feed-forward network on it and "
    "add its output to the sum. Return the final sum. Self-attention returns a pair (output, weights): keep "
    "the output.",
))
def check_pre_ln_block(answer) -> Feedback:
    """answer: a function ``(block, h) -> h'`` computing the pre-LN variant of a labkit Block,
    h + MHA(LN₁(h)), then + FFN(LN₂(·)), with LN₁ = block.attn_norm and LN₂ = block.ff_norm.
    It is compared with ``nn.TransformerEncoderLayer(norm_first=True)`` holding the same weights."""
    name = "a pre-LN block"
    if not callable(answer):
        return failed(name, "give a function that takes (block, h) and returns the block's output.")
    block = _block(0)
    layer = nn.TransformerEncoderLayer(_SIZES["d_model"], _SIZES["n_heads"], _SIZES["d_ff"], dropout=0.0,
                                       activation="gelu", layer_norm_eps=block.attn_norm.eps, batch_first=True,
                                       norm_first=True).eval()
    _torch_layer_like(block, layer)
    h = torch.randn(2, 6, _SIZES["d_model"], generator=torch.Generator().manual_seed(3))  # (B, T, C)
    with torch.no_grad():
        expected = layer(h)
        given = answer(block, h.clone())
        post_ln, _, _ = block(h)
    if isinstance(given, tuple):
        return failed(name, "return the tensor h' alone, not a tuple.")
    given = _tensor(given)
    if given is None:
        return failed(name, "your function should return one tensor, the block's output.")
    if given.shape != expected.shape:
        return failed(name, f"expected shape {tuple(expected.shape)}, got {tuple(given.shape)}.")
    if torch.allclose(given, expected, atol=1e-5):
        return passed(name, "h + MHA(LN(h)), then + FFN(LN(·)): the residual path stays un-normalised.")
    if torch.allclose(given, post_ln, atol=1e-5):
        return failed(name, "this is the post-LN block, the lab's own; normalise *before* each sublayer instead.")
    return failed(name)
