"""Reference solutions for chapter 03 (data and tokenisation). Each ``solution_<name>()`` returns
the answer that ``labkit.exercises.ch03.check_<name>`` accepts."""
from labkit.data import load_task
from labkit.data.sentiment import uses_heldout_words
from labkit.exercises.ch03 import CHINESE_SENTENCE


def solution_chinese_tokens():
    # In the notebook: tokenizer.convert_ids_to_tokens(tokenizer(CHINESE_SENTENCE)["input_ids"]).
    # BertNormalizer isolates every CJK character, so each one is a token of its own, whatever
    # the vocabulary size (a character the corpus never showed would become [UNK]).
    return ["[CLS]", *CHINESE_SENTENCE, "[SEP]"]


def segment_ids(tokens: list[str]) -> list[int]:
    """token_type_ids of [CLS] A [SEP] (B [SEP]) ([PAD] ...): 0 for A, 1 for B, 0 for padding."""
    ids, segment = [], 0
    for token in tokens:
        ids.append(0 if token == "[PAD]" else segment)
        if token == "[SEP]":
            segment = 1  # everything after the first [SEP] belongs to sentence B
    return ids


def solution_segment_ids():
    return segment_ids


def solution_heldout_share():
    texts = list(load_task("sentiment", size="ci")["test"]["text"])
    return sum(uses_heldout_words(t) for t in texts) / len(texts)
