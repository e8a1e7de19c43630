"""labkit.heads (and the seq2seq warm start): a task head starts from a copy of the pretrained encoder."""
import pytest
import torch

from labkit.heads import QuestionAnswerer, SequenceClassifier, TokenClassifier
from labkit.transformer import MaskedLM
from labkit.translate import warm_start_seq2seq

from tiny import config, text_tokenizer


def test_heads_warm_start_copies_the_encoder():
    cfg = config(text_tokenizer(), max_position=64)
    mlm = MaskedLM(cfg)
    for cls, kw in ((SequenceClassifier, {"num_labels": 3}), (TokenClassifier, {"num_labels": 5}), (QuestionAnswerer, {})):
        head = cls.from_pretrained(mlm, **kw)
        for k, v in mlm.encoder.state_dict().items():
            assert torch.equal(head.encoder.state_dict()[k], v)
        scratch = cls.from_pretrained(None, cfg, **kw)
        assert not torch.equal(scratch.encoder.embeddings.token.weight, mlm.encoder.embeddings.token.weight)
    with pytest.raises(ValueError, match="id2label has 1 names for num_labels=2"):
        SequenceClassifier(cfg, 2, {0: "x"})
    s2s = warm_start_seq2seq(mlm)
    assert torch.equal(s2s.encoder.layers[0].ff.up.weight, mlm.encoder.layers[0].ff.up.weight)
    assert torch.equal(s2s.decoder.layers[0].attn.query.weight, mlm.encoder.layers[0].attn.query.weight)
