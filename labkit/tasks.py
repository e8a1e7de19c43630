"""Fine-tuning tasks as objects: what the model is, what its batches hold, how it is scored.

A :class:`Task` knows its name, its headline metric, how to make a model for it (a head on
a pretrained encoder, or from scratch), how to turn labelled examples into named batches
(dicts keyed by the model's ``forward`` arguments, labels included, so the model returns
its own loss), and how to score predictions. :func:`labkit.finetune.finetune` trains any of
them; ``labkit build`` and the transfer experiment loop over :data:`TASKS`.

=================  ===================================  ==================================
task               model                                metrics (test split)
=================  ===================================  ==================================
``sentiment``      ``SequenceClassifier``               accuracy, macro-F1
``topic``          ``SequenceClassifier``               accuracy, macro-F1
``ner``            ``TokenClassifier``                  entity-level F1, precision, recall
``qa``             ``QuestionAnswerer``                 SQuAD exact match and F1 (percent)
``translation``    ``Seq2Seq`` (warm-started encoder)   character BLEU, greedy and beam
=================  ===================================  ==================================

A new task is one new ``Task`` (a subclass where its model or batches are new) and one entry
in :data:`TASKS`. Shape letters: B batch, T tokens, K labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from . import metrics as M
from .heads import QuestionAnswerer, SequenceClassifier, TokenClassifier
from .masking import IGNORE_INDEX
from .qa import best_answers, prepare_train_features
from .training import TrainConfig, batches, evaluating, pad, seeded
from .transformer import MaskedLM, TransformerConfig
from .translate import translate, warm_start_seq2seq

__all__ = ["Task", "ClassificationTask", "TaggingTask", "QATask", "TranslationTask", "TASKS",
           "predict_proba", "align_labels", "predict_tags", "answer_questions"]


def _device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)  # a model run by another engine (ONNX Runtime) has none: CPU tensors
    return first.device if first is not None else torch.device("cpu")


def _first(split, limit: int | None):
    return split if limit is None else split.select(range(min(limit, len(split))))


@dataclass(frozen=True, kw_only=True)
class Task:
    """A labelled TinyWorld task (``labkit.data.load_task(name)``) and how to fine-tune for it."""

    name: str
    metric: str  # the headline metric (the transfer experiment compares it)
    title: str  # the model card's title
    pipeline_tag: str  # the model card's transformers task
    max_length: int = 128  # tokens per input
    n_validate: int | None = None  # validation examples scored during training (None = all)
    unit: str = "examples"  # what one training example is, for progress bars

    @property
    def stratify_column(self) -> str | None:
        """The column whose values a subsample of the training split keeps balanced (None: none)."""
        return None

    def make_model(self, pretrained: MaskedLM | None, data, *, config: TransformerConfig | None = None,
                   seed: int = 0) -> nn.Module:
        """A fresh model for this task: a head on a copy of ``pretrained``'s encoder, or from scratch
        (``pretrained=None``, with ``config``). The new weights are drawn from ``seed`` alone."""
        if pretrained is None and config is None:
            raise ValueError("pass a pretrained model or, for random initialisation, a config")
        with seeded(seed):
            return self._make_model(pretrained, data, config)

    def _make_model(self, pretrained, data, config) -> nn.Module:
        raise NotImplementedError

    def batches(self, tokenizer, train, cfg: TrainConfig) -> Iterator[dict[str, torch.Tensor]]:
        """Endless named batches of ``train`` in an order drawn from ``cfg.seed``."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, tokenizer, split) -> tuple[dict[str, float], str]:
        """Metrics on ``split`` and a readable report ("" where there is none)."""
        raise NotImplementedError

    def validate(self, model: nn.Module, tokenizer, split) -> dict[str, float]:
        """The metrics tracked during training (on the first ``n_validate`` examples)."""
        return self.evaluate(model, tokenizer, _first(split, self.n_validate))[0]

    def card(self, data, metrics: dict[str, float], report: str) -> str:
        """The model card's paragraph on what was fine-tuned."""
        return ""

    def save_kwargs(self, tokenizer) -> dict:
        """Extra config entries for the saved folder."""
        return {}


