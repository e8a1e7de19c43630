"""Checks for chapter 03 (data and tokenisation): Chinese tokens, unseen words, segment ids, and
which test entities the train split already showed.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
The exercises build their inputs from the functions and constants here, so each exercise cell
runs on its own.
"""
from __future__ import annotations

import functools
import math
import numbers

from . import Feedback, checked, failed, passed

__all__ = ["CHINESE_SENTENCE", "UNSEEN_WORDS", "ENTITY_TYPES", "exercise_tokenizer", "ner_entities",
           "check_chinese_tokens", "check_unseen_words", "check_segment_ids", "check_seen_entities"]

CHINESE_SENTENCE = "今天天气怎么样？"  # exercise 1: "What is the weather like today?"
# Exercise 2: words TinyWorld's corpus never contains (two of them hold a character it never uses).
UNSEEN_WORDS = ("zentrasphere", "unfounded", "naïve", "今天龘", "smile🙂", "x²")
ENTITY_TYPES = ("PER", "ORG", "LOC", "DATE", "PRODUCT")  # exercise 4

# Exercise 3: hand-made token lists and the token_type_ids BERT gives them.
_SEGMENT_CASES = (
    (["[CLS]", "hello", "[SEP]"], [0, 0, 0]),
    (["[CLS]", "who", "founded", "it", "?", "[SEP]", "emma", "did", ".", "[SEP]"], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]),
    (["[CLS]", "今", "天", "[SEP]", "to", "##day", "[SEP]", "[PAD]", "[PAD]"], [0, 0, 0, 0, 1, 1, 1, 0, 0]),
)


@functools.lru_cache(maxsize=1)
def exercise_tokenizer():
    """The chapter's kind of tokenizer: WordPiece trained on TinyWorld's ci corpus, 3,000 pieces (about a second)."""
    from ..data import load_task
    from ..tokenization import train_tokenizer

    return train_tokenizer(list(load_task("corpus", size="ci")["train"]["text"]), vocab_size=3000)


def _strings(answer) -> list[str] | None:
    if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__iter__"):
        return None
    values = list(answer)
    return values if all(isinstance(t, str) for t in values) else None


@checked("Chinese tokens", hints=(
    "Predict first: what does the tokenizer's normaliser do around every Chinese character? And what does "
    "encoding add at the two ends of a single sentence?",
    "Each CJK character becomes a word of its own, so WordPiece never merges two characters; the full-width "
    "question mark is a character too.",
    "Encode the sentence (call the tokenizer on it), then turn the ids back into token strings. The list "
    "starts with the classification token and ends with the separator.",
))
def check_chinese_tokens(answer) -> Feedback:
    """answer: the list of tokens (strings, special tokens included) that ``exercise_tokenizer()``
    gives ``CHINESE_SENTENCE`` when it encodes it."""
    name = "Chinese tokens"
    given = _strings(answer)
    if given is None:
        return failed(name, "give a list of token strings (the ids turned back into tokens), not ids or one string.")
    chars = list(CHINESE_SENTENCE)
    if given == ["[CLS]", *chars, "[SEP]"]:
        return passed(name, "one token per character, '？' included, between [CLS] and [SEP].")
    if given == chars:
        return failed(name, "encoding adds the special tokens; splitting alone (tokenize) does not.")
    if any(len(t) > 1 and not t.startswith("[") for t in given):
        return failed(name, "the normaliser puts spaces around every CJK character: no Chinese piece is longer "
                            "than one character.")
    return failed(name)


@checked("unseen words", hints=(
    "An unseen word is not automatically unknown: WordPiece tries to spell it from the pieces it has, down to "
    "single characters. When can it not spell a word at all?",
    "A word is lost, as one [UNK], only if one of its characters never occurred in the training corpus. The "
    "normaliser also lowercases and strips accents before WordPiece sees the word.",
    "Chinese characters are split apart before WordPiece runs, so an unknown one spoils only itself. Tokenize "
    "each word and keep those whose whole result is the single unknown token.",
))
def check_unseen_words(answer) -> Feedback:
    """answer: the words of ``UNSEEN_WORDS`` that ``exercise_tokenizer()`` loses completely
    (its tokens are just ``["[UNK]"]``), as a set or list of strings."""
    name = "unseen words"
    given = _strings(answer)
    if given is None:
        return failed(name, "give a set (or list) of words taken from UNSEEN_WORDS.")
    given = set(given)
    if not given <= set(UNSEEN_WORDS):
        return failed(name, f"choose among UNSEEN_WORDS only; these are not in it: {sorted(given - set(UNSEEN_WORDS))}")
    tokenizer = exercise_tokenizer()
    lost = {w for w in UNSEEN_WORDS if tokenizer.tokenize(w) == ["[UNK]"]}
    if given == lost:
        return passed(name, f"only {sorted(lost)} are lost: each holds a character the corpus never showed, and "
                            "one unknown character makes WordPiece give up on the whole word. Every other unseen "
                            "word is spelled from subword pieces; and since each Chinese character is its own "
                            "word, '龘' spoils only itself.")
    spelled = [w for w in given if w not in lost and all(ord(ch) < 0x3400 for ch in w)]
    if spelled:
        return failed(name, f"{spelled}: an unseen word made of known letters is spelled from smaller pieces "
                            "(the ## continuations), not lost.")
    if "今天龘" in given:
        return failed(name, "the normaliser isolates each Chinese character before WordPiece runs, so only the "
                            "rare character becomes [UNK]; the two others stay.")
    if lost - given:
        return failed(name, f"you missed {sorted(lost - given)}: a single character the corpus never showed is "
                            "enough to lose the whole word.")
    return failed(name)


