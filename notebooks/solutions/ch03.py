"""Reference solutions for chapter 03 (data and tokenisation). Each ``solution_<name>()`` returns
the answer that ``labkit.exercises.ch03.check_<name>`` accepts."""
from labkit.data import load_task
from labkit.exercises.ch03 import CHINESE_SENTENCE, ENTITY_TYPES, UNSEEN_WORDS, exercise_tokenizer, ner_entities


def solution_chinese_tokens():
    tokenizer = exercise_tokenizer()
    # The normaliser isolates every CJK character, so each one is a token of its own, whatever the
    # vocabulary size (a character the corpus never showed would become [UNK]); encoding adds
    # [CLS] and [SEP]: ["[CLS]", "今", "天", "天", "气", "怎", "么", "样", "？", "[SEP]"].
    return tokenizer.convert_ids_to_tokens(tokenizer(CHINESE_SENTENCE)["input_ids"])


def solution_unseen_words():
    tokenizer = exercise_tokenizer()
    # Unseen words made of known characters are spelled from pieces ("zentrasphere" →
    # zentra ##s ##ph ##er ##e; "naïve" loses its accent first). A single character the corpus
    # never showed ("🙂", "²") makes the whole word [UNK]; a rare Chinese character spoils only
    # itself, because each CJK character is a word of its own. Answer: {"smile🙂", "x²"}.
    return {word for word in UNSEEN_WORDS if tokenizer.tokenize(word) == ["[UNK]"]}


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


def solution_seen_entities():
    ner = load_task("ner", size="ci")
    names = ner["train"].features["ner_tags"].feature.names
    known = {entity for row in ner["train"] for entity in ner_entities(row, names)}  # (type, text) pairs
    seen = {t: 0 for t in ENTITY_TYPES}
    total = {t: 0 for t in ENTITY_TYPES}
    for row in ner["test"]:
        for entity_type, text in ner_entities(row, names):
            total[entity_type] += 1
            seen[entity_type] += (entity_type, text) in known
    # PER, ORG and PRODUCT: 0.0 — the test split uses only held-out names. LOC and DATE are high:
    # cities and dates are few and shared between the splits.
    return {t: seen[t] / total[t] for t in ENTITY_TYPES}