# ----------------------------------------------------------------------------- classification
@torch.no_grad()
def predict_proba(model: SequenceClassifier, tokenizer, texts: Sequence[str], *, max_length: int = 128,
                  batch_size: int = 64) -> np.ndarray:
    """Class probabilities (N, K) for raw texts."""
    texts, out = list(texts), []
    with evaluating(model):
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i:i + batch_size], truncation=True, max_length=max_length, padding=True,
                            return_tensors="pt")
            logits = model(enc["input_ids"].to(_device(model)), enc["attention_mask"].to(_device(model))).logits
            out.append(torch.softmax(logits.float(), -1).cpu().numpy())
    return np.concatenate(out)


@dataclass(frozen=True, kw_only=True)
class ClassificationTask(Task):
    """One label per text, from [CLS]: accuracy and macro-F1."""

    metric: str = "accuracy"
    title: str = "TinyWorld text classifier"
    pipeline_tag: str = "text-classification"
    text_column: str = "text"
    label_column: str = "label"
    unit: str = "labels"

    @property
    def stratify_column(self) -> str | None:
        return self.label_column  # a subsample keeps the classes balanced

    def labels(self, data) -> list[str]:
        return data["train"].features[self.label_column].names

    def _make_model(self, pretrained, data, config):
        names = self.labels(data)
        return SequenceClassifier.from_pretrained(pretrained, config, num_labels=len(names),
                                                  id2label=dict(enumerate(names)))

    def batches(self, tokenizer, train, cfg):
        ids = tokenizer(list(train[self.text_column]), truncation=True, max_length=self.max_length)["input_ids"]
        labels = torch.tensor(train[self.label_column])
        for idx in batches(len(ids), cfg.batch_size, seed=cfg.seed):
            x, m = pad([ids[i] for i in idx], tokenizer.pad_token_id)  # (B, T), (B, T)
            yield {"input_ids": x, "attention_mask": m, "labels": labels[idx]}

    def evaluate(self, model, tokenizer, split):
        gold = list(split[self.label_column])
        pred = predict_proba(model, tokenizer, list(split[self.text_column]), max_length=self.max_length).argmax(-1)
        pred = pred.tolist()
        return {"accuracy": M.accuracy(pred, gold), "macro_f1": M.precision_recall_f1(pred, gold)["f1"]}, ""

    def card(self, data, metrics, report):
        return f"Sequence classification over {self.labels(data)}, fine-tuned on {len(data['train'])} labelled examples."


