"""What serving costs: the classify endpoint called through gradio_client against the same handler called directly.

    from apps.overhead import api_overhead
    api_overhead("artifacts/cpu", n=100)   # {"direct_p50_ms": ..., "api_p50_ms": ..., "overhead_p50_ms": ...}

``labkit bench`` calls it (the dashboard lives in apps/, which labkit never imports at module level). The two
are timed alternately, request by request, on the same texts, so the difference is the server's share:
HTTP, the queue, JSON and the client's polling.
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


def api_overhead(build_dir: str | Path, n: int = 100, *, model_name: str = "sentiment") -> dict[str, float]:
    """p50 and p95 milliseconds of ``n`` calls of the classify handler, directly and through the served API
    (127.0.0.1, one client, after 5 untimed calls of each), and their difference."""
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
        times: dict[str, list[float]] = {"direct": [], "api": []}
        for i in range(n + 5):
            text = TEXTS[i % len(TEXTS)]
            for kind in ("direct", "api"):
                start = time.perf_counter()
                if kind == "direct":
                    classify(store, text, model_name)
                else:
                    client.predict(text, model_name, api_name="/classify")
                if i >= 5:
                    times[kind].append((time.perf_counter() - start) * 1000)
        client.close() if hasattr(client, "close") else None
    finally:
        demo.close()
    out = {}
    for kind, ms in times.items():
        out[f"{kind}_p50_ms"], out[f"{kind}_p95_ms"] = float(np.percentile(ms, 50)), float(np.percentile(ms, 95))
    out["overhead_p50_ms"] = out["api_p50_ms"] - out["direct_p50_ms"]
    out["n"] = n
    return out
