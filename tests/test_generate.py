"""Greedy and beam search: parity with transformers' generate, and hand-made cases."""
import math

import pytest
import torch
from torch import nn

from labkit.generate import beam_search, greedy_decode
from labkit.hf import to_hf
from labkit.transformer import DecoderOutput, EncoderOutput, Seq2Seq, TransformerConfig

BOS, EOS, PAD = 2, 3, 0
CONFIG = TransformerConfig(vocab_size=50, d_model=32, n_layers=1, n_decoder_layers=2, n_heads=4, d_ff=64,
                           max_position=40, initializer_range=0.3)  # wide init: peaked, varied distributions


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, which only spin-wait on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(seed: int) -> Seq2Seq:
    """A random Seq2Seq whose outputs end with EOS at varied lengths."""
    torch.manual_seed(seed)
    model = Seq2Seq(CONFIG).eval()
    with torch.no_grad():
        model.head.bias[EOS] += 1.0 + 0.5 * (seed % 4)
    return model


def _source(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, 9) source ids with padding: rows of 9, 6 and 3 real tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, CONFIG.vocab_size, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return ids.masked_fill(mask == 0, PAD), mask


def _assert_only_pad_after_eos(tokens: torch.Tensor, pad: int) -> None:
    for row in tokens.tolist():
        if EOS in row:
            assert all(t == pad for t in row[row.index(EOS) + 1:])


@pytest.mark.parametrize("seed", [0, 4, 8])
def test_greedy_matches_transformers_generate(seed):
    model, (ids, mask) = _model(seed), _source(seed)
    ours = greedy_decode(model, ids, mask, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, max_new_tokens=12)
    theirs = to_hf(model).generate(ids, attention_mask=mask, do_sample=False, num_beams=1, max_new_tokens=12,
                                   decoder_start_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    assert torch.equal(ours, theirs)
    _assert_only_pad_after_eos(ours, PAD)


@pytest.mark.parametrize("seed, num_beams, length_penalty", [(0, 4, 1.0), (4, 4, 1.0), (8, 3, 2.0), (10, 5, 0.5)])
def test_beam_search_matches_transformers_generate(seed, num_beams, length_penalty):
    model, (ids, mask) = _model(seed), _source(seed)
    # pad_token_id != 0: transformers' beam search fills with EOS instead when pad_token_id == 0
    kw = dict(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=7, num_beams=num_beams, max_new_tokens=12,
              length_penalty=length_penalty)
    ours = beam_search(model, ids, mask, **kw)
    theirs = to_hf(model).generate(ids, attention_mask=mask, do_sample=False, num_beams=num_beams, max_new_tokens=12,
                                   decoder_start_token_id=BOS, eos_token_id=EOS, pad_token_id=7,
                                   length_penalty=length_penalty, early_stopping=True)
    assert torch.equal(ours, theirs)
    _assert_only_pad_after_eos(ours, 7)


@pytest.mark.parametrize("seed", [0, 5])
def test_beam_search_with_one_beam_is_greedy(seed):
    model, (ids, mask) = _model(seed), _source(seed)
    kw = dict(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, max_new_tokens=12)
    assert torch.equal(beam_search(model, ids, mask, num_beams=1, **kw), greedy_decode(model, ids, mask, **kw))


def test_padded_batch_decodes_like_each_row_alone():
    model, (ids, mask) = _model(1), _source(1)
    kw = dict(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, max_new_tokens=10)
    for decode, extra in ((greedy_decode, {}), (beam_search, {"num_beams": 3})):
        batch = decode(model, ids, mask, **kw, **extra)
        for b in range(3):
            alone = decode(model, ids[b:b + 1, :int(mask[b].sum())], **kw, **extra)[0]  # no padding, no mask
            assert torch.equal(batch[b, :len(alone)], alone) and (batch[b, len(alone):] == PAD).all()


def test_eos_ends_decoding_and_rows_are_padded():
    model, (ids, mask) = _model(2), _source(2)
    with torch.no_grad():
        model.head.bias[EOS] += 100.0  # EOS always wins
    kw = dict(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, max_new_tokens=12)
    expected = torch.tensor([[BOS, EOS]] * 3)
    assert torch.equal(greedy_decode(model, ids, mask, **kw), expected)
    assert torch.equal(beam_search(model, ids, mask, num_beams=3, **kw), expected)
    with torch.no_grad():
        model.head.bias[EOS] -= 200.0  # EOS never wins: every row runs to max_new_tokens
    assert greedy_decode(model, ids, mask, **kw).shape == (3, 13)
    assert beam_search(model, ids, mask, num_beams=3, **kw).shape == (3, 13)


# ----------------------------------------------------------------------------- a model with known distributions
A, B_, C_ = 5, 6, 7  # three ordinary tokens


class TableSeq2Seq(nn.Module):
    """A stand-in Seq2Seq whose next-token distribution is a lookup table on the prefix.

    ``decoder`` passes the prefix through as its "hidden state", and ``head`` looks the
    prefix up in ``table`` (prefix tuple -> {token: probability}); the leftover probability is
    spread evenly over the other tokens. The source is ignored. It has no layers to cache, so
    it is decoded with ``use_cache=False``."""

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]], vocab_size: int = 10):
        super().__init__()
        self.config = TransformerConfig(vocab_size=vocab_size, max_position=16, d_model=4, n_heads=1)
        self.table, self.V = table, vocab_size
        self.encoder = lambda ids, mask=None: EncoderOutput(torch.zeros(ids.size(0), ids.size(1), 1))
        self.decoder = lambda prefix, memory, mask=None: DecoderOutput(prefix[:, None, :].expand(-1, prefix.size(1), -1))
        self.head = self._logits

    def _logits(self, prefix: torch.Tensor) -> torch.Tensor:  # (N, t) -> (N, V)
        rows = []
        for p in prefix.tolist():
            probs = self.table.get(tuple(p), {})
            rest = (1.0 - sum(probs.values())) / (self.V - len(probs))
            rows.append([math.log(probs.get(v, rest)) for v in range(self.V)])
        return torch.tensor(rows)

    def sequence_log_prob(self, tokens: list[int]) -> float:
        return float(sum(self._logits(torch.tensor([tokens[:i]]))[0, tokens[i]] for i in range(1, len(tokens))))


