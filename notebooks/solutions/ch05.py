"""Reference solutions for chapter 05 (fine-tuning for classification). Each ``solution_<name>()``
returns the answer that ``labkit.exercises.ch05.check_<name>`` accepts."""
import numpy as np
import torch

from labkit.exercises.ch05 import CONFUSION, HEAD_SIZES, PAYS_THRESHOLD, TRANSFER_GRID, two_class_logits


def solution_head_parameters():
    C, K = HEAD_SIZES
    pooler = C * C + C  # tanh(W_p h_[CLS] + b_p)
    classifier = C * K + K  # one logit per class
    return pooler + classifier


def solution_macro_f1():
    c = np.array(CONFUSION, dtype=float)  # rows: true class, columns: predicted class
    tp = np.diag(c)
    precision = tp / c.sum(axis=0)  # of everything predicted k, the share that is k
    recall = tp / c.sum(axis=1)  # of everything truly k, the share found
    f1 = 2 * precision * recall / (precision + recall)
    return float(f1.mean())  # macro: every class counts the same


def solution_sigmoid_of_difference():
    z = two_class_logits()  # (N, 2)
    return torch.sigmoid(z[:, 1] - z[:, 0])  # softmax(z)[:, 1] = 1 / (1 + exp(z0 - z1))


def solution_break_even():
    grid = TRANSFER_GRID
    for n, pre, scratch in zip(grid["labels"], grid["pretrained"], grid["scratch"]):
        if pre - scratch < PAYS_THRESHOLD:  # the first budget where pretraining adds under 2 points
            return n
    return None


def solution_why_ner_gains_more():
    # A: both models see the same examples; C: a gain compares two models on one metric;
    # D: the corpus and objectives were designed for sentiment, not NER.
    return "B"
