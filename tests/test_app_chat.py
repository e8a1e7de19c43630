"""The assistant chat tab: its handlers called directly on an assistant made for this module (the ci build's
mini-GPT instruction-tuned for 40 steps, seconds; its replies are poor, which is not what is tested here),
then the dashboard served on 127.0.0.1 and called through gradio_client (/chat: the reply, streamed; errors;
20 clients at once). A build without the assistant says how to make it."""
from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import pytest

import apps.chat
import apps.classify
import apps.common
import apps.dashboard
from apps.chat import TAB, chat, history_messages, make_demo, prepare, respond
from labkit.data import load_task
from labkit.folders import load_model, save_model
from labkit.instruct import InstructConfig, answer, instruction_tune, with_chat_template
from labkit.sampling import SamplingConfig
from labkit.training import TrainConfig

QUESTION = "Where was Emma Smith born?"
SYSTEM = "You are the TinyWorld assistant. Answer questions about TinyWorld."
HISTORY = [{"role": "user", "content": "王伟住在哪里？"}, {"role": "assistant", "content": "王伟住在上海。"}]


@pytest.fixture(scope="module")
def build(ci_build, tmp_path_factory):
    """A build folder: the ci build's entries linked (never written) and an `assistant` tuned here."""
    out = tmp_path_factory.mktemp("chat") / "ci"
    out.mkdir()
    for entry in ci_build.iterdir():
        if entry.name != "assistant":
            (out / entry.name).symlink_to(entry)
    model, tok = load_model(ci_build / "text-generation")
    with_chat_template(tok)
    cfg = InstructConfig(train=TrainConfig(steps=40, batch_size=16, lr=3e-3, eval_every=40, warmup_ratio=0.05,
                                           progress=False), max_length=128)
    instruction_tune(model, tok, list(load_task("instructions", size="ci")["train"]), cfg)
    save_model(model.cpu().eval(), tok, out / "assistant")
    return out


@pytest.fixture(scope="module")
def store(build):
    return apps.common.ModelStore(build)


def _error(fn, *args) -> str:
    with pytest.raises(gr.Error) as info:
        out = fn(*args)
        if hasattr(out, "__next__"):  # a handler that streams raises on its first step
            list(out)
    return info.value.message


def _last(gen):
    last = None
    for last in gen:
        pass
    return last


# ----------------------------------------------------------------------------- replies
def test_the_tab_finds_the_assistant_and_its_chat_template(store, build):
    assert store.folders(TAB) == {"assistant": build / "assistant"}
    m = store.get(TAB)
    assert m.tokenizer.chat_template and next(m.model.parameters()).device.type == apps.common.DEVICE.type


@pytest.mark.parametrize("history, system", [(None, ""), (HISTORY, SYSTEM), (HISTORY, "")])
def test_a_greedy_reply_is_labkits_answer_to_the_whole_chat(store, history, system):
    m = store.get(TAB)
    messages = ([{"role": "system", "content": system}] if system else []) + (history or []) + \
        [{"role": "user", "content": QUESTION}]
    expected = answer(m.model, m.tokenizer, messages, SamplingConfig(max_new_tokens=16))
    assert _last(chat(store, QUESTION, history, system, 16, 0.0, 0)) == expected


def test_the_reply_streams_one_piece_at_a_time(store):
    outputs = list(respond(store, QUESTION, None, SYSTEM, 12, 1.0, 3))
    assert len(outputs) >= 3  # at least two pieces, then the final status
    texts = [shown[-1]["content"] for shown, _, _ in outputs]
    assert all(len(a) <= len(b) for a, b in zip(texts, texts[1:])) and texts[0] != texts[-2]
    for n, (shown, box, status) in enumerate(outputs[:-1], 1):
        assert box == "" and status.startswith(f"Writing… {n} word piece")
        assert shown[:-1] == [{"role": "user", "content": QUESTION}] and shown[-1]["role"] == "assistant"
    assert outputs[-1][2].startswith("**") and "sampling, temperature 1, seed 3" in outputs[-1][2]
    assert texts[-1] == _last(chat(store, QUESTION, None, SYSTEM, 12, 1.0, 3))  # the API writes the same reply
    streamed = list(chat(store, QUESTION, None, SYSTEM, 12, 1.0, 3))
    assert streamed == texts[:len(streamed)] and len(streamed) >= 2


