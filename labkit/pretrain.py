r"""Pretraining on unlabelled text: masked-language modelling (BERT) and, for contrast,
next-token prediction (GPT).

Masked LM: corrupt 15% of the tokens and predict the originals from both sides,

.. math::  P(w_i \mid x) = \mathrm{softmax}(h_i E^\top + b)_{w_i}, \qquad
           \mathcal{L} = -\frac{1}{|M|}\sum_{i \in M} \log P(w_i \mid \tilde x)

What a run trains is a :class:`PretrainConfig`: its objectives (:mod:`labkit.objectives`:
masked LM, next-sentence prediction, ``[CLS]`` predicting the masked salient words), how the
text is laid out and masked, and how long to train. :func:`pretrain_mlm` draws the batches
and minimises the sum of the objectives' losses over one encoding of each batch. With a
next-sentence objective, a batch of document rows alternates with a batch of sentence pairs
(:mod:`labkit.nsp`).

Two layout options change what the model is shown: ``one_document_per_row`` gives each row a
single document (padded; RoBERTa's "doc-sentences" inputs likewise never cross a document
boundary) instead of packing several into a block, and ``salient_probability`` masks the
salient words (by default the corpus's sentiment lexicon) more often, as ERNIE masks whole
entities and phrases. Without them, and without hard next-sentence negatives, the small
model did not learn the polarity of opinion words and sentiment did not transfer.

Next-token LM: predict each token from the ones before it, :math:`P(x_t \mid x_{<t})`.

Shape letters: N blocks, B batch, T block length, C width, V vocabulary, M masked positions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F

from .masking import IGNORE_INDEX, mask_tokens
from .nsp import collate_pairs, encode_pairs, make_pairs
from .objectives import ClsSalientWords, MaskedWords, NextSentence, Objective, PretrainingLoss
from .training import History, TrainConfig, batches, evaluating, fit, length_grouped_batches, perplexity, seeded
from .data.pages import is_page
from .gpt import GPT
from .transformer import CausalLM, MaskedLM

__all__ = ["PretrainConfig", "PretrainResult", "pack_blocks", "pack_documents", "mask_batch", "mask_salient",
           "salient_token_ids", "pretraining_batches", "mlm_loss", "evaluate_mlm", "evaluate_nsp", "pretrain_mlm",
           "clm_loss", "evaluate_clm", "pretrain_clm"]


def _default_objectives() -> tuple[Objective, ...]:
    return (MaskedWords(), NextSentence(candidates=8), ClsSalientWords())


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    """What a masked-LM pretraining run trains on and for how long. The defaults are `labkit build`'s."""

    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2500, batch_size=64, lr=3e-3, eval_every=500))
    objectives: tuple[Objective, ...] = field(default_factory=_default_objectives)
    block_length: int = 64  # tokens per training row
    mask_probability: float = 0.15  # BERT's share of chosen tokens
    salient_probability: float = 0.5  # each not-yet-chosen salient word is also masked with this probability
    salient_words: tuple[str, ...] | None = None  # None: the corpus's sentiment lexicon (labkit.data.corpus)
    one_document_per_row: bool = True  # pack_documents rows, else pack_blocks
    # batches of rows (and of sentence pairs) of similar length, each cut to its longest row: the same
    # rows every epoch, 40% less padding to compute on for TinyWorld's short documents
    group_by_length: bool = True
    # leave out the corpus's pages (labkit.data.pages), which teach the mini-GPT in-context learning: a
    # ratings page puts praise and complaints side by side, against the one-mood rows above. Measured at cpu
    # scale with them in: masked-token accuracy 0.49 (0.59 before the pages) and praise no longer filled
    # after praise ("the screen is great and the battery is [MASK]" → annoying, useless, ...)
    documents_only: bool = True

    def __post_init__(self):
        if self.block_length < 8:
            raise ValueError(f"block_length must be at least 8, got {self.block_length}")
        if not 0.0 < self.mask_probability < 1.0:
            raise ValueError(f"mask_probability must be in (0, 1), got {self.mask_probability}")
        if not 0.0 <= self.salient_probability < 1.0:
            raise ValueError(f"salient_probability must be in [0, 1), got {self.salient_probability}")
        if not self.objectives or not all(isinstance(o, Objective) for o in self.objectives):
            raise ValueError(f"objectives must be a non-empty tuple of labkit.objectives.Objective, got {self.objectives!r}")
        if self.uses_salient_words and self.salient_words is not None and len(self.salient_words) == 0:
            raise ValueError("salient_probability > 0 and the ClsSalientWords objective need salient words; "
                             "salient_words=() gives none (None means the corpus's sentiment lexicon)")

    @property
    def uses_salient_words(self) -> bool:
        return self.salient_probability > 0 or any(o.needs == "salient_labels" for o in self.objectives)

    def describe(self) -> str:
        """Sentences for a model card: the objectives, then the layout and masking."""
        parts = [o.describe() for o in self.objectives]
        if self.one_document_per_row:
            parts.append("Each training row holds one document.")
        if self.salient_probability:
            words = ("Words of the corpus's sentiment lexicon" if self.salient_words is None
                     else f"The words {', '.join(self.salient_words[:8])}{' …' if len(self.salient_words) > 8 else ''}")
            parts.append(f"{words} are also masked with probability {self.salient_probability}.")
        return " ".join(parts)


