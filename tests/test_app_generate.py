"""The text-generation tab: its handler called directly on the ci build's mini-GPT (greedy is
labkit's greedy, a seed fixes a sampled text, the distribution shown is the one drawn from, bad
input is a gr.Error), then the dashboard served on 127.0.0.1 and called through gradio_client
(the final result, the streamed steps, errors, 20 clients at once)."""
from __future__ import annotations

import re
import socket
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import gradio as gr
import pytest
import torch

import apps.classify
import apps.common
import apps.dashboard
import apps.generate
from apps.generate import TAB, complete, generate, prepare, show_step
from labkit.sampling import SamplingConfig, next_token_distribution
from labkit.sampling import generate as labkit_generate
from labkit.translate import join_cjk

PROMPT = "chen wei works at"


@pytest.fixture(scope="module")
def store(ci_build):
    """A model store on the ci build, shared by the module's tests (the mini-GPT loads once)."""
    return apps.common.ModelStore(ci_build)


def _error(fn, *args) -> str:
    with pytest.raises(gr.Error) as info:
        fn(*args)
    return info.value.message


def _prompt_ids(tokenizer, prompt: str) -> torch.Tensor:
    """How the build prompts the mini-GPT: [CLS] and the prompt's word pieces."""
    return torch.tensor([[tokenizer.cls_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]])


# ----------------------------------------------------------------------------- decoding
def test_greedy_is_labkit_greedy(store):
    m = store.get(TAB)
    assert next(m.model.parameters()).device.type == apps.common.DEVICE.type  # the GPU when there is one
    for prompt in ("the weather in", PROMPT):
        text, summary, candidates, caption, rows, slider, steps = complete(store, prompt, "greedy", 1.0, 0, 1.0, 24, 0)
        ids = _prompt_ids(m.tokenizer, prompt)
        cfg = SamplingConfig(max_new_tokens=24, eos_token_id=m.tokenizer.sep_token_id)
        expected = labkit_generate(m.model, ids, cfg=cfg, pad_token_id=m.tokenizer.pad_token_id)[0]
        assert [s["id"] for s in steps] == expected[ids.size(1):].tolist()
        assert text == join_cjk(m.tokenizer.decode(expected, skip_special_tokens=True))
        assert [s["rank"] for s in steps] == [1] * len(steps)  # greedy takes the most probable piece
        assert [r[0] for r in rows] == list(range(1, len(steps) + 1)) and slider.value == len(steps)
        assert summary.startswith(f"**{len(steps)} new word pieces**") or "[SEP]: the model ended" in summary


def test_output_streams_one_piece_at_a_time(store):
    outputs = list(generate(store, PROMPT, "sampling", 1.0, 0, 1.0, 12, 3))
    steps = outputs[-1][6]
    assert len(outputs) == len(steps) >= 2
    for n, (text, summary, candidates, caption, rows, slider, so_far) in enumerate(outputs, 1):
        assert len(so_far) == len(rows) == slider.value == n
        assert so_far == steps[:n] and caption.startswith(f"Step {n}: the model chose **{steps[n - 1]['token']}**")
        assert text.startswith(PROMPT)
        assert summary.startswith("Writing…") == (n < len(outputs))


def test_a_seed_fixes_the_sampled_text(store):
    run = partial(complete, store, PROMPT, "sampling", 1.0, 0, 1.0, 30)
    first, again = run(11), run(11)
    assert first[0] == again[0] and first[6] == again[6]
    texts = {run(seed)[0] for seed in range(5)}
    assert len(texts) > 1  # at temperature 1, five seeds do not all write the same 30 pieces


def test_distribution_shown_is_the_one_drawn_from(store):
    m = store.get(TAB)
    ids = _prompt_ids(m.tokenizer, PROMPT).to(apps.common.DEVICE)
    with torch.no_grad():
        logits = m.model(ids).logits[:, -1]
    for decoding, temperature, top_k, top_p in [("greedy", 1.0, 0, 1.0), ("sampling", 0.5, 0, 1.0),
                                                ("sampling", 1.0, 3, 1.0), ("sampling", 1.0, 0, 0.5)]:
        _, _, candidates, _, _, _, steps = complete(store, PROMPT, decoding, temperature, top_k, top_p, 20, 0)
        cfg = SamplingConfig(temperature=temperature, top_k=top_k or None, top_p=top_p if top_p < 1 else None)
        first = next_token_distribution(logits, cfg)[0] if decoding == "sampling" else logits.softmax(-1)[0]
        top = first.topk(apps.generate.TOP_CANDIDATES)
        expected = [(t, p) for t, p in zip(m.tokenizer.convert_ids_to_tokens(top.indices.tolist()),
                                           top.values.tolist()) if p > 0]
        assert [c["token"] for c in steps[0]["top"]] == [t for t, _ in expected]
        assert [c["probability"] for c in steps[0]["top"]] == pytest.approx([p for _, p in expected], abs=1e-4)
        for s in steps:
            probs = [c["probability"] for c in s["top"]]
            assert sum(probs) <= 1 + 1e-3 and probs == sorted(probs, reverse=True)
            assert s["rank"] >= 1 and 0 < s["probability"] <= probs[0]
            if decoding == "greedy":
                assert s["top"][0]["token"] == s["token"] and s["rank"] == 1
            if top_k:
                assert len(s["top"]) <= top_k and s["rank"] <= top_k
                assert sum(probs) == pytest.approx(1.0, abs=1e-3)  # the whole filtered distribution is listed
        assert candidates == {c["token"]: c["probability"] for c in steps[-1]["top"]}


