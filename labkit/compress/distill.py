r"""Knowledge distillation (知识蒸馏): a small student learns from a large teacher's probabilities.

A teacher's output says more than its label: "positive, 0.7; negative, 0.3" tells how sure it is and
which wrong answer is nearly right. Hinton et al. (2015) soften both models' distributions with a
temperature T and train the student on the mix of the soft-target loss and the ordinary hard-label loss:

.. math::
   \mathcal{L} = \alpha\, T^2\, \mathrm{KL}\bigl(\mathrm{softmax}(z_t / T) \,\|\, \mathrm{softmax}(z_s / T)\bigr)
               + (1 - \alpha)\, \mathrm{CE}(z_s, y).

The :math:`T^2` keeps the soft term's gradient, :math:`(\mathrm{softmax}(z_s/T) - \mathrm{softmax}(z_t/T))\,T / B`
per logit, on the same scale whatever T is. A text without a label (``labels = -100``) adds the soft
term only, so the teacher can label unlabelled text: the student then learns from every review in
the training split, while the baseline student sees only the labelled ones.

Two ways to feed the teacher: live (:class:`Distilled` with a teacher that reads the student's ids), or
written once beside the data (:func:`teacher_logits`, :func:`distillation_split`, :data:`DISTILL_TASK`),
which also works when the teacher has a tokenizer of its own (a real pretrained encoder teaching a lab model).

    student = Distilled(SequenceClassifier(small_config, num_labels=2), teacher, DistillConfig(temperature=2))
    finetune(TASKS["sentiment"], student, tokenizer, data, cfg)      # the usual loop; the loss is the mix

    soft = teacher_logits(real_model, real_tokenizer, data["train"]["text"])
    train = distillation_split(data["train"], soft, n_labelled=32)   # 32 labels, every text with its soft target
    finetune(DISTILL_TASK, Distilled(student), tokenizer, DatasetDict(train=train, validation=..., test=...), cfg)

Shape letters: B texts in a batch, K labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..finetune import subsample
from ..heads import ClassifierOutput
from ..masking import IGNORE_INDEX
from ..tasks import ClassificationTask, predict_proba
from ..training import batches, pad

__all__ = ["DistillConfig", "distillation_loss", "Distilled", "teacher_logits", "distillation_split",
           "DistillationTask", "DISTILL_TASK"]


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """How the student mixes the teacher's soft targets with the labels."""

    temperature: float = 2.0  # T: above 1 softens both distributions, showing the teacher's near misses
    alpha: float = 0.5  # weight of the soft-target term; 1 - alpha on the labels (ignored for unlabelled texts)

    def __post_init__(self):
        if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}")
        if not isinstance(self.alpha, (int, float)) or not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be a number in [0, 1], got {self.alpha!r}")


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None = None,
                      cfg: DistillConfig = DistillConfig()) -> torch.Tensor:
    """α·T²·KL(teacher_T ‖ student_T) over the batch + (1 − α)·cross-entropy over the labelled texts.

    student_logits, teacher_logits: (B, K); labels: (B,) class ids, ``IGNORE_INDEX`` (-100) for a text
    without a label, or None (no label at all: the soft term alone, at full weight)."""
    if student_logits.shape != teacher_logits.shape or student_logits.dim() != 2:
        raise ValueError(f"student and teacher logits must both be (B, K), got {tuple(student_logits.shape)} "
                         f"and {tuple(teacher_logits.shape)}")
    t = cfg.temperature
    log_p_student = F.log_softmax(student_logits.float() / t, -1)  # (B, K)
    log_p_teacher = F.log_softmax(teacher_logits.float().detach() / t, -1)  # (B, K)
    soft = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean") * t * t
    if labels is None or not (labels != IGNORE_INDEX).any():
        return soft
    hard = F.cross_entropy(student_logits.float(), labels, ignore_index=IGNORE_INDEX)  # over labelled texts
    return cfg.alpha * soft + (1 - cfg.alpha) * hard


