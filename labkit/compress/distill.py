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

    student = Distilled(SequenceClassifier(small_config, num_labels=2), teacher, DistillConfig(temperature=2))
    finetune(TASKS["sentiment"], student, tokenizer, data, cfg)      # the usual loop; the loss is the mix

Shape letters: B texts in a batch, K labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..heads import ClassifierOutput
from ..masking import IGNORE_INDEX

__all__ = ["DistillConfig", "distillation_loss", "Distilled"]


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
    in training, the distillation loss. The teacher is kept outside the module's parameters (it is never
    trained or saved with the student); both must read the same tokenizer's ids."""

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg: DistillConfig = DistillConfig()):
        super().__init__()
        if not isinstance(cfg, DistillConfig):
            raise ValueError(f"cfg must be a DistillConfig, got {type(cfg).__name__}")
        if getattr(student, "num_labels", None) != getattr(teacher, "num_labels", None):
            raise ValueError(f"student and teacher must have the same labels, got {getattr(student, 'num_labels', '?')} "
                             f"and {getattr(teacher, 'num_labels', '?')}")
        self.student, self.cfg = student, cfg
        self.num_labels, self.id2label = student.num_labels, getattr(student, "id2label", None)
        self.__dict__["teacher"] = teacher.eval().requires_grad_(False)  # not a submodule: not trained, not saved

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher's dropout stays off
        return self

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None) -> ClassifierOutput:
        out = self.student(input_ids, attention_mask, token_type_ids)
        loss = None
        if self.training or labels is not None:
            teacher = self.teacher.to(input_ids.device)
            with torch.no_grad():
                teacher_logits = teacher(input_ids, attention_mask, token_type_ids).logits  # (B, K)
            loss = distillation_loss(out.logits, teacher_logits, labels, self.cfg)
        return ClassifierOutput(out.logits, loss, out.attentions)
