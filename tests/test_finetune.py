"""labkit.finetune: one loop for every task, seeded; subsampling; the thin per-task wrappers; a new task."""
import copy
from dataclasses import dataclass, replace

import datasets
import pytest
import torch

from labkit.finetune import (finetune, finetune_classifier, finetune_qa, finetune_tokens, finetune_translation,
                             subsample)
from labkit.heads import SequenceClassifier
from labkit.tasks import TASKS, Task
from labkit.training import TrainConfig, batches, evaluating, pad
from labkit.transfer import TransferConfig, run_transfer
from labkit.transformer import PreTrainingModel

import tiny


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


@pytest.fixture(scope="module")
def pretrained(tok):
    torch.manual_seed(0)
    return PreTrainingModel(tiny.config(tok))


def tc(**kw):
    return TrainConfig(**{"steps": 60, "batch_size": 8, "lr": 3e-3, "progress": False, "device": "cpu", **kw})


def test_classifier_fine_tuning_fits_a_separable_task():
    tok = tiny.text_tokenizer()
    texts = [t for t in tiny.TEXTS if " is " in t]
    labels = [int(any(w in t for w in ("good", "great"))) for t in texts]
    split = datasets.Dataset.from_dict({"text": texts, "label": labels},
                                       features=datasets.Features({"text": datasets.Value("string"),
                                                                   "label": datasets.ClassLabel(names=["neg", "pos"])}))
    data = datasets.DatasetDict(train=split, validation=split, test=split)
    torch.manual_seed(0)
    model = SequenceClassifier(tiny.config(tok, max_position=64), 2, {0: "neg", 1: "pos"})
    res = finetune_classifier(model, tok, data, tc(steps=120, batch_size=16))
    assert res.metrics["accuracy"] == 1.0 and res.metrics["macro_f1"] == 1.0


def test_finetune_trains_a_registered_task_and_reports_test_metrics(tok, pretrained):
    data = tiny.task_data()["sentiment"]
    task = TASKS["sentiment"]
    res = finetune(task, task.make_model(pretrained, data), tok, data, tc(eval_every=30))
    assert res.metrics["accuracy"] == 1.0 and set(res.metrics) == {"accuracy", "macro_f1"}
    assert res.history.eval_steps == [30, 60] and "accuracy" in res.history.last_eval()


def test_finetune_checks_its_task_and_splits(tok, pretrained):
    data = tiny.task_data()["sentiment"]
    model = TASKS["sentiment"].make_model(pretrained, data)
    with pytest.raises(ValueError, match="labkit.tasks.Task"):
        finetune("sentiment", model, tok, data, tc())
    with pytest.raises(ValueError, match="lacks the splits \\['test'\\]"):
        finetune(TASKS["sentiment"], model, tok, datasets.DatasetDict(train=data["train"], validation=data["train"]),
                 tc())


def test_validate_and_test_can_be_skipped(tok, pretrained):
    data = tiny.task_data()["topic"]
    task = TASKS["topic"]
    res = finetune(task, task.make_model(pretrained, data), tok, data, tc(steps=3), validate=False, test=False)
    assert res.metrics == {} and res.history.eval_metrics == [] and len(res.history.loss) == 3


def test_two_runs_with_one_seed_from_one_start_are_identical_and_leave_the_global_stream(tok):
    torch.manual_seed(0)
    source = PreTrainingModel(tiny.config(tok, dropout=0.1, attention_dropout=0.1))
    data, task = tiny.task_data()["ner"], TASKS["ner"]
    start = task.make_model(source, data, seed=0)

    def run(seed, global_seed):
        model = copy.deepcopy(start)
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        res = finetune(task, model, tok, data, tc(steps=15, seed=seed, eval_every=5), n_train=8)
        assert torch.equal(torch.get_rng_state(), state)  # finetune draws from its own seed only
        return res, model.state_dict()

    (a, wa), (b, wb), (c, wc) = run(3, 1), run(3, 2), run(4, 1)
    assert a.history.loss == b.history.loss and a.history.eval_metrics == b.history.eval_metrics
    assert a.metrics == b.metrics
    assert all(torch.equal(v, wb[k]) for k, v in wa.items())
    assert a.history.loss != c.history.loss and any(not torch.equal(v, wc[k]) for k, v in wa.items())
    assert a.report and "PER" in a.report  # the tagger's per-entity report


