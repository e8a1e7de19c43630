"""`labkit build --real` (the ci build of the test session has it): real classifier folders that
transformers' pipeline opens, the real-vs-mini comparison in the report, and the dashboard's choice."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from transformers import pipeline

import apps.classify
import apps.common
from labkit.build import REAL_PREFIX, build_real, ensure_build
from labkit.compare import CompareConfig, Contender, compare_encoders, compare_markdown, probe_predictions, summarise
from labkit.data import load_task
from labkit.data.probes import load_probes
from labkit.folders import load_model
from labkit.real import MINILM, load_real
from labkit.scales import SCALES

TASKS = SCALES["ci"].real.compare.tasks


@pytest.fixture(scope="module")
def report(ci_build):
    return json.loads((ci_build / "report.json").read_text())


@pytest.mark.parametrize("task", TASKS)
def test_real_classifier_folders_open_with_the_pipeline(ci_build, task):
    folder = ci_build / f"{REAL_PREFIX}{task}"
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (384, 6, 30522)
    card = (folder / "README.md").read_text()
    assert "all-MiniLM-L6-v2" in card and MINILM.sha256[:16] in card and "## Limits" in card
    clf = pipeline("text-classification", model=str(folder), device="cpu")
    names = set(load_task(task, size="ci")["train"].features["label"].names)
    out = clf(["The hotel room was spotless and the staff were lovely.", "Parliament passed the budget."])
    assert {o["label"] for o in out} <= names


def test_report_has_the_comparison_and_the_classifiers(ci_build, report):
    real = report["real"]
    assert real["model"]["sha256"] == MINILM.sha256 and real["model"]["parameters"] == MINILM.parameters
    assert real["mini_parameters"] < real["model"]["parameters"] / 50  # ~300k vs 22.7M
    cfg = SCALES["ci"].real.compare
    rows = real["comparison"]
    assert len(rows) == 2 * len(cfg.tasks) * len(cfg.label_counts) * len(cfg.seeds)
    assert {r["model"] for r in rows} == {"mini", "real"}
    assert all(0 <= r["test"] <= 1 and 0 <= r["probe"] <= 1 and r["seconds"] > 0 for r in rows)
    for task in TASKS:
        c = real["classifiers"][task]
        assert c["labels"] == len(load_task(task, size="ci")["train"])
        assert {"test", "probe", "mini_probe", "mini_test"} <= set(c)
    md = (ci_build / "report.md").read_text()
    assert "A real pretrained encoder beside the mini one" in md and "out-of-world probes" in md
    assert (ci_build / "real_vs_mini.png").stat().st_size > 10_000
    assert report["seconds"]["real"] > 0


def test_the_real_encoder_reads_everyday_english_better(report):
    """The point of the stage, measured even at ci scale: on sentences from outside TinyWorld the
    real encoder's classifiers beat the mini ones (averaged over the tasks)."""
    c = report["real"]["classifiers"]
    real = sum(c[t]["probe"] for t in TASKS) / len(TASKS)
    mini = sum(c[t]["mini_probe"] for t in TASKS) / len(TASKS)
    assert real > mini + 0.15, (real, mini)
    s = summarise(report["real"]["comparison"])
    mean = lambda model: sum(r["probe_mean"] for r in s if r["model"] == model) / len(TASKS)  # noqa: E731
    assert mean("real") > mean("mini"), s


def test_compare_encoders_depends_on_its_seed_alone(ci_build):
    """One short run, twice with one seed: identical rows (the head, subsample and batch order come from it)."""
    mini, tok = load_model(ci_build / "fill-mask")
    data = {"topic": load_task("topic", size="ci")}
    probes = {"topic": load_probes("topic")}
    from labkit.transfer import TransferConfig

    cfg = CompareConfig(tasks=("topic",), label_counts=(16,), seeds=(3,), n_test=50,
                        recipe=TransferConfig(probe_steps=3, min_steps=5, steps_cap=5))
    a = compare_encoders([Contender("mini", mini, tok, lr=1e-3)], data, probes, cfg)
    b = compare_encoders([Contender("mini", mini, tok, lr=1e-3)], data, probes, cfg)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a) == strip(b) and a[0]["labels"] == 16
    assert "| topic | 16 | mini |" in compare_markdown(a)


def test_compare_refuses_bad_arguments(ci_build):
    with pytest.raises(ValueError, match="classification tasks"):
        CompareConfig(tasks=("ner",))
    with pytest.raises(ValueError, match="positive"):
        CompareConfig(label_counts=(0,))
    mini, tok = load_model(ci_build / "fill-mask")
    with pytest.raises(ValueError, match="distinct names"):
        compare_encoders([Contender("a", mini, tok, lr=1e-3)] * 2, {}, {}, CompareConfig())
    with pytest.raises(ValueError, match="no data or probes"):
        compare_encoders([Contender("a", mini, tok, lr=1e-3)], {}, {}, CompareConfig())


