"""The round trip with transformers: same weights, same outputs (minGPT's parity test, for BERT)."""
import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertForPreTraining, BertModel, EncoderDecoderModel

from labkit.heads import QuestionAnswerer, SequenceClassifier, TokenClassifier
from labkit.hf import from_hf, to_hf, transformers_name
from labkit.transformer import CausalLM, Encoder, MaskedLM, PreTrainingModel, Seq2Seq, TransformerConfig, count_parameters

ATOL = 1e-5
SMALL = dict(vocab_size=120, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=96, max_position_embeddings=40)


def _batch(vocab=120, B=3, T=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 8:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    return ids, mask, types


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_from_hf_bert_model_matches_transformers(attn):
    torch.manual_seed(0)
    hf = BertModel(BertConfig(**SMALL, attn_implementation=attn)).eval()
    ours = from_hf(hf).eval()
    assert isinstance(ours, Encoder)
    ids, mask, types = _batch()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
        out = ours(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    assert (out.last_hidden_state - ref.last_hidden_state).abs().max() < ATOL
    assert (out.pooler_output - ref.pooler_output).abs().max() < ATOL
    for a, b in zip(out.hidden_states, ref.hidden_states):
        assert (a - b).abs().max() < ATOL


def test_attention_weights_match_eager_transformers():
    torch.manual_seed(1)
    hf = BertModel(BertConfig(**SMALL, attn_implementation="eager")).eval()
    ours = from_hf(hf).eval()
    ids, mask, _ = _batch(seed=1)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
        out = ours(ids, mask, output_attentions=True).attentions
    for a, b in zip(out, ref):
        assert (a - b).abs().max() < ATOL


def test_masked_lm_round_trip_and_logits_interface():
    torch.manual_seed(2)
    hf = BertForMaskedLM(BertConfig(**SMALL)).eval()
    ours = from_hf(hf).eval()
    assert isinstance(ours, MaskedLM)
    ids, mask, _ = _batch(seed=2)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).logits
        out = ours(input_ids=ids, attention_mask=mask).logits  # called like a transformers model
    assert (out - ref).abs().max() < ATOL
    back = to_hf(ours).eval()
    with torch.no_grad():
        assert (back(input_ids=ids, attention_mask=mask).logits - ref).abs().max() < ATOL


@pytest.mark.parametrize("model_cls", [Encoder, MaskedLM, CausalLM, Seq2Seq])
def test_labkit_model_saves_and_opens_with_transformers(model_cls, tmp_path):
    torch.manual_seed(3)
    cfg = TransformerConfig(vocab_size=120, d_model=48, n_layers=2, n_decoder_layers=2, n_heads=4, d_ff=96, max_position=40)
    ours = model_cls(cfg).eval()
    hf = to_hf(ours)
    hf.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    reopened = type(hf).from_pretrained(tmp_path).eval()
    ids, mask, _ = _batch(seed=3)
    with torch.no_grad():
        if model_cls is Encoder:
            a = ours(ids, mask).last_hidden_state
            b = reopened(input_ids=ids, attention_mask=mask).last_hidden_state
        elif model_cls is Seq2Seq:
            dec = ids[:, :7]
            a = ours(ids, mask, decoder_input_ids=dec).logits
            b = reopened(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        else:
            a = ours(ids, mask).logits
            b = reopened(input_ids=ids, attention_mask=mask).logits
    assert (a - b).abs().max() < ATOL
    assert (from_hf(reopened).state_dict().keys() == ours.state_dict().keys())


@pytest.mark.parametrize("head_cls, hf_name, kw", [
    (SequenceClassifier, "BertForSequenceClassification", {"num_labels": 3, "id2label": {0: "a", 1: "b", 2: "c"}}),
    (TokenClassifier, "BertForTokenClassification", {"num_labels": 2, "id2label": {0: "O", 1: "B-PER"}}),
    (QuestionAnswerer, "BertForQuestionAnswering", {}),
])
def test_task_heads_round_trip_through_transformers(head_cls, hf_name, kw):
    """labkit.hf pairs each head with its transformers twin (heads.py itself never imports transformers)."""
    torch.manual_seed(5)
    cfg = TransformerConfig(vocab_size=120, d_model=48, n_layers=2, n_heads=4, d_ff=96, max_position=40)
    ours = head_cls(cfg, **kw).eval()
    hf = to_hf(ours).eval()
    assert type(hf).__name__ == hf_name
    back = from_hf(hf).eval()
    assert type(back) is head_cls and back.id2label == ours.id2label
    ids, mask, types = _batch(seed=5)
    with torch.no_grad():
        a, b, c = (m(input_ids=ids, attention_mask=mask, token_type_ids=types) for m in (ours, hf, back))
    names = ("start_logits", "end_logits") if head_cls is QuestionAnswerer else ("logits",)
    for name in names:
        assert (getattr(a, name) - getattr(b, name)).abs().max() < ATOL
        assert (getattr(c, name) - getattr(a, name)).abs().max() < ATOL


def test_transformers_name_is_the_twin_state_dict_key():
    ours = MaskedLM(TransformerConfig(vocab_size=120, d_model=48, n_layers=1, n_heads=4, d_ff=96, max_position=40))
    query = transformers_name(ours, "encoder.layers.0.attn.query.weight")
    assert query == "bert.encoder.layer.0.attention.self.query.weight"
    assert {transformers_name(ours, key) for key in ours.state_dict()} <= set(to_hf(ours).state_dict())


def test_seq2seq_maps_onto_encoder_decoder_model():
    cfg = TransformerConfig(vocab_size=120, d_model=48, n_layers=1, n_decoder_layers=2, n_heads=4, d_ff=96, max_position=40)
    hf = to_hf(Seq2Seq(cfg))
    assert isinstance(hf, EncoderDecoderModel)
    assert hf.config.decoder.add_cross_attention and hf.config.decoder.num_hidden_layers == 2


def test_parameter_counts_equal_transformers():
    for cfg in (TransformerConfig(), TransformerConfig(vocab_size=999, d_model=64, n_layers=3, n_heads=8, d_ff=128)):
        for cls in (Encoder, MaskedLM):
            assert count_parameters(cls(cfg)) == count_parameters(to_hf(cls(cfg)))
    bert_base = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                           intermediate_size=3072, max_position_embeddings=512)
    with torch.device("meta"):  # sizes only, no 440 MB of memory
        theirs = count_parameters(BertModel(bert_base))
        ours = count_parameters(Encoder(TransformerConfig.bert_base()))
    assert ours == theirs == 109_482_240


def test_unsupported_models_and_configs_raise():
    with pytest.raises(ValueError, match="supported transformers classes"):
        from_hf(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        from_hf(BertModel(BertConfig(**SMALL, hidden_act="relu")))
    with pytest.raises(ValueError, match="no transformers counterpart"):
        to_hf(torch.nn.Linear(2, 2))


def test_pretraining_model_matches_bert_for_pretraining(tmp_path):
    torch.manual_seed(4)
    hf = BertForPreTraining(BertConfig(**SMALL)).eval()
    ours = from_hf(hf).eval()
    assert isinstance(ours, PreTrainingModel) and isinstance(ours, MaskedLM)
    ids, mask, types = _batch(seed=4)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
        out = ours(ids, mask, types)
    assert (out.logits - ref.prediction_logits).abs().max() < ATOL
    assert (out.next_sentence_logits - ref.seq_relationship_logits).abs().max() < ATOL
    to_hf(ours).save_pretrained(tmp_path)
    reopened = BertForPreTraining.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        again = reopened(input_ids=ids, attention_mask=mask, token_type_ids=types).seq_relationship_logits
    assert (again - ref.seq_relationship_logits).abs().max() < ATOL


def test_pretraining_model_loss_is_the_sum_of_both_objectives():
    torch.manual_seed(5)
    cfg = TransformerConfig(vocab_size=120, d_model=48, n_layers=2, n_heads=4, d_ff=96, max_position=40)
    ours = PreTrainingModel(cfg).eval()
    hf = to_hf(ours).eval()
    ids, mask, types = _batch(seed=5)
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    nsp = torch.tensor([0, 1, 0])
    with torch.no_grad():
        both = ours(ids, mask, types, labels=labels, next_sentence_label=nsp).loss
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels, next_sentence_label=nsp).loss
        mlm_only = ours(ids, mask, types, labels=labels).loss  # usable wherever a MaskedLM is expected
        plain = MaskedLM(cfg)
        plain.load_state_dict({k: v for k, v in ours.state_dict().items() if not k.startswith(("next_sentence", "encoder.pooler"))})
    assert (both - ref).abs() < ATOL
    assert (mlm_only - plain.eval()(ids, mask, types, labels=labels).loss).abs() < ATOL
