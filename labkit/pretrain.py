r"""Pretraining on unlabelled text: masked-language modelling (BERT) and, for contrast,
next-token prediction (GPT).

Masked LM: corrupt 15% of the tokens and predict the originals from both sides,

.. math::  P(w_i \mid x) = \mathrm{softmax}(h_i E^\top + b)_{w_i}, \qquad
           \mathcal{L} = -\frac{1}{|M|}\sum_{i \in M} \log P(w_i \mid \tilde x)

With a :class:`~labkit.transformer.PreTrainingModel`, ``pretrain_mlm`` also trains BERT's
second objective, next-sentence prediction, on sentence pairs (:mod:`labkit.nsp`); the
loss is the sum of the two.

Two options change what the model is shown: ``one_document_per_row`` gives each row a
single document (padded; RoBERTa's "doc-sentences" inputs likewise never cross a document
boundary) instead of packing several into a block, and ``salient_ids`` names tokens (e.g. a
sentiment lexicon) that are masked more often, as ERNIE masks whole entities and phrases.
``labkit build`` uses both, with hard next-sentence negatives (``nsp_candidates``): without
them the small model did not learn the polarity of opinion words, and sentiment did not
transfer.

``cls_salient`` adds a sentence-level objective in the spirit of SKEP (Tian et al., 2020),
which predicts a text's aspect-sentiment pairs from ``[CLS]``: in each document row, the final
``[CLS]`` vector predicts, through the masked-LM head, the salient words that were masked
(:func:`cls_word_loss`). Words that can stand in one blank of one review share a mood, so the
cheapest ``[CLS]`` that predicts them holds the review's mood: a linear classifier then finds
it from few labels. No document label is used, only the list of salient words.

Next-token LM: predict each token from the ones before it, :math:`P(x_t \mid x_{<t})`.

Shape letters: N blocks, B batch, T block length, C width, V vocabulary, M masked positions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from .masking import mask_tokens
from .nsp import collate_pairs, encode_pairs, make_pairs
from .training import History, TrainConfig, batches, fit, perplexity
from .transformer import CausalLM, MaskedLM, PreTrainingModel

__all__ = ["pack_blocks", "pack_documents", "mask_salient", "mlm_loss", "cls_word_loss", "evaluate_mlm", "pretrain_mlm",
           "clm_loss", "evaluate_clm", "pretrain_clm", "pretraining_loss", "evaluate_nsp", "mask_batch", "PretrainResult"]


@dataclass
class PretrainResult:
    history: History
    metrics: dict[str, float]  # masked/next-token accuracy, perplexity, loss on the validation blocks


def pack_blocks(tokenizer, texts: Iterable[str], block_length: int = 128) -> torch.Tensor:
    """Tokenise texts, join them with [SEP], and cut the stream into [CLS] … [SEP] blocks.

    Returns a (N, block_length) LongTensor; the last partial block is dropped.
    """
    if block_length < 8:
        raise ValueError(f"block_length must be at least 8, got {block_length}")
    stream: list[int] = []
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(tokenizer.sep_token_id)
    body = block_length - 2
    n = len(stream) // body
    if n == 0:
        raise ValueError(f"the texts give {len(stream)} tokens, fewer than one block of {block_length}")
    x = torch.tensor(stream[: n * body]).view(n, body)  # (N, T-2)
    cls = torch.full((n, 1), tokenizer.cls_token_id)
    sep = torch.full((n, 1), tokenizer.sep_token_id)
    return torch.cat([cls, x, sep], dim=1)  # (N, T)


def pack_documents(tokenizer, texts: Iterable[str], block_length: int = 128) -> torch.Tensor:
    """One document per row: [CLS] document [SEP], padded to ``block_length``.

    A document longer than a row continues in the next rows. Returns (N, block_length).
    """
    if block_length < 8:
        raise ValueError(f"block_length must be at least 8, got {block_length}")
    body, rows = block_length - 2, []
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        for start in range(0, len(ids), body):
            row = [tokenizer.cls_token_id, *ids[start:start + body], tokenizer.sep_token_id]
            rows.append(row + [tokenizer.pad_token_id] * (block_length - len(row)))
    if not rows:
        raise ValueError("the texts give no tokens")
    return torch.tensor(rows)  # (N, T)


def _padding_mask(rows: torch.Tensor, pad_id: int) -> torch.Tensor | None:
    """(B, T) attention mask for rows that contain padding (pack_documents), else None."""
    pads = rows == pad_id
    return (~pads).long() if pads.any() else None


def _special_ids(tokenizer) -> tuple[int, ...]:
    return tuple(sorted(set(tokenizer.all_special_ids)))


def mask_batch(tokenizer, blocks: torch.Tensor, generator: torch.Generator, p: float):
    """BERT masking of a (B, T) batch with ``tokenizer``'s [MASK], vocabulary and special tokens."""
    return mask_tokens(blocks, mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                       special_token_ids=_special_ids(tokenizer), pad_token_id=tokenizer.pad_token_id,
                       mlm_probability=p, generator=generator)


