"""The dashboard served on 127.0.0.1 and called through gradio_client: every api_name with
good and bad input, then 20 clients at once; the server must answer after each. (The
text-generation endpoints, /generate and /generation_step, are called in test_app_generate.py.)"""
from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest


gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402

ENDPOINTS = {"/classify", "/predict", "/predict_batch", "/translate", "/answer", "/attention", "/token_attention",
             "/generate", "/generation_step", "/chat"}
CONTEXT = "In 2008, Guo Jianhua started Orchid Bank. Orchid Bank is based in Istanbul."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ci_build):
    """make_demo on a store of the ci build, served on a free 127.0.0.1 port (sharing off), closed after the module."""
    from apps.common import ModelStore
    from apps.dashboard import make_demo

    demo = make_demo(ModelStore(ci_build))
    demo.launch(server_name="127.0.0.1", server_port=free_port(), share=False, prevent_thread_lock=True,
                quiet=True)
    yield demo.local_url
    demo.close()


def connect(url: str) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=False)


@pytest.fixture(scope="module")
def client(server):
    return connect(server)


def assert_alive(client: Client) -> None:
    label, _ = client.predict("The phone is excellent.", "sentiment", api_name="/classify")
    assert label["label"] in {"negative", "positive"}


def test_every_endpoint_is_named(client):
    assert ENDPOINTS <= set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])


def test_classify(client):
    label, highlighted = client.predict("The phone is excellent.", "sentiment", api_name="/classify")
    assert label["label"] in {"negative", "positive"}  # (a ci model is weak: no claim on which)
    assert {c["label"] for c in label["confidences"]} == {"negative", "positive"}
    assert "".join(piece["token"] for piece in highlighted) == "The phone is excellent."
    label, _ = client.predict("The Hangzhou Giants won the league.", "topic", api_name="/classify")
    assert label["label"] in {"business", "sports", "technology", "health", "politics"}
    # the real encoder's classifier (labkit build --real), through the same endpoint
    label, _ = client.predict("The marathon was postponed because of the storm.", "real-topic", api_name="/classify")
    assert label["label"] in {"business", "sports", "technology", "health", "politics"}


def test_translate(client):
    for decoding in ("greedy", "beam search (4 beams)"):
        text, plot = client.predict("I am from France.", decoding, api_name="/translate")
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text)
        assert plot["type"] == "matplotlib"


def test_answer(client):
    highlighted, summary, table = client.predict("Who started Orchid Bank?", CONTEXT, api_name="/answer")
    assert "".join(piece["token"] for piece in highlighted) == CONTEXT
    assert "Answer" in summary
    assert table["headers"] == ["rank", "answer", "score", "share", "characters"] and table["data"]


def test_attention(client):
    plot, chooser, looks = client.predict("The phone is excellent.", 2, 1, api_name="/attention")
    assert plot["type"] == "matplotlib"
    assert chooser["value"] == 1 and [c[1] for c in chooser["choices"]] == list(range(7))
    assert looks["label"]
    looks = client.predict("The phone is excellent.", 2, 1, 3, api_name="/token_attention")
    assert sum(c["confidence"] for c in looks["confidences"]) == pytest.approx(1.0, abs=1e-2)


def test_predict_one_at_a_time_and_batched_agree_with_classify(client, server):
    """/predict (labels only) and /predict_batch (the queue batches waiting requests into one model call) give
    /classify's probabilities; twenty clients at once on /predict_batch all get their own text's answer."""
    reviews = [f"The screen is {word}." for word in ("excellent", "terrible") * 10]
    expected = [client.predict(r, "sentiment", api_name="/classify")[0] for r in reviews[:2]]
    one = [client.predict(r, "sentiment", api_name="/predict") for r in reviews[:2]]
    for e, o in zip(expected, one):
        assert max(o, key=o.get) == e["label"]
        assert {c["label"]: c["confidence"] for c in e["confidences"]} == pytest.approx(o, abs=1e-3)
    clients = [connect(server) for _ in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        batched = list(pool.map(lambda i: clients[i].predict(reviews[i], "sentiment", api_name="/predict_batch"), range(20)))
    assert [b["label"] for b in batched[:2]] == [e["label"] for e in expected]
    assert [b["label"] for b in batched] == [batched[i % 2]["label"] for i in range(20)]  # the same text, the same answer


def test_predict_many_refuses_mismatched_lists(ci_build):
    import gradio as gr

    from apps.classify import predict_many
    from apps.common import ModelStore

    store = ModelStore(ci_build)
    with pytest.raises(gr.Error, match="one model name per text"):
        predict_many(store, ["a", "b"], ["sentiment"])
    # a bad request in a batch answers itself with an error and leaves the others alone
    (good, empty, unknown), = predict_many(store, ["The phone is excellent.", "   ", "fine"], ["sentiment", "sentiment", "weather"])
    assert set(good) == {"negative", "positive"} and empty.startswith("error: The text is empty")
    assert unknown.startswith("error: Unknown model 'weather'")
    with pytest.raises(gr.Error, match="The text is empty"):  # all bad: an error, as for one request
        predict_many(store, ["   "], ["sentiment"])


@pytest.mark.parametrize("api_name, args, message", [
    ("/predict", ("   ", "sentiment"), "The text is empty"),
    ("/predict", ("fine", "weather"), "Unknown model 'weather'"),
    ("/predict_batch", ("   ", "sentiment"), "The text is empty"),
    ("/classify", ("   ", "sentiment"), "The text is empty"),
    ("/classify", ("good " * 300, "sentiment"), "this model reads at most 128"),
    ("/classify", ("🚀🚀 😀", "sentiment"), "knows none of the characters"),
    ("/classify", (12345, "sentiment"), "The text must be a string, got int"),
    ("/classify", ({"text": "hi"}, "sentiment"), "The text must be a string, got dict"),
    ("/classify", ("fine", "weather"), "Unknown model 'weather'; choose one of sentiment, topic"),
    ("/translate", (None, "greedy"), "Please enter a text"),
    ("/translate", ("Hello.", 4), "Unknown decoding 4"),
    ("/answer", ("", CONTEXT), "The question is empty"),
    ("/answer", ("Who?", "\n\x00"), "The context is empty"),
    ("/answer", (["Who?"], CONTEXT), "The question must be a string, got list"),
    ("/attention", ("Hi.", 7, 1), "The layer must be between 1 and 2, got 7"),
    ("/attention", ("Hi.", "two", 1), "The layer must be a whole number, got 'two'"),
    ("/attention", ("Hi.", 1, None), "The head must be a whole number, got None"),
    ("/token_attention", ("Hi.", 1, 1, 99), "The token must be between 0 and"),
    ("/token_attention", ("Hi.", 1, 1, [1]), "The token must be a whole number, got [1]"),
])
def test_bad_input_is_an_error_message(client, api_name, args, message):
    with pytest.raises(Exception) as info:
        client.predict(*args, api_name=api_name)
    assert message in str(info.value)
    assert "Traceback" not in str(info.value)
    assert_alive(client)


def test_twenty_concurrent_clients(server):
    clients = [connect(server) for _ in range(20)]
    reviews = [f"The screen is {word}." for word in ("excellent", "terrible") * 10]

    def call(i: int) -> str:
        label, _ = clients[i].predict(reviews[i], "sentiment", api_name="/classify")
        return label["label"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        labels = list(pool.map(call, range(20)))
    assert len(labels) == 20 and set(labels) <= {"negative", "positive"}
    assert_alive(connect(server))