def test_beam_finds_the_sequence_greedy_misses():
    table = {
        (BOS,): {A: 0.55, B_: 0.4},
        (BOS, A): {EOS: 0.34, A: 0.32, B_: 0.31},  # after the likely first token, nothing is likely
        (BOS, B_): {EOS: 0.9},  # after the less likely one, EOS is almost certain
    }
    model = TableSeq2Seq(table)
    src = torch.ones(1, 3, dtype=torch.long)
    kw = dict(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, max_new_tokens=5, use_cache=False)
    greedy = greedy_decode(model, src, **kw)
    beam = beam_search(model, src, num_beams=2, **kw)
    assert greedy.tolist() == [[BOS, A, EOS]]  # 0.55 * 0.34 = 0.19
    assert beam.tolist() == [[BOS, B_, EOS]]  # 0.4 * 0.9 = 0.36
    assert model.sequence_log_prob(beam[0].tolist()) > model.sequence_log_prob(greedy[0].tolist())


@pytest.mark.parametrize("length_penalty, expected", [(0.0, [BOS, EOS]), (1.0, [BOS, A, B_, EOS])])
def test_length_penalty_decides_between_short_and_long_hypotheses(length_penalty, expected):
    table = {
        (BOS,): {EOS: 0.5, A: 0.45},  # short: log 0.5 = -0.69
        (BOS, A): {B_: 0.7, EOS: 0.01},
        (BOS, A, B_): {EOS: 0.7},  # long: log(0.45 * 0.7 * 0.7) = -1.51, i.e. -0.50 per token
    }
    model = TableSeq2Seq(table)
    out = beam_search(model, torch.ones(1, 3, dtype=torch.long), bos_token_id=BOS, eos_token_id=EOS,
                      pad_token_id=PAD, num_beams=2, max_new_tokens=6, length_penalty=length_penalty, use_cache=False)
    assert out[0, :len(expected)].tolist() == expected and (out[0, len(expected):] == PAD).all()


