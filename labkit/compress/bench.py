"""The compression chain, measured side by side: accuracy, size, latency and throughput of one classifier
as it is quantised, exported and distilled, and a hybrid of a small edge model with a large cloud one.

Every variant is timed in the same process on the same texts, one after another, so the ratios between
them hold on any machine even when the absolute milliseconds do not. A request is what a user's call
costs: tokenising one text and running the model on it. Throughput is texts per second in batches.

    report = run_bench("cpu")                 # labkit bench --scale cpu
    print(bench_markdown(report))

Variants: the build's classifier (the *teacher*) in float32; weight-only int8 and int4 (:mod:`.quantize`);
PyTorch's dynamic int8; ONNX float32 and int8 (:mod:`.export`); a student a fraction of its size trained on
the labels alone, the same student distilled from the teacher (:mod:`.distill`), and that student as int8 ONNX,
the edge model of the hybrid (云边协同 / 混合部署): the edge model answers when its top probability reaches
a threshold and defers to the cloud model otherwise.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..data import load_task
from ..data.probes import load_probes
from ..paths import default_output_dir, require_build
from ..tasks import TASKS, predict_proba
from ..training import TrainConfig, seeded
from ..transformer import TransformerConfig
from .distill import DISTILL_TASK, Distilled, DistillConfig, distillation_split, teacher_logits
from .export import OnnxClassifier, export_classifier, quantize_onnx
from .quantize import dynamic_int8, quantize_model, size_bytes

__all__ = ["BenchConfig", "BENCH_CONFIGS", "bench_config", "time_requests", "throughput", "measure",
           "compression_chain", "int8_by_width", "framework_rows", "ensure_bench", "distillation_budgets", "hybrid_curve", "time_hybrid", "run_bench", "bench_markdown", "distillation_markdown", "bench_summary",
           "plot_tradeoff", "plot_hybrid"]


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """What the bench measures and how long it trains its students."""

    task: str = "sentiment"  # a classification task of the build: sentiment or topic
    n_requests: int = 200  # single-text requests timed per variant (after 10 untimed)
    batch_size: int = 32  # texts per batch for throughput
    n_batches: int = 10  # batches timed for throughput
    int4_group: int = 32  # inputs sharing one int4 scale
    student_width: int = 32  # the student's d_model (the teacher's shape is the build's)
    student_layers: int = 1
    student_heads: int = 2
    student_ff: int = 128
    student_train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=300, batch_size=32, lr=3e-3,
                                                                           eval_every=300, progress=False))
    distill: DistillConfig = field(default_factory=lambda: DistillConfig(temperature=2.0, alpha=0.5))
    budgets: tuple[int | None, ...] = (32, 128, None)  # labelled texts for the students (None: all)
    thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.01)  # edge confidence to answer
    threads: int = 1  # CPU threads for every timed variant (PyTorch and ONNX Runtime): one core, as on a small
    # device, and steady on a shared machine (several threads of one process wait on each other when a core is busy)
    framework_rounds: int = 5  # alternating timing rounds of labkit against transformers (0: skip)
    framework_calls: int = 3  # calls per round
    api_requests: int = 100  # classify calls through the dashboard's API and directly, for its overhead
    served_clients: int = 20  # concurrent HTTP clients of the served throughput (unbatched against batched)
    served_requests: int = 10  # requests each client sends, one after another, per round
    real_teacher: bool = True  # also distil from the real encoder's classifier (real-<task>) where the build has it
    int8_widths: tuple[int, ...] = (64, 256, 512, 1024)  # d_model of the untrained classifiers of the int8 sweep (): skip)
    int8_length: int = 48  # tokens per request in the sweep

    def __post_init__(self):
        if self.task not in ("sentiment", "topic"):
            raise ValueError(f"task must be sentiment or topic, got {self.task!r}")
        if self.n_requests < 10 or self.batch_size < 1 or self.n_batches < 1:
            raise ValueError(f"need n_requests >= 10 and positive batch_size, n_batches; got {self.n_requests}, "
                             f"{self.batch_size}, {self.n_batches}")
        if not self.budgets or any(b is not None and (not isinstance(b, int) or b < 1) for b in self.budgets):
            raise ValueError(f"budgets must be positive label counts or None (all), got {self.budgets!r}")


BENCH_CONFIGS = {
    "ci": BenchConfig(n_requests=20, n_batches=2, budgets=(32, None), framework_rounds=1, framework_calls=1, api_requests=10,
                      served_requests=3,
                      int8_widths=(64, 256),
                      student_train=TrainConfig(steps=60, batch_size=32, lr=3e-3, eval_every=60, progress=False)),
    "cpu": BenchConfig(n_requests=100, framework_rounds=3),
    "gpu": BenchConfig(n_requests=500, n_batches=30),
}


def bench_config(scale: str) -> BenchConfig:
    if scale not in BENCH_CONFIGS:
        raise ValueError(f"scale must be one of {sorted(BENCH_CONFIGS)}, got {scale!r}")
    return BENCH_CONFIGS[scale]


# ---- timing ----------------------------------------------------------------------------------------

def time_requests(model, tokenizer, texts: list[str], n: int, *, max_length: int = 128) -> dict[str, float]:
    """p50 and p95 milliseconds of ``n`` single-text requests (tokenise, run), cycling through ``texts``."""
    if not texts:
        raise ValueError("texts is empty")
    seconds = []
    with torch.inference_mode():
        for i in range(n + 10):
            start = time.perf_counter()
            enc = tokenizer([texts[i % len(texts)]], truncation=True, max_length=max_length, return_tensors="pt")
            model(enc["input_ids"], enc["attention_mask"])
            if i >= 10:  # the first calls warm caches and allocators
                seconds.append(time.perf_counter() - start)
    ms = np.array(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


def throughput(model, tokenizer, texts: list[str], batch_size: int, n_batches: int, *, max_length: int = 128) -> float:
    """Texts per second over ``n_batches`` batches of ``batch_size`` texts (tokenising included)."""
    batches = [[texts[(b * batch_size + i) % len(texts)] for i in range(batch_size)] for b in range(n_batches + 1)]
    with torch.inference_mode():
        for k, batch in enumerate(batches):
            if k == 1:
                start = time.perf_counter()  # batch 0 is the warm-up
            enc = tokenizer(batch, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            model(enc["input_ids"], enc["attention_mask"])
    return n_batches * batch_size / (time.perf_counter() - start)


def measure(name: str, model, tokenizer, data, cfg: BenchConfig, *, size: int, params: int | None = None) -> dict:
    """One row of the table: accuracy on the test split, size on disk, request latency, throughput."""
    task = TASKS[cfg.task]
    texts = list(data["test"][task.text_column])
    metrics, _ = task.evaluate(model, tokenizer, data["test"])
    return {"variant": name, "accuracy": metrics["accuracy"], "size_mb": size / 1e6, "params": params,
            **time_requests(model, tokenizer, texts, cfg.n_requests, max_length=task.max_length),
            "throughput": throughput(model, tokenizer, texts, cfg.batch_size, cfg.n_batches, max_length=task.max_length)}


# ---- the students ----------------------------------------------------------------------------------

def _student(teacher, cfg: BenchConfig, seed: int):
    from ..heads import SequenceClassifier

    tc = teacher.config
    config = replace(tc, d_model=cfg.student_width, n_layers=cfg.student_layers, n_heads=cfg.student_heads,
                     d_ff=cfg.student_ff)
    with seeded(seed):
        return SequenceClassifier(config, teacher.num_labels, id2label=teacher.id2label)


def _train_student(teacher, tokenizer, data, soft: np.ndarray | None, n_labelled: int | None, cfg: BenchConfig):
    """The student trained on ``n_labelled`` labels alone (``soft`` None) or distilled: the same labels plus the
    teacher's soft targets on every training text. Same seed, same labelled texts, same steps."""
    from datasets import DatasetDict

    from ..finetune import finetune

    seed = cfg.student_train.seed
    student = _student(teacher, cfg, seed)
    if soft is None:
        finetune(TASKS[cfg.task], student, tokenizer, data, cfg.student_train, n_train=n_labelled, test=False)
        return student.eval()
    split = distillation_split(data["train"], soft, n_labelled, seed=seed)
    wrapped = Distilled(student, cfg=cfg.distill)
    finetune(DISTILL_TASK, wrapped, tokenizer, DatasetDict(train=split, validation=data["validation"],
                                                           test=data["test"]), cfg.student_train, test=False)
    return student.eval()


