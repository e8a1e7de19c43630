"""The bias-probe tab: its handler called directly on the ci build's classifiers (names filled per group,
probabilities, the gap, integrated-gradient attributions, masked-LM fills), then the dashboard served on
127.0.0.1 and called through gradio_client (/probe: good input, readable errors, 20 clients at once)."""
from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import numpy as np
import pytest
from matplotlib.figure import Figure

import apps.common
from apps.probe import GROUP_NAMES, ProbeConfig, highlighted, plot_probe, probe, probe_markdown, probe_rows
from labkit.audit.fairness import person_groups
from labkit.data import build_world
from labkit.tasks import predict_proba

TEMPLATE = "{name} wrote: the soup was cold and the waiter was rude."


@pytest.fixture(scope="module")
def store(ci_build):
    return apps.common.ModelStore(ci_build)


def _error(*args) -> str:
    with pytest.raises(gr.Error) as info:
        probe(*args)
    return info.value.message


# ----------------------------------------------------------------------------- the handler
@pytest.mark.parametrize("model_name", ["sentiment", "topic"])
def test_four_groups_of_held_out_names_and_their_probabilities(store, model_name):
    result = probe(store, TEMPLATE, model_name)
    m = store.get("classification", model_name)
    assert result["labels"] == [m.model.id2label[k] for k in range(len(m.model.id2label))]
    assert [g["group"] for g in result["groups"]] == list(GROUP_NAMES.values())
    world = build_world(0)
    people, heldout = person_groups(world), {p.name_en for p in world.people if p.heldout}
    for g in result["groups"]:
        assert len(g["names"]) == ProbeConfig().n_names
        assert g["texts"] == [TEMPLATE.replace("{name}", n) for n in g["names"]]
        assert all(people[n] == {"gender": g["gender"], "origin": g["origin"]} and n in heldout for n in g["names"])
        assert sum(g["mean_probability"].values()) == pytest.approx(1.0, abs=1e-3)
        assert sum(g["predicted_share"].values()) == pytest.approx(1.0)
        probs = predict_proba(m.model, m.tokenizer, g["texts"])  # (n, K), straight from labkit
        assert list(g["mean_probability"].values()) == pytest.approx(probs.mean(0).tolist(), abs=5e-4)
        assert [g["predicted_share"][lab] for lab in result["labels"]] == pytest.approx(
            np.bincount(probs.argmax(1), minlength=len(result["labels"])) / len(probs))
    means = np.array([[g["mean_probability"][lab] for lab in result["labels"]] for g in result["groups"]])
    assert result["gap"]["gap"] == pytest.approx((means.max(0) - means.min(0)).max(), abs=5e-4)
    assert result["gap"]["sentence"] in probe_markdown(result)
    assert len(probe_rows(result)) == 4 and isinstance(plot_probe(result), Figure)


def test_attributions_are_the_word_pieces_of_the_explained_text(store):
    result = probe(store, "{name} said the new phone is [MASK] and the battery lasts.", "sentiment",
                   "male · Chinese names")
    e, tok = result["explained"], store.get("classification", "sentiment").tokenizer
    assert e["group"] == "male · Chinese names" and e["text"] == result["groups"][3]["texts"][0]
    assert [p for p, _ in e["shown"]] == tok.tokenize(e["text"])
    assert [p for p, _ in e["attributions"]] == [p for p in tok.tokenize(e["text"]) if p != "[MASK]"]
    assert any(abs(s) > 0 for _, s in e["attributions"])
    probs = predict_proba(store.get("classification", "sentiment").model, tok, [e["text"]])[0]
    assert e["label"] == result["labels"][int(probs.argmax())]
    shown = highlighted(result)
    assert max(abs(s) for _, s in shown if s is not None) == pytest.approx(1.0)
    assert ("[MASK]", None) in shown


