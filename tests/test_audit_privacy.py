"""Privacy audit (labkit.audit.privacy): canaries planted k times, exposure computed over every possible
code and checked against direct scoring, extraction, deduplication, and DP-SGD's per-example gradients
and privacy accounting."""
from __future__ import annotations

import functools
import math
import random

import numpy as np
import pytest
import torch

from labkit.audit.bias import sentence_logprobs
from labkit.audit.privacy import (Canary, DPConfig, canary_report, candidate_logprobs, deduplicate, dp_train_gpt,
                                  exposure, extract, make_canaries, masked_candidate_logprobs, per_example_grads,
                                  plant)
from labkit.audit.runs import LMRecipe, train_gpt
from labkit.gpt import GPTConfig
from labkit.tokenization import train_tokenizer
from labkit.training import TrainConfig
from labkit.transformer import MaskedLM

FILLER = [f"the {a} {b} is {c} today ." for a in ("red", "blue", "green", "small") for b in ("phone", "car", "city")
          for c in ("good", "bad", "great", "awful")]
RECIPE = LMRecipe(gpt=GPTConfig(d_model=64, n_layers=2, n_heads=2, d_ff=128, max_position=64, dropout=0.0),
                  train=TrainConfig(steps=300, batch_size=16, lr=3e-3, eval_every=300, progress=False), block_length=32)


@functools.cache
def _setup():
    canaries = make_canaries((0, 64), n_digits=3)
    tok = train_tokenizer(FILLER * 3 + [c.text for c in canaries] + ["0 1 2 3 4 5 6 7 8 9"] * 3, vocab_size=300,
                          min_frequency=1)
    texts = plant(FILLER * 8, canaries)
    model, _ = train_gpt(tok, texts, FILLER[:8], RECIPE)
    return tok, canaries, model


def test_canaries_are_distinct_and_planted_count_times_in_distinct_documents():
    canaries = make_canaries((0, 1, 4, 16, 64))
    assert [c.count for c in canaries] == [0, 1, 4, 16, 64]
    assert len({c.name for c in canaries}) == 5 and all(len(c.digits) == 4 and c.digits.isdigit() for c in canaries)
    assert make_canaries((0, 1, 4, 16, 64)) == canaries and make_canaries((0, 1, 4, 16, 64), seed=1) != canaries
    docs = [f"document {i} ." for i in range(200)]
    planted = plant(docs, canaries)
    for c in canaries:
        holding = [d for d in planted if c.text in d]
        assert len(holding) == c.count and all(d.count(c.text) == 1 for d in holding)
    assert sum(d != o for d, o in zip(planted, docs)) <= 85
    with pytest.raises(ValueError, match="counts"):
        make_canaries((1, -1))


def test_exposure_counts_rank_from_the_top():
    scores = np.zeros(100)
    scores[42] = 1.0
    assert exposure(scores, "42") == pytest.approx(math.log2(100))
    assert exposure(np.zeros(100), "42") == 0.0  # all tied: no information
    scores = -np.arange(100.0)  # code 0 best, 99 worst
    assert exposure(scores, "09") == pytest.approx(math.log2(100) - math.log2(10))
    with pytest.raises(ValueError, match="one score per"):
        exposure(np.zeros(10), "42")


def test_candidate_scores_equal_direct_scoring_of_the_whole_sentence():
    tok, canaries, model = _setup()
    c = canaries[1]
    scores = candidate_logprobs(model, tok, c)
    assert scores.shape == (1000,)
    codes = ["000", "987", c.digits, "505"]
    whole = sentence_logprobs(model, tok, [f"{c.prefix} {' '.join(x)}" for x in codes])
    prefix = sentence_logprobs(model, tok, [c.prefix])
    # sentence_logprobs scores the pieces after [CLS]; the prefix's own share cancels out
    torch.testing.assert_close(torch.tensor([scores[int(x)] for x in codes]), whole - prefix, atol=1e-3, rtol=1e-4)


