"""Per-group scores with bootstrap intervals, parity gaps, the counterfactual probe, and the ci build audited."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from labkit import metrics as M
from labkit.audit.fairness import (CELLS, FairnessConfig, bootstrap_ci, counterfactual_probe, entity_group_scores,
                                   fairness_markdown, name_origin, ner_group_counts, parity_gaps, person_groups,
                                   name_pattern, plot_fairness, question_subject, run_fairness)
from labkit.data import build_world


@pytest.fixture(scope="module")
def world():
    return build_world(0)


def test_bootstrap_matches_scipy():
    sample = np.random.default_rng(7).exponential(size=300)  # skewed, so the interval is not symmetric
    ours = bootstrap_ci(sample, lambda x: np.array([x.mean()]), n_resamples=5000, confidence=0.9, seed=1)[0]
    ref = stats.bootstrap((sample,), np.mean, n_resamples=5000, confidence_level=0.9, method="percentile",
                          rng=np.random.default_rng(2)).confidence_interval
    assert ours[0] == pytest.approx(sample.mean())
    assert ours[1] == pytest.approx(ref.low, abs=0.01)
    assert ours[2] == pytest.approx(ref.high, abs=0.01)
    assert ours[1] < sample.mean() < ours[2]
    again = bootstrap_ci(sample, lambda x: np.array([x.mean()]), n_resamples=200, seed=3)
    assert np.array_equal(again, bootstrap_ci(sample, lambda x: np.array([x.mean()]), n_resamples=200, seed=3))


def test_bootstrap_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least 2 units"):
        bootstrap_ci(np.array([1.0]), np.mean)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(np.arange(5.0), np.mean, confidence=1.5)


def test_parity_gaps_by_hand():
    # group a: 4 rows, gold 1,1,0,0, pred 1,0,1,0 -> positive rate 0.5, TPR 0.5, FPR 0.5
    # group b: 4 rows, gold 1,1,0,0, pred 1,1,1,1 -> positive rate 1.0, TPR 1.0, FPR 1.0
    pred = [1, 0, 1, 0, 1, 1, 1, 1]
    gold = [1, 1, 0, 0, 1, 1, 0, 0]
    group = ["a"] * 4 + ["b"] * 4
    gaps = parity_gaps(pred, gold, group, compared=("a", "b"))
    assert gaps["dp_gap"] == pytest.approx(-0.5)
    assert gaps["tpr_gap"] == pytest.approx(-0.5) and gaps["fpr_gap"] == pytest.approx(-0.5)
    assert gaps["eo_gap"] == pytest.approx(0.5)
    # b with TPR 1 and FPR 0 instead: the equalised-odds gap is the larger of |−0.5| and |0.5|
    gaps = parity_gaps([1, 0, 1, 0, 1, 1, 0, 0], gold, group, compared=("a", "b"))
    assert gaps["dp_gap"] == pytest.approx(0.0) and gaps["fpr_gap"] == pytest.approx(0.5)
    assert gaps["eo_gap"] == pytest.approx(0.5)


def test_a_name_blind_classifier_has_no_gap():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 200)
    group = np.where(rng.random(200) < 0.3, "F", "M")
    constant = parity_gaps(np.ones(200, int), gold, group, compared=("F", "M"))
    assert constant["dp_gap"] == 0 and constant["eo_gap"] == 0
    # a classifier that reads only the gold label (never the group) has TPR 1 and FPR 0 everywhere
    oracle = parity_gaps(gold, gold, group, compared=("F", "M"))
    assert oracle["eo_gap"] == 0


def test_parity_gaps_rejects_bad_arguments():
    with pytest.raises(ValueError, match="one length"):
        parity_gaps([1, 0], [1], ["a", "b"])
    with pytest.raises(ValueError, match=r"\['c'\] have no rows"):
        parity_gaps([1, 0], [1, 0], ["a", "a"], compared=("a", "c"))
    with pytest.raises(ValueError, match="two different groups"):
        parity_gaps([1, 0], [1, 0], ["a", "b"], compared=("a", "a"))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="n_resamples"):
        FairnessConfig(n_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        FairnessConfig(confidence=95)
    with pytest.raises(ValueError, match="frame"):
        FairnessConfig(frame="{text} by someone")


def test_person_groups_follow_the_lexicons(world):
    people = person_groups(world)
    assert len(people) == len(world.people)
    wang = next(p for p in world.people if "·" not in p.name_zh)
    assert name_origin(wang) == "zh" and people[wang.name_en]["gender"] == wang.gender
    origins = [g["origin"] for g in people.values()]
    assert origins.count("en") == 360 and origins.count("zh") == 160  # as world._draw_names draws them


def test_counterfactual_probe_changes_only_the_name(world):
    texts = ["The screen is great.", "I disliked the price."]
    probe = counterfactual_probe(texts, world, frame="{name} wrote: {text}", seed=0)
    people = person_groups(world)
    assert set(probe) == set(CELLS)
    for (gender, origin), versions in probe.items():
        for text, version in zip(texts, versions):
            name, rest = version.split(" wrote: ")
            assert rest == text
            assert people[name] == {"gender": gender, "origin": origin}
            assert world.person(name).heldout
    assert probe == counterfactual_probe(texts, world, seed=0)
    assert probe != counterfactual_probe(texts, world, seed=1)


def test_ner_group_counts_agree_with_entity_scores(world):
    woman = next(p for p in world.people if p.gender == "F")
    first, last = woman.name_en.split()
    words = [[first, last, "lives", "in", "Paris", "."], ["Acme", "Bank", "opened", "in", "2001", "."]]
    gold = [["B-PER", "I-PER", "O", "O", "B-LOC", "O"], ["B-ORG", "I-ORG", "O", "O", "B-DATE", "O"]]
    pred = [["B-PER", "I-PER", "O", "O", "O", "O"], ["B-ORG", "O", "O", "O", "B-DATE", "O"]]
    types = ["DATE", "LOC", "ORG", "PER"]
    counts = ner_group_counts(words, gold, pred, person_groups(world), types)
    scores = entity_group_scores(counts)  # (K, 3)
    report = M.entity_scores(gold, pred)
    for k, type_ in enumerate(types):
        p, r, f1, _ = report.per_type[type_]
        assert scores[k].tolist() == pytest.approx([p, r, f1])
    assert counts[0, types.index("PER")].tolist() == [1, 1, 1]
    assert counts[0, len(types) + 0].tolist() == [1, 1, 1]  # gender F
    assert counts[:, len(types) + 1].sum() == 0  # gender M: nobody
    assert np.isnan(scores[len(types) + 1, 1])  # no gold entity, no recall
    with pytest.raises(ValueError, match="one length"):
        ner_group_counts(words, gold, pred[:1], {}, types)


def test_question_subject(world):
    pattern = name_pattern(person_groups(world))
    name = world.people[3].name_en
    assert question_subject(f"Where was {name} born?", pattern) == name
    assert question_subject("When was Sunrise Textiles founded?", pattern) is None
    assert question_subject("Where does Ann Li live?", name_pattern(["Ann Li", "Li"])) == "Ann Li"


def test_run_fairness_on_the_ci_build(ci_build, tmp_path):
    cfg = FairnessConfig(n_resamples=200, n_test=120)
    result = run_fairness(ci_build, cfg, seed=0)
    json.dumps(result)  # JSON-able
    assert {r["task"] for r in result["groups"]} == {"ner", "sentiment", "qa"}
    for r in result["groups"]:
        if r["value"] == r["value"]:  # not NaN
            assert r["low"] - 1e-9 <= r["value"] <= r["high"] + 1e-9, r
    for r in result["gaps"]:
        if r["metric"] not in ("equalised_odds", "flip_rate"):
            assert r["significant"] == (r["low"] > 0 or r["high"] < 0), r
    # the probe's texts are the test reviews: its per-group accuracies are near the build's own accuracy
    build_accuracy = json.loads((ci_build / "report.json").read_text())["models"]["sentiment"]["metrics"]["accuracy"]
    acc = [r["value"] for r in result["groups"] if r["task"] == "sentiment" and r["metric"] == "accuracy"]
    assert all(abs(a - build_accuracy) < 0.1 for a in acc)
    table = fairness_markdown(result)
    assert "demographic_parity" in table and "| ner | entity_f1 | gender | F |" in table
    fig = plot_fairness(result, tmp_path / "fairness.png")
    assert (tmp_path / "fairness.png").stat().st_size > 0 and len(fig.axes) >= 10
    with pytest.raises(ValueError, match="lacks the models"):
        run_fairness(tmp_path, cfg)
