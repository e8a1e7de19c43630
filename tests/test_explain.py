"""labkit.audit.explain: integrated gradients' completeness, occlusion against captum's, attention rows,
the deletion/insertion curves' end points, a planted case the faithful methods must win, the verdict."""
import json

import datasets
import numpy as np
import pytest
import torch

from labkit.audit.explain import (METHODS, ExplainConfig, aopc, attention_scores, attributions, class_probabilities,
                                  encode, explain_ids, explain_markdown, explain_texts, faithfulness_verdict,
                                  insertion_auc, occlusion, perturbation_curves, plot_faithfulness, run_explain)
from labkit.finetune import finetune_classifier
from labkit.folders import load_model
from labkit.heads import SequenceClassifier
from labkit.tasks import predict_proba
from labkit.training import TrainConfig

import tiny


@pytest.fixture(scope="module")
def topic(ci_build):
    model, tok = load_model(ci_build / "topic")
    texts = ["Investors welcomed the merger between Orchid Electronics and Quantum Motors.",
             "The striker scored twice as the home team won the final.",
             "Doctors at the city hospital tested a new treatment for patients."]
    return model, tok, texts


def _baseline(ids, tok, token_id=None):
    special = torch.isin(ids, torch.tensor(tok.all_special_ids))
    return torch.where(special, ids, tok.mask_token_id if token_id is None else token_id)


def test_integrated_gradients_add_up_to_the_change_of_probability(topic):
    model, tok, texts = topic
    changes = []
    for text in texts:
        ids = encode(tok, text)
        base = _baseline(ids, tok)
        a = explain_ids(model, ids, "integrated_gradients", baseline_ids=base, n_steps=50)
        with torch.no_grad():
            p = class_probabilities(model, torch.stack([ids, base]))[:, a.target]  # (2,)
        changes.append(float(p[0] - p[1]))
        assert abs(float(a.scores.sum()) - changes[-1]) < 0.01 and abs(a.delta) < 0.01
        assert abs(float(a.scores.sum()) - changes[-1] - a.delta) < 1e-4  # captum's delta is that miss
        assert a.scores[0] == 0 and a.scores[-1] == 0  # [CLS] and [SEP] are the same at both ends
    assert max(map(abs, changes)) > 0.3  # the check means something only where the probability moves


def test_occlusion_equals_captums(topic):
    from captum.attr import Occlusion

    model, tok, texts = topic
    for text in texts:
        ids = encode(tok, text)
        base = _baseline(ids, tok, tok.pad_token_id)
        target = int(class_probabilities(model, ids[None]).argmax())
        theirs = Occlusion(lambda x: class_probabilities(model, x)).attribute(
            ids[None], sliding_window_shapes=(1,), baselines=base[None], target=target)[0]
        mine = occlusion(model, ids, target, base)
        torch.testing.assert_close(mine, theirs.float(), atol=1e-6, rtol=1e-5)
        assert mine.abs().max() > 1e-4  # not all zeros


def test_attention_rows_sum_to_one(topic):
    model, tok, texts = topic
    for text in texts:
        ids = encode(tok, text)
        w = attention_scores(model, ids)
        assert w.shape == ids.shape and (w >= 0).all()
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-5)
    pieces = attributions(model, tok, texts[0], "attention")
    assert [p for p, _ in pieces] == tok.tokenize(texts[0])  # [CLS] and [SEP] left out of the view
    assert sum(s for _, s in pieces) < 1.0


def test_curves_start_at_the_model_and_end_at_the_baseline(topic):
    model, tok, texts = topic
    fractions = (0.0, 0.25, 0.5, 0.75, 1.0)
    own = predict_proba(model, tok, texts)  # (N, K), through the tokenizer's own batching
    for text, p in zip(texts, own):
        ids = encode(tok, text)
        base = _baseline(ids, tok)
        a = explain_ids(model, ids, "occlusion", baseline_ids=base)
        deletion, insertion = perturbation_curves(model, ids, a.scores, a.target, base, fractions)
        all_baseline = float(predict_proba(model, tok, [" ".join(["[MASK]"] * (len(ids) - 2))])[0, a.target])
        assert a.target == int(p.argmax())
        assert deletion[0] == pytest.approx(p[a.target], abs=1e-5) and insertion[-1] == pytest.approx(p[a.target], abs=1e-5)
        assert deletion[-1] == pytest.approx(all_baseline, abs=1e-5) and insertion[0] == pytest.approx(all_baseline, abs=1e-5)


def test_areas_match_their_definitions():
    assert aopc(np.array([0.9, 0.5, 0.3])) == pytest.approx((0.0 + 0.4 + 0.6) / 3)
    q, y = np.array([0.0, 0.1, 0.5, 1.0]), np.array([0.2, 0.9, 0.7, 1.0])
    assert insertion_auc(q, y) == pytest.approx(np.trapezoid(y, q))


@pytest.fixture(scope="module")
def planted():
    """A tiny classifier whose label only the mood word decides (good/great vs bad/awful)."""
    tok = tiny.text_tokenizer()
    texts = [t for t in tiny.TEXTS if " is " in t]
    labels = [int(any(w in t for w in ("good", "great"))) for t in texts]
    split = datasets.Dataset.from_dict({"text": texts, "label": labels}, features=datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}))
    torch.manual_seed(0)
    model = SequenceClassifier(tiny.config(tok, max_position=64), 2, {0: "neg", 1: "pos"})
    cfg = TrainConfig(steps=120, batch_size=16, lr=3e-3, progress=False, device="cpu")
    res = finetune_classifier(model, tok, datasets.DatasetDict(train=split, validation=split, test=split), cfg)
    assert res.metrics["accuracy"] == 1.0
    return model.eval(), tok, texts