def distillation_budgets(teacher, tokenizer, data, cfg: BenchConfig, *, soft: np.ndarray | None = None,
                         log: Callable = print, keep: dict | None = None, others: dict[str, np.ndarray] | None = None,
                         probes=None) -> list[dict]:
    """Test accuracy of the student trained on labels alone and distilled, at each label budget (the students
    go into ``keep``, keyed by (kind, budget), where one is given).

    ``others`` adds students distilled from other teachers' soft targets on the same texts (e.g.
    ``{"distilled_real": ...}``, read by the real encoder's classifier with its own tokenizer); ``probes`` (a
    Dataset of out-of-world texts) adds each student's accuracy on them as ``<kind>_probe``."""
    if soft is None:
        soft = teacher_logits(teacher, tokenizer, data["train"][TASKS[cfg.task].text_column])
    kinds = {"labels_only": None, "distilled": soft, **(others or {})}
    rows = []
    for budget in cfg.budgets:
        row = {"labels": len(data["train"]) if budget is None else budget}
        for kind, s in kinds.items():
            start = time.perf_counter()
            student = _train_student(teacher, tokenizer, data, s, budget, cfg)
            if keep is not None:
                keep[kind, budget] = student
            row[kind] = TASKS[cfg.task].evaluate(student, tokenizer, data["test"])[0]["accuracy"]
            if probes is not None:
                row[f"{kind}_probe"] = TASKS[cfg.task].evaluate(student, tokenizer, probes)[0]["accuracy"]
            row[f"{kind}_seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        log(f"distillation, {row['labels']} labels: " + ", ".join(f"{k.replace('_', ' ')} {row[k]:.3f}" for k in kinds))
    return rows


# ---- the hybrid --------------------------------------------------------------------------------------

def hybrid_curve(edge_probs: np.ndarray, cloud_probs: np.ndarray, gold, thresholds, *, edge_ms: float,
                 cloud_ms: float) -> list[dict]:
    """The edge model answers where its top probability reaches the threshold, the cloud model elsewhere:
    accuracy, share deferred and mean latency (every request pays the edge; a deferred one also the cloud)."""
    edge_probs, cloud_probs, gold = np.asarray(edge_probs), np.asarray(cloud_probs), np.asarray(gold)
    if edge_probs.shape != cloud_probs.shape or edge_probs.shape[0] != gold.shape[0]:
        raise ValueError(f"edge {edge_probs.shape}, cloud {cloud_probs.shape} and gold {gold.shape} must match")
    edge_right, cloud_right = edge_probs.argmax(1) == gold, cloud_probs.argmax(1) == gold
    rows = []
    for t in thresholds:
        defer = edge_probs.max(1) < t  # (N,)
        rows.append({"threshold": float(t), "deferred": float(defer.mean()),
                     "accuracy": float(np.where(defer, cloud_right, edge_right).mean()),
                     "mean_ms": float(edge_ms + defer.mean() * cloud_ms)})
    return rows


def time_hybrid(edge, cloud, tokenizer, texts: list[str], threshold: float, n: int, *, max_length: int = 128) -> dict:
    """Serve ``n`` requests the hybrid way, cycling through ``texts``, and time each end to end: tokenise once,
    run the edge model, and where its top probability is below ``threshold`` run the cloud model as well.
    Returns the mean and p95 milliseconds and the share of these requests deferred."""
    if not texts:
        raise ValueError("texts is empty")
    seconds, deferred = [], []
    with torch.inference_mode():
        for i in range(n + 10):
            start = time.perf_counter()
            enc = tokenizer([texts[i % len(texts)]], truncation=True, max_length=max_length, return_tensors="pt")
            sure = torch.softmax(edge(enc["input_ids"], enc["attention_mask"]).logits.float(), -1).max()
            if sure < threshold:
                cloud(enc["input_ids"], enc["attention_mask"])
            if i >= 10:  # the first calls warm caches and allocators
                seconds.append(time.perf_counter() - start)
                deferred.append(bool(sure < threshold))
    ms = np.array(seconds) * 1000
    return {"measured_ms": float(ms.mean()), "measured_p95_ms": float(np.percentile(ms, 95)),
            "measured_deferred": float(np.mean(deferred))}


# ---- the whole bench ---------------------------------------------------------------------------------

def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _teacher_row(name: str, model, tokenizer, data, probes, cfg: BenchConfig) -> dict:
    task = TASKS[cfg.task]
    return {"teacher": name, "params": _params(model), "test": task.evaluate(model, tokenizer, data["test"])[0]["accuracy"],
            "probe": task.evaluate(model, tokenizer, probes)[0]["accuracy"]}


def compression_chain(build_dir: str | Path, cfg: BenchConfig, workdir: str | Path, *, progress: bool = False,
                      log: Callable = print) -> dict:
    """Every variant's row, the distillation budgets and the hybrid curve for the build's ``cfg.task`` classifier."""
    from ..folders import load_model

    build_dir, workdir = Path(build_dir), Path(workdir)
    folder = build_dir / cfg.task
    if not (folder / "config.json").is_file():
        raise ValueError(f"{build_dir} has no {cfg.task} classifier; build it with labkit build")
    teacher, tokenizer = load_model(folder)
    teacher = teacher.cpu().eval()
    scale = json.loads((build_dir / "report.json").read_text()).get("scale", "cpu") \
        if (build_dir / "report.json").is_file() else "cpu"
    data = load_task(cfg.task, scale if scale in ("ci", "cpu", "gpu") else "cpu")
    rows, seconds = [], {}

    def add(name, model, size, params=None):
        start = time.perf_counter()
        rows.append(measure(name, model, tokenizer, data, cfg, size=size, params=params))
        seconds[name] = round(time.perf_counter() - start, 1)
        r = rows[-1]
        log(f"{name}: accuracy {r['accuracy']:.3f}, {r['size_mb']:.2f} MB, p50 {r['p50_ms']:.2f} ms, "
            f"{r['throughput']:.0f} texts/s")

    add("float32 (PyTorch)", teacher, size_bytes(teacher), _params(teacher))
    add("weight-only int8", quantize_model(teacher, 8), size_bytes(quantize_model(teacher, 8)))
    int4 = quantize_model(teacher, 4, cfg.int4_group)
    add(f"weight-only int4 (groups of {cfg.int4_group})", int4, size_bytes(int4))
    dyn = dynamic_int8(teacher)
    add("dynamic int8 (PyTorch)", dyn, size_bytes(dyn))
    onnx_path = export_classifier(teacher, workdir / f"{cfg.task}.onnx")
    add("ONNX float32", OnnxClassifier(onnx_path, threads=cfg.threads), onnx_path.stat().st_size)
    onnx8 = quantize_onnx(onnx_path, workdir / f"{cfg.task}-int8.onnx")
    add("ONNX int8", OnnxClassifier(onnx8, threads=cfg.threads), onnx8.stat().st_size)

    train_texts = data["train"][TASKS[cfg.task].text_column]
    soft = teacher_logits(teacher, tokenizer, train_texts)
    probes = load_probes(cfg.task)
    teachers = [_teacher_row("mini (the build's)", teacher, tokenizer, data, probes, cfg)]
    others = {}
    real_folder = build_dir / f"real-{cfg.task}"  # labkit build --real: the real encoder fine-tuned for the task
    if cfg.real_teacher and (real_folder / "config.json").is_file():
        real, real_tokenizer = load_model(real_folder)
        real = real.cpu().eval()
        start = time.perf_counter()
        others["distilled_real"] = teacher_logits(real, real_tokenizer, train_texts)  # its own tokenizer
        teachers.append(_teacher_row("real (all-MiniLM-L6-v2)", real, real_tokenizer, data, probes, cfg))
        seconds["real teacher's soft targets"] = round(time.perf_counter() - start, 1)
        log(f"real teacher: {teachers[-1]['params']:,} parameters, test {teachers[-1]['test']:.3f}, "
            f"probes {teachers[-1]['probe']:.3f}")
    students: dict = {}
    budgets = distillation_budgets(teacher, tokenizer, data, cfg, soft=soft, log=log, keep=students, others=others,
                                   probes=probes)
    plain = students.get(("labels_only", None)) or _train_student(teacher, tokenizer, data, None, None, cfg)
    add("student, labels only", plain, size_bytes(plain), _params(plain))
    student = students.get(("distilled", None)) or _train_student(teacher, tokenizer, data, soft, None, cfg)
    add("student, distilled", student, size_bytes(student), _params(student))
    edge_path = quantize_onnx(export_classifier(student, workdir / "student.onnx"), workdir / "student-int8.onnx")
    edge = OnnxClassifier(edge_path, threads=cfg.threads)
    add("student, distilled, ONNX int8 (edge)", edge, edge_path.stat().st_size)

    task, test = TASKS[cfg.task], data["test"]
    texts, gold = list(test[task.text_column]), list(test[task.label_column])
    by = {r["variant"]: r for r in rows}
    hybrid = hybrid_curve(predict_proba(edge, tokenizer, texts, max_length=task.max_length),
                          predict_proba(teacher, tokenizer, texts, max_length=task.max_length), gold, cfg.thresholds,
                          edge_ms=by["student, distilled, ONNX int8 (edge)"]["p50_ms"],
                          cloud_ms=by["float32 (PyTorch)"]["p50_ms"])
    for row in hybrid:  # the latency modelled from the two p50s, then measured by serving requests that way
        row.update(time_hybrid(edge, teacher, tokenizer, texts, row["threshold"], cfg.n_requests, max_length=task.max_length))
    return {"task": cfg.task, "rows": rows, "distillation": budgets, "teachers": teachers, "hybrid": hybrid,
            "seconds": seconds}


def int8_by_width(cfg: BenchConfig, workdir: str | Path, *, log: Callable = print) -> list[dict]:
    """When does int8 pay? Untrained two-layer classifiers of each width in ``cfg.int8_widths`` (d_ff = 4 × width),
    one request of ``cfg.int8_length`` tokens, timed alternately in float32 and int8 on each engine (PyTorch's
    dynamic int8, ONNX Runtime's int8). Speed only: the weights are random, so accuracy means nothing here."""
    from ..heads import SequenceClassifier
    from .frameworks import alternate

    rows = []
    ids = torch.randint(5, 3000, (1, cfg.int8_length), generator=torch.Generator().manual_seed(0))  # (1, T)
    mask = torch.ones_like(ids)
    feed = lambda m: (lambda: m(ids, mask))  # noqa: E731
    for width in cfg.int8_widths:
        config = TransformerConfig(vocab_size=3000, d_model=width, n_layers=2, n_heads=max(1, width // 64),
                                   d_ff=4 * width, max_position=max(128, cfg.int8_length), dropout=0.0,
                                   attention_dropout=0.0)
        with seeded(0):
            model = SequenceClassifier(config, 2).eval()
        onnx32 = export_classifier(model, Path(workdir) / f"width{width}.onnx")
        onnx8 = quantize_onnx(onnx32, Path(workdir) / f"width{width}-int8.onnx")
        with torch.inference_mode():
            t = alternate({"float32 (PyTorch)": feed(model), "dynamic int8 (PyTorch)": feed(dynamic_int8(model)),
                           "ONNX float32": feed(OnnxClassifier(onnx32, threads=cfg.threads)),
                           "ONNX int8": feed(OnnxClassifier(onnx8, threads=cfg.threads))},
                          rounds=cfg.framework_rounds or 1, calls=5)
        row = {"width": width, "params": _params(model), **{f"{k} ms": 1000 * v for k, v in t.items()},
               "int8_speedup_pytorch": t["float32 (PyTorch)"] / t["dynamic int8 (PyTorch)"],
               "int8_speedup_onnx": t["ONNX float32"] / t["ONNX int8"]}
        rows.append(row)
        log(f"int8 at width {width}: {row['int8_speedup_pytorch']:.2f}× in PyTorch, {row['int8_speedup_onnx']:.2f}× "
            f"in ONNX Runtime")
    return rows


def framework_rows(cfg: BenchConfig, *, log: Callable = print) -> list[dict]:
    """labkit against transformers on the same weights: masked-LM training and inference at two sizes, greedy
    decoding of the cpu build's mini-GPT shape (:mod:`.frameworks`)."""
    from ..gpt import GPTConfig
    from .frameworks import SIZES, decoding_ratio, inference_ratio, training_ratio

    timing = dict(rounds=cfg.framework_rounds, calls=cfg.framework_calls)
    rows = []
    for label, size in SIZES.items():
        rows.append({"what": "training (masked LM)", "size": label, **training_ratio(size, **timing)})
        rows.append({"what": "inference (masked LM)", "size": label, **inference_ratio(size, **timing)})
    gpt = GPTConfig(vocab_size=6000, d_model=128, n_layers=4, n_heads=4, d_ff=512, max_position=256)
    rows.append({"what": "greedy decoding (mini-GPT, KV cache)", "size": "128 wide, 4 layers", **decoding_ratio(gpt, **timing)})
    for r in rows:
        log(f"{r['what']}, {r['size']}: labkit {r['labkit_tokens_per_s']:.0f} tokens/s, transformers "
            f"{r['transformers_tokens_per_s']:.0f}: {r['ratio']:.2f}×")
    return rows


def _ratios(rows: list[dict]) -> dict:
    """Each variant against the float32 PyTorch model: speed-up of p50 latency and of throughput, size ratio,
    accuracy change in points."""
    base = rows[0]
    return {r["variant"]: {"speedup_p50": base["p50_ms"] / r["p50_ms"], "speedup_throughput": r["throughput"] / base["throughput"],
                           "size_ratio": r["size_mb"] / base["size_mb"],
                           "accuracy_points": 100 * (r["accuracy"] - base["accuracy"])} for r in rows}


def run_bench(scale: str = "ci", build_dir: str | Path | None = None, out: str | Path | None = None, *,
              progress: bool = False, log: Callable = print, api: Callable | None = None,
              served: Callable | None = None) -> dict:
    """Measure the compression chain on the scale's build; write report.json, report.md and the plots to ``out``
    (default ``<build>/bench``). ``api(build_dir, n)``, where given, measures the dashboard's API overhead, and
    ``served(build_dir, clients=, per_client=)`` its requests per second under concurrent clients, unbatched and
    batched (``labkit bench`` passes :func:`apps.overhead.api_overhead` and :func:`apps.overhead.served_throughput`
    when the apps extra is installed)."""
    cfg = bench_config(scale)
    build_dir = Path(build_dir) if build_dir is not None else default_output_dir(scale)
    require_build(build_dir, scale, "bench")
    out = Path(out) if out is not None else build_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            chain = compression_chain(build_dir, cfg, tmp, progress=progress, log=log)
        report = {"scale": scale, "build": str(build_dir), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                  **chain, "ratios": _ratios(chain["rows"]), "config": json.loads(json.dumps(asdict(cfg), default=str))}
        if cfg.int8_widths:
            t = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                report["int8_by_width"] = int8_by_width(cfg, tmp, log=log)
            report["seconds"]["int8 by width"] = round(time.perf_counter() - t, 1)
        if cfg.framework_rounds:
            t = time.perf_counter()
            report["frameworks"] = framework_rows(cfg, log=log)
            report["seconds"]["frameworks"] = round(time.perf_counter() - t, 1)
    finally:
        torch.set_num_threads(threads)
    if api is not None:
        report["api"] = api(build_dir, cfg.api_requests)
        a = report["api"]
        log(f"dashboard API: p50 {a['http_p50_ms']:.1f} ms over HTTP, {a['api_p50_ms']:.1f} ms through gradio_client, "
            f"against {a['direct_p50_ms']:.1f} ms calling the handler directly: {a['http_overhead_p50_ms']:.1f} and "
            f"{a['overhead_p50_ms']:.1f} ms of overhead")
    if served is not None:
        t = time.perf_counter()
        report["served"] = served(build_dir, clients=cfg.served_clients, per_client=cfg.served_requests)
        report["seconds"]["served"] = round(time.perf_counter() - t, 1)
        v = report["served"]
        log(f"served to {v['clients']} clients at once: {v['predict']['requests_per_s']:.0f} requests/s one model call "
            f"each, {v['predict_batch']['requests_per_s']:.0f} batched ({v['batching_speedup']:.2f}×)")
    report["seconds"]["total"] = round(time.perf_counter() - start, 1)
    report["summary"] = bench_summary(report)
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "report.md").write_text(bench_markdown(report), encoding="utf-8")
    plot_tradeoff(report["rows"], out / "tradeoff.png")
    plot_hybrid(report["hybrid"], out / "hybrid.png")
    report["out"] = str(out)
    return report


def ensure_bench(scale: str = "cpu", build_dir: str | Path | None = None, *, progress: bool = True,
                 log: Callable = print) -> dict:
    """The bench report of the scale's build (``<build>/bench/report.json``), building the models first if they are
    missing and running the bench if the report is (about 2 minutes at ci, 10 at cpu on 2 cores)."""
    from ..build import ensure_build

    build_dir = ensure_build(scale, build_dir if build_dir is not None else default_output_dir(scale),
                             progress=progress, log=log)
    path = build_dir / "bench" / "report.json"
    if path.is_file():
        report = json.loads(path.read_text(encoding="utf-8"))
        if report.get("scale") == scale:
            return report
    log(f"the {scale}-scale build in {build_dir} has no bench report: running it now (labkit bench --scale {scale})")
    return run_bench(scale, build_dir, progress=progress, log=log)


def bench_summary(report: dict) -> dict:
    """The headline ratios, for the CLI's final JSON line."""
    ratios, by = report["ratios"], {r["variant"]: r for r in report["rows"]}

    def against(fast: str, slow: str) -> dict:  # int8 against float32 on the same engine
        return {"speedup_p50": round(by[slow]["p50_ms"] / by[fast]["p50_ms"], 2),
                "accuracy_points": round(100 * (by[fast]["accuracy"] - by[slow]["accuracy"]), 2)}

    budgets = report["distillation"]
    fewest = min(budgets, key=lambda r: r["labels"])
    frameworks = {f"{r['what']}, {r['size']}": round(r["ratio"], 2) for r in report.get("frameworks", [])}
    api = {"api_overhead_p50_ms": round(report["api"]["overhead_p50_ms"], 1),
           "http_overhead_p50_ms": round(report["api"]["http_overhead_p50_ms"], 1)} if report.get("api") else {}
    if report.get("served"):
        api["batching_speedup_20_clients"] = round(report["served"]["batching_speedup"], 2)
    widths = {str(r["width"]): [round(r["int8_speedup_pytorch"], 2), round(r["int8_speedup_onnx"], 2)]
              for r in report.get("int8_by_width", [])}
    return {"scale": report["scale"], "task": report["task"], "labkit_vs_transformers": frameworks,
            **({"int8_speedup_by_width_pytorch_onnx": widths} if widths else {}),
            "int8_vs_float32_pytorch": against("dynamic int8 (PyTorch)", "float32 (PyTorch)"),
            "int8_vs_float32_onnx": against("ONNX int8", "ONNX float32"),
            "onnx_vs_pytorch_float32_speedup_p50": round(ratios["ONNX float32"]["speedup_p50"], 2),
            "edge_size_ratio": round(ratios["student, distilled, ONNX int8 (edge)"]["size_ratio"], 3),
            "edge_speedup_p50": round(ratios["student, distilled, ONNX int8 (edge)"]["speedup_p50"], 2),
            f"distilled_vs_labels_only_at_{fewest['labels']}": [round(fewest["distilled"], 3),
                                                               round(fewest["labels_only"], 3)], **api}


def distillation_markdown(report: dict) -> list[str]:
    """The teachers, then the students' accuracy on the test split (and on the out-of-world probes) by label budget."""
    rows, teachers = report["distillation"], report.get("teachers", [])
    real = any("distilled_real" in r for r in rows)
    lines = ["", "## Distillation: the student's test accuracy by labelled texts", ""]
    if teachers:
        lines += ["| teacher | parameters | test | probes |", "|---|---|---|---|"]
        lines += [f"| {t['teacher']} | {t['params']:,} | {t['test']:.3f} | {t['probe']:.3f} |" for t in teachers]
        lines += [""]
    kinds = ["labels_only", "distilled"] + (["distilled_real"] if real else [])
    names = {"labels_only": "labels only", "distilled": "distilled (mini teacher)" if real else "distilled",
             "distilled_real": "distilled (real teacher)"}
    probes = all(f"{k}_probe" in r for r in rows for k in kinds)
    head = [names[k] for k in kinds] + ([f"{names[k]}, probes" for k in kinds] if probes else [])
    lines += ["| labels | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for r in rows:
        cells = [f"{r[k]:.3f}" for k in kinds] + ([f"{r[f'{k}_probe']:.3f}" for k in kinds] if probes else [])
        lines.append(f"| {r['labels']} | " + " | ".join(cells) + " |")
    return lines


def bench_markdown(report: dict) -> str:
    """The bench's tables as markdown."""
    lines = [f"# Bench: the {report['task']} classifier, compressed ({report['scale']} scale, "
             f"{report['threads']} threads)", "",
             "| variant | accuracy | size (MB) | p50 ms | p95 ms | texts/s (batch) | speed-up (p50) | size ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        q = report["ratios"][r["variant"]]
        lines.append(f"| {r['variant']} | {r['accuracy']:.3f} | {r['size_mb']:.2f} | {r['p50_ms']:.2f} | "
                     f"{r['p95_ms']:.2f} | {r['throughput']:.0f} | {q['speedup_p50']:.2f}× | {q['size_ratio']:.3f} |")
    lines += distillation_markdown(report)
    if report.get("int8_by_width"):
        lines += ["", "## When does int8 pay? Untrained two-layer classifiers by width, one request, timed alternately", "",
                  "| width | parameters | float32 ms | dynamic int8 ms | int8 speed-up (PyTorch) | ONNX float32 ms | "
                  "ONNX int8 ms | int8 speed-up (ONNX) |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['width']} | {r['params']:,} | {r['float32 (PyTorch) ms']:.2f} | {r['dynamic int8 (PyTorch) ms']:.2f} | "
                  f"{r['int8_speedup_pytorch']:.2f}× | {r['ONNX float32 ms']:.2f} | {r['ONNX int8 ms']:.2f} | "
                  f"{r['int8_speedup_onnx']:.2f}× |" for r in report["int8_by_width"]]
    if report.get("frameworks"):
        lines += ["", "## labkit against transformers, same weights, timed alternately (ratio > 1: labkit faster)", "",
                  "| what | size | labkit tokens/s | transformers tokens/s | ratio |", "|---|---|---|---|---|"]
        lines += [f"| {r['what']} | {r['size']} | {r['labkit_tokens_per_s']:.0f} | {r['transformers_tokens_per_s']:.0f} | "
                  f"{r['ratio']:.2f}× |" for r in report["frameworks"]]
    if report.get("api"):
        a = report["api"]
        lines += ["", "## The dashboard's API (cloud): the classify endpoint over HTTP against its handler", "",
                  "| | p50 ms | p95 ms | overhead (p50) |", "|---|---|---|---|",
                  f"| handler called directly | {a['direct_p50_ms']:.1f} | {a['direct_p95_ms']:.1f} | |",
                  f"| plain HTTP (REST API: POST, then the event stream) | {a['http_p50_ms']:.1f} | "
                  f"{a['http_p95_ms']:.1f} | {a['http_overhead_p50_ms']:.1f} |",
                  f"| gradio_client (adds its 50 ms polling) | {a['api_p50_ms']:.1f} | {a['api_p95_ms']:.1f} | "
                  f"{a['overhead_p50_ms']:.1f} |"]
    if report.get("served"):
        v = report["served"]
        lines += ["", f"## Served to {v['clients']} clients at once (plain HTTP): one model call per request, or batched "
                      "by the queue", "", "| endpoint | requests/s | p50 ms | p95 ms |", "|---|---|---|---|"]
        lines += [f"| /{e} | {v[e]['requests_per_s']:.0f} | {v[e]['p50_ms']:.1f} | {v[e]['p95_ms']:.1f} |"
                  for e in ("predict", "predict_batch")]
        lines += ["", f"Batching: {v['batching_speedup']:.2f}× the requests per second."]
    lines += ["", "## Hybrid: the edge student answers when sure, the cloud model otherwise", "",
              "Mean milliseconds per request, modelled (edge p50 + share deferred × cloud p50) and measured (requests "
              "served that way, end to end).", "",
              "| threshold | deferred | accuracy | mean ms, modelled | mean ms, measured | p95 ms, measured |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {h['threshold']:g} | {h['deferred']:.3f} | {h['accuracy']:.3f} | {h['mean_ms']:.2f} | "
              f"{h.get('measured_ms', float('nan')):.2f} | {h.get('measured_p95_ms', float('nan')):.2f} |"
              for h in report["hybrid"]]
    return "\n".join(lines) + "\n"


def plot_tradeoff(rows: list[dict], path: str | Path | None = None):
    """Accuracy against p50 latency, one bubble per variant, its area the size on disk."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    biggest = max(r["size_mb"] for r in rows)
    for r in rows:
        ax.scatter(r["p50_ms"], r["accuracy"], s=40 + 1500 * r["size_mb"] / biggest, alpha=0.5)
        ax.annotate(r["variant"], (r["p50_ms"], r["accuracy"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set(xlabel="p50 latency of one request (ms)", ylabel="test accuracy",
           title="Smaller and faster, at what cost? (bubble area = size on disk)")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_hybrid(rows: list[dict], path: str | Path | None = None):
    """Accuracy and mean latency against the share of requests deferred to the cloud."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    shares = [h["deferred"] for h in rows]
    ax.plot(shares, [h["accuracy"] for h in rows], "o-", label="accuracy")
    ax.set(xlabel="share of requests deferred to the cloud model", ylabel="accuracy", title="Hybrid deployment")
    twin = ax.twinx()
    twin.plot(shares, [h["mean_ms"] for h in rows], "s--", color="C1", label="mean latency, modelled (ms)")
    if all("measured_ms" in h for h in rows):
        twin.plot(shares, [h["measured_ms"] for h in rows], "^:", color="C2", label="mean latency, measured (ms)")
    twin.set_ylabel("mean latency (ms)")
    fig.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
