"""Knowledge distillation (labkit.compress.distill): the loss against its formula and its gradient, and a
student that learns a task from a teacher's soft labels on texts whose labels it never sees."""
from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from labkit.compress.distill import Distilled, DistillConfig, distillation_loss
from labkit.finetune import finetune
from labkit.heads import SequenceClassifier
from labkit.tasks import TASKS
from labkit.training import TrainConfig
from labkit.transformer import TransformerConfig

from tiny import sentiment_data, text_tokenizer


def _logits(seed, b=6, k=3):
    return torch.randn(b, k, generator=torch.Generator().manual_seed(seed)) * 2


def test_the_loss_is_the_formula():
    s, t, y = _logits(0), _logits(1), torch.tensor([0, 2, 1, -100, 1, -100])
    cfg = DistillConfig(temperature=3.0, alpha=0.3)
    p_t, p_s = torch.softmax(t / 3, -1), torch.softmax(s / 3, -1)
    kl = (p_t * (p_t.log() - p_s.log())).sum(-1).mean()  # over every text of the batch
    ce = F.cross_entropy(s[y >= 0], y[y >= 0])  # over the labelled texts only
    torch.testing.assert_close(distillation_loss(s, t, y, cfg), 0.3 * 9 * kl + 0.7 * ce)
    torch.testing.assert_close(distillation_loss(s, t, None, cfg), 9 * kl)  # no labels: soft term alone
    torch.testing.assert_close(distillation_loss(s, t, torch.full((6,), -100), cfg), 9 * kl)
    torch.testing.assert_close(distillation_loss(s, t, y, DistillConfig(alpha=0.0)), ce)
    assert distillation_loss(t, t, None, cfg).abs() < 1e-6  # a student that matches its teacher


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_the_soft_gradient_is_the_difference_of_softened_probabilities_times_t(temperature):
    s, t = _logits(2).requires_grad_(), _logits(3)
    distillation_loss(s, t, None, DistillConfig(temperature=temperature)).backward()
    expected = (torch.softmax(s.detach() / temperature, -1) - torch.softmax(t / temperature, -1)) * temperature / len(s)
    torch.testing.assert_close(s.grad, expected)


def test_bad_arguments_say_what_was_wrong():
    with pytest.raises(ValueError, match="temperature"):
        DistillConfig(temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        DistillConfig(alpha=1.5)
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        distillation_loss(_logits(0, k=3), _logits(1, k=2))
    cfg = TransformerConfig(vocab_size=50, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_position=16)
    with pytest.raises(ValueError, match="same labels"):
        Distilled(SequenceClassifier(cfg, 2), SequenceClassifier(cfg, 3))


@functools.cache
def _teacher():
    """A tiny sentiment classifier that gets every tiny test review right, its config and training settings."""
    tok, data = text_tokenizer(), sentiment_data()
    cfg = TransformerConfig(vocab_size=len(tok), d_model=32, n_layers=1, n_heads=2, d_ff=64, max_position=32)
    train = TrainConfig(steps=120, batch_size=8, lr=3e-3, eval_every=120, progress=False, device="cpu")
    torch.manual_seed(0)
    teacher = SequenceClassifier(cfg, 2)
    finetune(TASKS["sentiment"], teacher, tok, data, train)
    return teacher.eval(), cfg, train


def test_a_student_learns_from_the_teacher_alone_and_the_teacher_stays_frozen():
    tok, data = text_tokenizer(), sentiment_data()
    teacher, cfg, train = _teacher()
    assert TASKS["sentiment"].evaluate(teacher, tok, data["test"])[0]["accuracy"] == 1.0
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}

    torch.manual_seed(1)
    student = Distilled(SequenceClassifier(cfg, 2), teacher, DistillConfig(temperature=2.0, alpha=1.0))
    assert not any(p is q for p in student.parameters() for q in teacher.parameters())
    finetune(TASKS["sentiment"], student, tok, data, train)  # alpha = 1: the labels never reach the loss
    assert TASKS["sentiment"].evaluate(student, tok, data["test"])[0]["accuracy"] == 1.0
    assert all(torch.equal(v, frozen[k]) for k, v in teacher.state_dict().items())
    assert set(student.state_dict()) == {f"student.{k}" for k in student.student.state_dict()}


def test_soft_targets_written_beside_the_data_teach_a_student_with_no_labels():
    from datasets import DatasetDict

    from labkit.compress.distill import DISTILL_TASK, distillation_split, teacher_logits
    from labkit.finetune import subsample

    tok, data = text_tokenizer(), sentiment_data()
    teacher, cfg, train = _teacher()
    soft = teacher_logits(teacher, tok, data["train"]["text"])
    assert soft.shape == (len(data["train"]), 2) and (soft <= 0).all()  # log-probabilities

    split = distillation_split(data["train"], soft, 4, seed=3)
    assert sum(split["labelled"]) == 4
    chosen = set(subsample(data["train"], 4, 3, "label")["text"])  # the baseline's labelled texts
    assert {t for t, keep in zip(split["text"], split["labelled"]) if keep} == chosen
    batch = next(DISTILL_TASK.batches(tok, split, train))
    assert batch["teacher_logits"].shape == (8, 2) and ((batch["labels"] == -100) | (batch["labels"] >= 0)).all()

    none = distillation_split(data["train"], soft, 0)
    torch.manual_seed(1)
    student = Distilled(SequenceClassifier(cfg, 2))  # no live teacher: the soft targets come with the batches
    finetune(DISTILL_TASK, student, tok, DatasetDict(train=none, validation=data["validation"], test=data["test"]), train)
    assert TASKS["sentiment"].evaluate(student, tok, data["test"])[0]["accuracy"] == 1.0
    with pytest.raises(ValueError, match="N = 16"):
        distillation_split(data["train"], soft[:3], 4)
    with pytest.raises(ValueError, match="distillation_split"):
        next(DISTILL_TASK.batches(tok, data["train"], train))