def test_a_seed_fixes_a_sampled_reply(store):
    run = lambda seed: _last(chat(store, QUESTION, None, "", 20, 1.5, seed))  # noqa: E731
    assert run(7) == run(7)
    assert len({run(seed) for seed in range(5)}) > 1


def test_multi_turn_prompts_hold_the_earlier_turns(store):
    req = prepare(store, "And where does he work?", HISTORY, SYSTEM, 16)
    assert req.messages == [{"role": "system", "content": SYSTEM}, *HISTORY,
                            {"role": "user", "content": "And where does he work?"}]
    text = store.get(TAB).tokenizer.decode(req.prompt_ids)
    assert text.startswith("[CLS] system : you are the tinyworld assistant")
    assert "user : 王 伟 住 在 哪 里 ？ [SEP] assistant : 王 伟 住 在 上 海 。 [SEP] user : and where" in text
    assert text.endswith("[SEP] assistant :") and req.dropped == 0
    # the page's own history (the Chatbot's value: content as a list of parts) reads the same
    page = gr.Chatbot().postprocess(HISTORY).model_dump()
    assert page[0]["content"] == [{"text": "王伟住在哪里？", "type": "text"}]
    assert history_messages(page) == HISTORY
    shown, _, _ = _last(respond(store, "And where does he work?", page, SYSTEM, 8, 0.0, 0))
    assert shown[:3] == [*HISTORY, {"role": "user", "content": "And where does he work?"}]


def test_the_oldest_turns_give_way_when_the_chat_is_too_long(store):
    limit = store.get(TAB).max_position
    history = []
    for i in range(12):
        history += [{"role": "user", "content": f"Where was person number {i} born in the old days?"},
                    {"role": "assistant", "content": f"Person number {i} was born in Paris long ago."}]
    req = prepare(store, QUESTION, history, SYSTEM, 40)
    assert req.dropped > 0 and req.dropped % 2 == 0 and len(req.prompt_ids) + 40 <= limit
    assert req.messages[0]["role"] == "system" and req.messages[1] == history[req.dropped]
    assert req.messages[1]["role"] == "user" and req.messages[-2:] == [history[-1], {"role": "user", "content": QUESTION}]
    *_, status = _last(respond(store, QUESTION, history, SYSTEM, 40, 0.0, 0))
    assert f"the {req.dropped} earliest turns were left out" in status


