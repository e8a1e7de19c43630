r"""Pretraining objectives as loss objects that add up over one encoding.

An objective reads the encoder's output for a batch and returns one scalar loss. It carries
its own settings, says in a sentence what it does (for the model card) and has a short
name (for the report). :class:`PretrainingLoss` encodes a batch once and sums the losses of
the objectives whose labels the batch holds, so the objectives of a pretraining run are a
tuple in :class:`labkit.pretrain.PretrainConfig`:

.. code-block:: python

    PretrainConfig(objectives=(MaskedWords(), NextSentence(candidates=8), ClsSalientWords()))

Adding an objective is one new class here and one entry in that tuple.

Batch fields (named as the models' ``forward`` arguments where one exists):

=======================  =======  ==========================================================
field                    shape    what it holds
=======================  =======  ==========================================================
``input_ids``            (B, T)   the corrupted tokens
``attention_mask``       (B, T)   1 on real tokens, 0 on padding (absent: no padding)
``token_type_ids``       (B, T)   0 on sentence A, 1 on sentence B (sentence pairs only)
``labels``               (B, T)   original id at masked positions, ``IGNORE_INDEX`` elsewhere
``next_sentence_label``  (B,)     0 = B follows A, 1 = B comes from another document
``salient_labels``       (B, T)   ``labels`` at the masked salient words, ``IGNORE_INDEX``
                                  elsewhere (document rows, when salient words are given)
=======================  =======  ==========================================================

Shape letters: B batch, T sequence length, C width, V vocabulary, M masked positions,
R rows with at least one masked salient word.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .masking import IGNORE_INDEX
from .transformer import EncoderOutput

__all__ = ["Objective", "MaskedWords", "NextSentence", "ClsSalientWords", "PretrainingLoss", "cls_word_loss"]


@dataclass(frozen=True, kw_only=True)
class Objective:
    """One pretraining loss. Subclasses set ``name`` and ``needs``, and define ``describe`` and ``loss``."""

    name: ClassVar[str]
    needs: ClassVar[str]  # the batch field holding this objective's labels: no field, no loss
    sentence_pairs: ClassVar[bool] = False  # trains on sentence pairs (labkit.nsp) as well as documents

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, model: nn.Module) -> None:
        """Raise ValueError if ``model`` lacks what this objective trains."""

    def loss(self, model: nn.Module, enc: EncoderOutput, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class MaskedWords(Objective):
    """Masked-language modelling: predict each masked token's original id (BERT)."""

    name: ClassVar[str] = "masked_lm"
    needs: ClassVar[str] = "labels"

    def describe(self) -> str:
        return ("Masked-language modelling: 15% of the tokens are chosen (80% replaced by [MASK], 10% by a random "
                "token, 10% kept) and predicted from both sides.")

    def check(self, model):
        if not hasattr(model, "head"):
            raise ValueError(f"masked-LM pretraining needs a model with a masked-LM head, got {type(model).__name__}")

    def loss(self, model, enc, batch):
        chosen = batch["labels"] != IGNORE_INDEX  # (B, T)
        logits = model.head(enc.last_hidden_state[chosen])  # (M, C) -> (M, V): the head runs on M rows only
        return F.cross_entropy(logits.float(), batch["labels"][chosen])


@dataclass(frozen=True, kw_only=True)
class NextSentence(Objective):
    """Next-sentence prediction on sentence pairs: is B the continuation of A? (BERT)"""

    name: ClassVar[str] = "next_sentence"
    needs: ClassVar[str] = "next_sentence_label"
    sentence_pairs: ClassVar[bool] = True
    candidates: int = 1  # a wrong B is the closest of this many random documents (1 = a random one, as BERT)

    def __post_init__(self):
        if self.candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {self.candidates}")

    def describe(self) -> str:
        hard = (f" The wrong continuations are the most similar of {self.candidates} random documents."
                if self.candidates > 1 else "")
        return ("Next-sentence prediction: is B the real continuation of A, or a sentence from another "
                "document?" + hard)

    def check(self, model):
        if not hasattr(model, "next_sentence"):
            raise ValueError(f"next-sentence prediction needs a PreTrainingModel, got {type(model).__name__}")

    def loss(self, model, enc, batch):
        logits = model.next_sentence(enc.pooler_output)  # (B, C) -> (B, 2)
        return F.cross_entropy(logits.float(), batch["next_sentence_label"])


@dataclass(frozen=True, kw_only=True)
class ClsSalientWords(Objective):
    """[CLS] predicts the masked salient (e.g. sentiment) words of its row, after SKEP (Tian et al., 2020).

    Words that fit one blank of one review share a mood, so the cheapest [CLS] that predicts
    them holds the review's mood, which a linear classifier then finds from few labels. No
    document label is used, only the list of salient words (``PretrainConfig.salient_words``).
    """

    name: ClassVar[str] = "cls_salient_words"
    needs: ClassVar[str] = "salient_labels"

    def describe(self) -> str:
        return "In each document row, the final [CLS] vector also predicts the masked salient (sentiment-lexicon) words."

    def check(self, model):
        MaskedWords().check(model)

    def loss(self, model, enc, batch):
        return cls_word_loss(model, enc.last_hidden_state[:, 0], batch["salient_labels"])


def cls_word_loss(model: nn.Module, cls: torch.Tensor, salient_labels: torch.Tensor) -> torch.Tensor:
    """The mean, over rows with a masked salient word, of the row's mean negative log-probability
    of those words under the masked-LM head applied to the row's final [CLS] vector.

    cls: (B, C); salient_labels: (B, T), the word ids to predict, IGNORE_INDEX elsewhere.
    """
    targets = salient_labels != IGNORE_INDEX  # (B, T)
    rows = targets.any(1)  # (B,)
    if not rows.any():
        return cls.sum() * 0.0  # keeps the graph (and the device) when no row has a salient word
    logp = F.log_softmax(model.head(cls[rows]).float(), dim=-1)  # (R, V)
    picked = logp.gather(1, salient_labels[rows].clamp(min=0))  # (R, T)
    t = targets[rows].float()
    return -((picked * t).sum(1) / t.sum(1)).mean()


class PretrainingLoss:
    """Encode a batch once; sum the losses of the objectives whose labels it holds.

    ``losses(model, batch)`` gives each term by name (for plots and tests); calling the object
    gives their sum, the loss :func:`labkit.training.fit` minimises.
    """

    def __init__(self, objectives: Sequence[Objective]):
        if not objectives:
            raise ValueError("pretraining needs at least one objective")
        names = [o.name for o in objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"each objective may appear once, got {names}")
        self.objectives = tuple(objectives)

    def losses(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        enc = model.encoder(batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids"))
        terms = {o.name: o.loss(model, enc, batch) for o in self.objectives if o.needs in batch}
        if not terms:
            raise ValueError(f"the batch (fields {sorted(batch)}) holds labels for none of {[o.name for o in self.objectives]}")
        return terms

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.losses(model, batch).values())
