"""Reference solutions for chapter 07 (translation). Each ``solution_<name>()`` returns the answer
that ``labkit.exercises.ch07.check_<name>`` accepts."""
import math
from collections import Counter

import torch

from labkit.exercises.ch07 import BLEU_PAIR, SHORT_PAIR, beam_step_inputs, cross_attention_inputs, warm_start_models
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


def solution_cross_attention():
    x = cross_attention_inputs()
    q = x.decoder_states @ x.w_query  # (T, C): the decoder asks
    k = x.memory @ x.w_key  # (S, C): the encoder's output is asked
    scores = q @ k.T / math.sqrt(k.shape[-1])  # (T, C) @ (C, S) -> (T, S)
    scores = scores.masked_fill(~x.source_mask, float("-inf"))  # padded source tokens cannot be attended to
    return torch.softmax(scores, dim=-1)  # each row (target position) sums to 1 over the source


def solution_warm_start():
    pretrained, model = warm_start_models()
    old = list(pretrained.state_dict().values())
    copied = lambda p: any(p.shape == q.shape and torch.equal(p, q) for q in old)  # noqa: E731
    return {name for name, p in model.named_parameters() if not copied(p)}
