"""Checks for chapter 06 (NER and question answering): label alignment, entity F1, the best span,
and turning a token span into a whole-word answer.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import math
import numbers

import torch

from . import Feedback, checked, failed, passed

__all__ = ["ALIGN_WORD_IDS", "ALIGN_TAGS", "check_align_labels", "NER_GOLD", "NER_PRED", "check_entity_f1",
           "MAX_ANSWER_LENGTH", "span_inputs", "check_best_span", "SNAP_QUESTION", "SNAP_CONTEXT", "SNAP_PIECES",
           "SNAP_OFFSETS", "SNAP_SPAN", "check_whole_word_answer"]

# Exercise 1: "[CLS] emma sato flew to chong ##qing [SEP]" → words 0..3, and their tag ids
# (1 = B-PER, 2 = I-PER, 0 = O, 5 = B-LOC).
ALIGN_WORD_IDS = (None, 0, 1, 2, 3, 4, 4, None)
ALIGN_TAGS = (1, 2, 0, 0, 5)

# Exercise 2: one sentence, gold and predicted BIO tags.
NER_GOLD = ("B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O", "B-DATE", "I-DATE")
NER_PRED = ("B-PER", "I-PER", "O", "O", "B-ORG", "O", "O", "B-LOC", "O", "B-DATE", "I-DATE")

MAX_ANSWER_LENGTH = 3  # exercise 3

# Exercise 4: one QA feature, "[CLS] question [SEP] context [SEP]", with the character offsets of its
# context pieces (None for the question and the special tokens), and the token span a model chose.
SNAP_QUESTION = "Which company did Xie Wei found?"
SNAP_CONTEXT = "Xie Wei founded Sunrise Textiles in Chongqing."
_CONTEXT_PIECES = ("Xie", "Wei", "founded", "Sun", "rise", "Text", "iles", "in", "Chong", "qing", ".")


def _feature() -> tuple[tuple[str, ...], tuple]:
    question = ("which", "company", "did", "xie", "wei", "found", "?")
    pieces, offsets, at = ["[CLS]", *question, "[SEP]"], [None] * (len(question) + 2), 0
    for piece in _CONTEXT_PIECES:
        start = SNAP_CONTEXT.index(piece, at)
        inside = start > 0 and SNAP_CONTEXT[start - 1].isalnum() and piece[0].isalnum()  # a continuation piece
        pieces.append(("##" if inside else "") + piece.lower())
        offsets.append((start, start + len(piece)))
        at = start + len(piece)
    return (*pieces, "[SEP]"), (*offsets, None)


SNAP_PIECES, SNAP_OFFSETS = _feature()
SNAP_SPAN = (SNAP_PIECES.index("##rise"), SNAP_PIECES.index("text"))  # starts inside "Sunrise", ends inside "Textiles"


def span_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Start scores (10,), end scores (10,) and a boolean (10,) mask of context tokens, for exercise 3.

    Token 0 is [CLS], tokens 1-3 the question, 4 [SEP], 5-8 the context, 9 [SEP].
    """
    start = torch.tensor([0.5, 3.0, 0.1, 0.2, 0.0, 1.0, 2.5, 0.3, 0.2, 0.0])
    end = torch.tensor([0.4, 0.2, 2.8, 0.1, 0.0, 0.1, 0.5, 1.0, 3.2, 0.0])
    in_context = torch.tensor([False, False, False, False, False, True, True, True, True, False])
    return start, end, in_context


def _whole_number(x) -> int:
    """x as an int if it is an integer-valued number (2, 2.0, a 0-d tensor); 2.7, "2" and True raise."""
    if isinstance(x, torch.Tensor):
        if x.numel() != 1:
            raise TypeError(f"expected one number, got a tensor of shape {tuple(x.shape)}")
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or x != int(x):
        raise TypeError(f"expected a whole number, got {x!r}")
    return int(x)


def _aligned() -> list[int]:
    out, previous = [], None
    for w in ALIGN_WORD_IDS:
        out.append(-100 if w is None or w == previous else ALIGN_TAGS[w])
        previous = w
    return out


@checked("label alignment", hints=(
    "the loss should score each word exactly once, and the special tokens never.",
    "walk through the word ids: a piece whose word id differs from the previous piece's starts a new word and gets "
    "that word's tag; every other piece is ignored.",
    "ignored pieces get the label -100: the two None positions and the second piece of 'chong ##qing'.",
))
def check_align_labels(answer) -> Feedback:
    """answer: one label per piece: the word's tag at its first piece, -100 elsewhere."""
    name = "label alignment"
    if isinstance(answer, (str, bytes, dict)):
        return failed(name, f"give a list of {len(ALIGN_WORD_IDS)} whole numbers, one per piece.")
    given = [_whole_number(x) for x in answer]
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
    return failed(name)


def _entities(tags) -> set[tuple[str, int, int]]:
    from ..metrics import extract_entities

    return set(extract_entities(list(tags)))


