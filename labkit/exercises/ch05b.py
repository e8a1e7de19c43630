"""Checks for appendix 05b (transfer ablations): one change at a time.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import os
from dataclasses import fields

from . import Feedback, checked, failed, passed

__all__ = ["baseline_pretrain", "check_no_cls_objective"]


def baseline_pretrain():
    """The pretraining config of ``labkit build`` at ``$LAB_SCALE`` (default cpu): the ablations' baseline."""
    from labkit.scales import SCALES

    return SCALES[os.environ.get("LAB_SCALE", "cpu")].pretrain


def _differences(a, b) -> set[str]:
    return {f.name for f in fields(a) if getattr(a, f.name) != getattr(b, f.name)}


@checked("switch off the [CLS] objective", hints=(
    "A PretrainConfig lists its objectives as a tuple; an ablation changes that tuple and nothing else.",
    "Copy the baseline with dataclasses' replace, giving a new objectives tuple.",
    "Keep the masked-word objective and the next-sentence objective exactly as the baseline has them "
    "(with its 8 candidates); leave out only the objective that makes [CLS] predict the salient words.",
))
def check_no_cls_objective(answer) -> Feedback:
    """answer: a PretrainConfig equal to a scale's baseline except that ClsSalientWords is left out."""
    from labkit.objectives import ClsSalientWords, NextSentence
    from labkit.pretrain import PretrainConfig
    from labkit.scales import SCALES, Scale

    name = "switch off the [CLS] objective"
    if isinstance(answer, Scale):
        return failed(name, "that is a whole Scale; the exercise asks for its pretraining config (the Scale's "
                            "pretrain field) with one change.")
    if not isinstance(answer, PretrainConfig):
        return failed(name, "answer with a PretrainConfig: the baseline with one change.")
    base = next((s.pretrain for s in SCALES.values() if _differences(answer, s.pretrain) <= {"objectives"}), None)
    if base is None:
        return failed(name, "your config changes more than the objectives (training length, masking or layout); "
                            "an ablation changes one thing, so keep everything else as the baseline has it.")
    wanted = tuple(o for o in base.objectives if not isinstance(o, ClsSalientWords))
    given = answer.objectives
    if set(given) == set(wanted) and len(given) == len(wanted):
        return passed(name, "the baseline without ClsSalientWords: masked words and hard next-sentence negatives "
                            "stay, so any change in the gain is the [CLS] objective's.")
    if set(given) == set(base.objectives):
        return failed(name, "that is the baseline itself: nothing is switched off yet.")
    if not any(isinstance(o, NextSentence) for o in given) and any(isinstance(o, NextSentence) for o in wanted):
        return failed(name, "you removed next-sentence prediction too: two changes at once, so you could not "
                            "tell which one moved the gain.")
    if any(isinstance(o, NextSentence) and o not in wanted for o in given):
        return failed(name, "your next-sentence objective differs from the baseline's (its number of candidates); "
                            "keep it as it is.")
    if any(isinstance(o, ClsSalientWords) for o in given):
        return failed(name, "the [CLS] objective (ClsSalientWords) is still in your tuple.")
    return failed(name)
