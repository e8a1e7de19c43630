"""Checks for chapter 00 (welcome): the device, the foundation-model pipeline, labels.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

from . import Feedback, checked, failed, passed

__all__ = ["check_device", "check_pipeline_order", "check_needs_labels", "STAGES"]

# The stages of exercise 2 (shuffled on purpose) and their order in the concept map.
STAGES = ("fine-tuning", "pretraining", "evaluation", "unlabelled data", "downstream task", "foundation model")
_ORDER = ("unlabelled data", "pretraining", "foundation model", "fine-tuning", "downstream task", "evaluation")
_NEED_LABELS = frozenset({"fine-tuning", "evaluation"})


@checked("the lab's device")
def check_device(answer) -> Feedback:
    """answer: the device the lab uses here, as a ``torch.device`` or a string ("cpu", "cuda", "mps")."""
    from ..env import best_device

    name = "the lab's device"
    expected = best_device().type
    given = getattr(answer, "type", answer)
    if not isinstance(given, str):
        return failed(name, "give a torch.device or its type as a string, e.g. str(best_device())")
    if given.split(":")[0].strip().lower() == expected:
        return passed(name, f"the lab runs on {expected} here.")
    return failed(name, "call labkit.env.best_device(): it tries cuda, then mps, then cpu.")


@checked("the pipeline order")
def check_pipeline_order(answer) -> Feedback:
    """answer: the six names in ``STAGES``, as a list in the order the concept map follows them."""
    name = "the pipeline order"
    given = [str(s).strip().lower() for s in answer]
    if sorted(given) != sorted(_ORDER):
        return failed(name, f"use each of these names exactly once: {list(STAGES)}")
    if given == list(_ORDER):
        return passed(name, "data → pretraining → foundation model → adaptation → task → evaluation.")
    first_wrong = next(i for i, (g, e) in enumerate(zip(given, _ORDER)) if g != e)
    return failed(name, f"the first {first_wrong} are in place; what must exist before {given[first_wrong]!r}?")


@checked("stages that need labels")
def check_needs_labels(answer) -> Feedback:
    """answer: the set of names from ``STAGES`` that need labelled (human-annotated) data."""
    name = "stages that need labels"
    given = {str(s).strip().lower() for s in ([answer] if isinstance(answer, str) else answer)}
    if unknown := given - set(STAGES):
        return failed(name, f"{sorted(unknown)} are not stage names; choose from {list(STAGES)}")
    if given == _NEED_LABELS:
        return passed(name, "pretraining is self-supervised; labels enter when you adapt and when you measure.")
    if "pretraining" in given:
        return failed(name, "pretraining is self-supervised (自监督): the text itself supplies the targets.")
    return failed(name, "which stages compare the model's output with an answer a person wrote?")