@dataclass
class PretrainResult:
    history: History
    metrics: dict[str, float]  # masked-token accuracy, perplexity, loss (+ next-sentence accuracy) on validation


def pack_blocks(tokenizer, texts: Iterable[str], block_length: int = 64) -> torch.Tensor:
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


def pack_documents(tokenizer, texts: Iterable[str], block_length: int = 64) -> torch.Tensor:
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
    extra = torch.isin(blocks, salient_ids) & (masked.labels == IGNORE_INDEX) & coin
    masked.input_ids[extra] = tokenizer.mask_token_id
    masked.labels[extra] = blocks[extra]
    return masked


def salient_token_ids(tokenizer, words: Sequence[str] | None = None) -> torch.Tensor:
    """The word-piece ids of ``words`` (default: the corpus's sentiment lexicon), sorted."""
    if words is None:
        from .data.corpus import polarity_lexicon
        words = polarity_lexicon()
    return torch.tensor(sorted({i for w in words for i in tokenizer(w, add_special_tokens=False)["input_ids"]}),
                        dtype=torch.long)


def mlm_loss(model: MaskedLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The masked-LM objective alone: cross-entropy at the masked positions only (the head never
    sees the other 85%). batch: ``input_ids``, ``labels`` and, for padded rows, ``attention_mask``."""
    return PretrainingLoss((MaskedWords(),))(model, batch)


def evaluate_mlm(model: MaskedLM, tokenizer, blocks: torch.Tensor, *, batch_size: int = 64,
                 mlm_probability: float = 0.15, seed: int = 1234) -> dict[str, float]:
    """Masked-token accuracy, loss and perplexity on blocks masked with a fixed seed."""
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    total_loss, correct, count = 0.0, 0, 0
    with evaluating(model):
        for i in range(0, len(blocks), batch_size):
            rows = blocks[i:i + batch_size]
            masked = mask_batch(tokenizer, rows, g, mlm_probability)
            ids, labels = masked.input_ids.to(device), masked.labels.to(device)
            mask = (rows != tokenizer.pad_token_id).long().to(device)  # from the rows before masking
            h = model.encoder(ids, mask).last_hidden_state  # (B, T, C)
            chosen = labels != IGNORE_INDEX
            logits = model.head(h[chosen]).float()  # (M, V)
            total_loss += F.cross_entropy(logits, labels[chosen], reduction="sum").item()
            correct += (logits.argmax(-1) == labels[chosen]).sum().item()
            count += int(chosen.sum())
    mean = total_loss / max(count, 1)
    return {"masked_accuracy": correct / max(count, 1), "loss": mean, "perplexity": perplexity(mean)}


def evaluate_nsp(model, tokenizer, documents: Sequence[str], *, max_length: int = 64,
                 batch_size: int = 64, seed: int = 1234) -> dict[str, float]:
    """Next-sentence accuracy on pairs made from ``documents`` with a fixed seed (chance = 0.5)."""
    device = next(model.parameters()).device
    encoded = encode_pairs(tokenizer, make_pairs(documents, seed), max_length)
    correct = 0
    with evaluating(model):
        for i in range(0, len(encoded["labels"]), batch_size):
            b = collate_pairs(encoded, range(i, min(i + batch_size, len(encoded["labels"]))), tokenizer.pad_token_id)
            out = model(b["input_ids"].to(device), b["attention_mask"].to(device), b["token_type_ids"].to(device))
            correct += (out.next_sentence_logits.argmax(-1).cpu() == b["next_sentence_label"]).sum().item()
    return {"next_sentence_accuracy": correct / len(encoded["labels"])}


def pretraining_batches(tokenizer, texts: Sequence[str], cfg: PretrainConfig) -> Iterator[dict[str, torch.Tensor]]:
    """The endless stream of masked training batches for ``cfg``, drawn from ``cfg.train.seed``.

    Document rows (``pack_documents`` or ``pack_blocks``) masked as BERT, the salient words
    masked more; with ``salient_labels`` when an objective needs them. With a sentence-pair
    objective, each rows batch is followed by a batch of masked sentence pairs. With
    ``cfg.group_by_length``, a batch holds rows of similar length and is cut to its longest.
    """
    tc = cfg.train
    pack = pack_documents if cfg.one_document_per_row else pack_blocks
    rows = pack(tokenizer, texts, cfg.block_length)  # (N, T)
    row_lengths = (rows != tokenizer.pad_token_id).sum(1)  # (N,): padding only ever ends a row
    g = torch.Generator().manual_seed(tc.seed)  # every masking draw, in a fixed order
    salient = salient_token_ids(tokenizer, cfg.salient_words) if cfg.uses_salient_words else None
    if salient is not None and len(salient) == 0:
        raise ValueError("none of the salient words is in the tokenizer's vocabulary")
    wants_salient_labels = any(o.needs == "salient_labels" for o in cfg.objectives)
    pair_objective = next((o for o in cfg.objectives if o.sentence_pairs), None)
    if pair_objective is not None:
        encoded = encode_pairs(tokenizer, make_pairs(texts, seed=tc.seed, candidates=pair_objective.candidates),
                               cfg.block_length)
        pair_order = (length_grouped_batches([len(x) for x in encoded["input_ids"]], tc.batch_size, seed=tc.seed)
                      if cfg.group_by_length else batches(len(encoded["labels"]), tc.batch_size, seed=tc.seed))
    order = (length_grouped_batches(row_lengths.numpy(), tc.batch_size, seed=tc.seed) if cfg.group_by_length
             else batches(len(rows), tc.batch_size, seed=tc.seed))
    for idx in order:
        block = rows[idx]  # (B, T)
        if cfg.group_by_length:
            block = block[:, :int(row_lengths[idx].max())]  # (B, T') with T' the batch's longest row
        m = mask_batch(tokenizer, block, g, cfg.mask_probability)
        if cfg.salient_probability > 0:
            m = mask_salient(tokenizer, block, m, salient, cfg.salient_probability, g)
        batch = {"input_ids": m.input_ids, "labels": m.labels}
        if (block == tokenizer.pad_token_id).any():
            batch["attention_mask"] = (block != tokenizer.pad_token_id).long()
        if wants_salient_labels:
            batch["salient_labels"] = torch.where(torch.isin(m.labels, salient), m.labels, IGNORE_INDEX)
        yield batch
        if pair_objective is not None:
            pairs = collate_pairs(encoded, next(pair_order), tokenizer.pad_token_id)
            m = mask_batch(tokenizer, pairs["input_ids"], g, cfg.mask_probability)
            yield {**pairs, "input_ids": m.input_ids, "labels": m.labels}


def pretrain_mlm(model: MaskedLM, tokenizer, train_texts: Sequence[str], val_texts: Sequence[str],
                 cfg: PretrainConfig | None = None, *, on_eval=None) -> PretrainResult:
    """Masked-LM pretraining with ``cfg``'s objectives (default: `labkit build`'s); fresh masking of
    every batch, validation every ``cfg.train.eval_every`` steps on text laid out as in training.

    Reports masked-token accuracy, loss and perplexity, and next-sentence accuracy when a
    next-sentence objective is trained. With ``cfg.documents_only`` (the default) the corpus's pages
    are left out of training and validation. Dropout draws from ``cfg.train.seed``, so two runs with
    one seed are identical.
    """
    cfg = cfg if cfg is not None else PretrainConfig()
    if not isinstance(cfg, PretrainConfig):
        raise ValueError(f"cfg must be a PretrainConfig (objectives, layout, masking, train=TrainConfig), "
                         f"got {type(cfg).__name__}")
    for objective in cfg.objectives:
        objective.check(model)
    if cfg.documents_only:
        train_texts = [t for t in train_texts if not is_page(t)]
        val_texts = [t for t in val_texts if not is_page(t)]
    pack = pack_documents if cfg.one_document_per_row else pack_blocks
    val_rows = pack(tokenizer, val_texts, cfg.block_length)[:512]
    val_docs = list(val_texts)[:1000]
    nsp = any(isinstance(o, NextSentence) for o in cfg.objectives)

    def evaluate(m):
        metrics = evaluate_mlm(m, tokenizer, val_rows, mlm_probability=cfg.mask_probability)
        if nsp:
            metrics.update(evaluate_nsp(m, tokenizer, val_docs, max_length=cfg.block_length))
        return metrics

    names = " + ".join(o.name.replace("_", " ") for o in cfg.objectives)
    with seeded(cfg.train.seed):
        history = fit(model, pretraining_batches(tokenizer, list(train_texts), cfg), PretrainingLoss(cfg.objectives),
                      cfg.train, desc=f"pretraining ({names})", on_eval=on_eval, evaluate=evaluate)
    return PretrainResult(history, history.last_eval())


def clm_loss(model: CausalLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Next-token cross-entropy: position t predicts token t+1 (the model's own loss)."""
    return model(**batch).loss


