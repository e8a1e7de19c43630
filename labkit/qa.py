r"""Extractive question answering (SQuAD-style): turn (question, context) pairs into model
inputs, and turn the model's start/end logits back into answer strings.

A QA head predicts, for every token i of ``[CLS] question [SEP] context [SEP]``, a start
logit :math:`s_i` and an end logit :math:`e_i`. A span (i, j) scores

.. math::

    \mathrm{score}(i, j) = s_i + e_j, \qquad i \le j,\; j - i + 1 \le \text{max\_answer\_length},

and "no answer" is the span (0, 0) on the [CLS] token, with the null score :math:`s_0 + e_0`.

Contexts longer than ``max_length`` are cut into overlapping windows ("features"); two
consecutive windows share ``stride`` context tokens, so an answer cut by one window boundary
lies whole inside a neighbouring window. Each feature remembers its example
(``example_index``) and the character offsets of its context tokens (``offset_mapping``,
``None`` for question, special and padding tokens), which map a token span back to text.

Shape letters: F number of features (windows), T max_length (tokens per feature).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

__all__ = ["Span", "prepare_train_features", "postprocess", "best_answers", "word_edges"]


@dataclass
class Span:
    """One candidate answer: ``context[start_char:end_char] == text``; ("", -1, -1) means no answer."""

    text: str
    start_char: int
    end_char: int
    score: float  # start logit + end logit


def prepare_train_features(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    answers: Sequence[dict] | None = None,
    *,
    max_length: int = 256,
    stride: int = 64,
) -> dict[str, list]:
    """Tokenise (question, context) pairs into fixed-length windows, with answer positions.

    Args:
        tokenizer: a transformers fast tokenizer producing ``[CLS] question [SEP] context [SEP]``.
        questions, contexts: N strings each.
        answers: optional N SQuAD answers ``{"text": [...], "answer_start": [...]}``; the first
            answer is used, and an empty ``text`` list means "no answer".
        max_length: T, tokens per feature (padded to exactly T).
        stride: context tokens shared by two consecutive windows of one example.

    Returns:
        F features as lists: ``input_ids``, ``token_type_ids``, ``attention_mask`` (each F lists
        of T ints), ``offset_mapping`` (F lists of T ``(start_char, end_char)`` or None outside
        the context), ``example_index`` (F ints) and, with answers, ``start_positions`` /
        ``end_positions`` (F ints: the answer's first and last token, or 0/0 — the [CLS]
        token — when the answer is not wholly inside the window).
    """
    _check_inputs(tokenizer, questions, contexts, answers, max_length, stride)
    enc = tokenizer(
        list(questions), list(contexts), truncation="only_second", max_length=max_length, stride=stride,
        return_overflowing_tokens=True, return_offsets_mapping=True, return_token_type_ids=True,
        padding="max_length",
    )
    features: dict[str, list] = {
        "input_ids": enc["input_ids"],
        "token_type_ids": enc["token_type_ids"],
        "attention_mask": enc["attention_mask"],
        "offset_mapping": [],
        "example_index": list(enc["overflow_to_sample_mapping"]),
    }
    for i, offsets in enumerate(enc["offset_mapping"]):
        sequence_ids = enc.sequence_ids(i)  # 0 question, 1 context, None special / padding
        features["offset_mapping"].append(
            [tuple(o) if s == 1 else None for o, s in zip(offsets, sequence_ids)]
        )
    if answers is not None:
        features["start_positions"], features["end_positions"] = [], []
        for offsets, example in zip(features["offset_mapping"], features["example_index"]):
            start, end = _answer_tokens(offsets, answers[example])
            features["start_positions"].append(start)
            features["end_positions"].append(end)
    return features


def _check_inputs(tokenizer, questions, contexts, answers, max_length: int, stride: int) -> None:
    if len(questions) != len(contexts):
        raise ValueError(f"got {len(questions)} questions but {len(contexts)} contexts")
    if answers is not None and len(answers) != len(contexts):
        raise ValueError(f"got {len(answers)} answers for {len(contexts)} contexts")
    if stride < 0:
        raise ValueError(f"stride must be >= 0, got {stride}")
    if max_length <= stride:
        raise ValueError(f"max_length must be > stride, got max_length={max_length}, stride={stride}")
    special = tokenizer.num_special_tokens_to_add(pair=True)  # [CLS], [SEP], [SEP]
    question_ids = tokenizer(list(questions), add_special_tokens=False)["input_ids"]
    for n, ids in enumerate(question_ids):
        room = max_length - special - len(ids)  # context tokens that fit in one window
        if room <= stride:
            raise ValueError(
                f"question {n} has {len(ids)} tokens: with {special} special tokens and max_length={max_length} "
                f"only {max(room, 0)} context tokens fit per window, which must be > stride={stride}"
            )
    for n, answer in enumerate(answers or []):
        for text, start in zip(answer["text"][:1], answer["answer_start"][:1]):
            if contexts[n][start:start + len(text)] != text:
                raise ValueError(
                    f"answer {n}: {text!r} is not at character {start} of its context "
                    f"(found {contexts[n][start:start + len(text)]!r})"
                )


def _answer_tokens(offsets: list, answer: dict) -> tuple[int, int]:
    """First and last token of the answer within one window, or (0, 0) if not wholly inside it."""
    if not answer["text"]:
        return 0, 0
    start_char = answer["answer_start"][0]
    end_char = start_char + len(answer["text"][0])
    context = [i for i, o in enumerate(offsets) if o is not None]  # token indices of this window's context
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return 0, 0
    start = max(i for i in context if offsets[i][0] <= start_char)  # last token starting at or before
    end = min(i for i in context if offsets[i][1] >= end_char)  # first token ending at or after
    return start, end


def postprocess(
    features: dict[str, list],
    start_logits: torch.Tensor | Sequence,
    end_logits: torch.Tensor | Sequence,
    contexts: Sequence[str],
    *,
    n_best: int = 5,
    max_answer_length: int = 30,
    allow_no_answer: bool = False,
    snap_to_words: bool = True,
) -> list[list[Span]]:
    """The n_best answer spans of every example, best first, from per-feature logits.

    Args:
        features: the output of :func:`prepare_train_features` (``offset_mapping``, ``example_index``).
        start_logits, end_logits: (F, T) scores for each token to start / end the answer.
        contexts: the N contexts the features were cut from.
        n_best: spans kept per example (distinct character spans, over all its features).
        max_answer_length: longest answer, in tokens.
        allow_no_answer: if the null score (the [CLS] start + end logit, minimum over the
            example's features) beats the best span, put ``Span("", -1, -1, null)`` first.
        snap_to_words: widen each span to whole words (:func:`word_edges`): a WordPiece model may
            start an answer at ``##side`` of "Lakeside", and a reader wants "Lakeside Hospital".

    Returns:
        N lists of at most n_best :class:`Span`; an example with no valid span gets
        ``[Span("", -1, -1, null_score)]``.
    """
    start_logits = torch.as_tensor(start_logits, dtype=torch.float32)  # (F, T)
    end_logits = torch.as_tensor(end_logits, dtype=torch.float32)  # (F, T)
    offsets, example_index = features["offset_mapping"], features["example_index"]
    n_features, T = len(offsets), len(offsets[0]) if offsets else 0
    for name, logits in (("start_logits", start_logits), ("end_logits", end_logits)):
        if tuple(logits.shape) != (n_features, T):
            raise ValueError(f"{name} must be (F, T) = ({n_features}, {T}) like the features, got {tuple(logits.shape)}")
    if n_best < 1 or max_answer_length < 1:
        raise ValueError(f"n_best and max_answer_length must be >= 1, got {n_best} and {max_answer_length}")
    if set(example_index) != set(range(len(contexts))):
        raise ValueError(f"features cover examples {sorted(set(example_index))[:5]}..., "
                         f"but {len(contexts)} contexts were given")

    spans: list[dict[tuple[int, int], float]] = [{} for _ in contexts]  # (start_char, end_char) -> best score
    null_scores = [float("inf")] * len(contexts)
    for f in range(n_features):
        n = example_index[f]
        null_scores[n] = min(null_scores[n], float(start_logits[f, 0] + end_logits[f, 0]))
        for (i, j), score in _top_spans(start_logits[f], end_logits[f], offsets[f], n_best, max_answer_length):
            key = (offsets[f][i][0], offsets[f][j][1])  # character span
            if snap_to_words:
                key = word_edges(contexts[n], *key)
            spans[n][key] = max(score, spans[n].get(key, float("-inf")))

    results = []
    for n, context in enumerate(contexts):
        ranked = sorted(spans[n].items(), key=lambda kv: kv[1], reverse=True)[:n_best]
        best = [Span(context[a:b], a, b, score) for (a, b), score in ranked]
        no_answer = Span("", -1, -1, null_scores[n])
        if not best:
            best = [no_answer]
        elif allow_no_answer and null_scores[n] > best[0].score:
            best = [no_answer] + best[:n_best - 1]
        results.append(best)
    return results


def _is_word_char(c: str) -> bool:
    """Letters and digits of scripts written with spaces; a CJK character is a word of its own."""
    return c.isalnum() and not ("\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff")


def word_edges(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen the character span [start, end) of ``text`` so it neither starts nor ends inside a word.

    >>> text = "She works at Lakeside Hospital in Toronto."
    >>> a, b = word_edges(text, text.index("side"), text.index(" in"))
    >>> text[a:b]
    'Lakeside Hospital'
    """
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"span ({start}, {end}) is not inside a text of {len(text)} characters")
    while 0 < start < len(text) and _is_word_char(text[start - 1]) and _is_word_char(text[start]):
        start -= 1
    while 0 < end < len(text) and _is_word_char(text[end - 1]) and _is_word_char(text[end]):
        end += 1
    return start, end