def test_probe_predictions_show_where_the_models_differ(ci_build):
    probes = load_probes("sentiment")
    models = {"mini": load_model(ci_build / "sentiment"), "real": load_model(ci_build / "real-sentiment")}
    rows = probe_predictions(models, probes)
    assert len(rows) == len(probes) and {"text", "gold", "mini", "real", "mini_p", "real_p"} <= set(rows[0])
    real_acc = sum(r["real"] == r["gold"] for r in rows) / len(rows)
    report = json.loads((ci_build / "report.json").read_text())
    assert real_acc == pytest.approx(report["real"]["classifiers"]["sentiment"]["probe"])


def test_build_real_needs_a_mini_build(tmp_path):
    with pytest.raises(ValueError, match="no ci-scale build in .*--real"):
        build_real("ci", tmp_path, progress=False, log=lambda *a: None)


def test_ensure_build_with_real_reuses_a_finished_build(ci_build):
    logs = []
    assert ensure_build("ci", ci_build, real=True, log=logs.append) == ci_build
    assert logs == []  # nothing was missing, nothing was built


def test_cli_real_only_on_a_missing_build_is_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "labkit", "build", "--scale", "ci", "--real-only", "--out",
                          str(tmp_path / "none")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "labkit build: error: no ci-scale build" in res.stderr
    assert f"--real --out {tmp_path / 'none'}" in res.stderr  # the command to run names the same folder


def test_cli_real_and_real_only_exclude_each_other():
    res = subprocess.run([sys.executable, "-m", "labkit", "build", "--real", "--real-only"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2 and "not allowed with argument" in res.stderr


# ----------------------------------------------------------------------------- the dashboard
def test_dashboard_offers_real_classifiers_beside_the_mini_ones(ci_build):
    store = apps.common.ModelStore(ci_build)
    assert list(store.folders("classification")) == ["sentiment", "topic", "real-sentiment", "real-topic"]
    labels = dict((v, k) for k, v in apps.classify.model_choices(store))
    assert "mini-BERT, TinyWorld only" in labels["sentiment"]
    assert "all-MiniLM-L6-v2" in labels["real-topic"]
    md = apps.classify.models_markdown(store)
    assert "| `real-sentiment` | all-MiniLM-L6-v2 (22,713,216 parameters)" in md and "everyday-English probes" in md
    probs, pieces = apps.classify.classify(store, "The blender broke after two weeks.", "real-sentiment")
    assert set(probs) == {"negative", "positive"} and abs(sum(probs.values()) - 1) < 1e-3


def test_dashboard_without_the_real_stage_says_how_to_add_it(ci_build, tmp_path):
    import shutil

    for name in ("sentiment", "topic"):
        shutil.copytree(ci_build / name, tmp_path / name)
    store = apps.common.ModelStore(tmp_path)
    assert list(store.folders("classification")) == ["sentiment", "topic"]
    assert "labkit build --real-only" in apps.classify.models_markdown(store)
    assert [v for _, v in apps.classify.model_choices(store)] == ["sentiment", "topic"]


def test_real_model_runs_the_same_in_the_dashboard_as_in_labkit(ci_build):
    """The dashboard's real-sentiment is the saved folder; its encoder starts from the verified weights."""
    real = load_real()
    clf, _ = load_model(ci_build / "real-sentiment")
    assert clf.config.d_model == real.encoder.config.d_model and clf.config.vocab_size == 30522


def test_demo_real_adds_the_real_stage_to_a_build_without_it(ci_build, tmp_path, monkeypatch):
    import shutil

    import gradio as gr

    import apps.serve
    import labkit.build

    out = tmp_path / "ci"
    shutil.copytree(ci_build, out, ignore=shutil.ignore_patterns("real-*"))
    report = json.loads((out / "report.json").read_text())
    report.pop("real")
    (out / "report.json").write_text(json.dumps(report))
    calls = []

    def fake_build_real(scale, folder, **kw):  # stands in for minutes of fine-tuning: copy the ci build's
        calls.append(scale)
        for name in ("real-sentiment", "real-topic"):
            shutil.copytree(ci_build / name, folder / name)
        shutil.copy(ci_build / "report.json", folder / "report.json")

    monkeypatch.setattr(labkit.build, "build_real", fake_build_real)
    monkeypatch.setattr(apps.serve, "default_output_dir", lambda scale: tmp_path / scale)
    monkeypatch.delenv("LABKIT_MODELS", raising=False)
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: None)
    apps.serve.serve(scale="ci", log=lambda *_: None)  # without --real: the mini models only, nothing built
    assert calls == []
    apps.serve.serve(scale="ci", real=True, log=lambda *_: None)
    assert calls == ["ci"]
    apps.serve.serve(scale="ci", real=True, log=lambda *_: None)  # there now: not again
    assert calls == ["ci"]
