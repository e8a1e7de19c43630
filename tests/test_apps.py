"""The demos' handlers, called directly on the ci build's models: good input gives sensible
outputs, bad input raises gr.Error with a sentence a user can act on."""
from __future__ import annotations

import math
import re
import shutil
import threading
from functools import partial

import gradio as gr
import pytest

import apps.attention
import apps.chat
import apps.classify
import apps.common
import apps.generate
import apps.qa
import apps.translate
from labkit.folders import ModelFolderError


@pytest.fixture(scope="module")
def store(ci_build):
    """A model store on the ci build, shared by the module's tests (each model loads once)."""
    return apps.common.ModelStore(ci_build)


def _error(fn, *args) -> str:
    with pytest.raises(gr.Error) as info:
        fn(*args)
    return info.value.message


# ----------------------------------------------------------------------------- input checks
def test_clean_text_normalises_and_refuses():
    clean = apps.common.clean_text
    assert clean("  a\x00b\x1bc\td \n") == "a b c\td"
    assert clean("cafe\u0301") == "café"  # NFC
    assert "empty" in _error(clean, "   \n\t ")
    assert "empty" in _error(clean, "\x00\x07")
    assert "must be a string, got int" in _error(clean, 42)
    assert "Please enter" in _error(clean, None)
    assert "limit is 2,000" in _error(clean, "a" * 2001)


def test_check_int():
    check = apps.common.check_int
    assert check(2.0, "layer", 1, 3) == 2
    assert "between 1 and 3" in _error(check, 4, "layer", 1, 3)
    for bad in ("2", 1.5, True, None, float("nan")):
        assert "whole number" in _error(check, bad, "layer", 1, 3)


# ----------------------------------------------------------------------------- classification
def test_classify_sentiment(store):
    labels, pieces = apps.classify.classify(store, "The phone is excellent.", "sentiment")
    assert set(labels) == {"negative", "positive"}  # (a ci model is near chance: no claim on which wins)
    assert math.isclose(sum(labels.values()), 1.0, abs_tol=1e-3)
    assert "".join(p for p, _ in pieces) == "The phone is excellent."
    scores = [s for _, s in pieces if s is not None]
    assert len(scores) == 5  # The, phone, is, excellent, "."
    assert max(abs(s) for s in scores) == pytest.approx(1.0)


def test_word_importance_is_the_probability_drop(store):
    m = store.get("classification", "sentiment")
    probs, label, importance = apps.classify.word_importance(m.model, m.tokenizer, "Great battery, awful screen.")
    k = list(m.model.id2label.values()).index(label)
    from labkit.finetune import predict_proba

    without_great = predict_proba(m.model, m.tokenizer, [" battery, awful screen."])[0, k]
    assert importance[0][:2] == (0, 5)
    assert importance[0][2] == pytest.approx(probs[k] - without_great, abs=1e-5)


def test_classify_topic_labels(store):
    text = "The Hangzhou Giants won the league after a match in Cape Town."
    labels, _ = apps.classify.classify(store, text, "topic")
    assert set(labels) == {"business", "sports", "technology", "health", "politics"}


def test_classify_odd_characters_work(store):
    text = "The phone\x00 is excellent 😀 这款手机很好 ﷺ"
    labels, pieces = apps.classify.classify(store, text, "sentiment")
    assert set(labels) == {"negative", "positive"}
    assert "".join(p for p, _ in pieces) == "The phone  is excellent 😀 这款手机很好 ﷺ"


def test_classify_bad_input(store):
    classify = partial(apps.classify.classify, store)
    assert "empty" in _error(classify, "", "sentiment")
    assert "empty" in _error(classify, " \n ", "sentiment")
    assert "must be a string" in _error(classify, 3.5, "sentiment")
    assert "reads at most 128" in _error(classify, "good " * 200, "sentiment")
    assert "knows none of the characters" in _error(classify, "😀😀 🚀", "sentiment")
    assert "Unknown model 'weather'" in _error(classify, "fine", "weather")


# ----------------------------------------------------------------------------- translation
def test_translate_greedy_and_beam(store):
    for decoding in apps.translate.DECODINGS:
        text, figure = apps.translate.translate(store, "I am from France.", decoding)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text), text
        ax = figure.axes[0]
        rows, cols = ax.images[0].get_array().shape
        assert cols == len(ax.get_xticklabels()) == 7  # [CLS] i am from france . [SEP]
        assert rows == len(ax.get_yticklabels()) >= 2
        assert ax.get_yticklabels()[-1].get_text() == "[SEP]"


def test_translate_bad_input(store):
    translate = partial(apps.translate.translate, store)
    assert "empty" in _error(translate, "\t", "greedy")
    assert "reads at most 64" in _error(translate, "hello " * 80, "greedy")
    assert "Unknown decoding" in _error(translate, "Hello.", "sampling")
    assert "must be a string" in _error(translate, ["Hello."], "greedy")