class Distilled(nn.Module):
    """A student classifier trained against a frozen teacher: ``forward`` returns the student's logits and,
    given the teacher's logits for the batch (or a live ``teacher`` reading the same ids), the distillation
    loss. A live teacher is kept outside the module's parameters: it is never trained or saved with the student."""

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None, cfg: DistillConfig = DistillConfig()):
        super().__init__()
        if not isinstance(cfg, DistillConfig):
            raise ValueError(f"cfg must be a DistillConfig, got {type(cfg).__name__}")
        if teacher is not None and getattr(student, "num_labels", None) != getattr(teacher, "num_labels", None):
            raise ValueError(f"student and teacher must have the same labels, got {getattr(student, 'num_labels', '?')} "
                             f"and {getattr(teacher, 'num_labels', '?')}")
        self.student, self.cfg = student, cfg
        self.num_labels, self.id2label = student.num_labels, getattr(student, "id2label", None)
        self.__dict__["teacher"] = None if teacher is None else teacher.eval().requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # the teacher's dropout stays off
        return self

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                teacher_logits=None) -> ClassifierOutput:
        out = self.student(input_ids, attention_mask, token_type_ids)
        if teacher_logits is None and self.teacher is not None and (self.training or labels is not None):
            with torch.no_grad():
                teacher_logits = self.teacher.to(input_ids.device)(input_ids, attention_mask, token_type_ids).logits
        if teacher_logits is None:  # no teacher for this batch: the plain label loss, if any
            loss = None if labels is None else F.cross_entropy(out.logits.float(), labels, ignore_index=IGNORE_INDEX)
        else:
            loss = distillation_loss(out.logits, teacher_logits, labels, self.cfg)
        return ClassifierOutput(out.logits, loss, out.attentions)


def teacher_logits(teacher: nn.Module, tokenizer, texts, *, max_length: int = 128, batch_size: int = 64) -> np.ndarray:
    """The teacher's log-probabilities (N, K) for ``texts``, read with the teacher's own tokenizer: its logits up to
    a constant per text, which no softmax sees."""
    probs = predict_proba(teacher, tokenizer, list(texts), max_length=max_length, batch_size=batch_size)
    return np.log(np.clip(probs, 1e-12, None)).astype(np.float32)


def distillation_split(train, soft: np.ndarray, n_labelled: int | None, *, seed: int = 0, label_column: str = "label"):
    """``train`` with the teacher's logits in a column ``teacher_logits`` and a column ``labelled``: True for the
    ``n_labelled`` texts (class-balanced, the same ones :func:`~labkit.finetune.subsample` keeps with this seed)
    whose label the student may use, False for the rest (None: every text labelled; 0: none)."""
    soft = np.asarray(soft, dtype=np.float32)
    if soft.shape[0] != len(train) or soft.ndim != 2:
        raise ValueError(f"soft must be (N, K) with N = {len(train)} training texts, got shape {soft.shape}")
    if n_labelled is None:
        keep = set(range(len(train)))
    elif n_labelled == 0:
        keep = set()
    else:
        keep = set(subsample(train.add_column("_row", list(range(len(train)))), n_labelled, seed, label_column)["_row"])
    return train.add_column("teacher_logits", soft.tolist()).add_column("labelled", [i in keep for i in range(len(train))])


@dataclass(frozen=True, kw_only=True)
class DistillationTask(ClassificationTask):
    """Classification on a :func:`distillation_split`: every batch carries the teacher's logits, and the labels of
    texts not marked ``labelled`` are hidden (``IGNORE_INDEX``). The whole split is used (no subsample)."""

    name: str = "distillation"
    teacher_column: str = "teacher_logits"
    unit: str = "texts"

    @property
    def stratify_column(self) -> str | None:
        return None

    def batches(self, tokenizer, train, cfg):
        if self.teacher_column not in train.column_names or "labelled" not in train.column_names:
            raise ValueError("the training split lacks teacher_logits / labelled: make it with distillation_split")
        ids = tokenizer(list(train[self.text_column]), truncation=True, max_length=self.max_length)["input_ids"]
        labels = torch.tensor(train[self.label_column])
        labels = torch.where(torch.tensor(train["labelled"]), labels, torch.full_like(labels, IGNORE_INDEX))
        soft = torch.tensor(np.asarray(train[self.teacher_column], dtype=np.float32))  # (N, K)
        for idx in batches(len(ids), cfg.batch_size, seed=cfg.seed):
            x, m = pad([ids[i] for i in idx], tokenizer.pad_token_id)  # (B, T), (B, T)
            yield {"input_ids": x, "attention_mask": m, "labels": labels[idx], "teacher_logits": soft[idx]}


DISTILL_TASK = DistillationTask()
