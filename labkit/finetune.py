"""Fine-tuning loops: text classification, token classification (NER) and extractive QA.

Each loop takes a labkit head (usually warm-started from the pretrained encoder), a
tokenizer and a ``datasets.DatasetDict`` with train/validation/test splits, trains with
:func:`labkit.training.fit`, and returns the history and the test-set metrics.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from . import metrics as M
from .heads import QuestionAnswerer, SequenceClassifier, TokenClassifier
from .qa import best_answers, prepare_train_features
from .training import History, TrainConfig, batches, fit

__all__ = ["FinetuneResult", "pad", "finetune_classifier", "predict_proba", "finetune_tokens", "predict_tags",
           "align_labels", "finetune_qa", "answer_questions", "subsample"]


@dataclass
class FinetuneResult:
    history: History
    metrics: dict[str, float]  # on the test split
    report: str = ""  # a readable per-class / per-entity report, where one exists
    extra: dict = field(default_factory=dict)


def pad(seqs: Sequence[Sequence[int]], pad_id: int = 0, value_for_pad: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad lists of ids into (B, T) ids and a (B, T) attention mask."""
    T = max(len(s) for s in seqs)
    fill = pad_id if value_for_pad is None else value_for_pad
    ids = torch.full((len(seqs), T), fill, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids, mask


def subsample(split, n: int | None, seed: int, label_column: str | None = None):
    """The first n examples of a seeded shuffle (stratified by label when a column is given)."""
    if n is None or n >= len(split):
        return split
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    rng = np.random.default_rng(seed)
    if label_column is None:
        return split.select(sorted(rng.permutation(len(split))[:n].tolist()))
    labels = np.asarray(split[label_column])
    classes = np.unique(labels)
    per = [rng.permutation(np.flatnonzero(labels == c)).tolist() for c in classes]
    chosen: list[int] = []
    while len(chosen) < n:  # round-robin over classes keeps them balanced
        for p in per:
            if p and len(chosen) < n:
                chosen.append(p.pop())
    return split.select(sorted(chosen))


def _device(model) -> torch.device:
    return next(model.parameters()).device


# ----------------------------------------------------------------------------- classification
@torch.no_grad()
def predict_proba(model: SequenceClassifier, tokenizer, texts: Sequence[str], *, max_length: int = 128,
                  batch_size: int = 64) -> np.ndarray:
    """Class probabilities (N, K) for raw texts."""
    model.eval()
    texts, out = list(texts), []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i:i + batch_size]), truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        logits = model(enc["input_ids"].to(_device(model)), enc["attention_mask"].to(_device(model))).logits
        out.append(torch.softmax(logits.float(), -1).cpu().numpy())
    return np.concatenate(out)


def finetune_classifier(model: SequenceClassifier, tokenizer, data, cfg: TrainConfig, *, text_column: str = "text",
                        label_column: str = "label", max_length: int = 128, n_train: int | None = None,
                        validate: bool = True, test: bool = True) -> FinetuneResult:
    """Fine-tune a sequence classifier; metrics are accuracy and macro-F1 on the test split.

    n_train: use only this many labelled training examples (class-balanced), as in the
    transfer experiment. validate: score the validation split during training. test: score
    the test split at the end (else the metrics are empty).
    """
    train = subsample(data["train"], n_train, cfg.seed, label_column)
    ids = tokenizer(list(train[text_column]), truncation=True, max_length=max_length)["input_ids"]
    labels = torch.tensor(train[label_column])

    def stream():
        for idx in batches(len(ids), cfg.batch_size, seed=cfg.seed):
            x, m = pad([ids[i] for i in idx], tokenizer.pad_token_id)
            yield x, m, labels[idx]

    def loss_fn(model, batch):
        x, m, y = (t.to(_device(model)) for t in batch)
        return model(x, m, labels=y).loss

    def evaluate(split_name: str):
        split = data[split_name]
        gold = list(split[label_column])
        pred = predict_proba(model, tokenizer, list(split[text_column]), max_length=max_length).argmax(-1).tolist()
        return pred, {"accuracy": M.accuracy(pred, gold), "macro_f1": M.precision_recall_f1(pred, gold)["f1"]}

    history = fit(model, stream(), loss_fn, cfg, evaluate=(lambda m: evaluate("validation")[1]) if validate else None,
                  desc=f"fine-tuning ({len(train)} labels)")
    return FinetuneResult(history, evaluate("test")[1] if test else {})