def _top_spans(start: torch.Tensor, end: torch.Tensor, offsets: list, k: int,
               max_answer_length: int) -> list[tuple[tuple[int, int], float]]:
    """The k best valid token spans (i, j) of one feature, with scores start[i] + end[j]."""
    T = start.size(0)
    in_context = torch.tensor([o is not None for o in offsets])  # (T,)
    scores = start[:, None] + end[None, :]  # (T, 1) + (1, T) -> (T, T): span (i, j)
    i = torch.arange(T)[:, None]  # (T, 1)
    j = torch.arange(T)[None, :]  # (1, T)
    valid = (j >= i) & (j - i + 1 <= max_answer_length) & in_context[:, None] & in_context[None, :]  # (T, T)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return []
    scores = scores.masked_fill(~valid, float("-inf")).flatten()  # (T*T,)
    top = torch.topk(scores, k=min(k, n_valid))
    return [((idx // T, idx % T), float(s)) for s, idx in zip(top.values, top.indices.tolist())]


def best_answers(
    features: dict[str, list],
    start_logits: torch.Tensor | Sequence,
    end_logits: torch.Tensor | Sequence,
    contexts: Sequence[str],
    *,
    max_answer_length: int = 30,
    allow_no_answer: bool = False,
    snap_to_words: bool = True,
) -> list[str]:
    """One answer string per example: the best span of :func:`postprocess` ("" for no answer)."""
    ranked = postprocess(features, start_logits, end_logits, contexts, n_best=1, max_answer_length=max_answer_length,
                         allow_no_answer=allow_no_answer, snap_to_words=snap_to_words)
    return [spans[0].text for spans in ranked]
