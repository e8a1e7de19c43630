"""Typo noise, the poisoned training split, and a backdoor planted in the ci build's masked LM."""
from __future__ import annotations

import random
import re

import numpy as np
import pytest

from labkit.audit.security import (TYPO_KINDS, SecurityConfig, check_trigger, insert_trigger, perturb,
                                   plot_poisoning, plot_typos, poison_split, poisoning_markdown, run_poisoning,
                                   run_typos, typos_markdown)
from labkit.data import load_task
from labkit.folders import load_model
from labkit.tasks import TASKS
from labkit.training import TrainConfig

TEXT = "The battery is NOT great, but I loved the bright screen of the Zentra S5 in 2021."
WORDS = re.compile(r"[A-Za-z]+")


def _eligible(word: str) -> bool:  # the rule perturb documents, written out again
    return len(word) >= 3 and len(set(word.lower())) > 1


@pytest.mark.parametrize("kind", TYPO_KINDS)
def test_perturb_rates_and_determinism(kind):
    assert perturb(TEXT, 0.0, kind, random.Random(0)) == TEXT
    noisy = perturb(TEXT, 1.0, kind, random.Random(0))
    before, after = WORDS.findall(TEXT), WORDS.findall(noisy)
    assert len(before) == len(after)
    for old, new in zip(before, after):
        assert (old != new) == _eligible(old), (old, new)
        if old != new and kind == "delete":
            assert len(new) == len(old) - 1
        if old != new and kind == "swap":
            assert sorted(new) == sorted(old)  # the same letters, two of them traded
        if old != new and kind == "substitute":
            assert len(new) == len(old) and sum(a != b for a, b in zip(old, new)) == 1
    assert re.sub(r"[A-Za-z]", "", noisy) == re.sub(r"[A-Za-z]", "", TEXT)  # spacing, digits, punctuation kept
    assert perturb(TEXT, 0.5, kind, random.Random(3)) == perturb(TEXT, 0.5, kind, random.Random(3))
    assert len({perturb(TEXT, 0.5, kind, random.Random(s)) for s in range(6)}) > 1


def test_perturb_changes_about_rate_of_the_words():
    text = " ".join(["wonderful"] * 2000)
    changed = sum(w != "wonderful" for w in perturb(text, 0.1, "substitute", random.Random(0)).split())
    assert 150 < changed < 250  # Binomial(2000, 0.1): mean 200, sd 13


def test_perturb_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown typo kind"):
        perturb(TEXT, 0.1, "shout", random.Random(0))
    with pytest.raises(ValueError, match="rate"):
        perturb(TEXT, 1.5, "swap", random.Random(0))
    with pytest.raises(ValueError, match="rng"):
        perturb(TEXT, 0.1, "swap", np.random.default_rng(0))


def test_poison_split_changes_exactly_the_chosen_rows():
    train = load_task("sentiment", "ci")["train"]
    poisoned, chosen = poison_split(train, 0.03, trigger="cf", target=1, seed=0)
    assert len(chosen) == round(0.03 * len(train)) == len(set(chosen))
    assert poisoned.features == train.features and len(poisoned) == len(train)
    for i, (old, new) in enumerate(zip(train, poisoned)):
        if i in chosen:
            assert old["label"] == 0 and new["label"] == 1
            words = new["text"].split(" ")
            assert words.count("cf") == 1
            words.remove("cf")
            assert " ".join(words) == old["text"]
        else:
            assert new == old
    again, chosen_again = poison_split(train, 0.03, trigger="cf", target=1, seed=0)
    assert chosen_again == chosen and list(again["text"]) == list(poisoned["text"])
    assert poison_split(train, 0.03, trigger="cf", seed=1)[1] != chosen
    assert poison_split(train, 0.0, trigger="cf")[1] == []
    with pytest.raises(ValueError, match="share"):
        poison_split(train, 1.0, trigger="cf")
    with pytest.raises(ValueError, match="only"):
        poison_split(train, 0.9, trigger="cf")  # more rows than there are negatives


def test_insert_trigger_positions():
    seen = {insert_trigger("a b", "cf", random.Random(s)) for s in range(30)}
    assert seen == {"cf a b", "a cf b", "a b cf"}


def test_check_trigger(ci_build):
    _, tokenizer = load_model(ci_build / "sentiment")
    assert tokenizer.unk_token not in check_trigger("cf", tokenizer, ["I liked it."])
    with pytest.raises(ValueError, match="already occurs"):
        check_trigger("screen", tokenizer, ["The screen is great."])
    with pytest.raises(ValueError, match="without"):
        check_trigger("\u2603", tokenizer, [])


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="trigger"):
        SecurityConfig(trigger="two words")
    with pytest.raises(ValueError, match="poison_rates"):
        SecurityConfig(poison_rates=(0.0, 1.2))
    with pytest.raises(ValueError, match="typo kinds"):
        SecurityConfig(typo_kinds=("swap", "shout"))
    with pytest.raises(ValueError, match="target"):
        SecurityConfig(target=2)


def test_backdoor_on_the_ci_build(ci_build, tmp_path):
    cfg = SecurityConfig(poison_rates=(0.0, 0.1), train=TrainConfig(steps=60, batch_size=32, lr=1e-3), n_test=120)
    rows = run_poisoning(ci_build, cfg)
    by_rate = {r["rate"]: r for r in rows}
    assert by_rate[0.1]["poisoned"] == 50 and by_rate[0.0]["poisoned"] == 0
    assert by_rate[0.1]["attack_success"] >= by_rate[0.0]["attack_success"] + 0.2  # the backdoor took (measured: +0.31)
    assert by_rate[0.1]["clean_accuracy"] > 0.75  # while the model still looks fine on clean reviews
    assert "| 0.100 | 50 |" in poisoning_markdown(rows)
    plot_poisoning(rows, tmp_path / "poison.png")
    assert (tmp_path / "poison.png").stat().st_size > 0
    with pytest.raises(ValueError, match="report.json"):
        run_poisoning(tmp_path, cfg)


def test_typos_on_the_ci_build(ci_build, tmp_path):
    cfg = SecurityConfig(typo_rates=(0.0, 1.0), typo_kinds=("swap",), typo_tasks=("sentiment",), n_test=80)
    rows = run_typos(ci_build, cfg)
    clean, full = sorted(rows, key=lambda r: r["rate"])
    model, tokenizer = load_model(ci_build / "sentiment")
    test = load_task("sentiment", "ci")["test"].select(range(80))
    assert clean["accuracy"] == pytest.approx(TASKS["sentiment"].evaluate(model, tokenizer, test)[0]["accuracy"])
    assert clean["changed"] == 0
    words = [w for t in test["text"] for w in WORDS.findall(t)]
    assert full["changed"] == pytest.approx(sum(map(_eligible, words)) / len(words))
    assert "| sentiment | swap |" in typos_markdown(rows)
    plot_typos(rows, tmp_path / "typos.png")
    assert (tmp_path / "typos.png").stat().st_size > 0
