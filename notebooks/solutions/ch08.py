"""Reference solutions for chapter 08 (generative pretraining). Each ``solution_<name>()`` returns
the answer that ``labkit.exercises.ch08.check_<name>`` accepts."""
import math

import torch

from labkit.exercises import ch08


def solution_next_token_loss():
    logits, ids = ch08.loss_inputs()  # (1, T, V), (1, T)
    predictions = logits[0, :-1]  # (T-1, V): positions 0 .. T-2, each has read up to itself
    targets = ids[0, 1:]  # (T-1,): the token after each of them
    log_probs = torch.log_softmax(predictions, dim=-1)  # (T-1, V)
    nll = -log_probs[torch.arange(len(targets)), targets]  # (T-1,): -log P(next token)
    return nll.mean().item()


def solution_top_p_keep():
    kept, total = [], 0.0
    for word, p in sorted(ch08.NEXT_WORDS.items(), key=lambda kv: kv[1], reverse=True):  # most probable first
        if total >= ch08.TOP_P:  # the words kept so far already reach p
            break
        kept.append(word)
        total += p
    return set(kept)


def solution_perplexity():
    nll = ch08.nll_inputs()
    return math.exp(sum(nll) / len(nll))  # e to the mean loss


def solution_cache_positions():
    T, n = ch08.PROMPT_LENGTH, ch08.NEW_TOKENS
    without = sum(T + s for s in range(n))  # step s re-runs the prompt and the s tokens written so far
    with_cache = T + (n - 1)  # the prompt once, then the newest token at each later step
    return without, with_cache
