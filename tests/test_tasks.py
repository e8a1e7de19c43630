"""labkit.tasks: every task makes its model, named batches the model takes as they are, and scores."""
import inspect
from dataclasses import replace

import numpy as np
import pytest
import torch

from labkit.heads import QuestionAnswerer, SequenceClassifier, TokenClassifier
from labkit.masking import IGNORE_INDEX
from labkit.tasks import (TASKS, ClassificationTask, QATask, TaggingTask, Task, TranslationTask, align_labels,
                          answer_questions, predict_proba, predict_tags)
from labkit.training import TrainConfig
from labkit.transformer import PreTrainingModel, Seq2Seq
from labkit.translate import join_cjk

import tiny

MODELS = {"sentiment": SequenceClassifier, "topic": SequenceClassifier, "ner": TokenClassifier,
          "qa": QuestionAnswerer, "translation": Seq2Seq}


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


@pytest.fixture(scope="module")
def pretrained(tok):
    torch.manual_seed(0)
    return PreTrainingModel(tiny.config(tok))


def small(**kw):
    return TrainConfig(**{"steps": 2, "batch_size": 4, "progress": False, "device": "cpu", **kw})


def test_the_registry_holds_the_five_tasks_by_name():
    assert list(TASKS) == ["sentiment", "topic", "ner", "qa", "translation"]
    assert all(task.name == name and isinstance(task, Task) for name, task in TASKS.items())
    assert {type(t) for t in TASKS.values()} == {ClassificationTask, TaggingTask, QATask, TranslationTask}
    with pytest.raises(TypeError):
        ClassificationTask("sentiment")  # noqa: tasks are keyword-only
    with pytest.raises(Exception):  # frozen
        TASKS["qa"].max_length = 10


@pytest.mark.parametrize("name", list(TASKS))
def test_batches_are_named_by_the_models_forward_arguments_and_give_its_loss(name, tok, pretrained):
    task, data = TASKS[name], tiny.task_data()[name]
    model = task.make_model(pretrained, data, seed=0)
    assert type(model) is MODELS[name]
    arguments = set(inspect.signature(model.forward).parameters)
    cfg = small()
    it, again = task.batches(tok, data["train"], cfg), task.batches(tok, data["train"], cfg)
    for _ in range(3):
        batch = next(it)
        assert isinstance(batch, dict) and set(batch) <= arguments, set(batch) - arguments
        assert all(isinstance(v, torch.Tensor) and len(v) == 4 for v in batch.values())
        assert all(torch.equal(v, w) for v, w in zip(batch.values(), next(again).values()))  # order from cfg.seed
        loss = model(**batch).loss
        assert loss is not None and loss.dim() == 0 and torch.isfinite(loss) and loss.requires_grad
    other, first = next(task.batches(tok, data["train"], small(seed=1))), next(task.batches(tok, data["train"], cfg))
    assert any(not torch.equal(v, w) for v, w in zip(other.values(), first.values()))  # another seed, another order


@pytest.mark.parametrize("name", list(TASKS))
def test_make_model_draws_new_weights_from_its_seed_alone(name, pretrained):
    task, data = TASKS[name], tiny.task_data()[name]

    def make(global_seed, seed, source=pretrained):
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        model = task.make_model(source, data, config=pretrained.config, seed=seed)
        assert torch.equal(torch.get_rng_state(), state)  # the global stream is left where it was
        return model.state_dict()

    a, b, c = make(1, 5), make(2, 5), make(1, 6)
    assert a.keys() == b.keys() and all(torch.equal(v, b[k]) for k, v in a.items())
    new = [k for k in a if not k.startswith("encoder.")]  # the head (and a translator's decoder)
    assert new and any(not torch.equal(a[k], c[k]) for k in new)
    for k, v in pretrained.encoder.state_dict().items():  # the encoder is the pretrained one
        if "encoder." + k in a:
            assert torch.equal(a["encoder." + k], v), k
    scratch_a, scratch_b = make(1, 5, None), make(2, 5, None)
    assert all(torch.equal(v, scratch_b[k]) for k, v in scratch_a.items())
    assert not torch.equal(scratch_a["encoder.embeddings.token.weight"], pretrained.encoder.embeddings.token.weight)
    with pytest.raises(ValueError, match="pretrained model or, for random initialisation, a config"):
        task.make_model(None, data)


def test_classifier_heads_carry_the_label_names(pretrained):
    for name, names in (("sentiment", ["negative", "positive"]), ("topic", ["business", "sports", "health"]),
                        ("ner", tiny.NER_TAGS)):
        model = TASKS[name].make_model(pretrained, tiny.task_data()[name])
        assert model.num_labels == len(names) and model.id2label == dict(enumerate(names))