@checked("entity-level F1", hints=(
    "score whole entities, not tags: read each tag sequence as a set of (type, first word, last word) entities.",
    "a predicted entity is a true positive only if a gold entity has the same type and both boundaries; precision "
    "divides the true positives by the predicted entities, recall by the gold ones.",
    "three of the four entities match; the predicted ORG stops one word early, so it is a false positive and the gold "
    "ORG is missed.",
))
def check_entity_f1(answer) -> Feedback:
    """answer: F1 of the predicted entities, where an entity counts only with the right type and boundaries."""
    name = "entity-level F1"
    if isinstance(answer, (str, bytes)):
        return failed(name, "give a number in [0, 1].")
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
    if math.isclose(given, p, abs_tol=1e-4) or math.isclose(given, r, abs_tol=1e-4):
        return failed(name, "that is precision or recall alone; F1 combines them (their harmonic mean).")
    return failed(name)


def _best_span() -> tuple[int, int]:
    start, end, ctx = span_inputs()
    best, score = None, -math.inf
    for i in range(len(start)):
        for j in range(i, min(i + MAX_ANSWER_LENGTH, len(end))):
            if ctx[i] and ctx[j] and start[i] + end[j] > score:
                best, score = (i, j), (start[i] + end[j]).item()
    return best


@checked("the best span", hints=(
    "an answer is a span of the context: both ends must be context tokens, and it ends at or after its start.",
    "score every valid pair (i, j) as the start score at i plus the end score at j; a span of more than "
    "MAX_ANSWER_LENGTH tokens is not valid.",
    "only tokens 5 to 8 are context: try each start there with each end up to two tokens later, and keep the "
    "highest sum.",
))
def check_best_span(answer) -> Feedback:
    """answer: (i, j) maximising start[i] + end[j] with i <= j, both in the context, j - i + 1 <= MAX_ANSWER_LENGTH."""
    name = "the best span"
    if isinstance(answer, (str, bytes, dict)) or len(answer) != 2:
        return failed(name, "give a pair of token positions (i, j).")
    i, j = (_whole_number(x) for x in answer)
    start, end, ctx = span_inputs()
    if not (0 <= i < len(ctx) and 0 <= j < len(ctx)):
        return failed(name, f"token positions run from 0 to {len(ctx) - 1}.")
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
    return failed(name)


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        end += 1
    return start, end


def _raw_and_whole() -> tuple[str, str]:
    i, j = SNAP_SPAN
    a, b = SNAP_OFFSETS[i][0], SNAP_OFFSETS[j][1]
    c, d = _widen(SNAP_CONTEXT, a, b)
    return SNAP_CONTEXT[a:b], SNAP_CONTEXT[c:d]


@checked("a whole-word answer", hints=(
    "a token span becomes text through the character offsets of its first and last token, not by joining pieces.",
    "the raw text runs from where token i starts to where token j ends. Then widen it: while the characters just "
    "inside and just outside an edge are both letters or digits, that edge is inside a word — move it outwards.",
    "the model's span starts in the middle of 'Sunrise' and ends in the middle of 'Textiles'; the whole-word answer "
    "is the company's full name.",
))
def check_whole_word_answer(answer) -> Feedback:
    """answer: (raw, whole): the text the token span SNAP_SPAN covers, and that text widened to whole words."""
    name = "a whole-word answer"
    if isinstance(answer, (str, bytes, dict)) or len(answer) != 2 or not all(isinstance(a, str) for a in answer):
        return failed(name, "give a pair of strings: (the raw span's text, the whole-word answer).")
    raw, whole = answer
    expected_raw, expected_whole = _raw_and_whole()
    i, j = SNAP_SPAN
    if (raw, whole) == (expected_raw, expected_whole):
        return passed(name, f"{raw!r} → {whole!r}. The model never sees words, only pieces, so nothing stops its best "
                            "span from starting at a '##' piece; labkit.qa.word_edges widens every span this way "
                            "(postprocess's snap_to_words=True).")
    if (raw, whole) == (expected_whole, expected_raw):
        return failed(name, "the two texts are swapped: first the raw span, then the widened one.")
    if raw == expected_raw and whole.strip() != whole:
        return failed(name, "widen to the edges of words only: leave out the spaces around them.")
    if raw == expected_raw and expected_whole in whole:
        return failed(name, "the raw text is right, but the second one is widened too far: stop at the first edge "
                            "between a letter and a space or punctuation mark.")
    if raw == expected_raw:
        return failed(name, f"the raw text is right; the second one should contain it and neither start nor end "
                            f"inside a word (yours is {whole!r}).")
    if raw == " ".join(SNAP_PIECES[i:j + 1]):
        return failed(name, "that joins the pieces; read the text out of the context with the offsets instead.")
    if raw == SNAP_CONTEXT[SNAP_OFFSETS[i][0]:SNAP_OFFSETS[j][0]]:
        return failed(name, "the raw text ends where token j ends, not where it starts.")
    if raw == whole == expected_whole:
        return failed(name, "the first text is what the token span covers before any widening.")
    return failed(name)
