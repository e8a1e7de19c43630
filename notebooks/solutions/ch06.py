"""Reference solutions for chapter 06 (NER and question answering). Each ``solution_<name>()``
returns the answer that ``labkit.exercises.ch06.check_<name>`` accepts."""
from labkit.exercises.ch06 import ALIGN_TAGS, ALIGN_WORD_IDS, MAX_ANSWER_LENGTH, NER_GOLD, NER_PRED, span_inputs
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