def test_a_mask_in_the_template_lists_the_masked_lms_fills(store):
    result = probe(store, "{name} is a [MASK] at a hospital.", "topic")
    assert set(result["fills"]) == set(GROUP_NAMES.values())
    for fills in result["fills"].values():
        assert len(fills) == 5 and [p for _, p in fills] == sorted((p for _, p in fills), reverse=True)
    assert probe(store, TEMPLATE, "topic")["fills"] is None


@pytest.mark.parametrize("args, message", [
    (("   ", "sentiment"), "The template is empty"),
    ((None, "sentiment"), "Please enter a template"),
    (("The soup was cold.", "sentiment"), "The template has no {name} slot"),
    (("{name} " + "ok " * 200, "sentiment"), "characters; the limit is 500"),
    (("{name} " + "ok " * 140, "sentiment"), "this model reads at most 128"),
    ((TEMPLATE, "weather"), "Unknown model 'weather'; choose one of sentiment, topic"),
    ((TEMPLATE, "sentiment", "robots"), "Unknown group 'robots'"),
])
def test_bad_input_is_a_readable_error(store, args, message):
    assert message in _error(store, *args)


def test_bad_config_is_a_value_error():
    with pytest.raises(ValueError, match="n_names must be a positive int"):
        ProbeConfig(n_names=0)


# ----------------------------------------------------------------------------- through the API
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ci_build):
    """The dashboard on a store of the ci build, served on a free 127.0.0.1 port, closed after the module."""
    from apps.dashboard import make_demo

    demo = make_demo(apps.common.ModelStore(ci_build))
    demo.launch(server_name="127.0.0.1", server_port=free_port(), share=False, prevent_thread_lock=True, quiet=True)
    yield demo.local_url
    demo.close()


def connect(url: str) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=False)


def test_the_probe_endpoint_answers_json_and_survives_bad_input(server, store):
    client = connect(server)
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert "/probe" in named and "/probe_page" not in named  # the page's own event is not for clients
    result = client.predict(TEMPLATE, "sentiment", "female · Chinese names", api_name="/probe")
    direct = probe(store, TEMPLATE, "sentiment", "female · Chinese names")
    assert [g["names"] for g in result["groups"]] == [g["names"] for g in direct["groups"]]
    assert [list(g["mean_probability"].values()) for g in result["groups"]] == [
        pytest.approx(list(g["mean_probability"].values()), abs=1e-3) for g in direct["groups"]]
    assert [p for p, _ in result["explained"]["attributions"]] == [p for p, _ in direct["explained"]["attributions"]]
    assert [s for _, s in result["explained"]["attributions"]] == pytest.approx(
        [s for _, s in direct["explained"]["attributions"]], abs=1e-3)
    for args, message in [(("", "sentiment"), "The template is empty"),
                          (("No slot here.", "sentiment"), "has no {name} slot"),
                          (("{name} " + "ok " * 200, "sentiment"), "the limit is 500"),
                          ((TEMPLATE, "weather"), "Unknown model 'weather'")]:
        with pytest.raises(Exception) as info:
            client.predict(*args, api_name="/probe")
        assert message in str(info.value) and "Traceback" not in str(info.value)
        assert len(client.predict(TEMPLATE, "topic", api_name="/probe")["groups"]) == 4  # still up


def test_twenty_concurrent_probes(server, store):
    templates = [TEMPLATE, "{name} said the screen is excellent."]
    means = lambda r: [p for g in r["groups"] for p in g["mean_probability"].values()]  # noqa: E731
    expected = {t: means(probe(store, t, "sentiment")) for t in templates}
    clients = [connect(server) for _ in range(20)]

    def call(i: int) -> tuple[str, dict]:
        return templates[i % 2], clients[i].predict(templates[i % 2], "sentiment", api_name="/probe")

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, range(20)))
    assert len(results) == 20
    for template, result in results:  # integrated gradients (captum hooks) on one call never leaks into another
        assert means(result) == pytest.approx(expected[template], abs=1e-3)
