"""`labkit bench --scale ci` end to end on the session's ci build (every variant measured, the ratios, the
distillation budgets, the hybrid curve, a final JSON line), and the pieces it is made of. No test checks a
speed: the bench reports ratios, and what is tested is what they are computed from."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from labkit.compress.bench import BenchConfig, hybrid_curve
from labkit.compress.frameworks import alternate, decoding_ratio, inference_ratio, training_ratio
from labkit.gpt import GPTConfig

TINY = dict(d_model=32, n_layers=1, n_heads=2, d_ff=64)


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit", "bench", *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def ci_bench(ci_build):
    out = ci_build / "bench"  # where the chapter on small, fast models looks for it (labkit.compress.bench.ensure_bench)
    result = _bench("--scale", "ci", "--build", str(ci_build), "--quiet")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads((out / "report.json").read_text()), result.stdout, out


def test_the_bench_measures_every_variant_and_ends_on_a_json_line(ci_bench):
    report, stdout, out = ci_bench
    assert json.loads(stdout.strip().splitlines()[-1]) == report["summary"]
    names = [r["variant"] for r in report["rows"]]
    assert names[0] == "float32 (PyTorch)" and len(names) == 9 and "ONNX int8" in names
    for r in report["rows"]:
        assert 0 <= r["accuracy"] <= 1 and r["size_mb"] > 0 and 0 < r["p50_ms"] <= r["p95_ms"] and r["throughput"] > 0
    assert (out / "report.md").read_text().startswith("# Bench")
    assert (out / "tradeoff.png").stat().st_size > 5000 and (out / "hybrid.png").stat().st_size > 5000


def test_the_variants_keep_the_answers_and_shrink_as_they_should(ci_bench):
    by = {r["variant"]: r for r in ci_bench[0]["rows"]}
    base = by["float32 (PyTorch)"]
    assert by["ONNX float32"]["accuracy"] == base["accuracy"]  # the same function, another engine
    assert abs(by["weight-only int8"]["accuracy"] - base["accuracy"]) <= 0.02
    assert by["weight-only int8"]["size_mb"] < 0.4 * base["size_mb"]
    assert by["weight-only int4 (groups of 32)"]["size_mb"] < by["weight-only int8"]["size_mb"]
    assert by["ONNX int8"]["size_mb"] < by["ONNX float32"]["size_mb"]
    assert by["student, distilled"]["params"] < base["params"] / 2
    assert by["student, distilled, ONNX int8 (edge)"]["size_mb"] < by["student, distilled"]["size_mb"]
    ratios = ci_bench[0]["ratios"]
    assert ratios["float32 (PyTorch)"]["speedup_p50"] == 1.0
    assert ratios["weight-only int8"]["size_ratio"] == pytest.approx(by["weight-only int8"]["size_mb"] / base["size_mb"])


def test_the_distillation_budgets_and_the_hybrid_curve(ci_bench):
    report = ci_bench[0]
    assert [r["labels"] for r in report["distillation"]][0] == 32
    hybrid = report["hybrid"]
    shares = [h["deferred"] for h in hybrid]
    assert shares == sorted(shares) and shares[0] == 0.0 and shares[-1] == 1.0  # thresholds 0.5 ... 1.01
    by = {r["variant"]: r for r in report["rows"]}
    assert hybrid[-1]["accuracy"] == pytest.approx(by["float32 (PyTorch)"]["accuracy"])  # all deferred: the cloud
    assert hybrid[0]["accuracy"] == pytest.approx(by["student, distilled, ONNX int8 (edge)"]["accuracy"])
    api = report["api"]  # the dashboard's classify endpoint, served and called over HTTP and through gradio_client
    assert api["n"] == 10 and api["overhead_p50_ms"] == pytest.approx(api["api_p50_ms"] - api["direct_p50_ms"])
    assert api["http_overhead_p50_ms"] == pytest.approx(api["http_p50_ms"] - api["direct_p50_ms"])
    assert {"api_overhead_p50_ms", "http_overhead_p50_ms"} <= set(report["summary"])
    served = report["served"]  # 20 clients at once over HTTP, unbatched and batched by the queue
    assert served["clients"] == 20 and served["requests"] == 20 * 3 * 2
    assert served["batching_speedup"] == pytest.approx(served["predict_batch"]["requests_per_s"] / served["predict"]["requests_per_s"])
    assert all(served[e]["requests_per_s"] > 0 and served[e]["p50_ms"] <= served[e]["p95_ms"] for e in ("predict", "predict_batch"))
    for h in hybrid:  # served that way too: every request timed end to end
        assert h["measured_ms"] > 0 and h["measured_p95_ms"] > 0 and 0 <= h["measured_deferred"] <= 1
    assert hybrid[0]["measured_deferred"] == 0.0 and hybrid[-1]["measured_deferred"] == 1.0
    sweep = report["int8_by_width"]  # when int8 pays: float32 against int8 on each engine, by width
    assert [r["width"] for r in sweep] == [64, 256] and sweep[0]["params"] < sweep[1]["params"]
    for r in sweep:
        assert r["int8_speedup_pytorch"] == pytest.approx(r["float32 (PyTorch) ms"] / r["dynamic int8 (PyTorch) ms"])
        assert r["int8_speedup_onnx"] == pytest.approx(r["ONNX float32 ms"] / r["ONNX int8 ms"])
    assert set(report["summary"]["int8_speedup_by_width_pytorch_onnx"]) == {"64", "256"}
    frameworks = {(r["what"], r["size"]) for r in report["frameworks"]}
    assert len(frameworks) == 5 and all(r["ratio"] > 0 for r in report["frameworks"])


def test_the_real_encoder_teaches_a_student_too(ci_bench):
    """The ci build has the real encoder's sentiment classifier (labkit build --real): the bench distils from it as
    well, with its own tokenizer, and scores every student on the out-of-world probes."""
    report, _, out = ci_bench
    teachers = {t["teacher"]: t for t in report["teachers"]}
    assert set(teachers) == {"mini (the build's)", "real (all-MiniLM-L6-v2)"}
    assert teachers["real (all-MiniLM-L6-v2)"]["params"] > 50 * teachers["mini (the build's)"]["params"]
    for row in report["distillation"]:
        for kind in ("labels_only", "distilled", "distilled_real"):
            assert 0 <= row[kind] <= 1 and 0 <= row[f"{kind}_probe"] <= 1
    assert "distilled (real teacher), probes" in (out / "report.md").read_text()


def test_time_hybrid_calls_the_cloud_only_when_the_edge_is_unsure():
    from types import SimpleNamespace

    from labkit.compress.bench import time_hybrid

    calls = []

    def edge(ids, mask):  # 60% sure of class 0
        return SimpleNamespace(logits=torch.log(torch.tensor([[0.6, 0.4]])))

    def cloud(ids, mask):
        calls.append(ids.shape)
        return SimpleNamespace(logits=torch.zeros(1, 2))

    tokenizer = lambda texts, **kw: {"input_ids": torch.ones(1, 3, dtype=torch.long), "attention_mask": torch.ones(1, 3)}
    sure = time_hybrid(edge, cloud, tokenizer, ["a"], threshold=0.5, n=10)
    assert sure["measured_deferred"] == 0.0 and not calls and sure["measured_ms"] > 0
    unsure = time_hybrid(edge, cloud, tokenizer, ["a"], threshold=0.7, n=10)
    assert unsure["measured_deferred"] == 1.0 and len(calls) == 20  # 10 timed and 10 warm-up requests
    with pytest.raises(ValueError, match="empty"):
        time_hybrid(edge, cloud, tokenizer, [], threshold=0.5, n=10)


def test_the_hybrid_curve_by_hand():
    edge = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55]])  # right, wrong, right, wrong
    cloud = np.array([[0.8, 0.2], [0.1, 0.9], [0.3, 0.7], [0.9, 0.1]])  # right, right, right, right
    gold = [0, 1, 1, 0]
    rows = hybrid_curve(edge, cloud, gold, (0.5, 0.7, 0.85, 1.01), edge_ms=1.0, cloud_ms=10.0)
    assert [r["deferred"] for r in rows] == [0.0, 0.5, 0.75, 1.0]
    assert [r["accuracy"] for r in rows] == [0.5, 1.0, 1.0, 1.0]
    assert [r["mean_ms"] for r in rows] == [1.0, 6.0, 8.5, 11.0]
    with pytest.raises(ValueError, match="must match"):
        hybrid_curve(edge, cloud[:2], gold, (0.5,), edge_ms=1, cloud_ms=1)


def test_alternate_times_every_function_in_rounds():
    calls = {"a": 0, "b": 0}
    out = alternate({"a": lambda: calls.__setitem__("a", calls["a"] + 1),
                     "b": lambda: calls.__setitem__("b", calls["b"] + 1)}, rounds=3, calls=2)
    assert calls == {"a": 8, "b": 8} and set(out) == {"a", "b"} and all(v >= 0 for v in out.values())
    with pytest.raises(ValueError, match="rounds"):
        alternate({}, rounds=0, calls=1)


def test_labkit_and_transformers_compute_the_same_thing_before_they_are_timed():
    # each comparison first checks the two agree (loss, logits, decoded tokens) and raises otherwise
    for fn in (training_ratio, inference_ratio):
        r = fn(TINY, vocab=100, batch=2, length=8, rounds=1, calls=1)
        assert r["ratio"] > 0 and r["labkit_tokens_per_s"] > 0
    r = decoding_ratio(GPTConfig(vocab_size=100, max_position=32, **TINY), prompt=4, new_tokens=4, rounds=1, calls=1)
    assert r["ratio"] > 0


def test_bad_input_gets_one_line(tmp_path):
    result = _bench("--scale", "ci", "--build", str(tmp_path))
    assert result.returncode == 2 and "no ci-scale build in" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(ValueError, match="task"):
        BenchConfig(task="ner")
    with pytest.raises(ValueError, match="budgets"):
        BenchConfig(budgets=(0,))
