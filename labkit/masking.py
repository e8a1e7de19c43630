r"""BERT's masked-language-model corruption, written from scratch.

Each ordinary token is *chosen* with probability :math:`p` (``mlm_probability``, 0.15 in
BERT). The model must predict every chosen token from a corrupted input in which a
chosen token is

* replaced by ``[MASK]`` 80% of the time,
* replaced by a token drawn uniformly from the whole vocabulary 10% of the time,
* left unchanged 10% of the time,

so the model cannot assume that only ``[MASK]`` positions need predicting. Special
tokens (``[CLS]``, ``[SEP]``, ...) and padding are never chosen. The labels hold the
original id at chosen positions and ``IGNORE_INDEX`` (-100, the ``ignore_index`` of
``F.cross_entropy``) everywhere else, so the loss is computed on chosen tokens only.

Shape letters used in the comments: B batch size, T sequence length.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["IGNORE_INDEX", "MaskedBatch", "mask_tokens"]

IGNORE_INDEX = -100  # label of positions that do not enter the loss
MASK_FRACTION = 0.8  # of the chosen tokens: replaced by [MASK] ...
RANDOM_FRACTION = 0.1  # ... replaced by a random token; the remaining 0.1 stay unchanged


@dataclass
class MaskedBatch:
    """The corrupted model input and the labels to predict."""

    input_ids: torch.Tensor  # (B, T) corrupted copy of the input
    labels: torch.Tensor  # (B, T) int64: original id where chosen, IGNORE_INDEX elsewhere


def _check_inputs(
    input_ids: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    special_tokens_mask: torch.Tensor | None,
    mlm_probability: float,
) -> None:
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}")
    if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
        raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    if not 0 <= mask_token_id < vocab_size:
        raise ValueError(f"mask_token_id must be in [0, {vocab_size}), got {mask_token_id}")
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
    if special_tokens_mask is not None and special_tokens_mask.shape != input_ids.shape:
        raise ValueError(
            f"special_tokens_mask has shape {tuple(special_tokens_mask.shape)}, "
            f"but input_ids has shape {tuple(input_ids.shape)}"
        )


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_tokens_mask: torch.Tensor | None = None,
    special_token_ids: Sequence[int] = (),
    pad_token_id: int | None = None,
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> MaskedBatch:
    """Choose tokens for masked-LM training and corrupt them 80/10/10, as BERT does.

    A token is protected (never chosen) if ``special_tokens_mask`` is true at its position,
    if its id is in ``special_token_ids``, or if it equals ``pad_token_id``. The input is
    not modified.

    Args:
        input_ids: (B, T) integer token ids.
        mask_token_id: id of ``[MASK]``, in [0, vocab_size).
        vocab_size: random replacements are drawn uniformly from [0, vocab_size).
        special_tokens_mask: optional (B, T), nonzero/True at positions never to choose.
        special_token_ids: ids never to choose wherever they appear ([CLS], [SEP], ...).
        pad_token_id: id of padding, never chosen.
        mlm_probability: probability that an unprotected token is chosen, in (0, 1).
        generator: torch.Generator on input_ids' device, for reproducible masks; None
            uses torch's global generator.

    Returns:
        MaskedBatch with ``input_ids`` (B, T) corrupted and ``labels`` (B, T).
    """
    _check_inputs(input_ids, mask_token_id, vocab_size, special_tokens_mask, mlm_probability)
    B, T = input_ids.shape
    device = input_ids.device

    protected = torch.zeros((B, T), dtype=torch.bool, device=device)  # (B, T)
    if special_tokens_mask is not None:
        protected |= special_tokens_mask.to(device=device, dtype=torch.bool)
    if len(special_token_ids) > 0:
        ids = torch.tensor(list(special_token_ids), dtype=input_ids.dtype, device=device)  # (number of special ids,)
        protected |= torch.isin(input_ids, ids)  # (B, T)
    if pad_token_id is not None:
        protected |= input_ids == pad_token_id

    # One uniform draw decides whether a token is chosen, a second one what happens to it.
    choose_draw = torch.rand((B, T), generator=generator, device=device)  # (B, T)
    chosen = (choose_draw < mlm_probability) & ~protected  # (B, T)
    action_draw = torch.rand((B, T), generator=generator, device=device)  # (B, T)
    to_mask = chosen & (action_draw < MASK_FRACTION)  # (B, T)
    to_random = chosen & (action_draw >= MASK_FRACTION) & (action_draw < MASK_FRACTION + RANDOM_FRACTION)
    random_ids = torch.randint(vocab_size, (B, T), generator=generator, device=device, dtype=input_ids.dtype)

    corrupted = input_ids.masked_fill(to_mask, mask_token_id)  # (B, T)
    corrupted = torch.where(to_random, random_ids, corrupted)  # (B, T); the rest of the chosen stay as they are
    labels = input_ids.long().masked_fill(~chosen, IGNORE_INDEX)  # (B, T), int64 as cross_entropy wants
    return MaskedBatch(input_ids=corrupted, labels=labels)
