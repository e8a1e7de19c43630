"""Checks for chapter 05c (what scale buys): mean pooling that ignores padding, and finding a
sentence by meaning with the real encoder's embeddings.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import functools
import numbers

import torch

from . import Feedback, checked, failed, passed

__all__ = ["pooling_inputs", "check_mean_pool", "SEARCH_QUERIES", "SEARCH_DOCUMENTS", "check_search"]


def pooling_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """hidden (B=3, T=5, C=4) and attention mask (B, T) of a padded batch: 5, 3 and 2 real tokens."""
    g = torch.Generator().manual_seed(5)
    hidden = torch.randn(3, 5, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    return hidden, mask


def _call(function, hidden, mask):
    out = function(hidden.clone(), mask.clone())
    return torch.as_tensor(out).double() if not isinstance(out, torch.Tensor) else out.double()


@checked("mean pooling without the padding", hints=(
    "A sentence vector is the average of its token vectors, but only the real tokens count: a [PAD] "
    "position must change neither the sum nor the count.",
    "Turn the mask into a weight per position (1 real, 0 padding) with a trailing axis of size 1, so that it "
    "multiplies every feature of a token vector.",
    "Multiply the hidden states by that weight, sum over the time axis, and divide by the number of real "
    "tokens of each sentence (the mask summed over time), not by T.",
))
def check_mean_pool(answer) -> Feedback:
    """answer: a function (hidden (B, T, C), mask (B, T)) -> (B, C) equal to labkit.real.mean_pool."""
    from labkit.real import mean_pool

    name = "mean pooling without the padding"
    if not callable(answer):
        return failed(name, "answer with a function of two arguments, hidden and mask, that returns the pooled vectors.")
    hidden, mask = pooling_inputs()
    want = mean_pool(hidden, mask).double()
    try:
        got = _call(answer, hidden, mask)
    except Exception as err:
        return failed(name, f"calling your function on a (3, 5, 4) batch raised {type(err).__name__}: {err}")
    if got.shape != want.shape:
        return failed(name, f"your function returns shape {tuple(got.shape)}; one vector per sentence is "
                            f"{tuple(want.shape)} (B, C): pool over the time axis, the middle one.")
    if torch.allclose(got, want, atol=1e-5):
        # a second batch whose padding holds huge numbers: nothing of them may leak into the result
        loud = hidden.clone()
        loud[~mask.bool()] = 1e4
        if torch.allclose(_call(answer, loud, mask), want, atol=1e-4):
            return passed(name, "the padding changes neither the sum nor the count, so a sentence gets the same "
                                "vector alone and in a padded batch.")
        return failed(name, "right on this batch, but your result moves when the padding positions hold other "
                            "numbers: padding must not enter the sum.")
    if torch.allclose(got, hidden.double().mean(1), atol=1e-5):
        return failed(name, "that is the plain mean over all T positions: the [PAD] positions are averaged in.")
    if torch.allclose(got, (hidden * mask.unsqueeze(-1)).double().sum(1) / hidden.shape[1], atol=1e-5):
        return failed(name, "padding is left out of the sum, but you divide by T; divide by each sentence's "
                            "number of real tokens.")
    if torch.allclose(got, (hidden * mask.unsqueeze(-1)).double().sum(1), atol=1e-5):
        return failed(name, "that is the sum of the real tokens' vectors; divide it by how many there are.")
    return failed(name)


# Exercise 2: six short reports, and four queries that say what one of them says in other words.
SEARCH_DOCUMENTS = (
    "The train to the airport was cancelled because of a signal fault.",
    "Our neighbour's dog barks all night and nobody can sleep.",
    "The bakery on the corner now sells gluten-free bread.",
    "Heavy snow closed the mountain pass for two days.",
    "The library will stay open until midnight during exam week.",
    "A broken water main flooded the high street this morning.",
)
SEARCH_QUERIES = (
    "Students can study late at the library before their tests.",
    "Rail services to the airport did not run this morning.",
    "A loud pet keeps the whole street awake.",
    "The road over the mountains was shut by a winter storm.",
)


@functools.lru_cache(maxsize=1)
def _similarities() -> torch.Tensor:
    """Cosine similarity (queries x documents) under the real encoder."""
    from labkit.real import embed, load_real

    real = load_real()
    q = embed(real.encoder, real.tokenizer, list(SEARCH_QUERIES))  # (Q, 384), unit length
    d = embed(real.encoder, real.tokenizer, list(SEARCH_DOCUMENTS))  # (D, 384)
    return q @ d.T  # (Q, D)


def _indices(answer) -> list[int] | None:
    """The answer as a list of whole numbers (a list, tuple, 1-d tensor or array of ints), else None."""
    if isinstance(answer, torch.Tensor):
        if answer.dim() != 1 or answer.dtype.is_floating_point or answer.dtype == torch.bool:
            return None
        return [int(v) for v in answer.tolist()]
    if hasattr(answer, "tolist") and not isinstance(answer, (list, tuple)):
        answer = answer.tolist()
    if not isinstance(answer, (list, tuple)):
        return None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in answer):
        return None
    return [int(v) for v in answer]


@checked("find a sentence by its meaning", hints=(
    "Embed the queries and the documents with the real encoder; with vectors of length 1 the cosine "
    "similarity of two sentences is their dot product.",
    "Make the table of similarities, one row per query and one column per document, and take in each row "
    "the column with the largest value.",
    "The answer is one document index per query, in the order of the queries: four whole numbers between 0 and 5.",
))
def check_search(answer) -> Feedback:
    """answer: for each of SEARCH_QUERIES, the index of the SEARCH_DOCUMENTS sentence the real encoder finds closest."""
    from labkit.real import RealModelError

    name = "find a sentence by its meaning"
    given = _indices(answer)
    if given is None:
        return failed(name, "answer with a list of whole numbers: one document index per query.")
    if len(given) != len(SEARCH_QUERIES):
        return failed(name, f"there are {len(SEARCH_QUERIES)} queries, so give {len(SEARCH_QUERIES)} indices, "
                            f"not {len(given)}.")
    if any(not 0 <= i < len(SEARCH_DOCUMENTS) for i in given):
        return failed(name, f"document indices run from 0 to {len(SEARCH_DOCUMENTS) - 1}.")
    try:
        sims = _similarities()
    except RealModelError as err:
        return failed(name, f"the check needs the real model, which is not available here: {err}")
    best = sims.argmax(1).tolist()
    if given == best:
        return passed(name, "each query found the report that says the same thing in other words, with few "
                            "words in common: the encoder compares meanings, not spellings.")
    if given == sims.argmin(1).tolist():
        return failed(name, "those are the least similar documents: take the largest similarity, not the smallest.")
    if given == [i + 1 for i in best]:
        return failed(name, "your indices are one too high: Python counts from 0.")
    wrong = sum(a != b for a, b in zip(given, best))
    if wrong == 1:
        return failed(name, "three of four are right. Did you use the real encoder's normalised embeddings for "
                            "both the queries and the documents?")
    return failed(name)
