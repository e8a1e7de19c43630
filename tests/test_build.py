"""`labkit build --scale ci`, end to end: folders that transformers' pipelines open, and a report;
build's arguments (a scale's name or a Scale, a subset of tasks) and the command line's errors."""
import copy
import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from transformers import pipeline

from labkit.build import build
from labkit.folders import load_model
from labkit.scales import SCALES
from labkit.translate import translate

FOLDERS = ("fill-mask", "sentiment", "topic", "ner", "qa", "translation", "text-generation")


def test_build_writes_every_model_folder_and_the_report(ci_build):
    for name in FOLDERS:
        files = {p.name for p in (ci_build / name).iterdir()}
        assert {"config.json", "model.safetensors", "README.md", "tokenizer.json"} <= files, name
        assert not {f for f in files if f.endswith((".bin", ".pt", ".pkl", ".pth"))}, "no pickled checkpoints"
        card = (ci_build / name / "README.md").read_text()
        assert "## Evaluation" in card and "## Limits" in card
    report = json.loads((ci_build / "report.json").read_text())
    assert set(report["models"]) == set(FOLDERS)
    for key in ("total", "data", "tokenizer", "pretraining", "translation", "transfer"):
        assert report["seconds"][key] >= 0
    assert report["environment"]["transformers"].startswith("5.")
    md = (ci_build / "report.md").read_text()
    assert "masked-token accuracy" in md and "| sentiment |" in md and "pretrained vs random" in md
    assert (ci_build / "transfer.png").stat().st_size > 10_000


def test_ci_models_learned_something(ci_build):
    """ci scale is a smoke run, but every model must beat chance on unseen test entities."""
    m = {k: v["metrics"] for k, v in json.loads((ci_build / "report.json").read_text())["models"].items()}
    assert m["fill-mask"]["masked_accuracy"] > 0.08  # unigram guessing gives ~0.05
    assert m["fill-mask"]["next_sentence_accuracy"] > 0.6  # balanced IsNext / NotNext pairs: chance is 0.5
    assert m["sentiment"]["accuracy"] > 0.6  # 2 balanced classes
    assert m["topic"]["accuracy"] > 0.35  # 5 balanced classes
    assert m["ner"]["entity_f1"] > 0.3


