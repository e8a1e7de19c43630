"""labkit.attention against PyTorch's own attention, plus the properties attention must have."""
import pytest
import torch
import torch.nn.functional as F

from labkit.attention import MultiHeadAttention, causal_mask, padding_mask, scaled_dot_product_attention

ATOL = 1e-5


@pytest.mark.parametrize("shape", [(1, 4, 8, 8, 16), (2, 3, 5, 7, 8), (3, 1, 11, 2, 32), (6, 9, 4)])
def test_sdpa_matches_torch_without_mask(shape):
    g = torch.Generator().manual_seed(0)
    if len(shape) == 5:
        B, H, Lq, Lk, d = shape
        q, k, v = (torch.randn(B, H, L, d, generator=g) for L in (Lq, Lk, Lk))
    else:  # no batch dims at all
        Lq, Lk, d = shape
        q, k, v = (torch.randn(L, d, generator=g) for L in (Lq, Lk, Lk))
    out, w = scaled_dot_product_attention(q, k, v)
    ref = F.scaled_dot_product_attention(q, k, v)
    assert (out - ref).abs().max() < ATOL
    assert torch.allclose(w.sum(-1), torch.ones(()), atol=1e-6)


def test_sdpa_matches_torch_with_boolean_and_padding_masks():
    g = torch.Generator().manual_seed(1)
    B, H, T, d = 3, 2, 6, 8
    q, k, v = (torch.randn(B, H, T, d, generator=g) for _ in range(3))
    random_mask = torch.rand(B, H, T, T, generator=g) > 0.3
    random_mask[..., 0] = True  # every row keeps at least one key
    am = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])
    for mask in (causal_mask(T), random_mask, padding_mask(am), padding_mask(am) & causal_mask(T)):
        out, w = scaled_dot_product_attention(q, k, v, mask=mask)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert (out - ref).abs().max() < ATOL
        assert (w.masked_select(~mask.expand_as(w)) == 0).all()


def test_fully_masked_row_gives_zeros_not_nan():
    q = k = v = torch.randn(1, 3, 4)
    mask = torch.tensor([[True, True, False], [False, False, False], [True, False, False]])
    out, w = scaled_dot_product_attention(q, k, v, mask=mask)
    assert not torch.isnan(out).any() and not torch.isnan(w).any()
    assert (w[0, 1] == 0).all() and (out[0, 1] == 0).all()
    assert torch.allclose(w[0, 0].sum(), torch.tensor(1.0))
    mha = MultiHeadAttention(4, 2).eval()
    x = torch.randn(1, 3, 4)
    fast, _ = mha(x, x, x, mask=mask)
    slow, _ = mha(x, x, x, mask=mask, need_weights=True)
    assert not torch.isnan(fast).any() and (fast - slow).abs().max() < ATOL


def test_causal_and_padding_mask_helpers():
    m = causal_mask(4)
    assert m.dtype == torch.bool and m.shape == (4, 4)
    assert m[2, :3].all() and not m[2, 3]
    p = padding_mask(torch.tensor([[1, 1, 0]]))
    assert p.shape == (1, 1, 1, 3) and p.tolist() == [[[[True, True, False]]]]


def _copy_into_torch_mha(ours: MultiHeadAttention) -> torch.nn.MultiheadAttention:
    ref = torch.nn.MultiheadAttention(ours.d_model, ours.n_heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.query.weight, ours.key.weight, ours.value.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        ref.out_proj.weight.copy_(ours.output.weight)
        ref.out_proj.bias.copy_(ours.output.bias)
    return ref.eval()


@pytest.mark.parametrize("need_weights", [False, True])
def test_multihead_matches_torch_multiheadattention(need_weights):
    torch.manual_seed(0)
    ours = MultiHeadAttention(32, 4).eval()
    ref = _copy_into_torch_mha(ours)
    x, mem = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    key_pad = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    # torch's masks say True = NOT allowed; ours say True = allowed.
    for query, kv, our_mask, their_kw in [
        (x, x, None, {}),
        (x, x, causal_mask(5), {"attn_mask": ~causal_mask(5)}),
        (x, mem, padding_mask(key_pad), {"key_padding_mask": ~key_pad.bool()}),
    ]:
        out, w = ours(query, kv, kv, mask=our_mask, need_weights=need_weights)
        ref_out, ref_w = ref(query, kv, kv, need_weights=True, average_attn_weights=False, **their_kw)
        assert (out - ref_out).abs().max() < ATOL
        if need_weights:
            assert (w - ref_w).abs().max() < ATOL


def test_fast_path_equals_teaching_path():
    torch.manual_seed(1)
    mha = MultiHeadAttention(24, 3).eval()
    x = torch.randn(3, 6, 24)
    mask = padding_mask(torch.tensor([[1] * 6, [1] * 3 + [0] * 3, [1] + [0] * 5])) & causal_mask(6)
    fast, none = mha(x, x, x, mask=mask)
    slow, w = mha(x, x, x, mask=mask, need_weights=True)
    assert none is None and w.shape == (3, 3, 6, 6)
    assert (fast - slow).abs().max() < ATOL


def test_gradients_flow_to_every_parameter():
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 5, 16, requires_grad=True)
    for need_weights in (False, True):
        mha.zero_grad()
        out, _ = mha(x, x, x, mask=causal_mask(5), need_weights=need_weights)
        out.pow(2).sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mha.parameters())
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_bad_inputs_raise_value_error_naming_sizes():
    with pytest.raises(ValueError, match="n_heads=3 does not divide d_model=16"):
        MultiHeadAttention(16, 3)
    with pytest.raises(ValueError, match=r"\(2, 5, 8\).*\(2, 5, 7\)"):
        scaled_dot_product_attention(torch.randn(2, 5, 8), torch.randn(2, 5, 7), torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="same length Lk"):
        scaled_dot_product_attention(torch.randn(2, 5, 8), torch.randn(2, 5, 8), torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 3\)"):
        scaled_dot_product_attention(torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 8), mask=causal_mask(3))
    with pytest.raises(ValueError, match="boolean"):
        scaled_dot_product_attention(torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 8), mask=torch.ones(5, 5))
    mha = MultiHeadAttention(16, 4)
    with pytest.raises(ValueError, match=r"\(B, L, 16\).*\(2, 5, 12\)"):
        mha(torch.randn(2, 5, 12), torch.randn(2, 5, 12), torch.randn(2, 5, 12))
    with pytest.raises(ValueError, match="mask of shape"):
        x = torch.randn(2, 5, 16)
        mha(x, x, x, mask=causal_mask(4))
    with pytest.raises(ValueError, match="attention_mask must be"):
        padding_mask(torch.ones(5))