# ----------------------------------------------------------------------------- token classification
def align_labels(tokenizer, words: Sequence[Sequence[str]], tags: Sequence[Sequence[int]] | None = None, *,
                 max_length: int = 128) -> dict:
    """Tokenise pre-split words; the first word piece of each word carries its tag, the
    other pieces and the special tokens get -100 (ignored by the loss).

    Returns {"input_ids": [...], "labels": [...], "word_ids": [...]}.
    """
    enc = tokenizer([list(w) for w in words], is_split_into_words=True, truncation=True, max_length=max_length)
    out = {"input_ids": enc["input_ids"], "word_ids": [], "labels": []}
    for i in range(len(words)):
        word_ids = enc.word_ids(i)
        out["word_ids"].append(word_ids)
        if tags is not None:
            prev, row = None, []
            for w in word_ids:
                row.append(-100 if w is None or w == prev else int(tags[i][w]))
                prev = w
            out["labels"].append(row)
    return out


@torch.no_grad()
def predict_tags(model: TokenClassifier, tokenizer, words: Sequence[Sequence[str]], *, max_length: int = 128,
                 batch_size: int = 64) -> list[list[str]]:
    """One tag name per word (the prediction at its first word piece; "O" past truncation)."""
    model.eval()
    enc = align_labels(tokenizer, words, max_length=max_length)
    result = []
    for i in range(0, len(words), batch_size):
        x, m = pad(enc["input_ids"][i:i + batch_size], tokenizer.pad_token_id)
        pred = model(x.to(_device(model)), m.to(_device(model))).logits.argmax(-1).cpu()  # (B, T)
        for j, word_ids in enumerate(enc["word_ids"][i:i + batch_size]):
            tags = ["O"] * len(words[i + j])
            seen = set()
            for t, w in enumerate(word_ids):
                if w is not None and w not in seen:
                    seen.add(w)
                    tags[w] = model.id2label[int(pred[j, t])]
            result.append(tags)
    return result


def finetune_tokens(model: TokenClassifier, tokenizer, data, cfg: TrainConfig, *, tokens_column: str = "tokens",
                    tags_column: str = "ner_tags", max_length: int = 128, n_train: int | None = None,
                    validate: bool = True, test: bool = True) -> FinetuneResult:
    """Fine-tune a token classifier; metrics are entity-level P/R/F1 (CoNLL) on the test split
    (``test=False``: not scored, empty metrics)."""
    train = subsample(data["train"], n_train, cfg.seed)
    enc = align_labels(tokenizer, list(train[tokens_column]), list(train[tags_column]), max_length=max_length)

    def stream():
        for idx in batches(len(train), cfg.batch_size, seed=cfg.seed):
            x, m = pad([enc["input_ids"][i] for i in idx], tokenizer.pad_token_id)
            y, _ = pad([enc["labels"][i] for i in idx], value_for_pad=-100)
            yield x, m, y

    def loss_fn(model, batch):
        x, m, y = (t.to(_device(model)) for t in batch)
        return model(x, m, labels=y).loss

    names = model.id2label

    def evaluate(split_name: str):
        split = data[split_name]
        pred = predict_tags(model, tokenizer, list(split[tokens_column]), max_length=max_length)
        gold = [[names[t] for t in row] for row in list(split[tags_column])]
        return M.entity_scores(gold, pred)

    def val_metrics(m):
        r = evaluate("validation")
        return {"entity_f1": r.f1, "entity_precision": r.precision, "entity_recall": r.recall}

    history = fit(model, stream(), loss_fn, cfg, evaluate=val_metrics if validate else None,
                  desc=f"fine-tuning NER ({len(train)} sentences)")
    if not test:
        return FinetuneResult(history, {})
    report = evaluate("test")
    return FinetuneResult(history, {"entity_f1": report.f1, "entity_precision": report.precision,
                                    "entity_recall": report.recall}, report=str(report))


