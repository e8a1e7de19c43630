"""What serving costs: the classify endpoint called over HTTP against the same handler called directly.

    from apps.overhead import api_overhead
    api_overhead("artifacts/cpu", n=100)   # {"direct_p50_ms": ..., "http_p50_ms": ..., "api_p50_ms": ..., ...}

``labkit bench`` calls it (the dashboard lives in apps/, which labkit never imports at module level). Three
ways are timed alternately, request by request, on the same texts:

- the handler called directly, in this process;
- plain HTTP, as curl or any HTTP client calls Gradio's REST API: POST /gradio_api/call/classify, then read
  the event stream of the answer. Its difference from the direct call is the server's share: HTTP, the
  queue and JSON;
- gradio_client's ``predict``, which adds the client's own polling (it checks for new messages every 50 ms).

``served_throughput`` asks the other question of a server: how many requests a second it answers when many
clients call at once, one model call per request (``/predict``) or with the queue batching them
(``/predict_batch``).
"""
from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np

TEXTS = ("The staff are outstanding and the price is perfect.", "I disliked the price and the noise level.",
         "The blender broke after two weeks.", "A wonderful screen and a fair price.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_predict(http, url: str, api_name: str, data: list) -> list:
    """One call of a Gradio event over its REST API: POST the inputs, then read the answer's event stream."""
    import json

    r = http.post(f"{url}/gradio_api/call/{api_name}", json={"data": data})
    r.raise_for_status()
    event = r.json()["event_id"]
    with http.stream("GET", f"{url}/gradio_api/call/{api_name}/{event}") as stream:
        lines = list(stream.iter_lines())
    for kind, payload in zip(lines, lines[1:]):
        if kind == "event: complete" and payload.startswith("data: "):
            return json.loads(payload[len("data: "):])
    raise RuntimeError(f"the {api_name} call ended without an answer: {lines[-4:]}")


def api_overhead(build_dir: str | Path, n: int = 100, *, model_name: str = "sentiment") -> dict[str, float]:
    """p50 and p95 milliseconds of ``n`` calls of the classify handler: directly, over plain HTTP and through
    gradio_client (127.0.0.1, one client, after 5 untimed calls of each), and the overheads against the direct
    call: ``http_overhead_p50_ms`` (the server's share) and ``overhead_p50_ms`` (gradio_client's)."""
    import httpx
    from gradio_client import Client

    from apps.classify import classify, make_demo
    from apps.common import ModelStore

    if n < 5:
        raise ValueError(f"n must be at least 5, got {n}")
    store = ModelStore(build_dir)
    demo = make_demo(store)
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), share=False, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False, analytics_enabled=False, download_files=False)
        http, url = httpx.Client(timeout=60), demo.local_url.rstrip("/")
        times: dict[str, list[float]] = {"direct": [], "http": [], "api": []}
        for i in range(n + 5):
            text = TEXTS[i % len(TEXTS)]
            answers = {}
            for kind in times:
                start = time.perf_counter()
                if kind == "direct":
                    probs = classify(store, text, model_name)[0]  # {label: probability}
                    answers[kind] = {"label": max(probs, key=probs.get)}
                elif kind == "http":
                    answers[kind] = _http_predict(http, url, "classify", [text, model_name])[0]
                else:
                    answers[kind] = client.predict(text, model_name, api_name="/classify")[0]
                if i >= 5:
                    times[kind].append((time.perf_counter() - start) * 1000)
            labels = {k: a["label"] for k, a in answers.items()}
            if len(set(labels.values())) != 1:  # the three ways must give the same answer
                raise RuntimeError(f"the three calls disagree on {text!r}: {labels}")
        http.close()
        client.close() if hasattr(client, "close") else None
    finally:
        demo.close()
    out = {}
    for kind, ms in times.items():
        out[f"{kind}_p50_ms"], out[f"{kind}_p95_ms"] = float(np.percentile(ms, 50)), float(np.percentile(ms, 95))
    out["overhead_p50_ms"] = out["api_p50_ms"] - out["direct_p50_ms"]
    out["http_overhead_p50_ms"] = out["http_p50_ms"] - out["direct_p50_ms"]
    out["n"] = n
    return out


def served_throughput(build_dir: str | Path, *, clients: int = 20, per_client: int = 10, rounds: int = 2,
                      model_name: str = "sentiment") -> dict:
    """``clients`` concurrent plain-HTTP clients, each sending ``per_client`` requests one after another, against
    ``/predict`` (one request per model call) and ``/predict_batch`` (Gradio's queue hands up to
    :data:`apps.classify.BATCH` waiting requests to one call), ``rounds`` times each, alternately. Returns, per
    endpoint, requests per second (the mean over rounds) and the p50/p95 latency of a request."""
    import concurrent.futures

    import httpx

    from apps.classify import make_demo
    from apps.common import ModelStore

    if clients < 1 or per_client < 1 or rounds < 1:
        raise ValueError(f"clients, per_client and rounds must be positive, got {clients}, {per_client}, {rounds}")
    demo = make_demo(ModelStore(build_dir))
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), share=False, prevent_thread_lock=True, quiet=True)
    url = demo.local_url.rstrip("/")

    def client(k: int, endpoint: str) -> list[tuple[float, str]]:
        out = []
        with httpx.Client(timeout=120) as http:
            for i in range(per_client):
                text = TEXTS[(k + i) % len(TEXTS)]
                start = time.perf_counter()
                answer = _http_predict(http, url, endpoint, [text, model_name])[0]
                label = answer["label"] if "confidences" in answer else max(answer, key=answer.get)
                out.append(((time.perf_counter() - start) * 1000, label))
        return out

    results: dict[str, dict[str, list]] = {e: {"rps": [], "ms": [], "labels": []} for e in ("predict", "predict_batch")}
    try:
        for endpoint in results:  # untimed: load the model, warm the server
            client(0, endpoint)
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            for _ in range(rounds):
                for endpoint, r in results.items():
                    start = time.perf_counter()
                    done = list(pool.map(lambda k: client(k, endpoint), range(clients)))
                    r["rps"].append(clients * per_client / (time.perf_counter() - start))
                    for k, calls in enumerate(done):
                        r["ms"] += [ms for ms, _ in calls]
                        r["labels"] += [(k, i, label) for i, (_, label) in enumerate(calls)]
    finally:
        demo.close()
    if sorted(results["predict"]["labels"]) != sorted(results["predict_batch"]["labels"]):
        raise RuntimeError("/predict and /predict_batch gave different labels for the same requests")
    out = {"clients": clients, "requests": clients * per_client * rounds}
    for endpoint, r in results.items():
        out[endpoint] = {"requests_per_s": float(np.mean(r["rps"])), "p50_ms": float(np.percentile(r["ms"], 50)),
                         "p95_ms": float(np.percentile(r["ms"], 95))}
    out["batching_speedup"] = out["predict_batch"]["requests_per_s"] / out["predict"]["requests_per_s"]
    return out