def test_chinese_is_joined(store):
    text, *_ = complete(store, "今天", "greedy", 1.0, 0, 1.0, 20, 0)
    assert text.startswith("今天")
    assert not re.search(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", text), text


def test_show_step(store):
    *_, steps = complete(store, PROMPT, "sampling", 1.0, 0, 1.0, 10, 0)
    candidates, caption = show_step(steps, 2)
    assert candidates == {c["token"]: c["probability"] for c in steps[1]["top"]}
    assert caption.startswith(f"Step 2: the model chose **{steps[1]['token']}**")
    assert f"between 1 and {len(steps)}" in _error(show_step, steps, len(steps) + 1)
    assert "whole number" in _error(show_step, steps, "two")
    assert "Generate some text first" in _error(show_step, None, 1)
    assert "not a generation's steps" in _error(show_step, [{"x": 1}], 1)


# ----------------------------------------------------------------------------- bad input
def test_prompt_length_and_room_to_write(store):
    limit = store.get(TAB).max_position
    longest = "a " * (limit - 2)  # [CLS] + limit - 2 pieces: room for one new piece
    assert len(complete(store, longest, "greedy", 1.0, 0, 1.0, 1, 0)[6]) == 1
    assert "must be between 1 and 1, got 2" in _error(complete, store, longest, "greedy", 1.0, 0, 1.0, 2, 0)
    message = _error(complete, store, "a " * (limit - 1), "greedy", 1.0, 0, 1.0, 1, 0)
    assert f"this model reads at most {limit}" in message


@pytest.mark.parametrize("args, message", [
    (("",), "The prompt is empty"),
    ((" \n\x00",), "The prompt is empty"),
    ((None,), "Please enter a prompt"),
    ((42,), "The prompt must be a string, got int"),
    (("x" * 1001,), "limit is 1,000"),
    (("🚀🚀 😀",), "knows none of the characters"),
    ((PROMPT, "beam search"), "Unknown decoding 'beam search'; choose one of greedy, sampling"),
    ((PROMPT, None), "Unknown decoding None"),
    ((PROMPT, "sampling", 0), "The temperature must be greater than 0 and at most 5, got 0"),
    ((PROMPT, "sampling", -1.0), "The temperature must be greater than 0"),
    ((PROMPT, "sampling", 5.5), "at most 5, got 5.5"),
    ((PROMPT, "sampling", "hot"), "The temperature must be a number, got 'hot'"),
    ((PROMPT, "sampling", float("nan")), "The temperature must be a number"),
    ((PROMPT, "sampling", 1.0, -1), "The top-k must be between 0 and 3000, got -1"),
    ((PROMPT, "sampling", 1.0, 2.5), "The top-k must be a whole number, got 2.5"),
    ((PROMPT, "sampling", 1.0, "5"), "The top-k must be a whole number, got '5'"),
    ((PROMPT, "sampling", 1.0, 0, 0), "The top-p must be greater than 0 and at most 1, got 0"),
    ((PROMPT, "sampling", 1.0, 0, 1.2), "The top-p must be greater than 0 and at most 1, got 1.2"),
    ((PROMPT, "sampling", 1.0, 0, None), "The top-p must be a number, got None"),
    ((PROMPT, "sampling", 1.0, 0, 1.0, 0), "The number of new word pieces must be between 1 and"),
    ((PROMPT, "sampling", 1.0, 0, 1.0, 10_000), "The number of new word pieces must be between 1 and"),
    ((PROMPT, "sampling", 1.0, 0, 1.0, "ten"), "The number of new word pieces must be a whole number"),
    ((PROMPT, "sampling", 1.0, 0, 1.0, 10, "abc"), "The seed must be a whole number, got 'abc'"),
    ((PROMPT, "greedy", 1.0, 0, 1.0, 10, None), "The seed must be a whole number, got None"),
    ((PROMPT, "sampling", 1.0, 0, 1.0, 10, 1.5), "The seed must be a whole number, got 1.5"),
    ((PROMPT, "sampling", 1.0, 0, 1.0, 10, -1), "The seed must be between 0 and"),
])
def test_bad_input_is_a_gr_error(store, args, message):
    assert message in _error(complete, store, *args)


def test_the_largest_new_token_count_is_allowed(store):
    room = store.get(TAB).max_position - len(prepare(store, PROMPT).prompt_ids)
    assert prepare(store, PROMPT, "greedy", 1.0, 0, 1.0, room, 0).cfg.max_new_tokens == room
    assert f"between 1 and {room}, got {room + 1}" in _error(prepare, store, PROMPT, "greedy", 1.0, 0, 1.0, room + 1, 0)


# ----------------------------------------------------------------------------- builds and folders
def test_a_build_without_the_gpt_says_how_to_add_it(ci_build, tmp_path):
    """A build made before the mini-GPT joined the build: this tab says what to run; the others work."""
    old = tmp_path / "ci"
    old.mkdir()
    for entry in ci_build.iterdir():
        if entry.name != TAB:
            (old / entry.name).symlink_to(entry)
    store = apps.common.ModelStore(old)
    message = _error(complete, store, PROMPT)
    assert "has no text-generation model" in message and f"--gpt-only --out {old}" in message
    assert "--scale ci" in message and "other tabs work" in message
    labels, _ = apps.classify.classify(store, "The phone is excellent.", "sentiment")
    assert set(labels) == {"negative", "positive"}
    demo = apps.dashboard.make_demo(store)  # the page is made, with the note in the tab
    assert "generate" in {fn.api_name for fn in demo.fns.values()}


def test_a_gpt_folder_opens_in_the_tab(ci_build, tmp_path):
    store = apps.common.ModelStore(tmp_path / "no-build")
    assert store.point(ci_build / TAB) == TAB
    text, *_ = complete(store, "the weather in", "greedy", 1.0, 0, 1.0, 5, 0)
    assert text.startswith("the weather in")


# ----------------------------------------------------------------------------- through the API
gradio_client = pytest.importorskip("gradio_client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ci_build):
    """The whole dashboard on a store of the ci build, on a free 127.0.0.1 port, closed after the module."""
    demo = apps.dashboard.make_demo(apps.common.ModelStore(ci_build))
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), share=False, prevent_thread_lock=True, quiet=True)
    yield demo.local_url
    demo.close()