@checked("segment ids", hints=(
    "Walk along the tokens and keep track of which sentence you are in; the separator token is what moves "
    "you from sentence A to sentence B.",
    "Sentence A's ids are 0, its closing [SEP] included; every token after that first [SEP] belongs to "
    "sentence B and gets 1, including B's own [SEP].",
    "Padding is not part of either sentence: BERT gives [PAD] type 0. Return one id per token, as a list of ints.",
))
def check_segment_ids(answer) -> Feedback:
    """answer: a function taking a list of tokens ([CLS] A [SEP] (B [SEP]) ([PAD]...)) and returning
    its token_type_ids: 0 up to and including the first [SEP], 1 for sentence B and its [SEP], 0 for [PAD]."""
    name = "segment ids"
    if not callable(answer):
        return failed(name, "give a function that takes a list of tokens and returns a list of ints.")
    for tokens, expected in _SEGMENT_CASES:
        got = answer(list(tokens))
        try:
            got = [int(g) if isinstance(g, numbers.Integral) and not isinstance(g, bool) else g for g in got]
        except TypeError:
            return failed(name, f"return a list of ints; for {tokens} your function returned {got!r}.")
        if got == expected:
            continue
        if len(got) != len(expected):
            return failed(name, f"return one id per token: {len(tokens)} tokens, {len(got)} ids.")
        pads = [i for i, t in enumerate(tokens) if t == "[PAD]"]
        if pads and all(got[i] == 1 for i in pads):
            return failed(name, "padding is not part of sentence B: BERT gives [PAD] type 0.")
        first_sep = tokens.index("[SEP]")
        if tokens.count("[SEP]") == 2 and all(g == 0 for g in got):
            return failed(name, "the tokens after the first [SEP] are sentence B: they get type 1.")
        if got[first_sep] == 1:
            return failed(name, "the first [SEP] closes sentence A, so it has type 0.")
        if tokens.count("[SEP]") == 2 and got[len(tokens) - len(pads) - 1] == 0:
            return failed(name, "the second [SEP] closes sentence B, so it has type 1.")
        return failed(name)
    return passed(name, "0 for [CLS] A [SEP], 1 for B [SEP], 0 for padding.")


def ner_entities(row: dict, tag_names: list[str]) -> list[tuple[str, str]]:
    """The entities of one NER row as (type, text) pairs: ``("PER", "Emma Smith")``.

    row: a record of ``load_task("ner")`` with "tokens" and "ner_tags"; tag_names: the split's
    ``features["ner_tags"].feature.names`` ("O", "B-PER", "I-PER", ...).
    """
    found, current = [], None
    for token, tag_id in zip(row["tokens"], row["ner_tags"]):
        tag = tag_names[tag_id]
        if tag.startswith("I-") and current and current[0] == tag[2:]:
            current[1].append(token)
            continue
        if current:
            found.append((current[0], " ".join(current[1])))
        current = (tag[2:], [token]) if tag != "O" else None
    if current:
        found.append((current[0], " ".join(current[1])))
    return found


def _seen_shares(size: str = "ci", split: str = "test") -> dict[str, float]:
    from ..data import load_task

    ner = load_task("ner", size=size)
    names = ner["train"].features["ner_tags"].feature.names
    known = {e for row in ner["train"] for e in ner_entities(row, names)}
    seen = {t: 0 for t in ENTITY_TYPES}
    total = {t: 0 for t in ENTITY_TYPES}
    for row in ner[split]:
        for entity in ner_entities(row, names):
            total[entity[0]] += 1
            seen[entity[0]] += entity in known
    return {t: seen[t] / total[t] for t in ENTITY_TYPES}


@checked("test entities seen in training", hints=(
    "Collect every entity of the train split (type and text, from ner_entities), then go through the test "
    "split's entities and ask, type by type, whether the train split already had that exact one.",
    "For each type, divide the number of test entities found in the train set by the number of test entities "
    "of that type. Use the ci size, and count every occurrence, not distinct names.",
    "Give a dict with the five keys of ENTITY_TYPES, each a fraction between 0 and 1. Some types should come "
    "out exactly 0: which ones did the data's design hold out?",
))
def check_seen_entities(answer) -> Feedback:
    """answer: a dict {entity type: share of the test entities of that type that occur, same type and same
    words, in the train split}, for ``load_task("ner", size="ci")``."""
    name = "test entities seen in training"
    if not isinstance(answer, dict) or set(answer) != set(ENTITY_TYPES):
        return failed(name, f"give a dict with exactly the keys {list(ENTITY_TYPES)}.")
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in answer.values()):
        return failed(name, "each value should be a number between 0 and 1.")
    expected = _seen_shares()
    close = lambda got, want: all(abs(got[t] - want[t]) < 1e-6 for t in ENTITY_TYPES)  # noqa: E731
    if close(answer, expected):
        return passed(name, "no test person, organisation or product occurs in the train split: a model that had "
                            "only memorised names would find none of them, so its test score on those types "
                            "measures generalisation. Cities and dates are few and shared, so a high LOC or DATE "
                            "score can come from memory alone — read a per-type report with that in mind.")
    if any(v > 1 for v in answer.values()):
        if close({t: answer[t] / 100 for t in ENTITY_TYPES}, expected):
            return failed(name, "give fractions between 0 and 1, not percentages.")
        return failed(name, "those look like counts: divide by the number of test entities of each type.")
    if close(answer, _seen_shares(split="validation")):
        return failed(name, "those are the validation split's shares; the exercise asks for the test split.")
    return failed(name)