def test_subsample_is_class_balanced_and_seeded():
    split = datasets.Dataset.from_dict({"label": [0] * 90 + [1] * 10})
    a = subsample(split, 10, seed=0, label_column="label")
    assert sorted(a["label"]) == [0] * 5 + [1] * 5
    assert a["label"] == subsample(split, 10, seed=0, label_column="label")["label"]
    assert subsample(split, None, seed=0) is split and subsample(split, 100, seed=0) is split
    plain = subsample(split.add_column("i", list(range(100))), 7, seed=0)
    assert len(plain) == 7 and plain["i"] == sorted(plain["i"])
    assert plain["i"] == subsample(split.add_column("i", list(range(100))), 7, seed=0)["i"]
    assert plain["i"] != subsample(split.add_column("i", list(range(100))), 7, seed=1)["i"]
    with pytest.raises(ValueError, match="positive"):
        subsample(split, 0, seed=0)


def test_the_thin_wrappers_are_the_one_loop(tok, pretrained):
    data = tiny.task_data()
    quick = tc(steps=2)
    ner = finetune_tokens(TASKS["ner"].make_model(pretrained, data["ner"]), tok, data["ner"], quick, validate=False)
    assert {"entity_f1", "entity_precision", "entity_recall"} == set(ner.metrics)
    qa = finetune_qa(TASKS["qa"].make_model(pretrained, data["qa"]), tok, data["qa"], quick, validate=False)
    assert {"exact_match", "f1"} <= set(qa.metrics)
    mt = finetune_translation(TASKS["translation"].make_model(pretrained, data["translation"]), tok,
                              data["translation"], quick, validate=False, max_length=10, num_beams=2, n_beam=3)
    assert set(mt.metrics) == {"bleu_greedy", "bleu_greedy_first3", "bleu_beam2_first3"}
    texts = data["sentiment"].rename_column("text", "review")
    clf = finetune_classifier(TASKS["sentiment"].make_model(pretrained, data["sentiment"]), tok, texts, quick,
                              text_column="review", validate=False)
    assert set(clf.metrics) == {"accuracy", "macro_f1"}


# ---- a new task: one class (or one variant of a task) and it runs through finetune and transfer ----
@dataclass(frozen=True, kw_only=True)
class PositiveWord(Task):
    """Does the review use a positive word? Its own columns, batches and metric."""

    name: str = "positive_word"
    metric: str = "agreement"
    title: str = "positive-word detector"
    pipeline_tag: str = "text-classification"
    unit: str = "reviews"

    def _make_model(self, pretrained, data, config):
        return SequenceClassifier.from_pretrained(pretrained, config, num_labels=2)

    def batches(self, tokenizer, train, cfg):
        ids = tokenizer(list(train["review"]))["input_ids"]
        positive = torch.tensor(train["positive"])
        for idx in batches(len(ids), cfg.batch_size, seed=cfg.seed):
            x, m = pad([ids[i] for i in idx], tokenizer.pad_token_id)
            yield {"input_ids": x, "attention_mask": m, "labels": positive[idx]}

    def evaluate(self, model, tokenizer, split):
        enc = tokenizer(list(split["review"]), padding=True, return_tensors="pt")
        with evaluating(model):
            pred = model(enc["input_ids"], enc["attention_mask"]).logits.argmax(-1)
        return {"agreement": (pred == torch.tensor(split["positive"])).float().mean().item()}, ""


