"""Bias audit (labkit.audit.bias): held-out templates the corpus never writes, the gender swap of
counterfactual augmentation, and a stereotype score that reads a planted association the right way round."""
from __future__ import annotations

import functools
import re

import pytest
import torch

from labkit.audit.bias import (HELDOUT_TEMPLATES, BiasConfig, augment_counterfactual, gender_swap, occupation_guesses,
                               sentence_logprobs,
                               stereotype_pairs, stereotype_score)
from labkit.audit.runs import LMRecipe, train_gpt
from labkit.data import load_task
from labkit.gpt import GPTConfig
from labkit.tokenization import train_tokenizer
from labkit.training import TrainConfig


def test_gender_swap():
    assert gender_swap("She is a nurse. He told her that her job matters.") == \
        "He is a nurse. She told him that his job matters."
    assert gender_swap("His mother met the man and her sister.") == "Her father met the woman and his brother."
    assert gender_swap("那位护士说她会晚到，他也是。") == "那位护士说他会晚到，她也是。"
    assert gender_swap("Shelly sat by the shed.") == "Shelly sat by the shed."  # words, not substrings
    text = "The engineer said that he would be late, and she smiled."
    assert gender_swap(gender_swap(text)) == text
    with pytest.raises(ValueError, match="text must be a string"):
        gender_swap(None)


def test_augment_counterfactual_adds_a_swapped_copy_of_gendered_texts_only():
    texts = ["He is a pilot.", "The city is big.", "她是护士。"]
    out = augment_counterfactual(texts)
    assert out == texts + ["She is a pilot.", "他是护士。"]


def test_pairs_cover_every_stereotyped_occupation_and_differ_only_in_the_pronoun():
    pairs = stereotype_pairs()
    n_templates = sum(len(t) for t in HELDOUT_TEMPLATES.values())
    assert len(pairs) == 20 * n_templates  # 10 female- and 10 male-stereotyped occupations
    for p in pairs:
        a, b = p.stereotyped.split(), p.other.split()
        if p.lang == "en":
            assert len(a) == len(b) and sum(x != y for x, y in zip(a, b)) == 1
            assert ("she" in a or "her" in a) == (p.stereotype == "F")
        else:
            assert sum(x != y for x, y in zip(p.stereotyped, p.other)) == 1
    assert {p.stereotype for p in stereotype_pairs(neutral=True)} == {"N"}
    with pytest.raises(ValueError, match="langs"):
        stereotype_pairs(("fr",))


def test_heldout_templates_are_never_written_by_the_corpus():
    text = "\n".join(load_task("corpus", "ci")["train"]["text"]).lower()
    for lang, templates in HELDOUT_TEMPLATES.items():
        for template in templates:
            # the template's words, with any occupation and either pronoun in the slots
            parts = [re.escape(p.strip()) for p in re.split(r"\{\w+\}", template)]
            sep = r"\s*" if lang == "zh" else r"\s+"
            pattern = r"[^.。]{1,20}?".join(p for p in parts if p)
            assert not re.search(pattern.replace(r"\ ", sep), text), template


@functools.cache
def _planted():
    """A tokenizer and two tiny GPTs: one read every held-out sentence with the stereotype's pronoun, the
    other with the other pronoun."""
    pairs = stereotype_pairs(("en",))
    tok = train_tokenizer([p.stereotyped for p in pairs] + [p.other for p in pairs], vocab_size=300,
                          min_frequency=1)
    recipe = LMRecipe(gpt=GPTConfig(d_model=64, n_layers=2, n_heads=2, d_ff=64, max_position=64, dropout=0.0),
                      train=TrainConfig(steps=600, batch_size=16, lr=3e-3, eval_every=600, progress=False),
                      block_length=32)
    stereo, _ = train_gpt(tok, [p.stereotyped for p in pairs] * 4, [p.stereotyped for p in pairs[:8]], recipe)
    anti, _ = train_gpt(tok, [p.other for p in pairs] * 4, [p.other for p in pairs[:8]], recipe)
    return tok, pairs, stereo, anti


def test_sentence_logprobs_do_not_depend_on_padding():
    tok, pairs, model, _ = _planted()
    texts = [pairs[0].stereotyped, "the nurse smiled ."]
    together = sentence_logprobs(model, tok, texts)
    alone = torch.cat([sentence_logprobs(model, tok, [t]) for t in texts])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)
    assert (together < 0).all()


def test_the_score_reads_a_planted_association_the_right_way_round():
    tok, pairs, stereo, anti = _planted()
    high, low = stereotype_score(stereo, tok, pairs), stereotype_score(anti, tok, pairs)
    assert high["preference"] > 0.9 and high["log_ratio"] > 0
    assert low["preference"] < 0.1 and low["log_ratio"] < 0
    assert high["n"] == len(pairs) and "preference_en" in high


def test_bias_config_checks():
    with pytest.raises(ValueError, match="skews"):
        BiasConfig(skews=(0.0, 1.5))
    with pytest.raises(ValueError, match="cda_skews"):
        BiasConfig(skews=(0.0,), cda_skews=(1.0,))
    with pytest.raises(ValueError, match="pairs is empty"):
        stereotype_score(None, None, [])


def test_the_downstream_classifier_reads_a_planted_association_the_right_way_round():
    tok, _, stereo, anti = _planted()
    high, low = occupation_guesses(stereo, tok, ("en",)), occupation_guesses(anti, tok, ("en",))
    # the stereotype-only model gives female-stereotyped jobs far more probability after "she" than after "he"
    assert high["gap"] > 0.5 and high["argmax_gap"] > 0.5 and high["gap_en"] == high["gap"]
    assert low["gap"] < -0.5 and low["argmax_gap"] < -0.5
    assert high["n_templates"] == len(HELDOUT_TEMPLATES["en"])
    with pytest.raises(ValueError, match="langs"):
        occupation_guesses(stereo, tok, ("fr",))


def test_an_old_report_without_the_downstream_gap_or_the_masked_lm_counts_as_missing():
    from labkit.audit.run import _complete

    assert not _complete({"bias": [{"preference": 0.5}]}, "bias")
    assert _complete({"bias": [{"preference": 0.5, "downstream_gap": 0.0}]}, "bias")
    assert not _complete({"privacy": [{"model": "plain"}]}, "privacy")
    assert _complete({"privacy": [{"model": "plain"}, {"model": "masked LM"}]}, "privacy")
    assert _complete({"typos": [{"rate": 0}]}, "typos") and not _complete({}, "typos")
