"""Tests for labkit.metrics: hand-computed cases and parity with seqeval, sacrebleu, scikit-learn
and the official SQuAD v1.1 evaluation functions."""
from __future__ import annotations

import random
import re
import string
import warnings
from collections import Counter

import pytest

from labkit.metrics import (
    EntityReport,
    _is_cjk,
    accuracy,
    corpus_bleu_zh,
    entity_scores,
    extract_entities,
    normalize_answer,
    precision_recall_f1,
    squad_exact_match,
    squad_f1,
    squad_scores,
    tokenize_zh,
)

# ---------------------------------------------------------------- accuracy, precision / recall / F1


def test_accuracy_hand_computed():
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    assert accuracy(["a"], ["a"]) == 1.0


@pytest.mark.parametrize("fn", [accuracy, precision_recall_f1])
def test_length_mismatch_and_empty_raise(fn):
    with pytest.raises(ValueError, match="got 3 and 2"):
        fn([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        fn([], [])


def test_precision_recall_f1_hand_computed():
    references = [0, 0, 1, 1, 2]
    predictions = [0, 1, 1, 1, 0]
    # label 0: TP 1, predicted 2, true 2 -> P 1/2, R 1/2, F1 1/2
    # label 1: TP 2, predicted 3, true 2 -> P 2/3, R 1,   F1 4/5
    # label 2: TP 0, predicted 0, true 1 -> P 0 (0/0), R 0, F1 0
    macro = precision_recall_f1(predictions, references)
    assert macro["precision"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert macro["recall"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert macro["f1"] == pytest.approx((1 / 2 + 4 / 5 + 0) / 3)
    # micro over all labels of a single-label task: every score equals accuracy
    micro = precision_recall_f1(predictions, references, average="micro")
    assert micro == pytest.approx({"precision": 0.6, "recall": 0.6, "f1": 0.6})
    # an explicit label absent from both inputs scores 0 and still counts in the mean
    with_absent = precision_recall_f1(predictions, references, labels=[0, 1, 3])
    assert with_absent["recall"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    # micro restricted to label 1: TP 2, predicted 3, true 2
    only_one = precision_recall_f1(predictions, references, average="micro", labels=[1])
    assert only_one == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8})


def test_precision_recall_f1_bad_average():
    with pytest.raises(ValueError, match="'weighted'"):
        precision_recall_f1([1], [1], average="weighted")


@pytest.mark.parametrize("average", ["macro", "micro"])
@pytest.mark.parametrize("seed", range(5))
def test_precision_recall_f1_matches_sklearn(average, seed):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(seed)
    references = [rng.choice("abcde") for _ in range(60)]
    predictions = [r if rng.random() < 0.5 else rng.choice("abcdef") for r in references]
    labels = None if seed % 2 else ["a", "b", "c", "z"]
    ours = precision_recall_f1(predictions, references, average=average, labels=labels)
    p, r, f1, _ = metrics.precision_recall_fscore_support(
        references, predictions, average=average, labels=labels, zero_division=0
    )
    assert ours == pytest.approx({"precision": p, "recall": r, "f1": f1}, abs=1e-12)


# ---------------------------------------------------------------- entities (BIO) vs seqeval


def test_extract_entities_hand_made():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-PER", "I-PER", "B-ORG"]
    assert extract_entities(tags) == [("PER", 0, 1), ("LOC", 3, 4), ("LOC", 5, 5), ("PER", 6, 7), ("ORG", 8, 8)]
    assert extract_entities(["B-PER", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 1)]
    assert extract_entities(["O", "O"]) == []
    assert extract_entities([]) == []


def test_bad_tags_and_sentence_lengths_raise():
    with pytest.raises(ValueError, match="'E-PER'"):
        extract_entities(["B-PER", "E-PER"])
    with pytest.raises(ValueError, match="'B-'"):
        extract_entities(["B-"])
    with pytest.raises(ValueError, match="sentence 1: true_tags has 2 tags but pred_tags has 1"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="got 1 and 2"):
        entity_scores([["O"], ["O"]], [["O"]])


def _random_tags(rng: random.Random, length: int) -> list[str]:
    """Random BIO tags, with plenty of ill-formed I- starts and type changes."""
    tags = []
    for _ in range(length):
        roll = rng.random()
        if roll < 0.4:
            tags.append("O")
        elif roll < 0.65 and tags and tags[-1] != "O":
            tags.append("I-" + tags[-1][2:])  # continue the current chunk
        else:
            tags.append(rng.choice("BI") + "-" + rng.choice(["PER", "LOC", "ORG", "MISC"]))
    return tags


def _corrupt(rng: random.Random, tags: list[str]) -> list[str]:
    """A plausible prediction: each tag kept with probability 0.7, otherwise replaced."""
    return [t if rng.random() < 0.7 else _random_tags(rng, 1)[0] for t in tags]


def _random_corpus(seed: int) -> tuple[list[list[str]], list[list[str]]]:
    rng = random.Random(seed)
    true_tags = [_random_tags(rng, rng.randint(0, 25)) for _ in range(40)]
    return true_tags, [_corrupt(rng, t) for t in true_tags]


HAND_MADE = [
    ([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "I-LOC"]]),  # ill-formed I- start still counts
    ([["I-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]]),  # gold itself starts with I-
    ([["B-PER", "I-LOC", "I-LOC"]], [["B-PER", "B-LOC", "I-LOC"]]),
    ([["O", "O"], ["B-ORG"]], [["B-ORG", "O"], ["O"]]),  # a type only in the prediction
    ([["O", "O"]], [["O", "O"]]),  # no entities at all: every score is 0/0 = 0
]


def _seqeval_reference(true_tags, pred_tags) -> dict:
    seqeval = pytest.importorskip("seqeval.metrics")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on 0/0
        return {
            "precision": seqeval.precision_score(true_tags, pred_tags),
            "recall": seqeval.recall_score(true_tags, pred_tags),
            "f1": seqeval.f1_score(true_tags, pred_tags),
            "report": seqeval.classification_report(true_tags, pred_tags, output_dict=True),
        }


def _max_difference(ours: EntityReport, reference: dict) -> float:
    differences = [abs(ours.precision - reference["precision"]), abs(ours.recall - reference["recall"])]
    differences.append(abs(ours.f1 - reference["f1"]))
    report = reference["report"]
    types = set(report) - {"micro avg", "macro avg", "weighted avg"}
    assert set(ours.per_type) == types
    for type_, (p, r, f1, support) in ours.per_type.items():
        row = report[type_]
        assert support == row["support"]
        differences += [abs(p - row["precision"]), abs(r - row["recall"]), abs(f1 - row["f1-score"])]
    if types:
        assert ours.support == report["micro avg"]["support"]
    return max(differences)


@pytest.mark.parametrize("case", range(len(HAND_MADE)))
def test_entity_scores_match_seqeval_hand_made(case):
    true_tags, pred_tags = HAND_MADE[case]
    assert _max_difference(entity_scores(true_tags, pred_tags), _seqeval_reference(true_tags, pred_tags)) < 1e-9


@pytest.mark.parametrize("seed", range(8))
def test_entity_scores_match_seqeval_random(seed):
    true_tags, pred_tags = _random_corpus(seed)
    ours = entity_scores(true_tags, pred_tags)
    assert 0.0 < ours.f1 < 1.0  # the case is neither trivial nor degenerate
    assert _max_difference(ours, _seqeval_reference(true_tags, pred_tags)) < 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_extract_entities_matches_seqeval_get_entities(seed):
    sequence_labeling = pytest.importorskip("seqeval.metrics.sequence_labeling")
    rng = random.Random(seed)
    for _ in range(50):
        tags = _random_tags(rng, rng.randint(0, 30))
        assert extract_entities(tags) == sequence_labeling.get_entities(tags)


def test_entity_report_format_is_a_table():
    report = entity_scores([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "O"]])
    assert (report.precision, report.recall, report.support) == (1.0, 0.5, 2)
    text = str(report)
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["LOC", "0.00", "0.00", "0.00", "1"]
    assert lines[3].split() == ["PER", "1.00", "1.00", "1.00", "1"]
    assert lines[-1].split() == ["micro", "avg", "1.00", "0.50", "0.67", "2"]
    assert "0.6667" in report.format(digits=4)
    assert "micro avg" in str(entity_scores([["O"]], [["O"]]))  # no entity types: still a table


# ---------------------------------------------------------------- SQuAD v1.1


def _official_normalize_answer(s):
    """Verbatim from the official SQuAD v1.1 evaluate-v1.1.py."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def _official_f1_score(prediction, ground_truth):
    """Verbatim from the official SQuAD v1.1 evaluate-v1.1.py."""
    prediction_tokens = _official_normalize_answer(prediction).split()
    ground_truth_tokens = _official_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def test_normalize_answer():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert normalize_answer("北京，中国。") == "北京，中国。"  # only ASCII punctuation is removed


def test_squad_exact_match_and_f1_hand_computed():
    assert squad_exact_match("The cat", ["cat"]) == 1.0
    assert squad_exact_match("cats", ["cat", "dog"]) == 0.0
    # normalized: [big, black, cat] vs [black, cat, sat] -> 2 shared, P = R = 2/3
    assert squad_f1("the big black cat", ["a black cat sat"]) == pytest.approx(2 / 3)
    # max over ground truths: [cat] vs [black, cat] -> P 1, R 1/2, F1 2/3; vs [cat] -> 1
    assert squad_f1("cat", ["black cat", "dog"]) == pytest.approx(2 / 3)
    assert squad_f1("cat", ["black cat", "The cat."]) == 1.0
    assert squad_f1("dog", ["cat"]) == 0.0


def test_squad_v11_tokenizes_chinese_on_whitespace_only():
    # v1.1 splits on whitespace: an unspaced Chinese answer is one token, scored all-or-nothing
    assert squad_f1("北京大学", ["北京"]) == 0.0
    assert squad_f1("北京 大学", ["北京"]) == pytest.approx(2 / 3)
    assert squad_exact_match("北京大学。", ["北京大学"]) == 0.0  # "。" is not ASCII punctuation


def test_squad_matches_official_functions_on_random_strings():
    rng = random.Random(0)
    words = ["the", "a", "an", "cat", "Cat", "dog,", "sat.", "The", "北京", "大学", "'s", "-", "on", "mat!"]
    for _ in range(300):
        prediction = " ".join(rng.choices(words, k=rng.randint(0, 6)))
        truth = " ".join(rng.choices(words, k=rng.randint(0, 6)))
        assert normalize_answer(prediction) == _official_normalize_answer(prediction)
        assert squad_f1(prediction, [truth]) == _official_f1_score(prediction, truth)


def test_squad_scores_in_percent_and_missing_is_zero():
    references = {"q1": ["The cat"], "q2": ["black cat", "dog"], "q3": ["red"], "q4": ["blue"]}
    predictions = {"q1": "cat", "q2": "cat", "q3": "green", "unknown": "red"}  # q4 unanswered
    scores = squad_scores(predictions, references)
    assert scores["exact_match"] == pytest.approx(100 * 1 / 4)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0 + 0) / 4)


def test_squad_bad_inputs_raise():
    with pytest.raises(ValueError, match="list of strings"):
        squad_f1("cat", "cat")
    with pytest.raises(ValueError, match="empty"):
        squad_exact_match("cat", [])
    with pytest.raises(ValueError, match="0 questions"):
        squad_scores({"q": "a"}, {})


# ---------------------------------------------------------------- BLEU vs sacrebleu (tokenize="zh")

MIXED = [
    "我爱北京天安门。",
    "GPT-4 在 2023 年发布，价格是 $20/月。",
    "The price is 3.5 元, not 3,000 元.",
    "“你好”——他说…",
    "AT&T 公司的 e-mail: a@b.com (测试)",
    "ＡＢＣ１２３ 全角字符！",
    "𠀀 扩展B区 😀 表情",
    "  前后有空格  ",
    ".5 开头的句号",
]


def test_tokenize_zh_examples():
    assert tokenize_zh("GPT-4 发布了。") == ["GPT-4", "发", "布", "了", "。"]
    assert tokenize_zh("3.5 元, 3,000 and a.b") == ["3.5", "元", ",", "3,000", "and", "a", ".", "b"]
    assert tokenize_zh("") == []


def test_tokenize_zh_matches_sacrebleu():
    tokenizer_zh = pytest.importorskip("sacrebleu.tokenizers.tokenizer_zh")
    tokenizer = tokenizer_zh.TokenizerZh()
    for text in MIXED:
        assert tokenize_zh(text) == tokenizer(text).split()
    # character classes: the whole Basic Multilingual Plane, then a sample of the rest
    for code in [*range(0x10000), *range(0x10000, 0x110000, 97)]:
        assert _is_cjk(chr(code)) == tokenizer_zh.TokenizerZh._is_chinese_char(chr(code)), hex(code)


_CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说"
    + string.ascii_letters[:12]
    + string.digits
    + "，。！？、“”—…,.!?-$%&/()"
    + " " * 8
)


def _random_bleu_corpus(seed: int) -> tuple[list[str], list[str]]:
    """References of random mixed text; hypotheses edit ~25% of their characters."""
    rng = random.Random(seed)
    references, hypotheses = [], []
    for _ in range(30):
        reference = "".join(rng.choices(_CHARS, k=rng.randint(3, 40)))
        hypothesis = []
        for char in reference:
            roll = rng.random()
            if roll < 0.75:
                hypothesis.append(char)
            elif roll < 0.85:
                hypothesis.append(rng.choice(_CHARS))  # substitute
            elif roll < 0.95:
                hypothesis.append(char + rng.choice(_CHARS))  # insert
            # else: delete
        references.append(reference)
        hypotheses.append("".join(hypothesis))
    return hypotheses, references


def _sacrebleu(hypotheses: list[str], references: list[str]) -> float:
    sacrebleu = pytest.importorskip("sacrebleu")
    return sacrebleu.corpus_bleu(hypotheses, [references], tokenize="zh").score


@pytest.mark.parametrize("seed", range(6))
def test_corpus_bleu_zh_matches_sacrebleu_random(seed):
    hypotheses, references = _random_bleu_corpus(seed)
    ours = corpus_bleu_zh(hypotheses, references)
    assert 5.0 < ours < 95.0
    assert ours == pytest.approx(_sacrebleu(hypotheses, references), abs=1e-6)


EDGE_CASES = {
    "mixed": (MIXED, list(reversed(MIXED))),
    "mixed_partial": ([m[: len(m) // 2] for m in MIXED], MIXED),  # short hypotheses: brevity penalty
    "longer_hypotheses": ([m + m for m in MIXED], MIXED),
    "one_empty_hypothesis": (
        ["", "我爱北京天安门。", "今天天气很好，我们去公园。"],
        ["你好", "我爱北京天安门", "今天天气不错，我们去公园吧。"],
    ),
    "all_empty_hypotheses": (["", ""], ["你好", "世界"]),
    "no_four_grams": (["我爱你"], ["我爱你"]),  # a perfect match shorter than 4 tokens still scores 0
    "no_match_of_higher_order": (["北京 上海 广州 深圳"], ["深圳 广州 上海 北京"]),  # exp smoothing
    "perfect": (MIXED, MIXED),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_corpus_bleu_zh_matches_sacrebleu_edge_cases(name):
    hypotheses, references = EDGE_CASES[name]
    assert corpus_bleu_zh(hypotheses, references) == pytest.approx(_sacrebleu(hypotheses, references), abs=1e-6)


def test_corpus_bleu_zh_hand_made_values():
    assert corpus_bleu_zh(MIXED, MIXED) == pytest.approx(100.0, abs=1e-9)
    assert corpus_bleu_zh(["", ""], ["你好", "世界"]) == 0.0
    # 4 unigrams match, no higher order does: exp smoothing gives p2 = 1/(2*3), p3 = 1/(4*2), p4 = 1/(8*1)
    expected = 100 * (1.0 * (1 / 6) * (1 / 8) * (1 / 8)) ** 0.25
    assert corpus_bleu_zh(["北 上 广 深"], ["深 广 上 北"]) == pytest.approx(expected, abs=1e-9)


def test_corpus_bleu_zh_bad_inputs_raise():
    with pytest.raises(ValueError, match="got 2 and 1"):
        corpus_bleu_zh(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        corpus_bleu_zh([], [])
