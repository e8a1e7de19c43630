r"""Evaluation metrics written by hand: classification, NER entities, SQuAD and Chinese BLEU.

Every metric here is a few counts followed by a division, and each one is checked in
``tests/test_metrics.py`` against the library the field uses (scikit-learn, seqeval,
the official SQuAD v1.1 script, sacrebleu).

Precision, recall and F1 from true positives (TP), false positives (FP) and false
negatives (FN):

.. math::

    P = \frac{TP}{TP + FP}, \qquad R = \frac{TP}{TP + FN}, \qquad F_1 = \frac{2PR}{P + R}

with 0/0 taken as 0. Corpus BLEU-4 from clipped n-gram precisions :math:`p_n`, the
hypothesis length :math:`c` and the reference length :math:`r`, both summed over the corpus:

.. math::

    \mathrm{BLEU} = 100 \cdot \mathrm{BP} \cdot \exp\Big(\tfrac14 \sum_{n=1}^{4} \log p_n\Big),
    \qquad \mathrm{BP} = \min\big(1, e^{\,1 - r/c}\big)
"""
from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "accuracy",
    "precision_recall_f1",
    "extract_entities",
    "EntityReport",
    "entity_scores",
    "normalize_answer",
    "squad_exact_match",
    "squad_f1",
    "squad_scores",
    "tokenize_zh",
    "corpus_bleu_zh",
]


def _check_pair(predictions: Sequence, references: Sequence, what: str = "predictions and references") -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{what} must have the same length, got {len(predictions)} and {len(references)}")
    if len(predictions) == 0:
        raise ValueError(f"{what} are empty (length 0)")


def _divide(numerator: float, denominator: float) -> float:
    """numerator / denominator, with 0/0 (an undefined precision or recall) taken as 0.0."""
    return numerator / denominator if denominator else 0.0


# ---------------------------------------------------------------- classification


def accuracy(predictions: Sequence[Hashable], references: Sequence[Hashable]) -> float:
    """Fraction of positions where the prediction equals the reference.

    Args:
        predictions: (N,) predicted labels.
        references: (N,) gold labels.
    """
    _check_pair(predictions, references)
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


def precision_recall_f1(
    predictions: Sequence[Hashable],
    references: Sequence[Hashable],
    *,
    average: str = "macro",
    labels: Sequence[Hashable] | None = None,
) -> dict[str, float]:
    """Precision, recall and F1 of a single-label classifier, as scikit-learn computes them.

    ``"macro"`` computes P, R and F1 for each label (one-vs-rest) and takes their unweighted
    mean; ``"micro"`` pools the counts of all labels first. A label never predicted (or never
    present) gets precision (or recall) 0.0 instead of 0/0.

    Args:
        predictions: (N,) predicted labels.
        references: (N,) gold labels.
        average: ``"macro"`` or ``"micro"``.
        labels: the labels to score; default the sorted union of both inputs.

    Returns:
        ``{"precision": ..., "recall": ..., "f1": ...}``, each in [0, 1].
    """
    _check_pair(predictions, references)
    if average not in ("macro", "micro"):
        raise ValueError(f"average must be 'macro' or 'micro', got {average!r}")
    label_list = sorted(set(predictions) | set(references)) if labels is None else list(labels)
    if not label_list:
        raise ValueError("labels is empty: there is nothing to score")

    true_positives = Counter(p for p, r in zip(predictions, references) if p == r)
    predicted = Counter(predictions)  # TP + FP per label
    actual = Counter(references)  # TP + FN per label

    if average == "micro":
        tp = sum(true_positives[label] for label in label_list)
        n_pred = sum(predicted[label] for label in label_list)
        n_true = sum(actual[label] for label in label_list)
        return {
            "precision": _divide(tp, n_pred),
            "recall": _divide(tp, n_true),
            "f1": _divide(2 * tp, n_pred + n_true),
        }

    precisions = [_divide(true_positives[label], predicted[label]) for label in label_list]
    recalls = [_divide(true_positives[label], actual[label]) for label in label_list]
    f1s = [_divide(2 * true_positives[label], predicted[label] + actual[label]) for label in label_list]
    n = len(label_list)
    return {"precision": sum(precisions) / n, "recall": sum(recalls) / n, "f1": sum(f1s) / n}


