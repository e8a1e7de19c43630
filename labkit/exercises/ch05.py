"""Checks for chapter 05 (fine-tuning for classification): the head's size, macro-F1, the two-class
sigmoid, reading a transfer grid, and which task gains more from pretraining.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import math
import numbers

import torch

from . import Feedback, checked, failed, passed

__all__ = ["HEAD_SIZES", "check_head_parameters", "CONFUSION", "check_macro_f1", "two_class_logits",
           "check_sigmoid_of_difference", "TRANSFER_GRID", "PAYS_THRESHOLD", "check_break_even",
           "WHY_CHOICES", "check_why_ner_gains_more"]

HEAD_SIZES = (128, 5)  # exercise 1: (C, K) = (encoder width, number of classes)
# Exercise 2: rows = true class, columns = predicted class.
CONFUSION = ((50, 8, 2),
             (10, 30, 10),
             (0, 5, 15))
# Exercise 4: a made-up transfer grid of one task (test accuracy, mean over seeds).
TRANSFER_GRID = {
    "labels": (16, 64, 256, 1024, 4096),
    "pretrained": (0.71, 0.80, 0.86, 0.89, 0.90),
    "scratch": (0.52, 0.63, 0.79, 0.875, 0.905),
}
PAYS_THRESHOLD = 0.02  # pretraining "pays" while it adds at least this much accuracy (2 points)
# Exercise 5: in the lab's cpu build, NER gains far more from pretraining at 32 labels than sentiment. Why?
WHY_CHOICES = {
    "A": "Sentiment reviews are longer than NER sentences, so they give the model more to learn from.",
    "B": "NER must label names it never saw in its labelled sentences; masked-LM pretraining has taught which "
         "words in which contexts name people and companies. Sentiment hinges on a few opinion words that 32 "
         "labelled reviews already show, so a model from scratch learns much of it too.",
    "C": "Entity F1 is a lower number than accuracy, so its differences come out larger.",
    "D": "The corpus and the objectives were designed for NER, not for sentiment.",
}


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


def _whole_number(answer) -> int | None:
    """The answer as an int if it is a whole number (2 or 2.0, not 2.7, not True); else None."""
    if isinstance(answer, bool):
        return None
    value = answer.item() if isinstance(answer, torch.Tensor) and answer.numel() == 1 else answer
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


@checked("the head's parameters", hints=(
    "The head is two linear layers: the pooler (width C to width C) and the classifier (width C to K classes).",
    "A linear layer from a inputs to b outputs has a weight for every (input, output) pair and one bias per output.",
    "Add the pooler's weights and biases to the classifier's weights and biases; the tanh has no parameters.",
))
def check_head_parameters(answer) -> Feedback:
    """answer: the number of parameters of pooler (C x C + C) plus classifier (C x K + K)."""
    name = "the head's parameters"
    C, K = HEAD_SIZES
    given = _whole_number(answer)
    if given is None:
        return failed(name, "a number of parameters is a whole number: give an int.")
    if given == C * C + C + C * K + K:
        return passed(name, f"{C}·{C} + {C} (pooler) + {C}·{K} + {K} (classifier) = {given:,}.")
    if given == C * K + K:
        return failed(name, "that is the classifier alone; the head's pooler (C x C) counts too, pretrained or not.")
    if given == C * C + C * K:
        return failed(name, "you forgot the biases: each linear layer has one per output.")
    if given == C * K:
        return failed(name, "count the pooler (C x C) and the biases too.")
    return failed(name)


@checked("macro-F1", hints=(
    "Macro-F1 is an F1 per class, then the plain mean of those F1 scores.",
    "For class k, precision divides the diagonal entry by the sum of column k (all predicted k); recall divides "
    "it by the sum of row k (all truly k).",
    "F1 of a class is 2PR / (P + R); compute it for each of the three classes, then average the three.",
))
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
    if math.isclose(given, sum(p for p, _, _ in scores) / 3, abs_tol=1e-4) or math.isclose(given, mean_r, abs_tol=1e-4):
        return failed(name, "that is a mean precision or a mean recall alone; F1 combines the two per class.")
    return failed(name)


@checked("sigmoid of the logit difference", hints=(
    "With two classes the softmax depends only on how far apart the two logits are.",
    "Divide the numerator and the denominator of the softmax for class 1 by exp of the class-1 logit.",
    "The probability of class 1 is the sigmoid of (logit of class 1 minus logit of class 0), one value per row.",
))
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
        return failed(name, "that is P(class 0): subtract the class-0 logit from the class-1 logit, not the reverse.")
    if torch.allclose(given, torch.sigmoid(z[:, 1]), atol=1e-5):
        return failed(name, "σ(z₁) ignores z₀; the probability depends on the difference of the two logits.")
    if torch.allclose(given, z[:, 1] - z[:, 0], atol=1e-5):
        return failed(name, "that is the logit difference itself; squash it into (0, 1) with the sigmoid.")
    return failed(name)


def _gains() -> list[float]:
    return [p - s for p, s in zip(TRANSFER_GRID["pretrained"], TRANSFER_GRID["scratch"])]


@checked("where pretraining stops paying", hints=(
    "For each label budget, the gain is the pretrained score minus the from-scratch score.",
    "Write the gain in accuracy points next to each budget and compare each one with the 2-point threshold.",
    "Answer with the smallest number of labels at which the gain is below the threshold.",
))
def check_break_even(answer) -> Feedback:
    """answer: the smallest label budget in ``TRANSFER_GRID`` at which the gain is below ``PAYS_THRESHOLD``."""
    name = "where pretraining stops paying"
    labels, gains = TRANSFER_GRID["labels"], _gains()
    expected = next(n for n, g in zip(labels, gains) if g < PAYS_THRESHOLD)
    given = _whole_number(answer)
    if given is None:
        if isinstance(answer, numbers.Real) and not isinstance(answer, bool) and abs(answer) < 1:
            return failed(name, "that looks like a gain or a score; the question asks for a number of labels.")
        return failed(name, "answer with a number of labels, one of the budgets of the grid (a whole number).")
    if given == expected:
        table = ", ".join(f"{n}: {100 * g:+.1f}" for n, g in zip(labels, gains))
        return passed(name, f"gains in points — {table}. From {expected} labels on, the scratch model has caught up "
                            "(within 2 points): pretraining saves labels, it does not raise the ceiling here.")
    if given == next(n for n, g in zip(labels, gains) if g < 0):
        return failed(name, "that is where the scratch model overtakes; pretraining already stopped paying "
                            "(gain under 2 points) one budget earlier.")
    if given not in labels:
        return failed(name, f"answer with one of the grid's budgets {labels}.")
    if gains[labels.index(given)] >= PAYS_THRESHOLD:
        return failed(name, f"at {given} labels pretraining still adds {100 * gains[labels.index(given)]:.1f} points, "
                            "at least the threshold of 2.")
    return failed(name)


@checked("why NER gains more", hints=(
    "Ask what a model trained from scratch on 32 labelled examples can and cannot learn for each task.",
    "In NER the test sentences name people and companies that no labelled sentence contains; in sentiment a few "
    "opinion words decide the label.",
    "The right choice explains the gap by what pretraining teaches about unseen names, and by how little "
    "sentiment needs beyond its opinion words.",
))
def check_why_ner_gains_more(answer) -> Feedback:
    """answer: the letter of the explanation in ``WHY_CHOICES``."""
    name = "why NER gains more"
    if not isinstance(answer, str) or answer.strip().upper() not in WHY_CHOICES:
        return failed(name, f"answer with one letter: {', '.join(WHY_CHOICES)}.")
    choice = answer.strip().upper()
    if choice == "B":
        return passed(name, "a model from scratch has never seen the test names used, while masked-LM pretraining "
                            "learnt from context which words name entities; sentiment is close to a bag of words.")
    return failed(name, {
        "A": "length is not the difference: the gain compares a pretrained and a scratch model on the same examples, "
             "so both get the same text to learn from.",
        "C": "the gain is a difference between two models scored with the same metric; a lower metric does not make "
             "a difference larger.",
        "D": "it is the other way round: the corpus (mood-consistent stories) and objectives (salient masking, [CLS] "
             "predicting sentiment words) were designed to help sentiment, and NER still gains more.",
    }[choice])
