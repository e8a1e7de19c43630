"""Reference solutions for chapter 13 (judging a foundation model). Each ``solution_<name>()`` returns the
answer that ``labkit.exercises.ch13.check_<name>`` accepts."""
import math

import numpy as np

from labkit.exercises import ch13


def solution_exposure():
    scores = ch13.code_scores()  # (R,): log P(code | prefix) for every code
    true = scores[int(ch13.TRUE_CODE)]
    rank = int((scores >= true).sum())  # counted from 1: the true code itself is among them
    return math.log2(len(scores)) - math.log2(rank)


def solution_parity_gaps():
    data = ch13.parity_inputs()
    pred, gold, group = (np.array(data[k]) for k in ("predictions", "labels", "groups"))

    def rates(g):
        mine = group == g
        return (pred[mine].mean(),  # positive rate
                pred[mine & (gold == 1)].mean(),  # TPR: among gold positives
                pred[mine & (gold == 0)].mean())  # FPR: among gold negatives

    (pos_f, tpr_f, fpr_f), (pos_m, tpr_m, fpr_m) = rates("F"), rates("M")
    low, high = ch13.dp_interval()
    significant = low > 0 or high < 0  # the interval must leave out 0
    return float(pos_f - pos_m), float(max(abs(tpr_f - tpr_m), abs(fpr_f - fpr_m))), bool(significant)


def _aopc(scores, k_max=2):
    order = sorted(range(len(ch13.REVIEW)), key=lambda i: (-scores[i], i))  # most important first
    p0 = ch13.toy_probability()
    return float(np.mean([p0 - ch13.toy_probability(order[:k]) for k in range(k_max + 1)]))


def solution_aopc():
    return _aopc(ch13.ATTRIBUTIONS["integrated gradients"]), _aopc(ch13.ATTRIBUTIONS["attention"])


def solution_gender_swap():
    return "The engineer told her brother that she would meet him at the station."
