"""Weight-only quantisation written from scratch (labkit.compress.quantize), checked against PyTorch's reference
fake-quantisation, and PyTorch's dynamic int8 on a lab classifier."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from labkit.compress.quantize import (QuantEmbedding, QuantLinear, dequantize, dynamic_int8, pack_int4, quantize,
                                      quantize_model, size_bytes, unpack_int4)
from labkit.heads import SequenceClassifier
from labkit.transformer import TransformerConfig


def _weight(n=24, k=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * 0.05
    w[3, 5] = 0.9  # one outlier: its block gets a coarse grid
    return w


def test_int8_per_channel_equals_pytorch_reference_fake_quantisation():
    w = _weight()
    qt = quantize(w, bits=8)
    scale = w.abs().amax(1) / 127
    reference = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(24, dtype=torch.int32), 0, -127, 127)
    torch.testing.assert_close(dequantize(qt), reference, rtol=0, atol=1e-7)
    assert qt.codes.dtype == torch.int8 and qt.scale.shape == (24, 1) and qt.group_size == 64


@pytest.mark.parametrize("group_size", [8, 16, 64])
def test_int4_groupwise_equals_pytorch_reference_on_every_group(group_size):
    w = _weight()
    qt = quantize(w, bits=4, group_size=group_size)
    groups = w.reshape(-1, group_size)  # every group a row of its own
    scale = groups.abs().amax(1) / 7
    reference = torch.fake_quantize_per_channel_affine(groups, scale, torch.zeros(len(groups), dtype=torch.int32),
                                                       0, -8, 7).reshape(w.shape)
    torch.testing.assert_close(dequantize(qt), reference, rtol=0, atol=1e-7)
    assert qt.codes.dtype == torch.uint8 and qt.codes.shape == (24, 32)  # two codes a byte


def test_the_error_of_every_weight_is_at_most_half_its_scale_and_smaller_groups_help():
    w = _weight()
    for bits, g in ((8, None), (4, 64), (4, 16)):
        qt = quantize(w, bits, g)
        step = qt.scale.repeat_interleave(qt.group_size, dim=1)  # (N, K): each weight's block scale
        assert ((w - dequantize(qt)).abs() <= step / 2 + 1e-7).all()
    err = {g: (w - dequantize(quantize(w, 4, g))).abs().mean().item() for g in (64, 16)}
    assert err[16] < err[64]  # the outlier spoils only its own group
    assert (w - dequantize(quantize(w, 8))).abs().mean() < err[16]


def test_int4_packing_round_trips_every_code():
    codes = torch.arange(-8, 8, dtype=torch.int8).repeat(3, 2)  # (3, 32): every code, both nibbles
    packed = pack_int4(codes)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 16)
    assert torch.equal(unpack_int4(packed), codes)
    assert packed[0, 0] == ((-7 & 0xF) << 4 | (-8 & 0xF))  # first of the pair in the low nibble
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        pack_int4(torch.full((1, 2), 9, dtype=torch.int8))


def test_bad_arguments_say_what_was_wrong():
    with pytest.raises(ValueError, match="bits"):
        quantize(_weight(), bits=3)
    with pytest.raises(ValueError, match="group_size"):
        quantize(_weight(), bits=4, group_size=10)
    with pytest.raises(ValueError, match="2-D float"):
        quantize(torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="even"):
        quantize(torch.randn(2, 5), bits=4)
    with pytest.raises(ValueError, match="bits"):
        quantize_model(nn.Linear(4, 4), bits=2)


def _classifier():
    cfg = TransformerConfig(vocab_size=200, d_model=64, n_layers=2, n_heads=4, d_ff=128, max_position=32)
    torch.manual_seed(0)
    return SequenceClassifier(cfg, num_labels=3).eval()


def test_a_quantised_classifier_is_smaller_and_close_to_the_float_one():
    model = _classifier()
    ids = torch.randint(1, 200, (4, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        ref = model(ids, mask).logits
        outs = {}
        for bits, g in ((8, None), (4, 32)):
            small = quantize_model(model, bits, g)
            outs[bits] = small(ids, mask).logits
            assert not any(isinstance(m, (nn.Linear, nn.Embedding)) for m in small.modules())
            assert sum(isinstance(m, QuantLinear) for m in small.modules()) == sum(
                isinstance(m, nn.Linear) for m in model.modules())
            assert any(isinstance(m, QuantEmbedding) for m in small.modules())
        fast = dynamic_int8(model)
        outs["dynamic"] = fast(ids, mask).logits
    assert (outs[8] - ref).abs().max() < 0.02 and (outs[4] - ref).abs().max() < 0.2
    assert (outs["dynamic"] - ref).abs().max() < 0.05
    sizes = {"float": size_bytes(model), 8: size_bytes(quantize_model(model, 8)),
             4: size_bytes(quantize_model(model, 4, 32))}
    assert sizes[8] < 0.35 * sizes["float"] and sizes[4] < 0.7 * sizes[8]
    assert isinstance(next(iter(model.parameters())), nn.Parameter)  # the original is untouched
    assert any(isinstance(m, nn.Linear) for m in model.modules())


def test_a_quantised_model_saves_and_loads_through_its_state_dict():
    model = _classifier()
    small = quantize_model(model, 4, 32)
    again = quantize_model(_classifier(), 4, 32)  # same shapes
    again.load_state_dict(small.state_dict())
    ids = torch.randint(1, 200, (2, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, small(ids).logits)
