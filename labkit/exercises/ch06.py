"""Checks for chapter 06 (NER and question answering): label alignment, entity F1, the best span.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import math

import torch

from . import Feedback, checked, failed, passed

__all__ = ["ALIGN_WORD_IDS", "ALIGN_TAGS", "check_align_labels", "NER_GOLD", "NER_PRED", "check_entity_f1",
           "MAX_ANSWER_LENGTH", "span_inputs", "check_best_span"]

# Exercise 1: "[CLS] emma sato flew to chong ##qing [SEP]" → words 0..3, and their tag ids
# (1 = B-PER, 2 = I-PER, 0 = O, 5 = B-LOC).
ALIGN_WORD_IDS = (None, 0, 1, 2, 3, 4, 4, None)
ALIGN_TAGS = (1, 2, 0, 0, 5)

# Exercise 2: one sentence, gold and predicted BIO tags.
NER_GOLD = ("B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O", "B-DATE", "I-DATE")
NER_PRED = ("B-PER", "I-PER", "O", "O", "B-ORG", "O", "O", "B-LOC", "O", "B-DATE", "I-DATE")

MAX_ANSWER_LENGTH = 3  # exercise 3


def span_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Start scores (10,), end scores (10,) and a boolean (10,) mask of context tokens, for exercise 3.

    Token 0 is [CLS], tokens 1-3 the question, 4 [SEP], 5-8 the context, 9 [SEP].
    """
    start = torch.tensor([0.5, 3.0, 0.1, 0.2, 0.0, 1.0, 2.5, 0.3, 0.2, 0.0])
    end = torch.tensor([0.4, 0.2, 2.8, 0.1, 0.0, 0.1, 0.5, 1.0, 3.2, 0.0])
    in_context = torch.tensor([False, False, False, False, False, True, True, True, True, False])
    return start, end, in_context


def _aligned() -> list[int]:
    out, previous = [], None
    for w in ALIGN_WORD_IDS:
        out.append(-100 if w is None or w == previous else ALIGN_TAGS[w])
        previous = w
    return out


@checked("label alignment")
def check_align_labels(answer) -> Feedback:
    """answer: one label per piece: the word's tag at its first piece, -100 elsewhere."""
    name = "label alignment"
    given = [int(x) for x in answer]
    expected = _aligned()
    if given == expected:
        return passed(name, "each word is predicted once, at its first piece; specials and continuations are ignored.")
    if len(given) != len(ALIGN_WORD_IDS):
        return failed(name, f"give one label per piece: {len(ALIGN_WORD_IDS)} numbers.")
    every_piece = [-100 if w is None else ALIGN_TAGS[w] for w in ALIGN_WORD_IDS]
    if given == every_piece:
        return failed(name, "you labelled every piece of 'chong ##qing'; only the first piece of a word carries the tag.")
    if given[0] != -100 or given[-1] != -100:
        return failed(name, "[CLS] and [SEP] belong to no word: label them -100.")
    return failed(name, "walk through the word ids: a new word id gets that word's tag, a repeated one (or None) -100.")


def _entities(tags) -> set[tuple[str, int, int]]:
    from ..metrics import extract_entities

    return set(extract_entities(list(tags)))


@checked("entity-level F1")
def check_entity_f1(answer) -> Feedback:
    """answer: F1 of the predicted entities, where an entity counts only with the right type and boundaries."""
    name = "entity-level F1"
    given = float(torch.as_tensor(answer, dtype=torch.float64).reshape(()))
    gold, pred = _entities(NER_GOLD), _entities(NER_PRED)
    tp = len(gold & pred)
    p, r = tp / len(pred), tp / len(gold)
    f1 = 2 * p * r / (p + r)
    token_accuracy = sum(a == b for a, b in zip(NER_GOLD, NER_PRED)) / len(NER_GOLD)
    if math.isclose(given, f1, abs_tol=1e-4):
        return passed(name, f"{tp} of {len(gold)} gold entities match exactly (P = {p:.2f}, R = {r:.2f}): F1 = {f1:.3f}.")
    if math.isclose(given, 100 * f1, abs_tol=1e-2):
        return failed(name, "give F1 as a fraction in [0, 1], not in percent.")
    if math.isclose(given, token_accuracy, abs_tol=1e-4):
        return failed(name, "that is the share of correct tags; score whole entities instead.")
    if math.isclose(given, 1.0, abs_tol=1e-4):
        return failed(name, "look at ORG: the prediction cut it short, so it does not count.")
    return failed(name, "list the (type, first word, last word) entities of each sequence and count the exact matches.")


def _best_span() -> tuple[int, int]:
    start, end, ctx = span_inputs()
    best, score = None, -math.inf
    for i in range(len(start)):
        for j in range(i, min(i + MAX_ANSWER_LENGTH, len(end))):
            if ctx[i] and ctx[j] and start[i] + end[j] > score:
                best, score = (i, j), (start[i] + end[j]).item()
    return best


@checked("the best span")
def check_best_span(answer) -> Feedback:
    """answer: (i, j) maximising start[i] + end[j] with i <= j, both in the context, j - i + 1 <= MAX_ANSWER_LENGTH."""
    name = "the best span"
    i, j = (int(x) for x in answer)
    start, end, ctx = span_inputs()
    if (i, j) == _best_span():
        return passed(name, f"tokens {i}–{j}: score {start[i] + end[j]:.1f}, the best valid span.")
    if (i, j) == (int(start.argmax()), int(end.argmax())):
        return failed(name, "the separate maxima fall in the question; both ends must be context tokens.")
    if not (ctx[i] and ctx[j]):
        return failed(name, "both ends must be context tokens (in_context is True there).")
    if j < i:
        return failed(name, "an answer ends after it starts: j >= i.")
    if j - i + 1 > MAX_ANSWER_LENGTH:
        return failed(name, f"that span has {j - i + 1} tokens; the limit is {MAX_ANSWER_LENGTH}.")
    return failed(name, "try every valid (i, j) and keep the largest start[i] + end[j].")