# ---------------------------------------------------------------- named entities (BIO)

Entity = tuple[str, int, int]  # (type, first token, last token), both ends inclusive as in seqeval


def _split_tag(tag: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', '')."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[0] in "BI" and tag[1] == "-":
        return tag[0], tag[2:]
    raise ValueError(f"expected a BIO tag ('O', 'B-TYPE' or 'I-TYPE'), got {tag!r}")


def extract_entities(tags: Sequence[str]) -> list[Entity]:
    """Chunks of one BIO tag sequence, with CoNLL-2000 (conlleval, seqeval default) rules.

    A chunk starts at a ``B-`` tag, and also at an ``I-`` tag that follows ``O`` or a tag of
    another type (an ill-formed start is still an entity). It ends before ``O``, ``B-`` or a
    change of type. Example: ``["I-LOC", "I-LOC", "B-LOC", "I-PER"]`` gives
    ``[("LOC", 0, 1), ("LOC", 2, 2), ("PER", 3, 3)]``.

    Args:
        tags: (T,) tag strings of one sentence.

    Returns:
        (type, start, end) for each chunk, in order, ``end`` inclusive.
    """
    entities: list[Entity] = []
    prev_prefix, prev_type, start = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):  # the extra "O" closes a chunk that reaches the end
        prefix, type_ = _split_tag(tag)
        if prev_prefix != "O" and (prefix != "I" or type_ != prev_type):
            entities.append((prev_type, start, i - 1))
        if prefix == "B" or (prefix == "I" and (prev_prefix == "O" or type_ != prev_type)):
            start = i
        prev_prefix, prev_type = prefix, type_
    return entities


@dataclass(frozen=True)
class EntityReport:
    """Entity-level scores: an entity counts only if its type and both boundaries match."""

    precision: float  # micro-averaged over all entity types
    recall: float
    f1: float
    support: int  # number of gold entities
    per_type: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)  # (P, R, F1, support)

    def format(self, digits: int = 2) -> str:
        """A per-type table in the layout of seqeval's ``classification_report``."""
        rows = [(name, *scores) for name, scores in self.per_type.items()]
        total = ("micro avg", self.precision, self.recall, self.f1, self.support)
        width = max([len(name) for name, *_ in rows] + [len(total[0])])
        column = max(9, digits + 2)
        header = " " * width + "".join(f" {h:>{column}}" for h in ("precision", "recall", "f1-score", "support"))

        def line(name: str, p: float, r: float, f1: float, support: int) -> str:
            numbers = "".join(f" {value:>{column}.{digits}f}" for value in (p, r, f1))
            return f"{name:>{width}}{numbers} {support:>{column}d}"

        return "\n".join([header, "", *(line(*row) for row in rows), "", line(*total)])

    def __str__(self) -> str:
        return self.format()