def evaluate_clm(model: CausalLM | GPT, blocks: torch.Tensor, *, batch_size: int = 64) -> dict[str, float]:
    """Next-token accuracy, loss and perplexity."""
    device = next(model.parameters()).device
    total, correct, count = 0.0, 0, 0
    with evaluating(model):
        for i in range(0, len(blocks), batch_size):
            ids = blocks[i:i + batch_size].to(device)
            logits = model(ids).logits[:, :-1].float()  # (B, T-1, V)
            target = ids[:, 1:]  # (B, T-1)
            total += F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum").item()
            correct += (logits.argmax(-1) == target).sum().item()
            count += target.numel()
    mean = total / count
    return {"next_token_accuracy": correct / count, "loss": mean, "perplexity": perplexity(mean)}


def pretrain_clm(model: CausalLM | GPT, tokenizer, train_texts: Sequence[str], val_texts: Sequence[str],
                 cfg: TrainConfig, *, block_length: int = 64, on_eval=None) -> PretrainResult:
    """Next-token (causal LM) pretraining on packed blocks; batches {input_ids, labels}.

    Any model whose forward takes (input_ids, labels) and returns logits and its shifted
    next-token loss: the BERT-style ``CausalLM`` or the GPT-2-style :class:`labkit.gpt.GPT`."""
    train_blocks = pack_blocks(tokenizer, train_texts, block_length)
    val_blocks = pack_blocks(tokenizer, val_texts, block_length)[:512]

    def stream():
        for idx in batches(len(train_blocks), cfg.batch_size, seed=cfg.seed):
            yield {"input_ids": train_blocks[idx], "labels": train_blocks[idx]}

    with seeded(cfg.seed):
        history = fit(model, stream(), clm_loss, cfg, desc="pretraining (next token)", on_eval=on_eval,
                      evaluate=lambda m: evaluate_clm(m, val_blocks))
    return PretrainResult(history, history.last_eval())