# ----------------------------------------------------------------------------- question answering
@torch.no_grad()
def answer_questions(model: QuestionAnswerer, tokenizer, questions: Sequence[str], contexts: Sequence[str], *,
                     max_length: int = 192, stride: int = 64, batch_size: int = 64, **postprocess_kwargs) -> list[str]:
    """The best answer span (as text) for each (question, context) pair."""
    model.eval()
    feats = prepare_train_features(tokenizer, list(questions), list(contexts), max_length=max_length, stride=stride)
    starts, ends = [], []
    full = max(len(row) for row in feats["input_ids"])
    for i in range(0, len(feats["input_ids"]), batch_size):
        m = torch.tensor(feats["attention_mask"][i:i + batch_size])
        T = int(m.sum(1).max())  # compute only up to the longest real sequence in the batch
        x = torch.tensor(feats["input_ids"][i:i + batch_size])[:, :T]
        tt = torch.tensor(feats["token_type_ids"][i:i + batch_size])[:, :T]
        out = model(x.to(_device(model)), m[:, :T].to(_device(model)), tt.to(_device(model)))
        pad_logits = torch.full((len(x), full - T), -1e4)  # padding can never be an answer
        starts.append(torch.cat([out.start_logits.cpu(), pad_logits], 1))
        ends.append(torch.cat([out.end_logits.cpu(), pad_logits], 1))
    return best_answers(feats, torch.cat(starts), torch.cat(ends), list(contexts), **postprocess_kwargs)


def finetune_qa(model: QuestionAnswerer, tokenizer, data, cfg: TrainConfig, *, max_length: int = 192,
                stride: int = 64, n_train: int | None = None, n_eval: int | None = 400) -> FinetuneResult:
    """Fine-tune extractive QA; metrics are SQuAD v1.1 exact match and F1 (percent) on the test split."""
    train = subsample(data["train"], n_train, cfg.seed)
    feats = prepare_train_features(tokenizer, list(train["question"]), list(train["context"]), list(train["answers"]),
                                   max_length=max_length, stride=stride)
    tensors = {k: torch.tensor(feats[k]) for k in ("input_ids", "attention_mask", "token_type_ids",
                                                   "start_positions", "end_positions")}

    def stream():
        for idx in batches(len(tensors["input_ids"]), cfg.batch_size, seed=cfg.seed):
            T = int(tensors["attention_mask"][idx].sum(1).max())  # drop padding columns no row needs
            yield {k: (v[idx, :T] if v.dim() == 2 else v[idx]) for k, v in tensors.items()}

    def loss_fn(model, b):
        b = {k: v.to(_device(model)) for k, v in b.items()}
        return model(b["input_ids"], b["attention_mask"], b["token_type_ids"],
                     start_positions=b["start_positions"], end_positions=b["end_positions"]).loss

    def evaluate(split_name: str, limit: int | None):
        split = data[split_name] if limit is None else data[split_name].select(range(min(limit, len(data[split_name]))))
        ids, answers = list(split["id"]), list(split["answers"])
        pred = answer_questions(model, tokenizer, list(split["question"]), list(split["context"]), max_length=max_length,
                                stride=stride)
        return M.squad_scores(dict(zip(ids, pred)), {i: a["text"] for i, a in zip(ids, answers)})

    history = fit(model, stream(), loss_fn, cfg, evaluate=lambda m: evaluate("validation", n_eval),
                  desc=f"fine-tuning QA ({len(train)} questions)")
    return FinetuneResult(history, evaluate("test", None))