def test_empty_replies_in_the_history_are_skipped():
    assert history_messages([{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""},
                             {"role": "assistant", "content": [{"type": "text", "text": "  "}]}]) == [
        {"role": "user", "content": "hi"}]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("args, message", [
    (("",), "The message is empty"),
    ((None,), "Please enter a message"),
    ((["hi"],), "The message must be a string, got list"),
    (("x" * 1001,), "limit is 1,000"),
    (("🚀🚀 😀",), "knows none of the characters"),
    ((QUESTION, "hello"), "The history must be a list of {'role', 'content'} turns, got str"),
    ((QUESTION, {"role": "user"}), "The history must be a list"),
    ((QUESTION, ["hi"]), "History turn 1 must be a dict with keys 'role' and 'content'"),
    ((QUESTION, [{"role": "user"}]), "History turn 1 must be a dict with keys 'role' and 'content'"),
    ((QUESTION, [{"role": "tool", "content": "x"}]), "History turn 1 has role 'tool'"),
    ((QUESTION, [{"role": "system", "content": "x"}]), "put a system prompt in its own field"),
    ((QUESTION, [{"role": "user", "content": 3}]), "History turn 1 has content of type int"),
    ((QUESTION, [{"role": "user", "content": [{"type": "file", "file": {"path": "a.png"}}]}]),
     "something other than text"),
    ((QUESTION, [{"role": "user", "content": "x" * 2001}]), "history turn 1 has 2,001 characters"),
    ((QUESTION, [{"role": "user", "content": "hi"}] * 101), "The history has 101 turns; the limit is 100"),
    ((QUESTION, None, 42), "The system prompt must be a string, got int"),
    ((QUESTION, None, "y" * 1001), "The system prompt has 1,001 characters"),
    ((QUESTION, None, "", 0), "The number of new word pieces must be between 1 and 96, got 0"),
    ((QUESTION, None, "", 97), "The number of new word pieces must be between 1 and 96, got 97"),
    ((QUESTION, None, "", 2.5), "The number of new word pieces must be a whole number, got 2.5"),
    ((QUESTION, None, "", "ten"), "The number of new word pieces must be a whole number, got 'ten'"),
    ((QUESTION, None, "", 10, -0.5), "The temperature must be at least 0 and at most 5, got -0.5"),
    ((QUESTION, None, "", 10, 6), "The temperature must be at least 0 and at most 5, got 6"),
    ((QUESTION, None, "", 10, "hot"), "The temperature must be a number, got 'hot'"),
    ((QUESTION, None, "", 10, float("nan")), "The temperature must be a number"),
    ((QUESTION, None, "", 10, 1.0, "lucky"), "The seed must be a whole number, got 'lucky'"),
    ((QUESTION, None, "", 10, 1.0, -1), "The seed must be between 0 and"),
])
def test_bad_input_is_a_gr_error(store, args, message):
    assert message in _error(chat, store, *args)
    assert message in _error(respond, store, *args)


def test_a_message_too_long_for_the_model_is_refused(store):
    limit = store.get(TAB).max_position
    message = _error(chat, store, "a " * (limit - 10), None, "", 40)
    assert f"more than the {limit} this model reads" in message and "shorten it" in message


# ----------------------------------------------------------------------------- builds and folders
def test_a_build_without_the_assistant_says_how_to_make_it(ci_build, tmp_path):
    old = tmp_path / "ci"
    old.mkdir()
    for entry in ci_build.iterdir():
        if entry.name != "assistant":
            (old / entry.name).symlink_to(entry)
    store = apps.common.ModelStore(old)
    assert store.folders(TAB) == {}
    message = _error(chat, store, QUESTION)
    assert "has no assistant" in message and f"labkit build --scale ci --assistant-only --out {old}" in message
    assert "other tabs work" in message
    labels, _ = apps.classify.classify(store, "The phone is excellent.", "sentiment")
    assert set(labels) == {"negative", "positive"}
    store.load_all()  # labkit demo's start: the missing optional folder is not an error
    demo = apps.dashboard.make_demo(store)  # the page is made, with the note in the tab
    assert {"chat", "chat_turn", "generate"} <= {fn.api_name for fn in demo.fns.values()}


def test_an_assistant_folder_opens_in_the_chat_tab_and_a_plain_gpt_does_not(ci_build, build, tmp_path):
    store = apps.common.ModelStore(tmp_path / "no-build")
    assert store.point(build / "assistant") == TAB
    assert store.point(ci_build / "text-generation") == "text-generation"
    assert _last(chat(store, QUESTION, None, "", 5)) == _last(chat(apps.common.ModelStore(build), QUESTION, None, "", 5))


def test_the_page_is_made_without_loading_a_model(build, monkeypatch):
    monkeypatch.setattr(apps.common, "load_model", lambda folder: pytest.fail(f"loaded {folder}"))
    demo = make_demo(apps.common.ModelStore(build))
    assert {"chat", "chat_turn"} <= {fn.api_name for fn in demo.fns.values()}