# ----------------------------------------------------------------------------- token classification
def align_labels(tokenizer, words: Sequence[Sequence[str]], tags: Sequence[Sequence[int]] | None = None, *,
                 max_length: int = 128) -> dict:
    """Tokenise pre-split words; the first word piece of each word carries its tag, the
    other pieces and the special tokens get IGNORE_INDEX (no loss).

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
                row.append(IGNORE_INDEX if w is None or w == prev else int(tags[i][w]))
                prev = w
            out["labels"].append(row)
    return out


@torch.no_grad()
def predict_tags(model: TokenClassifier, tokenizer, words: Sequence[Sequence[str]], *, max_length: int = 128,
                 batch_size: int = 64) -> list[list[str]]:
    """One tag name per word (the prediction at its first word piece; "O" past truncation)."""
    enc = align_labels(tokenizer, words, max_length=max_length)
    result = []
    with evaluating(model):
        for i in range(0, len(words), batch_size):
            x, m = pad(enc["input_ids"][i:i + batch_size], tokenizer.pad_token_id)
            pred = model(x.to(_device(model)), m.to(_device(model))).logits.argmax(-1).cpu()  # (B, T)
            for j, word_ids in enumerate(enc["word_ids"][i:i + batch_size]):
                tags, seen = ["O"] * len(words[i + j]), set()
                for t, w in enumerate(word_ids):
                    if w is not None and w not in seen:
                        seen.add(w)
                        tags[w] = model.id2label[int(pred[j, t])]
                result.append(tags)
    return result


@dataclass(frozen=True, kw_only=True)
class TaggingTask(Task):
    """One BIO tag per word (read at its first word piece): entity-level F1 (CoNLL)."""

    metric: str = "entity_f1"
    title: str = "TinyWorld named-entity recogniser"
    pipeline_tag: str = "token-classification"
    tokens_column: str = "tokens"
    tags_column: str = "ner_tags"
    unit: str = "sentences"

    def labels(self, data) -> list[str]:
        return data["train"].features[self.tags_column].feature.names

    def _make_model(self, pretrained, data, config):
        names = self.labels(data)
        return TokenClassifier.from_pretrained(pretrained, config, num_labels=len(names),
                                               id2label=dict(enumerate(names)))

    def batches(self, tokenizer, train, cfg):
        enc = align_labels(tokenizer, list(train[self.tokens_column]), list(train[self.tags_column]),
                           max_length=self.max_length)
        for idx in batches(len(train), cfg.batch_size, seed=cfg.seed):
            x, m = pad([enc["input_ids"][i] for i in idx], tokenizer.pad_token_id)  # (B, T), (B, T)
            y, _ = pad([enc["labels"][i] for i in idx], value_for_pad=IGNORE_INDEX)  # (B, T)
            yield {"input_ids": x, "attention_mask": m, "labels": y}

    def evaluate(self, model, tokenizer, split):
        pred = predict_tags(model, tokenizer, list(split[self.tokens_column]), max_length=self.max_length)
        gold = [[model.id2label[t] for t in row] for row in list(split[self.tags_column])]
        r = M.entity_scores(gold, pred)
        return {"entity_f1": r.f1, "entity_precision": r.precision, "entity_recall": r.recall}, str(r)

    def card(self, data, metrics, report):
        return f"BIO tagging with {self.labels(data)}.\n\n```\n{report}\n```"


# ----------------------------------------------------------------------------- question answering
@torch.no_grad()
def answer_questions(model: QuestionAnswerer, tokenizer, questions: Sequence[str], contexts: Sequence[str], *,
                     max_length: int = 192, stride: int = 64, batch_size: int = 64, **postprocess_kwargs) -> list[str]:
    """The best answer span (as text) for each (question, context) pair."""
    feats = prepare_train_features(tokenizer, list(questions), list(contexts), max_length=max_length, stride=stride)
    starts, ends = [], []
    full = max(len(row) for row in feats["input_ids"])
    with evaluating(model):
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


@dataclass(frozen=True, kw_only=True)
class QATask(Task):
    """Extractive QA (SQuAD v1.1): the start and end of the answer span; exact match and F1."""

    metric: str = "f1"
    title: str = "TinyWorld extractive QA"
    pipeline_tag: str = "question-answering"
    max_length: int = 192
    stride: int = 64  # overlap of the windows a long context is cut into
    n_validate: int | None = 400
    unit: str = "questions"

    def _make_model(self, pretrained, data, config):
        return QuestionAnswerer.from_pretrained(pretrained, config)

    def batches(self, tokenizer, train, cfg):
        feats = prepare_train_features(tokenizer, list(train["question"]), list(train["context"]),
                                       list(train["answers"]), max_length=self.max_length, stride=self.stride)
        tensors = {k: torch.tensor(feats[k]) for k in ("input_ids", "attention_mask", "token_type_ids",
                                                       "start_positions", "end_positions")}
        for idx in batches(len(tensors["input_ids"]), cfg.batch_size, seed=cfg.seed):
            T = int(tensors["attention_mask"][idx].sum(1).max())  # drop padding columns no row needs
            yield {k: (v[idx, :T] if v.dim() == 2 else v[idx]) for k, v in tensors.items()}

    def evaluate(self, model, tokenizer, split):
        ids, answers = list(split["id"]), list(split["answers"])
        pred = answer_questions(model, tokenizer, list(split["question"]), list(split["context"]),
                                max_length=self.max_length, stride=self.stride)
        return M.squad_scores(dict(zip(ids, pred)), {i: a["text"] for i, a in zip(ids, answers)}), ""

    def card(self, data, metrics, report):
        return "SQuAD v1.1-style extractive QA: predicts the start and end of the answer span in the context."


# ----------------------------------------------------------------------------- translation
@dataclass(frozen=True, kw_only=True)
class TranslationTask(Task):
    """EN→ZH with an encoder–decoder warm-started from the pretrained encoder; character BLEU.

    Training is teacher forcing: the decoder reads the target shifted right (``[CLS] 今 天 …``)
    and predicts it shifted left (``今 天 … [SEP]``). The test split is scored greedily in full
    and, since beam search is slow on a CPU, with ``num_beams`` on its first ``n_beam`` pairs.
    """

    metric: str = "bleu_greedy"
    title: str = "TinyWorld EN→ZH translator"
    pipeline_tag: str = "translation"
    max_length: int = 64
    n_validate: int | None = 200
    num_beams: int = 4
    n_beam: int | None = 200
    unit: str = "pairs"

    def _make_model(self, pretrained, data, config):
        return warm_start_seq2seq(pretrained, config)

    def batches(self, tokenizer, train, cfg):
        pairs = list(train["translation"])
        src = tokenizer([p["en"] for p in pairs], truncation=True, max_length=self.max_length)["input_ids"]
        tgt = tokenizer([p["zh"] for p in pairs], truncation=True, max_length=self.max_length + 1)["input_ids"]
        for idx in batches(len(src), cfg.batch_size, seed=cfg.seed):
            x, m = pad([src[i] for i in idx], tokenizer.pad_token_id)  # (B, S)
            dec_in, dec_m = pad([tgt[i][:-1] for i in idx], tokenizer.pad_token_id)  # (B, T): [CLS] y1 … yn
            labels, _ = pad([tgt[i][1:] for i in idx], value_for_pad=IGNORE_INDEX)  # (B, T): y1 … yn [SEP]
            yield {"input_ids": x, "attention_mask": m, "decoder_input_ids": dec_in,
                   "decoder_attention_mask": dec_m, "labels": labels}

    def bleu(self, model, tokenizer, split, num_beams: int = 1) -> float:
        pairs = list(split["translation"])
        hyp = translate(model, tokenizer, [p["en"] for p in pairs], num_beams=num_beams,
                        max_length=self.max_length, max_new_tokens=self.max_length)
        return M.corpus_bleu_zh(hyp, [p["zh"] for p in pairs])

    def validate(self, model, tokenizer, split):
        return {"bleu_greedy": self.bleu(model, tokenizer, _first(split, self.n_validate))}

    def evaluate(self, model, tokenizer, split):
        metrics = {"bleu_greedy": self.bleu(model, tokenizer, split)}
        if self.num_beams > 1:
            head = _first(split, self.n_beam)
            metrics[f"bleu_greedy_first{self.n_beam}"] = self.bleu(model, tokenizer, head)
            metrics[f"bleu_beam{self.num_beams}_first{self.n_beam}"] = self.bleu(model, tokenizer, head, self.num_beams)
        return metrics, ""

    def card(self, data, metrics, report):
        return ("Encoder–decoder: the encoder is the pretrained mini-BERT; the decoder starts from its weights "
                "(cross-attention from scratch). Open with `labkit.folders.load_model` or transformers' "
                "EncoderDecoderModel.")

    def save_kwargs(self, tokenizer):
        return {"decoder_start_token_id": tokenizer.cls_token_id, "eos_token_id": tokenizer.sep_token_id,
                "pad_token_id": tokenizer.pad_token_id}


TASKS: dict[str, Task] = {t.name: t for t in (
    ClassificationTask(name="sentiment", title="TinyWorld sentiment classifier"),
    ClassificationTask(name="topic", title="TinyWorld topic classifier"),
    TaggingTask(name="ner"),
    QATask(name="qa"),
    TranslationTask(name="translation"),
)}
