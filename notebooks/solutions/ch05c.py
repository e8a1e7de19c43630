"""Reference solutions for chapter 05c (what scale buys). Each ``solution_<name>()`` returns the
answer that ``labkit.exercises.ch05c.check_<name>`` accepts."""
from labkit.exercises import ch05c
from labkit.real import embed, load_real


def solution_mean_pool():
    def mean_pool(hidden, mask):
        weight = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1): 1 at real tokens, 0 at padding
        return (hidden * weight).sum(1) / weight.sum(1)  # (B, C): sum of real tokens / their number

    return mean_pool


def solution_search():
    real = load_real()
    queries = embed(real.encoder, real.tokenizer, list(ch05c.SEARCH_QUERIES))  # (Q, 384), unit length
    documents = embed(real.encoder, real.tokenizer, list(ch05c.SEARCH_DOCUMENTS))  # (D, 384)
    return (queries @ documents.T).argmax(1).tolist()  # the closest document for each query