def _scores(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
    precision, recall = _divide(tp, n_pred), _divide(tp, n_true)
    return precision, recall, _divide(2 * precision * recall, precision + recall)


def entity_scores(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> EntityReport:
    """Entity-level precision, recall and F1 of BIO taggings (seqeval's default, non-strict mode).

    Args:
        true_tags: (N, T_i) gold tag sequences, one per sentence.
        pred_tags: (N, T_i) predicted tag sequences, each as long as its gold sentence.
    """
    _check_pair(pred_tags, true_tags, "pred_tags and true_tags")
    gold: set[tuple[int, str, int, int]] = set()  # (sentence, type, start, end)
    predicted: set[tuple[int, str, int, int]] = set()
    for i, (true_seq, pred_seq) in enumerate(zip(true_tags, pred_tags)):
        if len(true_seq) != len(pred_seq):
            raise ValueError(f"sentence {i}: true_tags has {len(true_seq)} tags but pred_tags has {len(pred_seq)}")
        gold.update((i, *entity) for entity in extract_entities(true_seq))
        predicted.update((i, *entity) for entity in extract_entities(pred_seq))

    correct = gold & predicted
    per_type = {}
    for type_ in sorted({e[1] for e in gold} | {e[1] for e in predicted}):
        n_true = sum(e[1] == type_ for e in gold)
        counts = (sum(e[1] == type_ for e in correct), sum(e[1] == type_ for e in predicted), n_true)
        per_type[type_] = (*_scores(*counts), n_true)
    precision, recall, f1 = _scores(len(correct), len(predicted), len(gold))
    return EntityReport(precision, recall, f1, len(gold), per_type)


# ---------------------------------------------------------------- SQuAD v1.1 (official script's definitions)

_PUNCTUATION = frozenset(string.punctuation)  # ASCII only: Chinese "，。" are kept


def normalize_answer(text: str) -> str:
    """Lowercase, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _check_ground_truths(ground_truths: Sequence[str]) -> None:
    if isinstance(ground_truths, str):
        raise ValueError(f"ground_truths must be a list of strings, got the string {ground_truths!r}")
    if len(ground_truths) == 0:
        raise ValueError("ground_truths is empty (length 0)")


def squad_exact_match(prediction: str, ground_truths: Sequence[str]) -> float:
    """1.0 if the normalized prediction equals any normalized ground truth, else 0.0.

    Args:
        prediction: the predicted answer text.
        ground_truths: (K,) acceptable answer texts, K >= 1.
    """
    _check_ground_truths(ground_truths)
    normalized = normalize_answer(prediction)
    return float(any(normalized == normalize_answer(truth) for truth in ground_truths))


def _token_f1(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()  # whitespace tokens: one per Chinese phrase
    truth_tokens = normalize_answer(ground_truth).split()
    num_same = sum((Counter(prediction_tokens) & Counter(truth_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_f1(prediction: str, ground_truths: Sequence[str]) -> float:
    """Best token-overlap F1 between the prediction and any ground truth.

    Tokens are the whitespace-separated words of the normalized texts, so an unspaced
    Chinese answer is a single token (v1.1 scores it all-or-nothing).

    Args:
        prediction: the predicted answer text.
        ground_truths: (K,) acceptable answer texts, K >= 1.
    """
    _check_ground_truths(ground_truths)
    return max(_token_f1(prediction, truth) for truth in ground_truths)


def squad_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Exact match and F1 over a question set, in percent, as the official v1.1 ``evaluate``.

    The questions are the keys of ``references``. As in the official script, a question with
    no prediction scores 0 and predictions for unknown ids are ignored.

    Args:
        predictions: question id -> predicted answer text.
        references: question id -> (K,) acceptable answer texts.

    Returns:
        ``{"exact_match": ..., "f1": ...}``, each in [0, 100].
    """
    if len(references) == 0:
        raise ValueError("references is empty (0 questions)")
    exact_match = f1 = 0.0
    for question_id, ground_truths in references.items():
        if question_id in predictions:
            exact_match += squad_exact_match(predictions[question_id], ground_truths)
            f1 += squad_f1(predictions[question_id], ground_truths)
    return {"exact_match": 100.0 * exact_match / len(references), "f1": 100.0 * f1 / len(references)}


# ---------------------------------------------------------------- BLEU with Chinese characters as tokens

# Code point ranges whose characters become single tokens: sacrebleu's `zh` tokenizer table.
# sacrebleu writes two rows as '\u20000'-'\u2a6d6' and '\u2f800'-'\u2fa1d' (meant: CJK
# Extension B and Compatibility Supplement); Python reads those as two-character strings,
# so the comparison really selects U+2001..U+2A6D (general punctuation, symbols, arrows ...)
# and U+2F81..U+2FA1. We list the ranges it really tests, so our tokens are identical.
_CJK_RANGES = (
    (0x3400, 0x4DB5),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FBB),  # CJK Unified Ideographs
    (0xF900, 0xFA2D),  # CJK Compatibility Ideographs
    (0xFA30, 0xFA6A),
    (0xFA70, 0xFAD9),
    (0x2001, 0x2A6D),  # sacrebleu's misread Extension B row: “”—… and other symbols
    (0x2E80, 0x2EFF),  # CJK Radicals Supplement
    (0x2F00, 0x2FDF),  # Kangxi Radicals (contains the misread U+2F81..U+2FA1 row)
    (0x2FF0, 0x2FFF),  # Ideographic Description Characters
    (0x3000, 0x303F),  # CJK punctuation: 、。「」
    (0x3100, 0x312F),  # Bopomofo
    (0x31A0, 0x31BF),  # Bopomofo Extended
    (0x31C0, 0x31EF),  # CJK Strokes
    (0x3200, 0x33FF),  # Enclosed CJK Letters, CJK Compatibility
    (0xFE10, 0xFE1F),  # Vertical Forms
    (0xFE30, 0xFE4F),  # CJK Compatibility Forms
    (0xFF00, 0xFFEF),  # Full-width ASCII and punctuation: ，！（）
)

# The language-dependent part of mteval-v13a's tokenizer, applied after the CJK split.
_MTEVAL_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # split off symbols and ASCII punctuation
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period and comma, unless after a digit ...
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # ... or before a digit (3.5 and 3,000 stay whole)
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # a dash after a digit
)


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def tokenize_zh(text: str) -> list[str]:
    """Tokens of sacrebleu's ``tokenize="zh"``: every CJK character alone, other text by mteval-v13a rules.

    Example: ``tokenize_zh("GPT-4 发布了。")`` gives ``["GPT-4", "发", "布", "了", "。"]``.
    """
    spaced = "".join(f" {char} " if _is_cjk(char) else char for char in text.strip())
    for pattern, replacement in _MTEVAL_RULES:
        spaced = pattern.sub(replacement, spaced)
    return spaced.split()


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu_zh(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) on Chinese character tokens, equal to ``sacrebleu.corpus_bleu(h, [r], tokenize="zh")``.

    Counts are pooled over the corpus before dividing. Smoothing is sacrebleu's default
    ``"exp"`` (mteval's): the k-th order with no match counts as precision 1 / (2^k · total).
    If no n-gram of any order matches, or the corpus has no n-gram of some order, BLEU is 0.

    Args:
        hypotheses: (N,) system outputs, one per segment.
        references: (N,) one reference translation per segment.
    """
    _check_pair(hypotheses, references, "hypotheses and references")
    max_order = 4
    correct = [0] * max_order  # clipped matches of each order, summed over the corpus
    total = [0] * max_order  # hypothesis n-grams of each order
    hyp_len = ref_len = 0
    for hypothesis, reference in zip(hypotheses, references):
        hyp_tokens, ref_tokens = tokenize_zh(hypothesis), tokenize_zh(reference)
        hyp_len += len(hyp_tokens)
        ref_len += len(ref_tokens)
        for n in range(1, max_order + 1):
            hyp_counts, ref_counts = _ngrams(hyp_tokens, n), _ngrams(ref_tokens, n)
            correct[n - 1] += sum(min(count, ref_counts[gram]) for gram, count in hyp_counts.items())
            total[n - 1] += sum(hyp_counts.values())

    if not any(correct) or not all(total):
        return 0.0
    brevity_penalty = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    log_precisions, unmatched_orders = 0.0, 0
    for n in range(max_order):
        if correct[n] == 0:
            unmatched_orders += 1
            log_precisions += math.log(100.0 / (2**unmatched_orders * total[n]))
        else:
            log_precisions += math.log(100.0 * correct[n] / total[n])
    return brevity_penalty * math.exp(log_precisions / max_order)