def mask_salient(tokenizer, blocks: torch.Tensor, masked, salient_ids: torch.Tensor, p: float,
                 generator: torch.Generator):
    """Also mask each not-yet-chosen token of ``salient_ids`` with probability ``p`` (as [MASK]).

    ``masked`` is :func:`mask_batch`'s output for ``blocks``; it is updated and returned.
    """
    coin = torch.rand(blocks.shape, generator=generator) < p  # (B, T)
    extra = torch.isin(blocks, salient_ids) & (masked.labels == -100) & coin
    masked.input_ids[extra] = tokenizer.mask_token_id
    masked.labels[extra] = blocks[extra]
    return masked


def mlm_loss(model: MaskedLM, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Cross-entropy at the masked positions only (the head never sees the other 85%).

    batch: (input_ids, labels), or (input_ids, labels, attention_mask) for padded rows, or
    (input_ids, labels, attention_mask, cls_targets): then also :func:`cls_word_loss`.
    """
    device = next(model.parameters()).device
    input_ids, labels, *rest = (t.to(device) for t in batch)  # (B, T), (B, T), [(B, T), (B, T)]
    h = model.encoder(input_ids, rest[0] if rest else None).last_hidden_state  # (B, T, C)
    chosen = labels != -100  # (B, T)
    logits = model.head(h[chosen])  # (M, C) -> (M, V)
    loss = F.cross_entropy(logits.float(), labels[chosen])
    if len(rest) == 2:
        loss = loss + cls_word_loss(model, h[:, 0], labels, rest[1])
    return loss


def cls_word_loss(model: MaskedLM, cls: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[CLS] predicts the row's masked salient words through the masked-LM head: the mean, over
    rows with at least one such word, of the row's mean negative log-probability of its words.

    cls: (B, C) final [CLS] vectors; labels: (B, T) masked-LM labels; targets: (B, T) bool, the
    masked positions whose words [CLS] must predict.
    """
    rows = targets.any(1)  # (B,)
    if not rows.any():
        return cls.sum() * 0.0
    logp = F.log_softmax(model.head(cls[rows]).float(), dim=-1)  # (R, V)
    picked = logp.gather(1, labels[rows].clamp(min=0))  # (R, T)
    t = targets[rows].float()
    return -((picked * t).sum(1) / t.sum(1)).mean()


@torch.no_grad()
def evaluate_mlm(model: MaskedLM, tokenizer, blocks: torch.Tensor, *, batch_size: int = 64,
                 mlm_probability: float = 0.15, seed: int = 1234) -> dict[str, float]:
    """Masked-token accuracy, loss and perplexity on blocks masked with a fixed seed."""
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    total_loss, correct, count = 0.0, 0, 0
    for i in range(0, len(blocks), batch_size):
        rows = blocks[i:i + batch_size]
        masked = mask_batch(tokenizer, rows, g, mlm_probability)
        ids, labels = masked.input_ids.to(device), masked.labels.to(device)
        mask = _padding_mask(rows, tokenizer.pad_token_id)  # from the rows before masking
        h = model.encoder(ids, None if mask is None else mask.to(device)).last_hidden_state  # (B, T, C)
        chosen = labels != -100
        logits = model.head(h[chosen]).float()  # (M, V)
        total_loss += F.cross_entropy(logits, labels[chosen], reduction="sum").item()
        correct += (logits.argmax(-1) == labels[chosen]).sum().item()
        count += int(chosen.sum())
    model.train(was_training)
    mean = total_loss / max(count, 1)
    return {"masked_accuracy": correct / max(count, 1), "loss": mean, "perplexity": perplexity(mean)}


def pretraining_loss(model: PreTrainingModel, batch) -> torch.Tensor:
    """A packed-block batch (a tuple): :func:`mlm_loss`. A batch of masked sentence pairs (a dict):
    masked-LM loss + next-sentence loss, the vocabulary projection at the masked positions only."""
    if isinstance(batch, tuple):
        return mlm_loss(model, batch)
    device = next(model.parameters()).device
    b = {k: v.to(device) for k, v in batch.items()}
    enc = model.encoder(b["input_ids"], b["attention_mask"], b["token_type_ids"])  # (B, T, C), pooled (B, C)
    chosen = b["labels"] != -100  # (B, T)
    mlm = F.cross_entropy(model.head(enc.last_hidden_state[chosen]).float(), b["labels"][chosen])  # (M, V)
    nsp = F.cross_entropy(model.next_sentence(enc.pooler_output).float(), b["next_sentence_label"])  # (B, 2)
    return mlm + nsp


def _masked_pairs(tokenizer, encoded: dict, order, generator: torch.Generator, p: float) -> dict[str, torch.Tensor]:
    batch = collate_pairs(encoded, order, tokenizer.pad_token_id)
    masked = mask_batch(tokenizer, batch["input_ids"], generator, p)
    return {**batch, "input_ids": masked.input_ids, "labels": masked.labels}


@torch.no_grad()
def evaluate_nsp(model: PreTrainingModel, tokenizer, documents: Sequence[str], *, max_length: int = 128,
                 batch_size: int = 64, seed: int = 1234) -> dict[str, float]:
    """Next-sentence accuracy on pairs made from ``documents`` with a fixed seed (chance = 0.5)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    encoded = encode_pairs(tokenizer, make_pairs(documents, seed), max_length)
    correct = 0
    for i in range(0, len(encoded["labels"]), batch_size):
        b = collate_pairs(encoded, range(i, min(i + batch_size, len(encoded["labels"]))), tokenizer.pad_token_id)
        out = model(b["input_ids"].to(device), b["attention_mask"].to(device), b["token_type_ids"].to(device))
        correct += (out.next_sentence_logits.argmax(-1).cpu() == b["next_sentence_label"]).sum().item()
    model.train(was_training)
    return {"next_sentence_accuracy": correct / len(encoded["labels"])}


def pretrain_mlm(model: MaskedLM, tokenizer, train_texts: Sequence[str], val_texts: Sequence[str],
                 cfg: TrainConfig, *, block_length: int = 128, mlm_probability: float = 0.15,
                 one_document_per_row: bool = False, salient_ids: Sequence[int] = (),
                 salient_probability: float = 0.0, nsp_candidates: int = 1, cls_salient: bool = False,
                 on_eval=None) -> PretrainResult:
    """Masked-LM pretraining: fresh 80/10/10 masking of every batch, periodic validation.

    A plain ``MaskedLM`` trains on the corpus packed into blocks of ``block_length``. A
    ``PreTrainingModel`` alternates such a batch with a batch of sentence pairs (at most
    ``block_length`` tokens; masked LM + next-sentence prediction) and also reports
    next-sentence accuracy. Masked-token accuracy is measured on validation text laid out
    as the training text is (the same for both models).

    one_document_per_row: train on :func:`pack_documents` rows instead of packed blocks.
    salient_ids, salient_probability: :func:`mask_salient` on top of BERT masking.
    nsp_candidates: next-sentence negatives are the closest of this many random documents
    (:func:`labkit.nsp.make_pairs`; 1 = a random document, as BERT).
    cls_salient: in the masked-LM rows (not the sentence pairs), ``[CLS]`` also predicts the
    row's masked salient words (:func:`cls_word_loss`); needs ``salient_ids``.
    """
    if not 0.0 <= salient_probability < 1.0:
        raise ValueError(f"salient_probability must be in [0, 1), got {salient_probability}")
    if (salient_probability > 0 or cls_salient) and len(salient_ids) == 0:
        raise ValueError("salient_probability > 0 and cls_salient need salient_ids (the token ids of the salient words)")
    pack = pack_documents if one_document_per_row else pack_blocks
    train_blocks = pack(tokenizer, train_texts, block_length)  # (N, T)
    val_blocks = pack(tokenizer, val_texts, block_length)[:512]  # validated in the layout it trains on
    g = torch.Generator().manual_seed(cfg.seed)
    salient = torch.as_tensor(list(salient_ids), dtype=torch.long)

    def masked_blocks():
        for idx in batches(len(train_blocks), cfg.batch_size, seed=cfg.seed):
            m = mask_batch(tokenizer, train_blocks[idx], g, mlm_probability)
            if salient_probability > 0:
                m = mask_salient(tokenizer, train_blocks[idx], m, salient, salient_probability, g)
            mask = _padding_mask(train_blocks[idx], tokenizer.pad_token_id)
            if cls_salient:
                mask = torch.ones_like(m.labels) if mask is None else mask
                yield m.input_ids, m.labels, mask, torch.isin(m.labels, salient)
            else:
                yield (m.input_ids, m.labels) if mask is None else (m.input_ids, m.labels, mask)

    def evaluate(m):
        return evaluate_mlm(m, tokenizer, val_blocks, mlm_probability=mlm_probability)

    if not isinstance(model, PreTrainingModel):
        history = fit(model, masked_blocks(), mlm_loss, cfg, desc="pretraining (masked LM)", on_eval=on_eval,
                      evaluate=evaluate)
        return PretrainResult(history, history.last_eval())

    encoded = encode_pairs(tokenizer, make_pairs(train_texts, seed=cfg.seed, candidates=nsp_candidates),
                           block_length)
    pair_order = batches(len(encoded["labels"]), cfg.batch_size, seed=cfg.seed)
    val_docs = list(val_texts)[:1000]

    def alternate():  # packed blocks (masked LM), then sentence pairs (masked LM + next sentence), ...
        for block_batch in masked_blocks():
            yield block_batch
            yield _masked_pairs(tokenizer, encoded, next(pair_order), g, mlm_probability)

    history = fit(model, alternate(), pretraining_loss, cfg, desc="pretraining (masked LM + next sentence)",
                  on_eval=on_eval,
                  evaluate=lambda m: {**evaluate(m), **evaluate_nsp(m, tokenizer, val_docs, max_length=block_length)})
    return PretrainResult(history, history.last_eval())


def clm_loss(model: CausalLM, batch: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: position t predicts token t+1."""
    ids = batch.to(next(model.parameters()).device)  # (B, T)
    return model(ids, labels=ids).loss


@torch.no_grad()
def evaluate_clm(model: CausalLM, blocks: torch.Tensor, *, batch_size: int = 64) -> dict[str, float]:
    """Next-token accuracy, loss and perplexity."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, correct, count = 0.0, 0, 0
    for i in range(0, len(blocks), batch_size):
        ids = blocks[i:i + batch_size].to(device)
        logits = model(ids).logits[:, :-1].float()  # (B, T-1, V)
        target = ids[:, 1:]  # (B, T-1)
        total += F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum").item()
        correct += (logits.argmax(-1) == target).sum().item()
        count += target.numel()
    model.train(was_training)
    mean = total / count
    return {"next_token_accuracy": correct / count, "loss": mean, "perplexity": perplexity(mean)}


def pretrain_clm(model: CausalLM, tokenizer, train_texts: Sequence[str], val_texts: Sequence[str],
                 cfg: TrainConfig, *, block_length: int = 128, on_eval=None) -> PretrainResult:
    """Next-token (causal LM) pretraining on the same packed blocks."""
    train_blocks = pack_blocks(tokenizer, train_texts, block_length)
    val_blocks = pack_blocks(tokenizer, val_texts, block_length)[:512]

    def stream():
        for idx in batches(len(train_blocks), cfg.batch_size, seed=cfg.seed):
            yield train_blocks[idx]

    history = fit(model, stream(), clm_loss, cfg, desc="pretraining (next token)", on_eval=on_eval,
                  evaluate=lambda m: evaluate_clm(m, val_blocks))
    return PretrainResult(history, history.last_eval())