def test_fill_mask_pipeline_opens_and_predicts_words(ci_build):
    config = json.loads((ci_build / "fill-mask" / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"]  # masked LM + next-sentence heads, as BERT
    fill = pipeline("fill-mask", model=str(ci_build / "fill-mask"), device="cpu")
    assert type(fill.model).__name__ == "BertForMaskedLM"  # as the model card says
    preds = fill("he was born in [MASK] .", top_k=5)
    assert len(preds) == 5 and all(p["token_str"] not in ("[PAD]", "[CLS]", "[SEP]", "[MASK]") for p in preds)
    assert all(0 <= p["score"] <= 1 for p in preds)


@pytest.mark.parametrize("task, labels", [("sentiment", {"negative", "positive"}),
                                          ("topic", {"business", "sports", "technology", "health", "politics"})])
def test_classifiers_open_with_text_classification_pipeline_and_real_label_names(ci_build, task, labels):
    clf = pipeline("text-classification", model=str(ci_build / task), device="cpu")
    out = clf(["The screen is excellent and the battery lasts all day.", "The team won the final match."])
    assert {o["label"] for o in out} <= labels and all(0 <= o["score"] <= 1 for o in out)


def test_ner_pipeline_and_qa_folder(ci_build):
    ner = pipeline("token-classification", model=str(ci_build / "ner"), aggregation_strategy="simple", device="cpu")
    ents = ner("Emma Wilson works at Blue River Bank in Shanghai.")
    assert all(e["entity_group"] in {"PER", "ORG", "LOC", "DATE", "PRODUCT"} for e in ents)
    # transformers v5 removed the "question-answering" pipeline; the folder opens with the
    # Auto class, gives the same logits as labkit's twin, and labkit.finetune.answer_questions
    # does the span search the pipeline used to do.
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from labkit.finetune import answer_questions

    hf = AutoModelForQuestionAnswering.from_pretrained(ci_build / "qa").eval()
    tok = AutoTokenizer.from_pretrained(ci_build / "qa")
    ours, _ = load_model(ci_build / "qa")
    context = "In 2005, Ethan Russell started Oak Tree Insurance. Oak Tree Insurance is based in Mumbai."
    enc = tok("Where is Oak Tree Insurance based?", context, return_tensors="pt")
    with torch.no_grad():
        a, b = hf(**enc), ours(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    assert (a.start_logits - b.start_logits).abs().max() < 1e-4
    answer = answer_questions(ours, tok, ["Where is Oak Tree Insurance based?"], [context])[0]
    assert answer and answer in context


def test_translation_folder_opens_with_labkit_and_transformers(ci_build):
    from transformers import EncoderDecoderModel

    model, tok = load_model(ci_build / "translation")
    out = translate(model, tok, ["What is the weather like today?"], num_beams=2)
    assert isinstance(out[0], str)
    hf = EncoderDecoderModel.from_pretrained(ci_build / "translation").eval()
    ids = tok(["What is the weather like today?"], return_tensors="pt")
    with torch.no_grad():
        gen = hf.generate(**ids, max_new_tokens=20, num_beams=1, do_sample=False)
    ours = translate(model, tok, ["What is the weather like today?"], num_beams=1, max_new_tokens=20)
    from labkit.translate import join_cjk
    assert join_cjk(tok.decode(gen[0], skip_special_tokens=True)) == ours[0]


def test_a_one_task_build_gives_the_same_model_as_a_build_of_more_tasks(tmp_path):
    """Each fine-tuned model depends on its own seed, not on which other models were made before it
    (shown on a short variant of the ci scale: the claim does not depend on the number of steps)."""
    from safetensors.torch import load_file

    ci = SCALES["ci"]
    short = replace(ci, name="ci-short", pretrain=replace(ci.pretrain, train=replace(ci.pretrain.train, steps=3, eval_every=3)),
                    finetune={k: replace(v, steps=3) for k, v in ci.finetune.items()})
    quiet = dict(transfer=False, gpt=False, progress=False, log=lambda *a: None)
    one = build(short, tmp_path / "one", tasks=("topic",), **quiet)
    two = build(short, tmp_path / "two", tasks=("sentiment", "topic"), **quiet)
    assert set(one["models"]) == {"fill-mask", "topic"} and set(two["models"]) == {"fill-mask", "sentiment", "topic"}
    assert one["models"]["topic"]["metrics"] == two["models"]["topic"]["metrics"]
    ours, theirs = load_file(tmp_path / "one" / "topic" / "model.safetensors"), load_file(tmp_path / "two" / "topic" / "model.safetensors")
    assert ours.keys() == theirs.keys() and all(torch.equal(v, theirs[k]) for k, v in ours.items())


def test_unknown_scales_and_tasks_are_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown scale 'nope'") as err:
        build("nope", tmp_path / "a")
    assert all(repr(name) in str(err.value) for name in SCALES)
    with pytest.raises(ValueError, match="unknown tasks \\['nope'\\]"):
        build("ci", tmp_path / "b", tasks=("topic", "nope"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_variant_scale_builds_as_it_says_and_leaves_SCALES_alone(tmp_path):
    ci, before = SCALES["ci"], copy.deepcopy(SCALES)
    variant = replace(ci, name="ci-short",
                      pretrain=replace(ci.pretrain, salient_probability=0.0,
                                       train=replace(ci.pretrain.train, steps=3, eval_every=3)),
                      finetune={**ci.finetune, "topic": replace(ci.finetune["topic"], steps=2)})
    report = build(variant, tmp_path, tasks=("topic",), transfer=False, gpt=False, progress=False, log=lambda *a: None)
    assert SCALES == before and SCALES["ci"] is ci and ci.pretrain.train.steps == 1200
    assert report["scale"] == "ci-short" and report["pretraining"]["steps"] == 3
    assert len(report["pretraining"]["loss_history"]) == 3
    assert report["pretraining"]["objectives"] == ["masked_lm", "next_sentence", "cls_salient_words"]
    assert set(report["models"]) == {"fill-mask", "topic"} and "transfer" not in report
    card = (tmp_path / "fill-mask" / "README.md").read_text()
    assert variant.pretrain.describe() in card and "also masked with probability" not in card
    assert json.loads((tmp_path / "report.json").read_text())["scale"] == "ci-short"


def test_cli_bad_input_gives_one_line_errors(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, timeout=120)

    r = run("build", "--scale", "huge")
    assert r.returncode == 2 and "invalid choice: 'huge'" in r.stderr and "Traceback" not in r.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("build", "--scale", "ci", "--out", str(blocker / "sub"))
    assert r.returncode == 2 and "cannot write to" in r.stderr and "--out" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_default_build_folder_is_the_checkouts_artifacts_wherever_python_runs(monkeypatch, tmp_path):
    """A notebook's kernel runs in notebooks/; it must find what `make demo` built in artifacts/."""
    from pathlib import Path

    from labkit.build import default_output_dir

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.delenv("LABKIT_ARTIFACTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_output_dir("cpu") == repo / "artifacts" / "cpu"
    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path))
    assert default_output_dir("ci") == tmp_path / "ci"