def test_the_page_quotes_the_builds_scores(build, tmp_path):
    out = tmp_path / "ci"
    out.mkdir()
    (out / "assistant").symlink_to(build / "assistant")
    report = {"scale": "ci", "models": {"assistant": {"parameters": 123456, "metrics": {
        "f1": 0.52, "refusal_rate": 0.55, "hallucination_rate": 0.54}}}}
    (out / "report.json").write_text(json.dumps(report))
    about = apps.chat._about(apps.common.ModelStore(out))
    assert "only knows TinyWorld, and it makes things up" in about and "(123,456 parameters)" in about
    assert "token F1 is 0.52" in about and "refused 55%" in about and "54% of its replies" in about


# ----------------------------------------------------------------------------- through the API
gradio_client = pytest.importorskip("gradio_client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(build):
    """The whole dashboard on a store of the build with the assistant, on a free 127.0.0.1 port."""
    demo = apps.dashboard.make_demo(apps.common.ModelStore(build))
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), share=False, prevent_thread_lock=True, quiet=True)
    yield demo.local_url
    demo.close()


def _connect(url: str):
    return gradio_client.Client(url, verbose=False, analytics_enabled=False, download_files=False)


@pytest.fixture(scope="module")
def client(server):
    return _connect(server)


def test_the_api_returns_the_reply(client, store):
    assert "/chat" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    reply = client.predict(QUESTION, HISTORY, SYSTEM, 16, 0.0, 0, api_name="/chat")
    assert reply == _last(chat(store, QUESTION, HISTORY, SYSTEM, 16, 0.0, 0))
    assert client.predict(QUESTION, api_name="/chat") == _last(chat(store, QUESTION))  # defaults: a new chat, greedy


def test_the_api_streams_the_growing_reply(client, store):
    job = client.submit(QUESTION, None, "", 12, 1.0, 5, api_name="/chat")
    final = job.result(timeout=60)
    outputs = job.outputs()
    assert outputs == list(chat(store, QUESTION, None, "", 12, 1.0, 5)) and len(outputs) >= 2
    assert outputs[-1] == final


def test_the_pages_event_is_not_an_api_endpoint(client):
    """The page's event takes the Chatbot's format; clients are given /chat only."""
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert "/chat" in named and "/chat_turn" not in named
    with pytest.raises(Exception):
        client.predict(QUESTION, HISTORY, SYSTEM, 8, 0.0, 0, api_name="/chat_turn")
    assert isinstance(client.predict(QUESTION, None, "", 3, 0.0, 0, api_name="/chat"), str)  # still up


@pytest.mark.parametrize("args, message", [
    (("   ", None, "", 10, 0.0, 0), "The message is empty"),
    ((QUESTION, "not a list", "", 10, 0.0, 0), "The history must be a list"),
    ((QUESTION, [{"role": "robot", "content": "hi"}], "", 10, 0.0, 0), "History turn 1 has role 'robot'"),
    ((QUESTION, None, "", 0, 0.0, 0), "The number of new word pieces must be between 1"),
    ((QUESTION, None, "", 10, "hot", 0), "The temperature must be a number, got 'hot'"),
])
def test_bad_input_through_the_api_is_an_error_message(client, args, message):
    with pytest.raises(Exception) as info:
        client.predict(*args, api_name="/chat")
    assert message in str(info.value) and "Traceback" not in str(info.value)
    assert isinstance(client.predict(QUESTION, None, "", 3, 0.0, 0, api_name="/chat"), str)  # still up


def test_twenty_concurrent_chats(server, store):
    clients = [_connect(server) for _ in range(20)]

    def call(i: int) -> str:
        history = HISTORY if i % 2 else None
        return clients[i].predict(QUESTION, history, SYSTEM, 16, 1.0, i % 5, api_name="/chat")

    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(call, range(20)))
    expected = {(i % 2, i % 5): _last(chat(store, QUESTION, HISTORY if i % 2 else None, SYSTEM, 16, 1.0, i % 5))
                for i in range(10)}
    assert replies == [expected[(i % 2, i % 5)] for i in range(20)]  # each kept its own history and seed
    assert isinstance(_connect(server).predict(QUESTION, None, "", 2, 0.0, 0, api_name="/chat"), str)
