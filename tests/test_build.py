"""`labkit build --scale ci`, end to end: folders that transformers' pipelines open, and a report."""
import json

import pytest
import torch
from transformers import pipeline

from labkit.folders import load_model
from labkit.translate import translate

FOLDERS = ("fill-mask", "sentiment", "topic", "ner", "qa", "translation")


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
