"""Reference solutions for chapter 06 (NER and question answering). Each ``solution_<name>()``
returns the answer that ``labkit.exercises.ch06.check_<name>`` accepts."""
from labkit.exercises.ch06 import (ALIGN_TAGS, ALIGN_WORD_IDS, MAX_ANSWER_LENGTH, NER_GOLD, NER_PRED, SNAP_CONTEXT,
                                   SNAP_OFFSETS, SNAP_SPAN, span_inputs)
from labkit.metrics import extract_entities


def solution_align_labels():
    labels, previous = [], None
    for w in ALIGN_WORD_IDS:
        # special tokens (None) and every piece after a word's first one are ignored by the loss
        labels.append(-100 if w is None or w == previous else ALIGN_TAGS[w])
        previous = w
    return labels


def solution_entity_f1():
    gold, pred = set(extract_entities(list(NER_GOLD))), set(extract_entities(list(NER_PRED)))
    tp = len(gold & pred)  # the same type and both boundaries
    precision, recall = tp / len(pred), tp / len(gold)
    return 2 * precision * recall / (precision + recall)


def solution_best_span():
    start, end, in_context = span_inputs()
    spans = [(i, j) for i in range(len(start)) for j in range(i, min(i + MAX_ANSWER_LENGTH, len(end)))
             if in_context[i] and in_context[j]]
    return max(spans, key=lambda s: (start[s[0]] + end[s[1]]).item())


def solution_whole_word_answer():
    i, j = SNAP_SPAN
    start, end = SNAP_OFFSETS[i][0], SNAP_OFFSETS[j][1]  # where token i starts, where token j ends
    raw = SNAP_CONTEXT[start:end]
    # an edge is inside a word when the characters on both sides of it are letters or digits
    while start > 0 and SNAP_CONTEXT[start - 1].isalnum() and SNAP_CONTEXT[start].isalnum():
        start -= 1
    while end < len(SNAP_CONTEXT) and SNAP_CONTEXT[end - 1].isalnum() and SNAP_CONTEXT[end].isalnum():
        end += 1
    return raw, SNAP_CONTEXT[start:end]  # same as labkit.qa.word_edges(SNAP_CONTEXT, ...)