def test_on_a_planted_case_the_deciding_word_comes_first_and_random_loses(planted):
    model, tok, texts = planted
    moods = {"good", "great", "bad", "awful"}
    for method in ("integrated_gradients", "occlusion"):
        top = [max(attributions(model, tok, t, method), key=lambda ps: ps[1])[0] for t in texts]
        assert sum(w in moods for w in top) >= 0.9 * len(texts), (method, top)
    cfg = ExplainConfig(n_examples=len(texts), n_steps=32)
    measured = explain_texts(model, tok, texts, cfg)
    area = {m: np.mean([aopc(c) for c in measured[m]["deletion"]]) for m in METHODS}
    first_drop = {m: np.mean(measured[m]["deletion"][:, 0] - measured[m]["deletion"][:, 1]) for m in METHODS}
    for m in ("integrated_gradients", "occlusion"):
        assert area[m] > area["random"] + 0.1, area
        assert first_drop[m] > first_drop["random"] + 0.2, first_drop  # deleting its first choice hurts most
    assert measured["integrated_gradients"]["delta"].shape == (len(texts),) and measured["random"]["delta"] is None


def test_run_explain_rows_table_figure_and_json(ci_build):
    cfg = ExplainConfig(tasks=("topic",), n_examples=6, n_steps=16, fractions=(0.0, 0.5, 1.0), n_resamples=200)
    result = run_explain(ci_build, cfg)
    json.dumps(result)
    assert [r["method"] for r in result["rows"]] == list(METHODS) and all(r["n"] == 6 for r in result["rows"])
    for r in result["rows"]:
        assert r["deletion_ci"][0] <= r["aopc_deletion"] <= r["deletion_ci"][1]
        assert (r["convergence_delta"] is None) == (r["method"] != "integrated_gradients")
    curves = result["curves"]["topic"]["occlusion"]
    assert len(curves["deletion"]) == 3 and curves["deletion"][0] == pytest.approx(result["reference"]["topic"]["p_original"])
    table = explain_markdown(result["rows"])
    assert table.count("\n") == 1 + len(METHODS) and "integrated gradients" in table
    fig = plot_faithfulness(result)
    assert len(fig.axes) == 2 and [len(ax.lines) for ax in fig.axes] == [len(METHODS)] * 2


def _result(per_method: dict[str, np.ndarray]) -> dict:
    per = {m: {"aopc_deletion": v.tolist(), "auc_insertion": v.tolist()} for m, v in per_method.items()}
    return {"config": {"seed": 0, "n_resamples": 1000, "confidence": 0.95}, "per_example": {"t": per}}


def test_verdict_names_the_winner_from_the_numbers_and_weighs_the_noise():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.6, 100)
    clear = _result({"random": base * 0.5, "attention": base + 0.10 + rng.normal(0, 0.01, 100), "occlusion": base})
    v = faithfulness_verdict(clear, "t")
    assert v["best"] == "attention" and v["second"] == "occlusion" and v["real"] and v["beats_random"]
    assert v["lead"] == pytest.approx(0.10, abs=0.01) and v["lead_ci"][0] > 0
    noisy = _result({"random": base * 0.5, "occlusion": base, "attention": base + rng.normal(0, 0.2, 100)})
    v = faithfulness_verdict(noisy, "t", metric="insertion")
    assert v["lead_ci"][0] < 0 < v["lead_ci"][1] and not v["real"] and "within the uncertainty" in v["text"]


def test_bad_arguments_raise(topic, ci_build):
    model, tok, texts = topic
    with pytest.raises(ValueError, match="unknown method"):
        attributions(model, tok, texts[0], "saliency")
    with pytest.raises(ValueError, match="empty"):
        attributions(model, tok, "   ", "occlusion")
    with pytest.raises(ValueError, match="SequenceClassifier"):
        attributions(torch.nn.Linear(2, 2), tok, texts[0], "occlusion")
    for bad in ((0.5, 1.0), (0.0, 0.5), (0.0, 0.6, 0.4, 1.0), (0.0, 1.5), (1.0,), "abc"):
        with pytest.raises(ValueError, match="fractions"):
            ExplainConfig(fractions=bad)
    ids = encode(tok, texts[0])
    with pytest.raises(ValueError, match="fractions"):
        perturbation_curves(model, ids, torch.zeros(len(ids)), 0, _baseline(ids, tok), (0.0, 0.5))
    with pytest.raises(ValueError, match="unknown task"):
        ExplainConfig(tasks=("ner",))
    with pytest.raises(ValueError, match="baseline"):
        ExplainConfig(baseline="unk")
    with pytest.raises(ValueError, match="n_examples"):
        ExplainConfig(n_examples=0)
    with pytest.raises(ValueError, match="no classifier folder"):
        run_explain(ci_build / "missing", ExplainConfig(tasks=("topic",)))
    with pytest.raises(ValueError, match="no task"):
        faithfulness_verdict(_result({"a": np.ones(3), "b": np.zeros(3)}), "sentiment")
    with pytest.raises(ValueError, match="metric"):
        faithfulness_verdict(_result({"a": np.ones(3), "b": np.zeros(3)}), "t", metric="area")