def _connect(url: str):
    return gradio_client.Client(url, verbose=False, analytics_enabled=False, download_files=False)


@pytest.fixture(scope="module")
def client(server):
    return _connect(server)


def test_the_api_returns_the_final_result(client, store):
    args = (PROMPT, "greedy", 1.0, 0, 1.0, 24, 0)
    text, summary, candidates, caption, table, step, steps = client.predict(*args, api_name="/generate")
    direct = complete(store, *args)
    assert text == direct[0] and caption == direct[3] and steps == direct[6]
    assert step["value"] == step["maximum"] == len(steps)  # the step slider, set to the last step
    assert table["headers"] == apps.generate.TABLE_HEADERS and len(table["data"]) == len(steps)
    assert candidates["label"] == steps[-1]["top"][0]["token"]
    assert "new word pieces" in summary
    candidates, caption = client.predict(steps, 1, api_name="/generation_step")
    assert candidates["label"] == steps[0]["token"] and caption.startswith("Step 1:")


def test_the_api_streams_every_step(client):
    job = client.submit(PROMPT, "sampling", 1.0, 0, 1.0, 12, 5, api_name="/generate")
    final = job.result(timeout=60)
    outputs = job.outputs()
    assert len(outputs) == len(final[6]) >= 2  # one update per new word piece, the last is the result
    assert [len(o[6]) for o in outputs] == list(range(1, len(outputs) + 1))
    assert outputs[-1][0] == final[0]


@pytest.mark.parametrize("args, message", [
    (("   ", "greedy", 1.0, 0, 1.0, 10, 0), "The prompt is empty"),
    ((PROMPT, "beam", 1.0, 0, 1.0, 10, 0), "Unknown decoding 'beam'"),
    ((PROMPT, "sampling", 0, 0, 1.0, 10, 0), "The temperature must be greater than 0"),
    ((PROMPT, "sampling", 1.0, "many", 1.0, 10, 0), "The top-k must be a whole number, got 'many'"),
    ((PROMPT, "sampling", 1.0, 0, 1.0, 10, "lucky"), "The seed must be a whole number, got 'lucky'"),
])
def test_bad_input_through_the_api_is_an_error_message(client, args, message):
    with pytest.raises(Exception) as info:
        client.predict(*args, api_name="/generate")
    assert message in str(info.value) and "Traceback" not in str(info.value)
    text, *_ = client.predict(PROMPT, "greedy", 1.0, 0, 1.0, 3, 0, api_name="/generate")  # still up
    assert text.startswith(PROMPT)


def test_twenty_concurrent_clients(server, store):
    clients = [_connect(server) for _ in range(20)]

    def call(i: int) -> str:
        return clients[i].predict(PROMPT, "sampling", 1.0, 0, 0.9, 20, i % 5, api_name="/generate")[0]

    with ThreadPoolExecutor(max_workers=20) as pool:
        texts = list(pool.map(call, range(20)))
    expected = [complete(store, PROMPT, "sampling", 1.0, 0, 0.9, 20, seed)[0] for seed in range(5)]
    assert texts == [expected[i % 5] for i in range(20)]  # each request kept its own seed
    assert _connect(server).predict(PROMPT, "greedy", 1.0, 0, 1.0, 2, 0, api_name="/generate")[0].startswith(PROMPT)
