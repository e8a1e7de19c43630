"""Checks for chapter 08 (generative pretraining): the next-token loss from logits, the words
nucleus sampling keeps, perplexity from per-token losses, and the work a key–value cache saves.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from . import Feedback, checked, failed, passed

__all__ = ["loss_inputs", "check_next_token_loss", "NEXT_WORDS", "TOP_P", "check_top_p_keep", "nll_inputs",
           "check_perplexity", "PROMPT_LENGTH", "NEW_TOKENS", "check_cache_positions"]


def _number(answer) -> float | None:
    """A real number from a float, an int or a one-element tensor or array; None otherwise."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, numbers.Real):
        return float(answer)
    if isinstance(answer, torch.Tensor) and answer.numel() == 1 and answer.dtype.is_floating_point:
        return float(answer)
    if hasattr(answer, "item") and getattr(answer, "size", 0) == 1:
        value = answer.item()
        return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None
    return None


def _close(a: float, b: float, tol: float = 1e-4) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


# Exercise 1: the next-token loss of one sequence, from its logits
def loss_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """logits (B=1, T=6, V=5) a model produced for the sequence ids (1, 6)."""
    g = torch.Generator().manual_seed(8)
    logits = torch.randn(1, 6, 5, generator=g) * 2
    ids = torch.tensor([[2, 0, 4, 1, 1, 3]])
    return logits, ids


def _nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).double(), targets.reshape(-1), reduction="none")


@checked("the next-token loss", hints=(
    "Position t has read the tokens up to and including t, so its logits are scored against the token that "
    "comes next, the one at t + 1. The last position has no next token, and the first token is never a target.",
    "For each of the first T - 1 positions: softmax its logits, take the probability of the following token, "
    "and the negative log of it. That gives T - 1 numbers.",
    "The loss is the mean of those T - 1 negative log-probabilities (natural logarithm), one number.",
))
def check_next_token_loss(answer) -> Feedback:
    """answer: the mean next-token cross-entropy of loss_inputs()'s sequence, a float."""
    name = "the next-token loss"
    value = _number(answer)
    if value is None:
        return failed(name, "answer with one number (a float or a 0-dimensional tensor).")
    logits, ids = loss_inputs()
    per_token = _nll(logits[:, :-1], ids[:, 1:])  # position t predicts token t + 1
    want = per_token.mean().item()
    if _close(value, want):
        return passed(name, f"{want:.4f}: every position but the last is one prediction of the token after it, so "
                            "one sequence of T tokens trains T - 1 predictions at once.")
    if _close(value, _nll(logits, ids).mean().item()):
        return failed(name, "you scored each position against its own token, which it can already see; shift the "
                            "targets by one, so that position t is scored against token t + 1.")
    if _close(value, _nll(logits[:, 1:], ids[:, :-1]).mean().item()):
        return failed(name, "shifted the wrong way: position t must predict the token after it, not the one before.")
    if _close(value, per_token.sum().item()):
        return failed(name, "that is the sum over the positions; the loss is their mean.")
    if _close(value, per_token.mean().item() / math.log(2)):
        return failed(name, "that is in bits (log base 2); use the natural logarithm, as cross-entropy does.")
    if _close(value, -per_token.mean().item()):
        return failed(name, "the sign is flipped: the loss is the NEGATIVE log-probability, a positive number.")
    return failed(name)


# Exercise 2: which words nucleus (top-p) sampling keeps
NEXT_WORDS = {"park": 0.05, "city": 0.35, "office": 0.25, "river": 0.15, "bank": 0.12, "moon": 0.08}
TOP_P = 0.8


def _keep_set(probs: dict[str, float], p: float) -> set[str]:
    kept, total = set(), 0.0
    for word, q in sorted(probs.items(), key=lambda kv: -kv[1]):
        if total >= p:
            break
        kept.add(word)
        total += q
    return kept


def _words(answer) -> set[str] | None:
    if isinstance(answer, str) or not isinstance(answer, (list, tuple, set, frozenset, dict)):
        return None
    if not all(isinstance(w, str) for w in answer):
        return None
    return set(answer)


@checked("the words top-p keeps", hints=(
    "Top-p sampling keeps the most probable words, as few as possible, but enough that their probabilities add "
    "up to at least p.",
    "Order the words from the most to the least probable and add their probabilities as you go down the list.",
    "Stop at the first word at which the running total reaches p, and keep that word too: it is the one that "
    "makes the total reach p.",
))
def check_top_p_keep(answer) -> Feedback:
    """answer: the set (or list) of words of NEXT_WORDS that top-p sampling with p = TOP_P may still draw."""
    name = "the words top-p keeps"
    given = _words(answer)
    if given is None:
        return failed(name, "answer with a set or list of words (strings) from NEXT_WORDS.")
    if not given <= set(NEXT_WORDS):
        return failed(name, f"{sorted(given - set(NEXT_WORDS))} are not among the candidate words.")
    want = _keep_set(NEXT_WORDS, TOP_P)
    if given == want:
        mass = sum(NEXT_WORDS[w] for w in want)
        return passed(name, f"{len(want)} words with {mass:.2f} of the probability; the other "
                            f"{len(NEXT_WORDS) - len(want)} can no longer be drawn. On a flatter distribution the "
                            "same p keeps more words, on a peaked one fewer: that is how top-p adapts where top-k cannot.")
    ranked = sorted(NEXT_WORDS, key=lambda w: -NEXT_WORDS[w])
    under = set(ranked[:len(want) - 1])
    if given == under:
        return failed(name, f"these add up to {sum(NEXT_WORDS[w] for w in given):.2f}, less than p = {TOP_P}: keep "
                            "the word that makes the total reach p as well.")
    if given == set(ranked[:len(want) + 1]):
        return failed(name, "one word too many: the set already reached p before the last word you added.")
    if given == set(ranked[::-1][:len(given)]) and len(given) < len(ranked):
        return failed(name, "you started from the least probable words; top-p keeps the most probable ones.")
    if len(given) and given == set(ranked[:len(given)]):
        return failed(name, f"the most probable words, but not the right number: these add up to "
                            f"{sum(NEXT_WORDS[w] for w in given):.2f}; keep the fewest that reach {TOP_P}.")
    return failed(name)


