"""The mini-Transformer: properties (causality, padding invariance), shapes, sizes, errors."""
import pytest
import torch

from labkit.transformer import CausalLM, Decoder, Encoder, MaskedLM, Seq2Seq, TransformerConfig, count_parameters

CFG = TransformerConfig(vocab_size=50, d_model=32, n_layers=2, n_decoder_layers=2, n_heads=4, d_ff=64, max_position=32)


def test_encoder_outputs_are_named_with_optional_hidden_states_and_attentions():
    enc = Encoder(CFG).eval()
    ids = torch.randint(1, 50, (2, 7))
    out = enc(ids)
    assert out.last_hidden_state.shape == (2, 7, 32) and out.pooler_output.shape == (2, 32)
    assert out.hidden_states is None and out.attentions is None
    out = enc(ids, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == CFG.n_layers + 1 and len(out.attentions) == CFG.n_layers
    assert out.attentions[0].shape == (2, 4, 7, 7)
    assert torch.allclose(out.attentions[1].sum(-1), torch.ones(2, 4, 7), atol=1e-6)
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)


def test_padding_tokens_change_no_other_position():
    torch.manual_seed(0)
    enc = Encoder(CFG).eval()
    ids = torch.randint(1, 50, (1, 5))
    alone = enc(ids, torch.ones(1, 5, dtype=torch.long)).last_hidden_state
    for pad_id in (0, 7, 49):  # whatever sits in the padding slots must not matter
        padded = torch.cat([ids, torch.full((1, 4), pad_id)], dim=1)
        mask = torch.tensor([[1] * 5 + [0] * 4])
        out = enc(padded, mask).last_hidden_state
        assert (out[:, :5] - alone).abs().max() < 1e-5


@pytest.mark.parametrize("model_cls", [CausalLM, Seq2Seq])
def test_changing_future_tokens_leaves_earlier_outputs_unchanged(model_cls):
    torch.manual_seed(0)
    model = model_cls(CFG).eval()
    tgt = torch.randint(1, 50, (2, 8))
    changed = tgt.clone()
    changed[:, 5:] = torch.randint(1, 50, (2, 3))
    if model_cls is CausalLM:
        a, b = model(tgt).logits, model(changed).logits
    else:
        src = torch.randint(1, 50, (2, 6))
        a, b = model(src, decoder_input_ids=tgt).logits, model(src, decoder_input_ids=changed).logits
    assert (a[:, :5] - b[:, :5]).abs().max() < 1e-5  # positions 0..4 cannot see 5..7
    assert (a[:, 5:] - b[:, 5:]).abs().max() > 1e-3  # ...while the later ones do change


def test_encoder_is_bidirectional():
    enc = Encoder(CFG).eval()
    ids = torch.randint(1, 50, (1, 6))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] % 49) + 1
    assert (enc(ids).last_hidden_state[0, 0] - enc(changed).last_hidden_state[0, 0]).abs().max() > 1e-4


def test_decoder_cross_attention_weights_and_shapes():
    s2s = Seq2Seq(CFG).eval()
    src, tgt = torch.randint(1, 50, (2, 6)), torch.randint(1, 50, (2, 4))
    src_mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    out = s2s(src, src_mask, decoder_input_ids=tgt, output_attentions=True)
    assert out.logits.shape == (2, 4, 50)
    cross = out.decoder.cross_attentions[-1]
    assert cross.shape == (2, 4, 4, 6)
    assert (cross[1, :, :, 3:] == 0).all()  # padded source tokens get no attention
    self_w = out.decoder.attentions[0]
    assert (self_w.triu(diagonal=1) == 0).all()  # causal


def test_masked_lm_loss_ignores_minus_100():
    torch.manual_seed(0)
    mlm = MaskedLM(CFG).eval()
    ids = torch.randint(1, 50, (2, 6))
    labels = torch.full_like(ids, -100)
    labels[0, 2] = 9
    out = mlm(ids, labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits[0, 2][None], torch.tensor([9]))
    assert torch.allclose(out.loss, expected)
    assert mlm.head.embedding.weight is mlm.encoder.embeddings.token.weight  # tied


def test_tiny_masked_lm_overfits_one_batch():
    torch.manual_seed(0)
    mlm = MaskedLM(CFG)
    ids = torch.randint(5, 50, (4, 8))
    labels = ids.clone()
    inputs = ids.clone()
    inputs[:, 3] = 4  # "mask" one position per row
    opt = torch.optim.AdamW(mlm.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = mlm(inputs, labels=labels).loss
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_bert_base_sizes_and_parameter_count():
    enc = Encoder(TransformerConfig.bert_base())
    assert count_parameters(enc) == 109_482_240  # transformers' BertModel for bert-base-uncased


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"d_model": 30, "n_heads": 4}, "n_heads=4 does not divide d_model=30"),
        ({"vocab_size": 0}, "vocab_size must be positive, got 0"),
        ({"dropout": 1.5}, r"dropout must be in \[0, 1\), got 1.5"),
    ],
)
def test_bad_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerConfig(**kwargs)


def test_bad_inputs_raise_value_error():
    enc = Encoder(CFG)
    with pytest.raises(ValueError, match=r"ids outside \[0, 50\)"):
        enc(torch.tensor([[1, 2, 50]]))
    with pytest.raises(ValueError, match=r"attention_mask shape \(1, 2\) != input_ids shape \(1, 3\)"):
        enc(torch.tensor([[1, 2, 3]]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="exceeds max_position=32"):
        enc(torch.ones(1, 40, dtype=torch.long))
    with pytest.raises(ValueError, match="integer tensor"):
        enc(torch.ones(1, 4))
    with pytest.raises(ValueError, match="pass memory"):
        Decoder(CFG)(torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="decoder_input_ids"):
        Seq2Seq(CFG)(torch.ones(1, 3, dtype=torch.long))
