"""labkit.nsp: next-sentence pairs (true continuations and same-language negatives, random or hard)."""
import re

import pytest

from labkit.nsp import collate_pairs, encode_pairs, make_pairs, split_sentences

from tiny import COLOURS, DOCS, doc_tokenizer


def test_sentence_pairs_are_true_continuations_or_same_language_negatives():
    pairs = make_pairs(DOCS, seed=0)
    assert len(pairs) == len(DOCS) and 0.3 < sum(p.label for p in pairs) / len(pairs) < 0.7
    assert pairs == make_pairs(DOCS, seed=0) and pairs != make_pairs(DOCS, seed=1)
    for doc, p in zip(DOCS, pairs):
        if p.label == 0:  # the true continuation: the two halves give back the document
            assert p.first + ("" if "。" in doc else " ") + p.second == doc
        assert ("。" in p.first) == ("。" in p.second)  # negatives come from the same language
    assert split_sentences("A b. C d! 你好。再见？") == ["A b.", "C d!", "你好。", "再见？"]
    with pytest.raises(ValueError, match="at least two documents"):
        make_pairs(["one sentence only."], seed=0)


def test_hard_negatives_share_more_words_than_random_ones():
    def overlap(pairs):  # mean number of words a negative's second part shares with its first part
        words = [(set(re.findall(r"[a-z]+", p.first)), set(re.findall(r"[a-z]+", p.second))) for p in pairs if p.label]
        return sum(len(a & b) for a, b in words) / len(words)

    # two kinds of English documents that share no words, as a bio and a review share few
    docs = [f"the {c} {t} is here. the {c} {t} is {a}." for c in COLOURS for t in ("phone", "car") for a in ("good", "bad")]
    docs += [f"{n} was born in {y}. {n} works as a {j}." for n in ("anna", "tom", "li", "sara", "omar", "mia")
             for y in ("paris", "rome") for j in ("nurse", "pilot")]
    random_pairs, hard_pairs = make_pairs(docs, seed=0), make_pairs(docs, seed=0, candidates=8)
    assert [(p.first, p.label) for p in hard_pairs] == [(p.first, p.label) for p in random_pairs]  # same cuts
    assert [p for p in hard_pairs if not p.label] == [p for p in random_pairs if not p.label]  # same true pairs
    assert [p.second for p in hard_pairs if p.label] != [p.second for p in random_pairs if p.label]
    assert overlap(hard_pairs) > overlap(random_pairs) + 0.5  # the negative is mostly a document of the same kind
    with pytest.raises(ValueError, match="candidates"):
        make_pairs(docs, seed=0, candidates=0)


def test_encoded_pairs_collate_into_a_named_batch():
    tok = doc_tokenizer()
    pairs = make_pairs(DOCS, seed=0)
    encoded = encode_pairs(tok, pairs, max_length=12)
    assert max(len(ids) for ids in encoded["input_ids"]) <= 12 and encoded["labels"] == [p.label for p in pairs]
    batch = collate_pairs(encoded, [0, 1, 2], tok.pad_token_id)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "next_sentence_label"}
    assert batch["next_sentence_label"].tolist() == encoded["labels"][:3]
    assert ((batch["token_type_ids"] == 1) <= (batch["attention_mask"] == 1)).all()  # sentence B is never padding
