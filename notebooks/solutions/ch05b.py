"""Reference solutions for appendix 05b (transfer ablations). Each ``solution_<name>()`` returns the
answer that ``labkit.exercises.ch05b.check_<name>`` accepts."""
from dataclasses import replace

from labkit.exercises.ch05b import baseline_pretrain
from labkit.objectives import ClsSalientWords


def solution_no_cls_objective():
    base = baseline_pretrain()
    # one change: the same objectives, in the same order, without the [CLS] one
    return replace(base, objectives=tuple(o for o in base.objectives if not isinstance(o, ClsSalientWords)))
