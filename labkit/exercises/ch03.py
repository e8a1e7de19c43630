"""Checks for chapter 03 (data and tokenisation): Chinese tokens, segment ids, held-out words.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

from . import Feedback, checked, failed, passed

__all__ = ["CHINESE_SENTENCE", "check_chinese_tokens", "check_segment_ids", "check_heldout_share"]

CHINESE_SENTENCE = "今天天气怎么样？"  # exercise 1: "What is the weather like today?"

# Exercise 2: hand-made token lists and the token_type_ids BERT gives them.
_SEGMENT_CASES = (
    (["[CLS]", "hello", "[SEP]"], [0, 0, 0]),
    (["[CLS]", "who", "founded", "it", "?", "[SEP]", "emma", "did", ".", "[SEP]"], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]),
    (["[CLS]", "今", "天", "[SEP]", "to", "##day", "[SEP]", "[PAD]", "[PAD]"], [0, 0, 0, 0, 1, 1, 1, 0, 0]),
)


@checked("Chinese tokens")
def check_chinese_tokens(answer) -> Feedback:
    """answer: the list of tokens (strings, special tokens included) that the chapter's
    tokenizer gives ``CHINESE_SENTENCE``."""
    name = "Chinese tokens"
    if isinstance(answer, str) or not all(isinstance(t, str) for t in answer):
        return failed(name, "give a list of token strings, e.g. tokenizer.convert_ids_to_tokens(ids).")
    given = list(answer)
    chars = list(CHINESE_SENTENCE)
    if given == ["[CLS]", *chars, "[SEP]"]:
        return passed(name, "one token per character, '？' included, between [CLS] and [SEP].")
    if given == chars:
        return failed(name, "encoding adds the special tokens: look at tokenizer(text)['input_ids'], not tokenize().")
    if any(len(t) > 1 and not t.startswith("[") for t in given):
        return failed(name, "BertNormalizer puts spaces around every CJK character: no piece is longer than one.")
    return failed(name, "tokenizer.convert_ids_to_tokens(tokenizer(CHINESE_SENTENCE)['input_ids']).")


@checked("segment ids")
def check_segment_ids(answer) -> Feedback:
    """answer: a function taking a list of tokens ([CLS] A [SEP] (B [SEP]) ([PAD]...)) and returning
    its token_type_ids: 0 up to and including the first [SEP], 1 for sentence B and its [SEP], 0 for [PAD]."""
    name = "segment ids"
    if not callable(answer):
        return failed(name, "give a function: def segment_ids(tokens): ... return [...]")
    for tokens, expected in _SEGMENT_CASES:
        got = answer(list(tokens))
        got = list(got) if got is not None else None
        if got != expected:
            hint = f"for {tokens} expected {expected}, got {got}."
            if "[PAD]" in tokens:
                hint += " Padding is not part of sentence B: BERT gives [PAD] type 0."
            return failed(name, hint)
    return passed(name, "0 for [CLS] A [SEP], 1 for B [SEP], 0 for padding.")


@checked("held-out share")
def check_heldout_share(answer) -> Feedback:
    """answer: the fraction (0–1) of reviews in ``load_task("sentiment", size="ci")["test"]``
    that contain at least one held-out opinion word."""
    from ..data import load_task
    from ..data.sentiment import uses_heldout_words

    name = "held-out share"
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return failed(name, f"give a number between 0 and 1; got {answer!r}")
    texts = list(load_task("sentiment", size="ci")["test"]["text"])
    count = sum(uses_heldout_words(t) for t in texts)
    if abs(answer - count / len(texts)) < 1e-9:
        return passed(name, f"{count} of {len(texts)} test reviews need a word the train split never shows.")
    if answer == count:
        return failed(name, "that is the count; divide by the number of test reviews.")
    if 1 < answer <= 100 and abs(answer / 100 - count / len(texts)) < 1e-9:
        return failed(name, "give a fraction between 0 and 1, not a percentage.")
    return failed(name, "use labkit.data.sentiment.uses_heldout_words on every text of the ci test split.")