# Exercise 3: perplexity from per-token losses
def nll_inputs() -> list[float]:
    """The negative log-probabilities (nats) a model gave to the 8 tokens of a validation sentence."""
    return [0.9, 2.3, 0.1, 1.6, 0.4, 3.0, 0.7, 1.2]


@checked("perplexity from token losses", hints=(
    "Perplexity undoes the logarithm of the average loss: it is e raised to the mean negative log-probability.",
    "First average the eight numbers (one mean, not a sum), then exponentiate that mean once.",
    "A model that spread its probability evenly over k tokens would lose ln k at every token; perplexity "
    "gives back that k. Your answer should be a number between 1 and a few dozen.",
))
def check_perplexity(answer) -> Feedback:
    """answer: the perplexity of the sentence whose per-token losses are nll_inputs(), a float."""
    name = "perplexity from token losses"
    value = _number(answer)
    if value is None:
        return failed(name, "answer with one number.")
    nll = nll_inputs()
    mean = sum(nll) / len(nll)
    want = math.exp(mean)
    if _close(value, want):
        return passed(name, f"{want:.2f}: on this sentence the model was, on average, as unsure as a uniform guess "
                            f"among about {want:.0f} tokens.")
    if _close(value, math.exp(sum(nll))):
        return failed(name, "you exponentiated the sum of the losses; perplexity uses their mean, so that it does "
                            "not grow with the length of the sentence.")
    if _close(value, sum(math.exp(x) for x in nll) / len(nll)):
        return failed(name, "that is the mean of the exponentials; take the mean first, then one exponential.")
    if _close(value, 2 ** mean):
        return failed(name, "the losses are in nats (natural logarithm), so raise e, not 2, to their mean.")
    if _close(value, mean):
        return failed(name, "that is the mean loss; perplexity is e to the power of it.")
    return failed(name)


# Exercise 4: the work a key-value cache saves
PROMPT_LENGTH = 10
NEW_TOKENS = 20


def _pair(answer) -> tuple[int, int] | None:
    if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__len__") or len(answer) != 2:
        return None
    out = []
    for v in answer:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            return None
        out.append(int(v))
    return out[0], out[1]


@checked("what the cache saves", hints=(
    "Without a cache, every step runs the model on the whole text so far: the prompt and everything written "
    "before this step. With a cache, only the first step reads the whole prompt.",
    "Write the new tokens one step at a time: step 0 runs on the prompt alone, step 1 on the prompt and one "
    "written token, and so on. The last written token is never fed back in.",
    "Without the cache, add up the prompt length plus s for s from 0 to NEW_TOKENS - 1. With it: the prompt "
    "once, then one position for every later step.",
))
def check_cache_positions(answer) -> Feedback:
    """answer: (positions without the cache, positions with it) for one prompt of PROMPT_LENGTH tokens and NEW_TOKENS new tokens."""
    from labkit.causal import decoding_positions

    name = "what the cache saves"
    given = _pair(answer)
    if given is None:
        return failed(name, "answer with two whole numbers: (without the cache, with the cache).")
    T, n = PROMPT_LENGTH, NEW_TOKENS
    want = (decoding_positions(T, n, use_cache=False), decoding_positions(T, n, use_cache=True))
    if given == want:
        return passed(name, f"{want[0]} against {want[1]}, {want[0] / want[1]:.0f} times fewer positions: without the "
                            "cache they grow with the square of the length, with it linearly (each new position "
                            "still attends to every cached key and value).")
    if given == want[::-1]:
        return failed(name, "the two are swapped: the run without the cache does more work.")
    notes = []
    if given[0] == n * T + n * (n + 1) // 2:
        notes.append("without the cache you also ran the last written token, which is never fed back in")
    elif given[0] == n * (T + n):
        notes.append("without the cache, step s runs the prompt and the s tokens written before it, not all the "
                     "new tokens at every step")
    if given[1] == T + n:
        notes.append("with the cache, the last written token is never fed back in, so count one position fewer")
    elif given[1] == n:
        notes.append("with the cache, the first step still runs the whole prompt")
    if notes:
        return failed(name, "; ".join(notes) + ".")
    if given[0] == want[0]:
        return failed(name, "the count without the cache is right; count again the one with it.")
    if given[1] == want[1]:
        return failed(name, "the count with the cache is right; count again the one without it.")
    return failed(name)
