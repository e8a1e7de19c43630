"""Checks for chapter 05 (fine-tuning for classification): the head's size, macro-F1, two-class sigmoid.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import math

import torch

from . import Feedback, checked, failed, passed

__all__ = ["HEAD_SIZES", "check_head_parameters", "CONFUSION", "check_macro_f1", "two_class_logits",
           "check_sigmoid_of_difference"]

HEAD_SIZES = (128, 5)  # exercise 1: (C, K) = (encoder width, number of classes)
# Exercise 2: rows = true class, columns = predicted class.
CONFUSION = ((50, 8, 2),
             (10, 30, 10),
             (0, 5, 15))


def two_class_logits() -> torch.Tensor:
    """Logits (N=6, 2) of a two-class classifier, for exercise 3."""
    return torch.randn(6, 2, generator=torch.Generator().manual_seed(105)) * 2


def _per_class(confusion) -> list[tuple[float, float, float]]:
    """(precision, recall, F1) of each class of a confusion matrix (rows true, columns predicted)."""
    c = torch.as_tensor(confusion, dtype=torch.float64)
    out = []
    for k in range(len(c)):
        tp, predicted, actual = c[k, k].item(), c[:, k].sum().item(), c[k].sum().item()
        p, r = (tp / predicted if predicted else 0.0), (tp / actual if actual else 0.0)
        out.append((p, r, 2 * p * r / (p + r) if p + r else 0.0))
    return out


@checked("the head's parameters")
def check_head_parameters(answer) -> Feedback:
    """answer: the number of parameters of pooler (C x C + C) plus classifier (C x K + K)."""
    name = "the head's parameters"
    C, K = HEAD_SIZES
    given = int(answer)
    if given == C * C + C + C * K + K:
        return passed(name, f"{C}·{C} + {C} (pooler) + {C}·{K} + {K} (classifier) = {given:,}.")
    if given == C * K + K:
        return failed(name, "that is the classifier alone; the head's pooler (C x C) counts too, pretrained or not.")
    if given == C * C + C * K:
        return failed(name, "you forgot the biases: each linear layer has one per output.")
    if given == C * K:
        return failed(name, "count the pooler (C x C) and the biases too.")
    return failed(name, "a linear layer from a to b has a*b weights and b biases; the head has two of them.")


@checked("macro-F1")
def check_macro_f1(answer) -> Feedback:
    """answer: the mean over classes of F1 = 2PR / (P + R), from ``CONFUSION``."""
    name = "macro-F1"
    given = float(torch.as_tensor(answer, dtype=torch.float64).reshape(()))
    scores = _per_class(CONFUSION)
    macro = sum(f for _, _, f in scores) / len(scores)
    c = torch.as_tensor(CONFUSION, dtype=torch.float64)
    accuracy = (c.trace() / c.sum()).item()
    mean_p, mean_r = sum(p for p, _, _ in scores) / 3, sum(r for _, r, _ in scores) / 3
    if math.isclose(given, macro, abs_tol=1e-4):
        return passed(name, f"{macro:.4f}: per-class F1 {', '.join(f'{f:.3f}' for _, _, f in scores)}, averaged.")
    if math.isclose(given, accuracy, abs_tol=1e-4):
        return failed(name, "that is the accuracy (= micro-F1 for single-label classification); average per class.")
    if math.isclose(given, 2 * mean_p * mean_r / (mean_p + mean_r), abs_tol=1e-4):
        return failed(name, "you averaged P and R first; compute F1 for each class, then average the F1s.")
    return failed(name, "for class k: precision = C[k,k] / column k's sum, recall = C[k,k] / row k's sum.")


@checked("sigmoid of the logit difference")
def check_sigmoid_of_difference(answer) -> Feedback:
    """answer: (N,) sigmoid(z1 - z0), which equals softmax(z)[:, 1]."""
    name = "sigmoid of the logit difference"
    z = two_class_logits()
    given = torch.as_tensor(answer, dtype=torch.float32).flatten()
    expected = torch.softmax(z, -1)[:, 1]
    if given.shape != expected.shape:
        return failed(name, f"expect one probability per row: shape ({len(z)},); got {tuple(given.shape)}.")
    if torch.allclose(given, expected, atol=1e-5):
        return passed(name, "σ(z₁ − z₀) = e^{z₁} / (e^{z₀} + e^{z₁}): the same as the softmax.")
    if torch.allclose(given, 1 - expected, atol=1e-5):
        return failed(name, "that is P(class 0): use z1 - z0, not z0 - z1.")
    if torch.allclose(given, torch.sigmoid(z[:, 1]), atol=1e-5):
        return failed(name, "σ(z₁) ignores z₀; the probability depends on the difference of the two logits.")
    return failed(name, "torch.sigmoid(z[:, 1] - z[:, 0]).")