def test_decoding_restores_training_mode_and_ignores_dropout():
    model, (ids, mask) = _model(3), _source(3)
    model.train()
    kw = dict(bos_token_id=BOS, eos_token_id=EOS, max_new_tokens=8)
    first = beam_search(model, ids, mask, **kw)
    assert model.training and torch.equal(first, beam_search(model, ids, mask, **kw))
    assert torch.equal(greedy_decode(model, ids, mask, **kw), greedy_decode(model, ids, mask, **kw))


def test_bad_arguments_raise():
    model, (ids, mask) = _model(0), _source(0)
    kw = dict(bos_token_id=BOS, eos_token_id=EOS)
    with pytest.raises(ValueError, match="num_beams must be >= 1, got 0"):
        beam_search(model, ids, mask, num_beams=0, **kw)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1, got 0"):
        beam_search(model, ids, mask, max_new_tokens=0, **kw)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1, got 0"):
        greedy_decode(model, ids, mask, max_new_tokens=0, **kw)
    with pytest.raises(ValueError, match="exceeds the decoder's max_position=40"):
        greedy_decode(model, ids, mask, max_new_tokens=40, **kw)
    with pytest.raises(ValueError, match=r"input_ids must be \(B, S\), got shape \(9,\)"):
        greedy_decode(model, ids[0], **kw)
    with pytest.raises(ValueError, match="num_beams=30 needs a vocabulary of at least 60"):
        beam_search(model, ids, mask, num_beams=30, max_new_tokens=8, **kw)


# ----------------------------------------------------------------------------- the key-value cache
@pytest.mark.parametrize("seed", [0, 3])
def test_cached_decoder_gives_the_logits_of_a_full_pass(seed):
    """Feeding a target one token at a time through the cache equals running it whole."""
    from labkit.attention import KVCache

    model, (ids, mask) = _model(seed), _source(seed)
    target = torch.randint(5, CONFIG.vocab_size, (3, 7), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        memory = model.encoder(ids, mask).last_hidden_state
        full = model.decoder(target, memory, mask).last_hidden_state  # (3, 7, C)
        cache = KVCache(len(model.decoder.layers))
        steps = [model.decoder(target[:, t:t + 1], memory, mask, cache=cache).last_hidden_state for t in range(7)]
    assert cache.length == 7 and all(c is not None for c in cache.cross)
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 4, 8])
def test_decoding_with_and_without_the_cache_writes_the_same_tokens(seed):
    model, (ids, mask) = _model(seed), _source(seed)
    kw = dict(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, max_new_tokens=12)
    assert torch.equal(greedy_decode(model, ids, mask, **kw, use_cache=True),
                       greedy_decode(model, ids, mask, **kw, use_cache=False))
    for k in (2, 4):
        assert torch.equal(beam_search(model, ids, mask, num_beams=k, **kw, use_cache=True),
                           beam_search(model, ids, mask, num_beams=k, **kw, use_cache=False))


def test_cached_translation_of_the_ci_model_keeps_its_tokens(ci_build):
    """The trained translation model: greedy and beam search write the same Chinese with and without the cache."""
    from labkit.data import load_task
    from labkit.folders import load_model

    model, tok = load_model(ci_build / "translation")
    sources = [pair["en"] for pair in load_task("translation", size="ci")["test"][:16]["translation"]]
    enc = tok(sources, padding=True, return_tensors="pt")
    kw = dict(bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id,
              max_new_tokens=40)
    for decode, extra in ((greedy_decode, {}), (beam_search, {"num_beams": 4})):
        cached = decode(model, enc["input_ids"], enc["attention_mask"], **kw, **extra)
        plain = decode(model, enc["input_ids"], enc["attention_mask"], **kw, **extra, use_cache=False)
        assert torch.equal(cached, plain)
