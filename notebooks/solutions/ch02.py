"""Reference solutions for chapter 02 (the mini-Transformer). Each ``solution_<name>()`` returns
the answer that ``labkit.exercises.ch02.check_<name>`` accepts."""
from labkit.exercises.ch02 import BERT_LARGE, MLM_HEAD_SIZES


def solution_mlm_head_parameters():
    V, C = MLM_HEAD_SIZES["vocab_size"], MLM_HEAD_SIZES["d_model"]
    dense = C * C + C  # transform: Linear C -> C with bias
    layer_norm = 2 * C  # γ and β
    output_bias = V  # one bias per vocabulary entry
    # The projection to the vocabulary (V × C) is the token-embedding table itself: weight
    # tying adds no parameters.
    return dense + layer_norm + output_bias  # 22,768


def block_parameters(C: int, F: int) -> int:
    attention = 4 * (C * C + C)  # query, key, value, output: weight C×C + bias C each
    feed_forward = (C * F + F) + (F * C + C)  # up C→F and down F→C, with biases
    layer_norms = 2 * (2 * C)  # after attention and after feed-forward: γ and β
    return attention + feed_forward + layer_norms


def solution_bert_large_parameters():
    s = BERT_LARGE
    C = s["d_model"]
    embeddings = (s["vocab_size"] + s["max_position"] + s["type_vocab_size"]) * C + 2 * C  # tables + LayerNorm
    layers = s["n_layers"] * block_parameters(C, s["d_ff"])
    pooler = C * C + C
    return embeddings + layers + pooler  # 335,141,888


def pre_ln_block(block, h):
    """Pre-LN: normalise the input of each sublayer; the residual sum itself is not normalised."""
    x = block.attn_norm(h)
    h = h + block.attn(x, x, x)[0]  # h + MHA(LN₁(h))
    return h + block.ff(block.ff_norm(h))  # h + FFN(LN₂(h))


def solution_pre_ln_block():
    return pre_ln_block