# ----------------------------------------------------------------------------- question answering
CONTEXT = ("Helen Smith was born in Qingdao, China. She was born on 5 January 1959. She joined New Era Insurance "
           "as a receptionist. Helen Smith studied at Qingdao University. She moved to Seattle a few years ago.")


def test_answer_highlights_a_span_of_the_context(store):
    highlighted, summary, rows = apps.qa.answer(store, "Which city is Helen Smith living in?", CONTEXT)
    assert "".join(p for p, _ in highlighted) == CONTEXT
    answers = [p for p, label in highlighted if label == "answer"]
    assert len(answers) == 1 and answers[0] in CONTEXT
    assert summary.startswith("**Answer:**")
    assert 1 <= len(rows) <= apps.qa.N_BEST
    assert rows[0][1] == answers[0]
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))


def test_answer_bad_input(store):
    answer = partial(apps.qa.answer, store)
    assert "question is empty" in _error(answer, "  ", CONTEXT)
    assert "context is empty" in _error(answer, "Who?", "")
    message = _error(answer, "why " * 60, CONTEXT)
    assert re.match(r"The question is \d+ word pieces long; this model reads at most 48\.", message)
    assert "limit is 5,000" in _error(answer, "Who?", "x" * 5001)


def test_unrelated_context_has_no_answer(store):
    highlighted, summary, rows = apps.qa.answer(store, "What is the capital of Mars?", "The cat sat on the mat.")
    assert highlighted == [("The cat sat on the mat.", None)]
    assert summary.startswith("**No answer found in this context") and "shares no word" in summary
    assert rows  # the model's guesses are still listed


def test_long_context_is_read_in_windows(store):
    filler = "Nothing happened in the town that week. " * 40  # ~300 word pieces: several windows
    highlighted, _, _ = apps.qa.answer(store, "Which city is Helen Smith living in?", filler + CONTEXT)
    assert "".join(p for p, _ in highlighted) == filler + CONTEXT


def test_no_answer_is_said():
    from labkit.qa import Span

    spans = [Span("", -1, -1, 4.0), Span("Seattle", 10, 17, 1.5)]
    highlighted, summary, rows = apps.qa.describe(spans, "He lives in Seattle.")
    assert highlighted == [("He lives in Seattle.", None)]
    assert "No answer found" in summary and "no-answer score (4.00)" in summary and "Seattle" in summary
    assert rows == [[1, "Seattle", 1.5, pytest.approx(0.076, abs=1e-3), "10–17"]]


# ----------------------------------------------------------------------------- attention explorer
def test_attention_maps_are_distributions(store):
    tokens, maps = apps.attention.attention_maps(store, "The phone is excellent.")
    config = store.config("attention")
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert maps.shape == (config["num_hidden_layers"], config["num_attention_heads"], len(tokens), len(tokens))
    assert maps.sum(-1) == pytest.approx(1.0, abs=1e-4)


def test_attention_heatmap_and_token_view(store):
    fig = apps.attention.attention_heatmap(store, "我来自法国。 I am from France.", 1, 2)
    assert "layer 1, head 2" in fig.axes[0].get_title()
    weights = apps.attention.token_attention(store, "The phone is excellent.", 2, 1, 2)
    assert list(weights)[2] == "2 · phone"
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    figure, chooser, looks = apps.attention.explore(store, "The phone is excellent.", 2, 1)
    assert chooser.value == 1 and len(chooser.choices) == 7 and chooser.choices[1] == ("1 · the", 1)


def test_attention_bad_input(store):
    from labkit.build import SCALES

    heads = SCALES["ci"].model.n_heads
    heatmap = partial(apps.attention.attention_heatmap, store)
    assert "The layer must be between 1 and 2" in _error(heatmap, "Hi there.", 3, 1)
    assert f"The head must be between 1 and {heads}" in _error(heatmap, "Hi there.", 1, 0)
    n_tokens = len(apps.attention.attention_maps(store, "Hi there.")[0])
    message = _error(apps.attention.token_attention, store, "Hi there.", 1, 1, 9)
    assert f"The token must be between 0 and {n_tokens - 1}" in message
    assert "reads at most 64" in _error(heatmap, "word " * 70, 1, 1)
    assert "empty" in _error(apps.attention.explore, store, "", 1, 1)


# ----------------------------------------------------------------------------- models and `labkit demo`
def test_models_load_once(store):
    first = store.get("classification", "sentiment")
    assert store.get("classification", "sentiment") is first
    assert next(first.model.parameters()).device.type == apps.common.DEVICE.type


def test_point_picks_the_tab_from_the_architecture(ci_build, tmp_path):
    store = apps.common.ModelStore(tmp_path / "no-build")
    names = ("sentiment", "translation", "qa", "fill-mask", "topic", "text-generation")
    assert [store.point(ci_build / name) for name in names] == [
        "classification", "translation", "qa", "attention", "classification", "text-generation"]
    assert list(store.folders("classification")) == ["sentiment", "topic"]
    with pytest.raises(ModelFolderError, match="holds a BertForTokenClassification"):
        store.point(ci_build / "ner")
    with pytest.raises(ModelFolderError, match="does not exist"):
        store.point(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match="corrupt"):
        store.point(broken)


