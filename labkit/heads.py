"""Task heads on the lab's BERT encoder, each the twin of a transformers class.

=======================  ==================================  ==============================
labkit                   transformers                        prediction
=======================  ==================================  ==============================
``SequenceClassifier``   ``BertForSequenceClassification``   one label per text, from [CLS]
``TokenClassifier``      ``BertForTokenClassification``      one label per word piece
``QuestionAnswerer``     ``BertForQuestionAnswering``        start and end of an answer span
=======================  ==================================  ==============================

Each can be warm-started from a pretrained ``MaskedLM`` (``from_pretrained``), which is
the point of pretraining: the encoder arrives knowing the language; only the small head
starts from scratch. The heads are plain torch; ``labkit.hf`` pairs them with their twins.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .masking import IGNORE_INDEX
from .transformer import Encoder, MaskedLM, TransformerConfig, _init_weights

__all__ = ["SequenceClassifier", "TokenClassifier", "QuestionAnswerer", "ClassifierOutput", "SpanOutput"]


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, K) or (B, T, K)
    loss: torch.Tensor | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class SpanOutput:
    start_logits: torch.Tensor  # (B, T)
    end_logits: torch.Tensor  # (B, T)
    loss: torch.Tensor | None = None


class _Head(nn.Module):
    pooler = False

    def __init__(self, config: TransformerConfig, num_labels: int, id2label: dict[int, str] | None = None):
        super().__init__()
        if num_labels <= 0:
            raise ValueError(f"num_labels must be positive, got {num_labels}")
        if id2label is not None and len(id2label) != num_labels:
            raise ValueError(f"id2label has {len(id2label)} names for num_labels={num_labels}")
        self.config, self.num_labels = config, num_labels
        self.id2label = {int(k): v for k, v in (id2label or {i: f"LABEL_{i}" for i in range(num_labels)}).items()}
        self.encoder = Encoder(config, pooler=self.pooler)
        self.dropout = nn.Dropout(config.dropout)

    @classmethod
    def from_pretrained(cls, pretrained: MaskedLM | Encoder | None, config: TransformerConfig | None = None, **kw):
        """A fresh head on a copy of a pretrained encoder (``None`` = random initialisation)."""
        if pretrained is None:
            if config is None:
                raise ValueError("pass a pretrained model or, for random initialisation, a config")
            return cls(config, **kw)
        enc = pretrained.encoder if isinstance(pretrained, MaskedLM) else pretrained
        model = cls(enc.config, **kw)
        state = enc.state_dict()
        if model.encoder.pooler is None:  # a token-level head has no use for a pretrained pooler
            state = {k: v for k, v in state.items() if not k.startswith("pooler.")}
        missing, unexpected = model.encoder.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("pooler") for k in missing):
            raise ValueError(f"encoder weights do not fit: missing {missing}, unexpected {unexpected}")
        return model


class SequenceClassifier(_Head):
    """[CLS] → pooler (tanh) → dropout → linear: logits over K labels."""

    pooler = True

    def __init__(self, config: TransformerConfig, num_labels: int, id2label: dict[int, str] | None = None):
        super().__init__(config, num_labels, id2label)
        self.classifier = nn.Linear(config.d_model, num_labels)
        _init_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, *,
                output_attentions: bool = False) -> ClassifierOutput:
        enc = self.encoder(input_ids, attention_mask, token_type_ids, output_attentions=output_attentions)
        logits = self.classifier(self.dropout(enc.pooler_output))  # (B, C) -> (B, K)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return ClassifierOutput(logits, loss, enc.attentions)


class TokenClassifier(_Head):
    """Every token's hidden state → dropout → linear: logits over K tags per token."""

    def __init__(self, config: TransformerConfig, num_labels: int, id2label: dict[int, str] | None = None):
        super().__init__(config, num_labels, id2label)
        self.classifier = nn.Linear(config.d_model, num_labels)
        _init_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, *,
                output_attentions: bool = False) -> ClassifierOutput:
        enc = self.encoder(input_ids, attention_mask, token_type_ids, output_attentions=output_attentions)
        logits = self.classifier(self.dropout(enc.last_hidden_state))  # (B, T, C) -> (B, T, K)
        loss = None
        if labels is not None:  # IGNORE_INDEX marks word pieces that carry no label
            loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        return ClassifierOutput(logits, loss, enc.attentions)


class QuestionAnswerer(_Head):
    """Every token's hidden state → linear → (start, end) logits; the answer is the best span."""

    def __init__(self, config: TransformerConfig, num_labels: int = 2, id2label=None):
        if num_labels != 2:
            raise ValueError(f"a span head has exactly 2 outputs (start, end), got num_labels={num_labels}")
        super().__init__(config, 2, id2label)
        self.qa_outputs = nn.Linear(config.d_model, 2)
        _init_weights(self.qa_outputs, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, start_positions=None,
                end_positions=None) -> SpanOutput:
        h = self.encoder(input_ids, attention_mask, token_type_ids).last_hidden_state  # (B, T, C)
        start, end = self.qa_outputs(h).float().unbind(-1)  # (B, T, 2) -> 2 x (B, T)
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (F.cross_entropy(start, start_positions) + F.cross_entropy(end, end_positions)) / 2
        return SpanOutput(start, end, loss)