@pytest.mark.parametrize("name", list(TASKS))
def test_evaluate_validate_card_and_save_kwargs(name, tok, pretrained):
    task, data = TASKS[name], tiny.task_data()[name]
    if name == "translation":  # short greedy and beam decodes: untrained, the model never stops early
        task = replace(task, max_length=12, n_validate=3, n_beam=3, num_beams=2)
    model = task.make_model(pretrained, data).train()
    metrics, report = task.evaluate(model, tok, data["test"])
    assert model.training  # scoring leaves the mode as it found it
    assert task.metric in metrics and all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    assert isinstance(report, str)
    assert task.metric in task.validate(model, tok, data["validation"])
    assert isinstance(task.card(data, metrics, report), str) and isinstance(task.save_kwargs(tok), dict)
    if name == "translation":
        assert set(metrics) == {"bleu_greedy", "bleu_greedy_first3", "bleu_beam2_first3"}
        assert task.save_kwargs(tok) == {"decoder_start_token_id": tok.cls_token_id,
                                         "eos_token_id": tok.sep_token_id, "pad_token_id": tok.pad_token_id}


def test_validate_scores_only_the_first_n_validate_examples(tok, pretrained):
    seen = []

    class Counting(QATask):
        def evaluate(self, model, tokenizer, split):
            seen.append(len(split))
            return {"f1": 0.0}, ""

    data = tiny.task_data()["qa"]
    task = Counting(name="qa", n_validate=5)
    task.validate(None, tok, data["validation"])
    replace(task, n_validate=None).validate(None, tok, data["validation"])
    assert seen == [5, len(data["validation"])]


def test_translation_batches_are_teacher_forcing(tok):
    task = TASKS["translation"]
    batch = next(task.batches(tok, tiny.task_data()["translation"]["train"], small(batch_size=8)))
    dec_in, labels, mask = batch["decoder_input_ids"], batch["labels"], batch["decoder_attention_mask"]
    assert (dec_in[:, 0] == tok.cls_token_id).all()
    for row in range(len(dec_in)):
        n = int(mask[row].sum())
        assert torch.equal(labels[row, : n - 1], dec_in[row, 1:n])  # predict the next target token...
        assert labels[row, n - 1] == tok.sep_token_id and (labels[row, n:] == IGNORE_INDEX).all()  # ...then [SEP]


def test_qa_batches_point_at_the_answer_and_drop_unused_padding(tok):
    task, split = TASKS["qa"], tiny.task_data()["qa"]["train"]
    batch = next(task.batches(tok, split, small(batch_size=6)))
    assert batch["attention_mask"][:, -1].any()  # no column of padding alone
    for row in range(len(batch["input_ids"])):
        s, e = int(batch["start_positions"][row]), int(batch["end_positions"][row])
        assert 0 < s <= e and tok.decode(batch["input_ids"][row, s:e + 1]) in tiny.CITIES


def test_align_labels_marks_only_first_word_pieces():
    tok = tiny.text_tokenizer()
    enc = align_labels(tok, [["the", "greenphone", "is", "good"]], [[0, 1, 0, 2]])
    labels, word_ids = enc["labels"][0], enc["word_ids"][0]
    assert labels[0] == IGNORE_INDEX and labels[-1] == IGNORE_INDEX  # [CLS], [SEP]
    firsts = [i for i, w in enumerate(word_ids) if w is not None and (i == 0 or word_ids[i - 1] != w)]
    assert [labels[i] for i in firsts] == [0, 1, 0, 2]
    assert sum(label != IGNORE_INDEX for label in labels) == 4  # "greenphone" splits into several pieces
    assert align_labels(tok, [["the", "car"]])["labels"] == []  # no tags: ids and word ids only


def test_predictions_have_one_answer_per_input(tok, pretrained):
    data = tiny.task_data()
    clf = TASKS["topic"].make_model(pretrained, data["topic"])
    p = predict_proba(clf, tok, data["topic"]["test"]["text"][:5], batch_size=2)
    assert p.shape == (5, 3) and np.allclose(p.sum(1), 1, atol=1e-5)
    words = data["ner"]["test"]["tokens"][:3]
    tags = predict_tags(TASKS["ner"].make_model(pretrained, data["ner"]), tok, words, batch_size=2)
    assert [len(t) for t in tags] == [len(w) for w in words] and {t for row in tags for t in row} <= set(tiny.NER_TAGS)
    qa = data["qa"]["test"]
    answers = answer_questions(TASKS["qa"].make_model(pretrained, data["qa"]), tok, qa["question"][:3],
                               qa["context"][:3], batch_size=2)
    assert len(answers) == 3 and all(isinstance(a, str) and a in c for a, c in zip(answers, qa["context"][:3]))


def test_join_cjk_removes_spaces_next_to_chinese_only():
    assert join_cjk("今 天 天 气 怎 么 样 ？") == "今天天气怎么样？"
    assert join_cjk("我 在 paris 工 作") == "我在paris工作"
    assert join_cjk("the car is good") == "the car is good"


def test_a_task_without_a_model_says_so(pretrained):
    bare = Task(name="bare", metric="m", title="t", pipeline_tag="p")
    with pytest.raises(NotImplementedError):
        bare.make_model(pretrained, None)
