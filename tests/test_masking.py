"""Tests for labkit.masking: BERT's 80/10/10 statistics, and parity with transformers'
DataCollatorForLanguageModeling on the same batch."""
from __future__ import annotations

import math

import pytest
import torch

from labkit.masking import IGNORE_INDEX, MaskedBatch, mask_tokens

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = range(5)
SPECIAL_IDS = tuple(range(len(SPECIAL_TOKENS)))
VOCAB_SIZE = 100  # 5 special tokens and 95 words
SIGMAS = 5.0  # tolerance, in binomial standard deviations


def _random_rows(seed: int, batch: int = 200, max_len: int = 1000) -> list[list[int]]:
    """[CLS] w ... w [SEP] rows of varying length (about 150k ordinary tokens in all)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max_len // 2, max_len + 1, (batch,), generator=generator)
    return [
        [CLS, *torch.randint(len(SPECIAL_IDS), VOCAB_SIZE, (int(n) - 2,), generator=generator).tolist(), SEP]
        for n in lengths
    ]


def _pad(rows: list[list[int]]) -> torch.Tensor:
    """(B, T) right-padded with [PAD], like the transformers collator."""
    width = max(len(row) for row in rows)
    return torch.tensor([row + [PAD] * (width - len(row)) for row in rows])


def _fractions(original: torch.Tensor, masked: MaskedBatch) -> tuple[dict[str, float], int, int]:
    """Observed fractions: chosen among ordinary tokens, and what happened to the chosen ones."""
    ordinary = ~torch.isin(original, torch.tensor(SPECIAL_IDS))  # (B, T)
    chosen = masked.labels != IGNORE_INDEX  # (B, T)
    n_ordinary, n_chosen = int(ordinary.sum()), int(chosen.sum())
    became_mask = chosen & (masked.input_ids == MASK)
    unchanged = chosen & (masked.input_ids == original)
    fractions = {
        "chosen": n_chosen / n_ordinary,
        "mask": int(became_mask.sum()) / n_chosen,
        "other_token": int((chosen & ~became_mask & ~unchanged).sum()) / n_chosen,
        "unchanged": int(unchanged.sum()) / n_chosen,
    }
    return fractions, n_ordinary, n_chosen


# What BERT's recipe predicts. A uniform random replacement is [MASK] (or the original token)
# with probability 1 / VOCAB_SIZE, which moves a little mass between the three outcomes.
EXPECTED = {
    "chosen": 0.15,
    "mask": 0.8 + 0.1 / VOCAB_SIZE,
    "other_token": 0.1 * (1 - 2 / VOCAB_SIZE),
    "unchanged": 0.1 + 0.1 / VOCAB_SIZE,
}


def _tolerance(key: str, n_ordinary: int, n_chosen: int, samples: int = 1) -> float:
    """SIGMAS binomial standard deviations of one observed fraction (of a difference if samples=2)."""
    p = EXPECTED[key]
    n = n_ordinary if key == "chosen" else n_chosen
    return SIGMAS * math.sqrt(samples * p * (1 - p) / n)


def _ours(input_ids: torch.Tensor, seed: int) -> MaskedBatch:
    return mask_tokens(
        input_ids,
        mask_token_id=MASK,
        vocab_size=VOCAB_SIZE,
        special_token_ids=SPECIAL_IDS,
        pad_token_id=PAD,
        generator=torch.Generator().manual_seed(seed),
    )


def test_masking_statistics_follow_bert_recipe():
    input_ids = _pad(_random_rows(seed=0))
    masked = _ours(input_ids, seed=1)
    fractions, n_ordinary, n_chosen = _fractions(input_ids, masked)
    for key, expected in EXPECTED.items():
        assert abs(fractions[key] - expected) < _tolerance(key, n_ordinary, n_chosen), (key, fractions[key])

    chosen = masked.labels != IGNORE_INDEX
    protected = torch.isin(input_ids, torch.tensor(SPECIAL_IDS))
    assert not (chosen & protected).any()  # special tokens and padding are never chosen
    assert torch.equal(masked.labels[chosen], input_ids[chosen])  # labels hold the original ids
    assert torch.equal(masked.input_ids[~chosen], input_ids[~chosen])  # nothing else changes
    assert masked.labels.dtype == torch.int64
    # random replacements are drawn from the whole vocabulary, special ids included
    replaced = masked.input_ids[chosen & (masked.input_ids != MASK) & (masked.input_ids != input_ids)]
    assert set(replaced.tolist()) >= set(range(VOCAB_SIZE)) - {MASK}


def _transformers_collator(seed: int):
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({f"w{i}": i for i in range(len(SPECIAL_TOKENS), VOCAB_SIZE)})
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    assert len(tokenizer) == VOCAB_SIZE and sorted(tokenizer.all_special_ids) == list(SPECIAL_IDS)
    return transformers.DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm_probability=0.15, seed=seed)


def test_masking_statistics_match_transformers_collator():
    rows = _random_rows(seed=2)
    batch = _transformers_collator(seed=3)([{"input_ids": row} for row in rows])
    input_ids = _pad(rows)
    unchosen = batch["labels"] == IGNORE_INDEX  # the collator padded the same batch as _pad
    assert batch["input_ids"].shape == input_ids.shape
    assert torch.equal(batch["input_ids"][unchosen], input_ids[unchosen])
    theirs, n_ordinary, n_chosen = _fractions(input_ids, MaskedBatch(batch["input_ids"], batch["labels"]))
    ours, _, _ = _fractions(input_ids, _ours(input_ids, seed=4))
    for key in EXPECTED:
        # two independent samples of the same fraction: their difference has sqrt(2) times the spread
        assert abs(ours[key] - theirs[key]) < _tolerance(key, n_ordinary, n_chosen, samples=2), key
        assert abs(theirs[key] - EXPECTED[key]) < _tolerance(key, n_ordinary, n_chosen), key


@pytest.mark.parametrize("protection", ["special_tokens_mask", "special_token_ids", "pad_token_id"])
def test_each_kind_of_protection_alone_keeps_tokens_unchosen(protection):
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(len(SPECIAL_IDS), VOCAB_SIZE, (8, 64), generator=generator)  # (B, T)
    input_ids[:, 48:] = PAD
    input_ids[:, 0] = CLS
    protected = torch.zeros(8, 64, dtype=torch.bool)  # (B, T)
    if protection == "special_tokens_mask":
        protected[:, :32] = True  # ordinary ids, flagged as special
        options = {"special_tokens_mask": protected.long()}
    elif protection == "special_token_ids":
        protected[:, 0] = True
        options = {"special_token_ids": [CLS]}
    else:
        protected[:, 48:] = True
        options = {"pad_token_id": PAD}
    masked = mask_tokens(
        input_ids, mask_token_id=MASK, vocab_size=VOCAB_SIZE, mlm_probability=0.5, generator=generator, **options
    )
    assert (masked.labels[protected] == IGNORE_INDEX).all()
    assert torch.equal(masked.input_ids[protected], input_ids[protected])
    assert (masked.labels[~protected] != IGNORE_INDEX).float().mean() > 0.4  # the others are chosen as usual


def test_same_seed_same_mask_and_input_left_intact():
    input_ids = _pad(_random_rows(seed=5, batch=4, max_len=50))
    original = input_ids.clone()
    first, second, other = _ours(input_ids, seed=7), _ours(input_ids, seed=7), _ours(input_ids, seed=8)
    assert torch.equal(first.input_ids, second.input_ids) and torch.equal(first.labels, second.labels)
    assert not torch.equal(first.labels, other.labels)
    assert torch.equal(input_ids, original)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"mlm_probability": 0.0}, r"mlm_probability must be in \(0, 1\), got 0.0"),
        ({"mlm_probability": 1.0}, r"mlm_probability must be in \(0, 1\), got 1.0"),
        ({"vocab_size": 0}, "vocab_size must be positive, got 0"),
        ({"mask_token_id": 100}, r"mask_token_id must be in \[0, 100\), got 100"),
        ({"special_tokens_mask": torch.zeros(2, 4)}, r"special_tokens_mask has shape \(2, 4\).*\(2, 3\)"),
        ({"input_ids": torch.zeros(6, dtype=torch.long)}, r"shape \(B, T\), got \(6,\)"),
        ({"input_ids": torch.zeros(2, 3)}, "integer token ids, got dtype torch.float32"),
    ],
)
def test_bad_inputs_raise(overrides, message):
    arguments = {"input_ids": torch.zeros(2, 3, dtype=torch.long), "mask_token_id": MASK, "vocab_size": VOCAB_SIZE}
    arguments.update(overrides)
    with pytest.raises(ValueError, match=message):
        mask_tokens(**arguments)