def review_data():
    split = tiny.task_data()["sentiment"]["train"]
    reviews = datasets.Dataset.from_dict({"review": split["text"], "positive": split["label"]})  # plain ints
    return datasets.DatasetDict(train=reviews, validation=reviews, test=reviews)


def test_a_new_task_class_fine_tunes_and_runs_in_the_transfer_experiment(tok, pretrained):
    task, data = PositiveWord(), review_data()
    res = finetune(task, task.make_model(pretrained, data, seed=0), tok, data, tc(eval_every=30))
    assert res.metrics == {"agreement": 1.0} and res.history.eval_steps == [30, 60]
    cfg = TransferConfig(tasks=("positive_word",), label_counts=(8,), seeds=(0,), min_steps=4, steps_cap=4,
                         probe_steps=2)
    rows = run_transfer(pretrained, tok, {"positive_word": data}, cfg, tasks={"positive_word": task})
    assert [(r["task"], r["metric"], r["labels"], r["init"]) for r in rows] == [
        ("positive_word", "agreement", 8, "pretrained"), ("positive_word", "agreement", 8, "scratch")]
    assert all(0 <= r["score"] <= 1 for r in rows)


def test_a_variant_of_a_task_with_other_columns_runs_the_same_way(tok, pretrained):
    split = tiny.task_data()["sentiment"]["train"].rename_column("text", "review").rename_column("label", "mood")
    data = datasets.DatasetDict(train=split, validation=split, test=split)
    task = replace(TASKS["sentiment"], name="reviews", text_column="review", label_column="mood")
    model = task.make_model(pretrained, data, seed=0)
    assert model.id2label == {0: "negative", 1: "positive"}
    assert finetune(task, model, tok, data, tc(), n_train=8).metrics["accuracy"] >= 0.75
    cfg = TransferConfig(tasks=("reviews",), label_counts=(4,), seeds=(0,), min_steps=3, steps_cap=3, probe_steps=2)
    rows = run_transfer(pretrained, tok, {"reviews": data}, cfg, tasks={"reviews": task})
    assert {(r["task"], r["metric"], r["labels"]) for r in rows} == {("reviews", "accuracy", 4)}


def test_n_train_is_the_number_of_examples_trained_on(tok, pretrained):
    seen = []

    @dataclass(frozen=True, kw_only=True)
    class Counting(PositiveWord):
        def batches(self, tokenizer, train, cfg):
            seen.append(len(train))
            return super().batches(tokenizer, train, cfg)

    data, task = review_data(), Counting()
    finetune(task, task.make_model(pretrained, data), tok, data, tc(steps=2), n_train=5, validate=False, test=False)
    finetune(task, task.make_model(pretrained, data), tok, data, tc(steps=2), validate=False, test=False)
    assert seen == [5, len(data["train"])]


@pytest.mark.parametrize("made_by", ["constructor", "replace"])
def test_a_classification_task_subsamples_by_its_own_label_column(made_by, tok, pretrained):
    """A ClassificationTask whose labels are in another column balances the subsample by that column,
    whether it is made with that column or is a variant of a task (dataclasses.replace)."""
    from labkit.tasks import ClassificationTask

    split = tiny.task_data()["sentiment"]["train"].rename_column("label", "mood")
    data = datasets.DatasetDict(train=split, validation=split, test=split)
    seen = []

    class Spy(ClassificationTask):
        def batches(self, tokenizer, train, cfg):
            seen.append(sorted(train["mood"]))
            return super().batches(tokenizer, train, cfg)

    if made_by == "constructor":
        task = Spy(name="reviews", label_column="mood")
    else:
        task = replace(Spy(name="sentiment"), name="reviews", label_column="mood")  # as replace(TASKS["sentiment"], ...)
    finetune(task, task.make_model(pretrained, data), tok, data, tc(steps=2), n_train=8, validate=False, test=False)
    assert seen == [[0] * 4 + [1] * 4]
