"""Checks for chapter 07 (translation): a clipped n-gram precision, the brevity penalty, one beam-search step.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import math
from collections import Counter

import torch

from . import Feedback, checked, failed, passed

__all__ = ["BLEU_PAIR", "check_clipped_precision", "SHORT_PAIR", "check_brevity_penalty", "beam_step_inputs",
           "check_beam_step"]

BLEU_PAIR = ("今天的天气很好很好", "今天天气很好")  # exercise 1: (hypothesis, reference)
SHORT_PAIR = ("今天天气好", "今天天气怎么样？")  # exercise 2: (hypothesis, reference)


def beam_step_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Beam scores (K=2,) = log P(prefix), and next-token log-probabilities (2, V=5), for exercise 3."""
    beam_scores = torch.tensor([-0.3, -1.5])
    next_log_probs = torch.log(torch.tensor([[0.50, 0.40, 0.05, 0.03, 0.02],
                                             [0.90, 0.04, 0.03, 0.02, 0.01]]))
    return beam_scores, next_log_probs


def _scalar(answer) -> float:
    return float(torch.as_tensor(answer, dtype=torch.float64).reshape(()))


def _grams(text: str, n: int) -> Counter:
    return Counter(tuple(text[i:i + n]) for i in range(len(text) - n + 1))


@checked("clipped bigram precision")
def check_clipped_precision(answer) -> Feedback:
    """answer: p_2 = sum over hypothesis bigrams of min(count, count in reference) / number of hypothesis bigrams."""
    name = "clipped bigram precision"
    hyp, ref = BLEU_PAIR
    h, r = _grams(hyp, 2), _grams(ref, 2)
    clipped = sum(min(k, r[g]) for g, k in h.items())
    unclipped = sum(k for g, k in h.items() if g in r)
    given = _scalar(answer)
    if math.isclose(given, clipped / sum(h.values()), abs_tol=1e-4):
        return passed(name, f"{clipped}/{sum(h.values())}: 很好 occurs twice in the hypothesis but once in the "
                            "reference, so it counts once.")
    if math.isclose(given, unclipped / sum(h.values()), abs_tol=1e-4):
        return failed(name, "a repeated bigram may count only as often as the reference contains it (clipping).")
    if math.isclose(given, clipped / sum(r.values()), abs_tol=1e-4):
        return failed(name, "precision divides by the number of *hypothesis* bigrams, not the reference's.")
    return failed(name, "list the bigrams of each string (adjacent character pairs) and count the matches.")


@checked("brevity penalty")
def check_brevity_penalty(answer) -> Feedback:
    """answer: BP = min(1, exp(1 - r / c)), c and r the hypothesis and reference lengths in characters."""
    name = "brevity penalty"
    c, r = (len(s) for s in SHORT_PAIR)
    given = _scalar(answer)
    if math.isclose(given, min(1.0, math.exp(1 - r / c)), abs_tol=1e-4):
        return passed(name, f"c = {c}, r = {r}: BP = exp(1 − {r}/{c}) = {math.exp(1 - r / c):.4f}.")
    if math.isclose(given, math.exp(1 - c / r), abs_tol=1e-4):
        return failed(name, "the ratio is upside down: BP = exp(1 − r/c), with r the reference length.")
    if math.isclose(given, 1.0, abs_tol=1e-4):
        return failed(name, "BP is 1 only when the hypothesis is at least as long as the reference.")
    if math.isclose(given, c / r, abs_tol=1e-4):
        return failed(name, "BP is exponential: exp(1 − r/c).")
    return failed(name, "count the characters of both strings (？ counts too) and use min(1, exp(1 − r/c)).")


@checked("a beam-search step")
def check_beam_step(answer) -> Feedback:
    """answer: the 2 best (beam, token) pairs by beam_score + next_log_prob, best first."""
    name = "a beam-search step"
    beam_scores, log_probs = beam_step_inputs()
    total = beam_scores[:, None] + log_probs  # (K, V)
    top = total.flatten().topk(2).indices.tolist()
    expected = [divmod(i, total.shape[1]) for i in top]
    given = [tuple(int(v) for v in pair) for pair in answer]
    if given == expected:
        return passed(name, f"{expected}: both survivors extend beam 0 — beam 1's likely next token cannot make up "
                            "for its weaker prefix.")
    if sorted(given) == sorted(expected):
        return failed(name, "the right pairs, in the wrong order: best first.")
    per_beam = [(k, int(log_probs[k].argmax())) for k in range(len(log_probs))]
    if given == per_beam or sorted(given) == sorted(per_beam):
        return failed(name, "taking each beam's best token keeps one child per beam; beam search compares all "
                            "K × V extensions together.")
    by_next_only = [divmod(i, log_probs.shape[1]) for i in log_probs.flatten().topk(2).indices.tolist()]
    if given == by_next_only:
        return failed(name, "add each beam's score so far: an extension is scored by log P(prefix) + log P(token).")
    return failed(name, "compute beam_scores[:, None] + next_log_probs and take the two largest entries.")