def test_a_secret_read_64_times_is_exposed_and_extracted_and_the_control_is_not():
    tok, canaries, model = _setup()
    rows = {r["count"]: r for r in canary_report(model, tok, canaries)}
    assert rows[64]["exposure"] == pytest.approx(math.log2(1000)) and rows[64]["extracted"]
    assert extract(model, tok, canaries[1]) == canaries[1].digits
    assert rows[0]["exposure"] < 6 and not rows[0]["extracted"]


def test_masked_scores_are_sums_of_independent_digit_positions():
    tok, canaries, _ = _setup()
    from labkit.transformer import TransformerConfig
    torch.manual_seed(0)
    mlm = MaskedLM(TransformerConfig(vocab_size=len(tok), d_model=32, n_layers=1, n_heads=2, d_ff=64, max_position=64,
                                     dropout=0.0, attention_dropout=0.0, pad_token_id=tok.pad_token_id)).eval()
    c = canaries[0]
    scores = masked_candidate_logprobs(mlm, tok, c)
    enc = tok(c.prefix + " " + " ".join([tok.mask_token] * 3), return_tensors="pt", return_token_type_ids=False)
    where = (enc["input_ids"][0] == tok.mask_token_id).nonzero().squeeze(1)
    logp = mlm(**enc).logits[0, where].log_softmax(-1)
    digit = tok.convert_tokens_to_ids(list("0123456789"))
    for code in ("000", "123", "907"):
        expected = sum(float(logp[i, digit[int(d)]]) for i, d in enumerate(code))
        assert scores[int(code)] == pytest.approx(expected, abs=1e-4)


def test_deduplicate_keeps_the_first_copy_of_long_sentences_only():
    canary = Canary("Mira Castellan", "5519", 3)
    docs = plant([f"note {i} ." for i in range(10)], [canary])
    out, removed = deduplicate(docs, min_words=6)
    assert sum(canary.text in d for d in out) == 1
    assert len(out) == 10 and 0 < removed < 0.6
    short, none_removed = deduplicate(["hi there. hi there."], min_words=6)
    assert short == ["hi there. hi there."] and none_removed == 0
    with pytest.raises(ValueError, match="min_words"):
        deduplicate(docs, min_words=0)


def test_per_example_gradients_add_up_to_the_batch_gradient():
    tok, _, model = _setup()
    g = torch.Generator().manual_seed(0)
    blocks = torch.randint(5, len(tok), (4, 12), generator=g)
    per = per_example_grads(model, blocks)
    model.zero_grad()
    model.train()
    torch.stack([model(b[None], labels=b[None]).loss for b in blocks]).sum().backward()
    model.eval()
    for name, p in model.named_parameters():
        assert per[name].shape == (4, *p.shape)
        torch.testing.assert_close(per[name].sum(0), p.grad, atol=1e-5, rtol=1e-4)
    model.zero_grad(set_to_none=True)


def test_dp_sgd_reaches_its_target_epsilon_and_more_noise_means_a_smaller_epsilon():
    tok, canaries, _ = _setup()
    texts = plant(FILLER * 8, canaries)
    short = LMRecipe(gpt=RECIPE.gpt, train=TrainConfig(steps=8, batch_size=16, lr=3e-3, eval_every=8, progress=False),
                     block_length=32)
    _, target = dp_train_gpt(tok, texts, FILLER[:8], short, DPConfig(target_epsilon=4.0))
    assert target["epsilon"] == pytest.approx(4.0, rel=0.05) and target["noise_multiplier"] > 0
    _, noisy = dp_train_gpt(tok, texts, FILLER[:8], short, DPConfig(noise_multiplier=4 * target["noise_multiplier"]))
    assert noisy["epsilon"] < target["epsilon"] and math.isfinite(noisy["perplexity"])
    with pytest.raises(ValueError, match="max_grad_norm"):
        DPConfig(max_grad_norm=0)
