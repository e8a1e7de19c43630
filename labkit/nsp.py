r"""Next-sentence prediction (NSP), BERT's second pretraining objective.

Each example is a pair ``[CLS] A [SEP] B [SEP]`` with token type 0 on A and 1 on B. Half
the time B is the text that really follows A in its document (label 0, *IsNext*); half
the time it is taken from another document in the same language (label 1, *NotNext*).
The model reads the pair through [CLS] → pooler → a 2-way linear layer:

.. math::  P(\text{IsNext} \mid A, B) = \mathrm{softmax}(W \tanh(W_p h_{[CLS]} + b_p) + b)_0

Masked LM never puts a loss on [CLS], so without this objective the [CLS] vector a
sequence classifier starts from is untrained. Negatives come from the same language,
so the model cannot solve the task by spotting Chinese characters.

Shape letters: B batch, T longest pair in the batch.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Sequence

import torch

from .training import pad

__all__ = ["split_sentences", "SentencePair", "make_pairs", "encode_pairs", "collate_pairs"]

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[\u4e00-\u9fff]|[a-z]+")


def split_sentences(text: str) -> list[str]:
    """Cut a document after each . ! ? 。！？ (TinyWorld writes no abbreviations)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


@dataclass(frozen=True)
class SentencePair:
    first: str
    second: str
    label: int  # 0 = second follows first in the document, 1 = second is from another document


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def make_pairs(documents: Sequence[str], seed: int, candidates: int = 1) -> list[SentencePair]:
    """One pair per document with at least two sentences: cut it at a random sentence
    boundary; keep the true continuation or (probability 1/2) swap in the tail of another
    document of the same language (Chinese or not).

    candidates: with 1, that other document is drawn at random (BERT). With k > 1 it is the
    one of k random documents that shares the most words with the first part, a *hard
    negative* (as retrievers mine them): then the second part seldom gives itself away by
    its kind of text, and the model must check finer agreement (names, pronouns, mood).
    """
    if candidates < 1:
        raise ValueError(f"candidates must be at least 1, got {candidates}")
    rng = random.Random(seed)
    hard = random.Random(f"{seed}-hard-negatives")  # its own stream: the cuts and labels stay as with 1
    split = [split_sentences(d) for d in documents]
    split = [s for s in split if len(s) >= 2]
    if len(split) < 2:
        raise ValueError("next-sentence pairs need at least two documents with two or more sentences each")
    words = [_words(" ".join(s)) for s in split] if candidates > 1 else []
    by_lang: dict[bool, list[int]] = {}
    for i, sents in enumerate(split):
        by_lang.setdefault(bool(_CJK.search(sents[0])), []).append(i)
    pairs = []
    for i, sents in enumerate(split):
        chinese = bool(_CJK.search(sents[0]))
        joiner = "" if chinese else " "
        cut = rng.randrange(1, len(sents))
        first, second, label = joiner.join(sents[:cut]), joiner.join(sents[cut:]), 0
        same = by_lang[chinese]
        if rng.random() < 0.5 and len(same) > 1:
            j = i
            while j == i:
                j = rng.choice(same)
            if candidates > 1:
                pool = {j} | {c for c in hard.choices(same, k=candidates - 1) if c != i}
                first_words = _words(first)
                j = max(sorted(pool), key=lambda c: len(first_words & words[c]))
            other = split[j]
            start = rng.randrange(len(other))
            second, label = joiner.join(other[start:start + len(sents) - cut]), 1
        pairs.append(SentencePair(first, second, label))
    return pairs


def encode_pairs(tokenizer, pairs: Sequence[SentencePair], max_length: int) -> dict[str, list]:
    """Token ids and token types of each pair (truncating the longer side first), and the labels."""
    enc = tokenizer([p.first for p in pairs], [p.second for p in pairs], truncation="longest_first",
                    max_length=max_length, return_token_type_ids=True)
    return {"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
            "labels": [p.label for p in pairs]}


def collate_pairs(encoded: dict[str, list], order: Sequence[int], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad one batch of encoded pairs (the indices in ``order``) to its longest pair."""
    input_ids, attention_mask = pad([encoded["input_ids"][i] for i in order], pad_id)  # (B, T), (B, T)
    token_type_ids, _ = pad([encoded["token_type_ids"][i] for i in order], 0)  # (B, T)
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
            "next_sentence_label": torch.tensor([encoded["labels"][i] for i in order])}
