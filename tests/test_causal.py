"""labkit.causal: the copied-sentence measure, the masked-vs-causal comparison's wiring (which
side of the hidden piece each model is shown), and the key–value cache's work and timing."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit.causal import (CorpusIndex, copied_share, decoding_positions, masked_vs_causal, normalise_sentence,
                           positions_processed, sentence_length, split_sentences, time_decoding)
from labkit.gpt import GPT, GPTConfig
from labkit.sampling import SamplingConfig
from labkit.transformer import MaskedLM

from tiny import config, text_tokenizer

CORPUS = ["The show was good, and she felt pleased. She laughed!", "她住在杭州。她的生日是1965年12月13日。",
          "It costs 3.5 dollars; the phone is red."]


def test_sentences_end_at_sentence_marks_only():
    sentences, rest = split_sentences("It costs 3.5 dollars. 她住在杭州。 and then")
    assert sentences == ["It costs 3.5 dollars.", "她住在杭州。"] and rest == "and then"
    assert normalise_sentence('"This book is wonderful," said he.') == "this book is wonderful said he"
    assert normalise_sentence("她 住 在 杭 州 。") == "她住在杭州"
    assert sentence_length("the show was good") == 4 and sentence_length("她住在杭州。") == 5
    assert sentence_length("costs 174 dollars") == 3


def test_copied_sentences_are_found_whatever_the_case_and_spacing():
    index = CorpusIndex(CORPUS)
    generated = ["the show was good , and she felt pleased . she laughed the", "她 住 在 杭 州 。 he sang a new song."]
    checks = index.check(generated)
    # "she laughed the" is unfinished; "she laughed" alone would be too short anyway
    assert [(c.sentence, c.copied) for c in checks] == [("the show was good , and she felt pleased .", True),
                                                         ("她 住 在 杭 州 。", True), ("he sang a new song.", False)]
    assert index.copied_share(generated) == pytest.approx(2 / 3)
    assert copied_share(generated, CORPUS) == pytest.approx(2 / 3)
    assert copied_share(["It costs 3.5 dollars;"], CORPUS) == 1.0
    assert copied_share(["It costs 4.5 dollars;"], CORPUS) == 0.0


def test_copied_share_needs_a_countable_sentence():
    with pytest.raises(ValueError, match="no complete sentence"):
        copied_share(["she laughed!", "an unfinished thought"], CORPUS)
    with pytest.raises(ValueError, match="min_length"):
        CorpusIndex(CORPUS, min_length=0)


class Echo(nn.Module):
    """A stand-in model whose logits at position t name the input token at t + shift."""

    def __init__(self, vocab_size: int, shift: int):
        super().__init__()
        self.config = SimpleNamespace(vocab_size=vocab_size)
        self.shift, self.weight = shift, nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None):
        ids = input_ids.roll(-self.shift, dims=1)  # (B, T): the token at t + shift
        return SimpleNamespace(logits=F.one_hot(ids, self.config.vocab_size).float())


def test_each_model_sees_the_side_of_the_hidden_piece_it_should():
    tok = text_tokenizer()
    texts = ["the " * 12] * 5  # every piece is "the": a model that copies a neighbour is right
    # the masked LM copies its right neighbour: right in the cloze, wrong when only [SEP] follows the [MASK]
    # the GPT copies the piece before the hidden one: right in both questions
    out = masked_vs_causal(Echo(len(tok), 1), Echo(len(tok), 0), tok, texts, margin=3)
    assert out.accuracy == {"cloze (both sides)": {"masked LM": 1.0, "GPT": 1.0},
                            "next word (left only)": {"masked LM": 0.0, "GPT": 1.0}}
    assert len(out.items) == 5 and out.items[0].target == "the" and out.items[0].masked_left_only != "the"
    # a GPT that could see the hidden piece itself would always be right; it is shown only the left part
    peeking = masked_vs_causal(Echo(len(tok), 1), Echo(len(tok), 1), tok, texts, margin=3)
    assert peeking.accuracy["next word (left only)"]["GPT"] == 0.0


def test_masked_vs_causal_runs_the_lab_models():
    tok = text_tokenizer()
    torch.manual_seed(0)
    mlm = MaskedLM(config(tok)).eval()
    gpt = GPT(GPTConfig(vocab_size=len(tok), d_model=32, n_layers=1, n_heads=2, d_ff=64, max_position=64,
                        dropout=0.0)).eval()
    out = masked_vs_causal(mlm, gpt, tok, ["the red phone is good today . the blue car is bad today ."] * 3,
                           n_items=2, margin=2)
    assert len(out.items) == 2
    for scores in out.accuracy.values():
        assert all(0.0 <= v <= 1.0 for v in scores.values())
    with pytest.raises(ValueError, match="vocabulary"):
        masked_vs_causal(mlm, GPT(GPTConfig(vocab_size=len(tok) + 1, d_model=32, n_layers=1, n_heads=2, d_ff=64)),
                         tok, ["the red phone"])


def _tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=64, max_position=48, d_model=32, n_layers=2, n_heads=4, d_ff=64,
                         dropout=0.0)).eval()


def test_decoding_positions_by_hand():
    assert decoding_positions(3, 1, use_cache=True) == decoding_positions(3, 1, use_cache=False) == 3
    assert decoding_positions(3, 4, use_cache=False) == 3 + 4 + 5 + 6
    assert decoding_positions(3, 4, use_cache=True) == 3 + 1 + 1 + 1
    with pytest.raises(ValueError):
        decoding_positions(0, 4, use_cache=True)


@pytest.mark.parametrize("use_cache", [True, False])
def test_positions_processed_match_the_formula(use_cache):
    model = _tiny_gpt()
    ids = torch.randint(1, 64, (2, 5), generator=torch.Generator().manual_seed(0))
    cfg = SamplingConfig(max_new_tokens=7, use_cache=use_cache)
    assert positions_processed(model, ids, cfg) == 2 * decoding_positions(5, 7, use_cache=use_cache)


def test_time_decoding_writes_the_same_tokens_both_ways():
    model = _tiny_gpt()
    ids = torch.randint(1, 64, (2, 5), generator=torch.Generator().manual_seed(0))
    for cfg in (SamplingConfig(max_new_tokens=6), SamplingConfig(max_new_tokens=6, do_sample=True, top_k=10)):
        t = time_decoding(model, ids, cfg, repeats=1)
        assert torch.equal(t.cached_tokens, t.uncached_tokens) and t.cached_tokens.shape == (2, 11)
        assert t.cached_seconds > 0 and t.uncached_seconds > 0 and t.ratio > 0
    with pytest.raises(ValueError, match="repeats"):
        time_decoding(model, ids, SamplingConfig(max_new_tokens=2), repeats=0)