def test_any_hugging_face_bert_folder_opens_in_the_attention_tab(ci_build, tmp_path):
    import transformers

    config = transformers.BertConfig(vocab_size=3000, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(tmp_path / "plain-bert")  # not made by the lab
    transformers.AutoTokenizer.from_pretrained(ci_build / "fill-mask").save_pretrained(tmp_path / "plain-bert")
    store = apps.common.ModelStore(ci_build)
    assert store.point(tmp_path / "plain-bert") == "attention"
    loaded = store.load(tmp_path / "plain-bert")
    assert loaded.max_position == 64 and loaded.model.config.n_heads == 4


@pytest.mark.parametrize("app, endpoints", [
    (apps.classify, {"classify"}), (apps.translate, {"translate"}), (apps.qa, {"answer"}),
    (apps.attention, {"attention", "token_attention"}), (apps.generate, {"generate", "generation_step"}),
    (apps.chat, {"chat"}),
])
def test_each_app_is_made_from_the_store_it_is_given(app, endpoints, tmp_path, monkeypatch):
    """make_demo only lays out the page: a store on a folder without models is enough, and nothing loads."""
    monkeypatch.setattr(apps.common, "load_model", lambda folder: pytest.fail(f"loaded {folder}"))
    demo = app.make_demo(apps.common.ModelStore(tmp_path / "no-build"))
    assert {fn.api_name for fn in demo.fns.values()} >= endpoints


def _demo_cli(monkeypatch, capsys, ci_build, *argv) -> tuple[int, str, dict]:
    """Run `labkit demo ...` in-process, without serving.

    Returns the exit code, stderr and the arguments `launch` was given.
    """
    from labkit.__main__ import main

    monkeypatch.setenv("LABKIT_MODELS", str(ci_build))
    launched = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.update(kw))
    code = main(["demo", *argv])
    return code, capsys.readouterr().err, launched


def test_demo_serves_locally_without_sharing(ci_build, monkeypatch, capsys):
    code, err, launched = _demo_cli(monkeypatch, capsys, ci_build, "--model", str(ci_build / "topic"))
    assert code == 0 and err == ""
    assert {k: launched[k] for k in ("server_name", "server_port", "share")} == {
        "server_name": "127.0.0.1", "server_port": 7860, "share": False}


def test_demo_bad_model_folder_is_one_line(ci_build, tmp_path, monkeypatch, capsys):
    code, err, _ = _demo_cli(monkeypatch, capsys, ci_build, "--model", str(tmp_path / "missing"))
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err
    corrupt = tmp_path / "corrupt"
    shutil.copytree(ci_build / "qa", corrupt)
    (corrupt / "model.safetensors").write_bytes(b"not weights")
    code, err, _ = _demo_cli(monkeypatch, capsys, ci_build, "--model", str(corrupt))
    assert code == 2 and err.count("\n") == 1 and "corrupt" in err and "Traceback" not in err


def test_demo_builds_missing_models(ci_build, tmp_path, monkeypatch):
    import apps.serve
    import labkit.build

    calls = []

    def fake_build(scale, out, **kw):  # stands in for minutes of training: copy the ci build
        calls.append((scale, out))
        shutil.copytree(ci_build, out, dirs_exist_ok=True)

    monkeypatch.setattr(labkit.build, "build", fake_build)
    monkeypatch.setattr(apps.serve, "default_output_dir", lambda scale: tmp_path / scale)
    monkeypatch.delenv("LABKIT_MODELS", raising=False)
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: None)
    apps.serve.serve(scale="ci", log=lambda *_: None)
    assert calls == [("ci", tmp_path / "ci")]
    apps.serve.serve(scale="ci", log=lambda *_: None)  # built now: not again
    assert len(calls) == 1


def test_each_serving_thread_encodes_with_its_own_tokenizer(store):
    """A fast tokenizer's padding settings are shared state: two threads on one copy can get an
    unpadded batch. Each thread gets a copy; within a thread the copy is reused."""
    m = store.get("classification", "sentiment")
    mine = m.tokenizer
    assert m.tokenizer is mine and mine is not m.shared_tokenizer
    other = []
    worker = threading.Thread(target=lambda: other.append(m.tokenizer))
    worker.start()
    worker.join()
    assert other[0] is not mine and other[0].get_vocab() == mine.get_vocab()
    errors = []

    def padded():
        for _ in range(2000):
            try:
                m.tokenizer(["The screen is excellent and the battery is fine.", "Bad."], padding=True,
                            truncation=True, max_length=64, return_tensors="pt")
            except ValueError as err:  # an unpadded batch cannot become a tensor
                errors.append(err)
                return

    def plain():
        for _ in range(2000):
            m.tokenizer("The screen is excellent.", verbose=False)

    threads = [threading.Thread(target=padded), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
