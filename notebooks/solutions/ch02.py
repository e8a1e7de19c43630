"""Reference solutions for chapter 02 (the mini-Transformer). Each ``solution_<name>()`` returns
the answer that ``labkit.exercises.ch02.check_<name>`` accepts."""
import torch

from labkit.exercises.ch02 import CHANGED_POSITION, MLM_HEAD_SIZES, block_inputs, switched_off_inputs


def changed_positions(before: torch.Tensor, after: torch.Tensor, tol: float = 1e-6) -> list[int]:
    """Positions t whose output vector moved: max over features of |after − before| > tol."""
    moved = (after - before).abs().amax(-1)[0]  # (T,)
    return [t for t, m in enumerate(moved.tolist()) if m > tol]


def solution_mixing_positions():
    block, h = block_inputs()
    changed = h.clone()
    changed[0, CHANGED_POSITION] += 1.0  # move one position's input vector
    with torch.no_grad():
        return {
            # position-wise: FFN(x_t) depends on x_t alone -> only the changed position moves
            "feed-forward": changed_positions(block.ff(h), block.ff(changed)),
            # every query attends to the changed key/value -> every position moves
            "attention": changed_positions(block.attn(h, h, h)[0], block.attn(changed, changed, changed)[0]),
            # a block contains attention, so a change spreads to every position
            "block": changed_positions(block(h)[0], block(changed)[0]),
        }  # {"feed-forward": [2], "attention": [0, 1, 2, 3, 4, 5], "block": [0, 1, 2, 3, 4, 5]}


def solution_residual_path():
    block, h = switched_off_inputs()
    with torch.no_grad():
        with_residual = block(h)[0]  # LN(h + 0) = h, then LN(h + 0) = h: the input passes through
        a = block.attn_norm(block.attn(h, h, h)[0])  # LN(MHA(h)) = LN(0) = β = 0
        without_residual = block.ff_norm(block.ff(a))  # LN(FFN(0)) = LN(0) = 0: the input is lost
    return with_residual, without_residual


def solution_mlm_head_parameters():
    V, C = MLM_HEAD_SIZES["vocab_size"], MLM_HEAD_SIZES["d_model"]
    dense = C * C + C  # transform: Linear C -> C with bias
    layer_norm = 2 * C  # γ and β
    output_bias = V  # one bias per vocabulary entry
    # The projection to the vocabulary (V × C) is the token-embedding table itself: weight
    # tying adds no parameters.
    return dense + layer_norm + output_bias  # 4,160 + 128 + 6,000 = 10,288


def pre_ln_block(block, h):
    """Pre-LN: normalise the input of each sublayer; the residual sum itself is not normalised."""
    x = block.attn_norm(h)
    h = h + block.attn(x, x, x)[0]  # h + MHA(LN₁(h))
    return h + block.ff(block.ff_norm(h))  # h + FFN(LN₂(h))


def solution_pre_ln_block():
    return pre_ln_block
