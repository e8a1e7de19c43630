"""Reference solutions for chapter 07 (translation). Each ``solution_<name>()`` returns the answer
that ``labkit.exercises.ch07.check_<name>`` accepts."""
import math
from collections import Counter

from labkit.exercises.ch07 import BLEU_PAIR, SHORT_PAIR, beam_step_inputs
from labkit.metrics import tokenize_zh


def solution_clipped_precision():
    hyp, ref = (tokenize_zh(s) for s in BLEU_PAIR)  # one token per Chinese character
    h = Counter(zip(hyp, hyp[1:]))  # bigrams of the hypothesis
    r = Counter(zip(ref, ref[1:]))
    clipped = sum(min(count, r[g]) for g, count in h.items())  # a bigram counts at most as often as in the reference
    return clipped / sum(h.values())


def solution_brevity_penalty():
    c, r = (len(tokenize_zh(s)) for s in SHORT_PAIR)  # hypothesis and reference lengths
    return min(1.0, math.exp(1 - r / c))


def solution_beam_step():
    beam_scores, next_log_probs = beam_step_inputs()  # (K,), (K, V)
    total = beam_scores[:, None] + next_log_probs  # (K, V): score of every one-token extension
    V = total.shape[1]
    return [divmod(i, V) for i in total.flatten().topk(2).indices.tolist()]  # flat index -> (beam, token)
