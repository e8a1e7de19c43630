"""Checks for chapter 13 (judging a foundation model): the exposure of a canary from the scores of every
code, demographic-parity and equalised-odds gaps read against an interval, faithfulness by deletion
(AOPC) for two attributions, and a gender-swapped sentence for counterfactual data augmentation.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import Feedback, checked, failed, passed

__all__ = ["TRUE_CODE", "code_scores", "check_exposure", "parity_inputs", "dp_interval", "check_parity_gaps",
           "REVIEW", "ATTRIBUTIONS", "toy_probability", "check_aopc", "SENTENCE", "check_gender_swap"]


def _number(answer) -> float | None:
    """A real number from a float, an int or a one-element array or tensor; None otherwise."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, numbers.Real):
        return float(answer)
    if hasattr(answer, "item") and getattr(answer, "size", None) in (1, (), None) and not isinstance(answer, str):
        try:
            value = answer.item()
        except (ValueError, RuntimeError, TypeError):
            return None
        return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None
    return None


def _close(a: float, b: float, tol: float = 1e-3) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def _numbers(answer, n: int) -> list[float] | None:
    if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__len__") or len(answer) != n:
        return None
    values = [_number(v) for v in answer]
    return None if any(v is None for v in values) else values


# Exercise 1: the exposure of a canary
TRUE_CODE = "271"  # the secret a model read 16 times
_RANK = 8  # the true code's rank among the 1,000 codes (7 codes score higher)


def code_scores() -> np.ndarray:
    """A mini-GPT's log P(code | "the secret code of Oren Valdis is") for every 3-digit code: (1000,),
    indexed by the code read as a number (code "042" at index 42)."""
    rng = np.random.default_rng(13)
    scores = rng.normal(-7.0, 1.2, 1000)
    order = np.argsort(-scores)  # best first
    true = int(TRUE_CODE)
    other = int(order[_RANK - 1])
    scores[true], scores[other] = scores[other], scores[true]  # the true code takes the 8th best score
    return scores


def _exposure() -> float:
    from ..audit.privacy import exposure

    return exposure(code_scores(), TRUE_CODE)


@checked("the exposure of a canary", hints=(
    "Exposure asks how far up the model ranks the true code among all R codes it could have been. Count the "
    "codes that score at least as high as the true one (itself included): that is its rank.",
    "With R codes and the true code at rank r, the exposure is log2 R minus log2 r, in bits: 0 when the true "
    "code is last, log2 R when it comes first.",
    "R is 1,000 here (three digits). Find how many scores are at least the true code's score, then take base-2 "
    "logarithms.",
))
def check_exposure(answer) -> Feedback:
    """answer: the exposure in bits of TRUE_CODE under code_scores(), a float."""
    name = "the exposure of a canary"
    value = _number(answer)
    if value is None:
        return failed(name, "answer with one number, the exposure in bits.")
    want = _exposure()
    R = len(code_scores())
    if _close(value, want):
        return passed(name, f"{want:.3f} bits: the true code is 8th of {R:,}. A model that learnt nothing would "
                            f"rank it about {R // 2:,}th (about 1 bit); one that memorised it, 1st "
                            f"({math.log2(R):.2f} bits). Exposure needs no sampling: it reads the whole ranking.")
    if _close(value, math.log2(_RANK)):
        return failed(name, "that is log2 of the rank; exposure is how much better than the bottom the code "
                            "ranks, log2 R minus that.")
    if _close(value, math.log2(R) - math.log2(_RANK - 1)):
        return failed(name, "count the rank from 1: the true code itself is among the codes that score at "
                            "least as high as it.")
    if _close(value, math.log(R) - math.log(_RANK)):
        return failed(name, "that is in nats; exposure is in bits (base-2 logarithms).")
    if _close(value, math.log2(R) - math.log2(R - _RANK + 1)):
        return failed(name, "you ranked from the bottom; rank 1 is the code the model finds likeliest.")
    if _close(value, float(_RANK)):
        return failed(name, "that is the rank; turn it into bits.")
    return failed(name)


# Exercise 2: demographic parity and equalised odds, and whether the gap is real
_GROUPS = ["F", "M", "M", "F", "F", "M", "F", "M", "M", "F", "F", "M", "F", "M", "M", "F"]
_LABELS = [1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0]
_PREDS = [1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0]


def parity_inputs() -> dict[str, list]:
    """A sentiment classifier's predictions (1 = positive) on 16 reviews, their gold labels, and the group
    of the person each review is written by: {"predictions", "labels", "groups"}."""
    return {"predictions": list(_PREDS), "labels": list(_LABELS), "groups": list(_GROUPS)}


def _gaps() -> dict[str, float]:
    from ..audit.fairness import parity_gaps

    return parity_gaps(_PREDS, _LABELS, _GROUPS, compared=("F", "M"))


def dp_interval() -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the demographic-parity gap F − M (1,000 draws of the 16 rows)."""
    from ..audit.fairness import bootstrap_ci, parity_gaps

    units = np.array([[p, y, 0 if g == "F" else 1] for p, y, g in zip(_PREDS, _LABELS, _GROUPS)])

    def statistic(rows):
        groups = np.where(rows[:, 2] == 0, "F", "M")
        if len(set(groups.tolist())) < 2:
            return np.array([np.nan])
        return np.array([parity_gaps(rows[:, 0], rows[:, 1], groups, compared=("F", "M"))["dp_gap"]])

    ci = bootstrap_ci(units, statistic, n_resamples=1000, seed=0)[0]
    return round(float(ci[1]), 3), round(float(ci[2]), 3)


@checked("parity gaps and their interval", hints=(
    "Split the 16 rows by group. Demographic parity compares how often each group is predicted positive, "
    "whatever the gold label. Equalised odds compares the error rates: the true-positive rate (among gold "
    "positives) and the false-positive rate (among gold negatives).",
    "Every gap is F's rate minus M's. The equalised-odds gap is the larger of the absolute TPR gap and the "
    "absolute FPR gap. A gap is significant only when its interval leaves out 0.",
    "Each group has 8 rows. Count, per group, the rows predicted positive; the gold positives predicted positive; "
    "and the gold negatives predicted positive. Divide each count by the right total.",
))
def check_parity_gaps(answer) -> Feedback:
    """answer: (demographic-parity gap F − M, equalised-odds gap, whether the DP gap is significant given
    dp_interval()), as (float, float, bool)."""
    name = "parity gaps and their interval"
    if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__len__") or len(answer) != 3:
        return failed(name, "answer with three things: (DP gap, EO gap, True or False).")
    dp, eo, verdict = _number(answer[0]), _number(answer[1]), answer[2]
    if dp is None or eo is None:
        return failed(name, "the first two entries are numbers (the gaps).")
    if not isinstance(verdict, (bool, np.bool_)):
        return failed(name, "the third entry is True or False: does the interval leave out 0?")
    g = _gaps()
    low, high = dp_interval()
    significant = low > 0 or high < 0
    notes = []
    if _close(dp, -g["dp_gap"]) and not _close(dp, g["dp_gap"]):
        notes.append("the DP gap has the wrong sign: take F's rate minus M's")
    elif not _close(dp, g["dp_gap"]):
        if _close(dp, g["tpr_a"] - g["tpr_b"]):
            notes.append("for demographic parity compare the positive rates over all of a group's rows, not "
                         "over its gold positives only")
        else:
            notes.append("count again how often each group is predicted positive, over all its rows")
    if not _close(eo, g["eo_gap"]):
        if _close(eo, abs(g["tpr_gap"])) or _close(eo, abs(g["fpr_gap"])):
            notes.append("the equalised-odds gap is the larger of the TPR gap and the FPR gap (in absolute value)")
        elif _close(eo, g["tpr_gap"] - g["fpr_gap"]) or _close(eo, abs(g["tpr_gap"]) + abs(g["fpr_gap"])):
            notes.append("do not add or subtract the two gaps: take the larger of their absolute values")
        else:
            notes.append("recompute each group's TPR (among gold positives) and FPR (among gold negatives)")
    if bool(verdict) != significant:
        notes.append(f"the interval [{low:+.3f}, {high:+.3f}] "
                     + ("contains 0, so this gap could be noise" if not significant else "leaves out 0"))
    if notes:
        return failed(name, "; ".join(notes) + ".")
    return passed(name, f"DP gap {g['dp_gap']:+.3f}, EO gap {g['eo_gap']:.3f}; the interval [{low:+.3f}, "
                        f"{high:+.3f}] contains 0, so with 16 reviews a gap of {g['dp_gap']:.2f} is not evidence of "
                        "unfairness. The same gap measured on thousands of reviews could be; collect more data "
                        "before deciding either way.")


# Exercise 3: faithfulness by deletion, for two attributions
REVIEW = ("the", "soup", "was", "lovely", "but", "service", "slow")
_WEIGHTS = {"the": 0.0, "soup": 0.4, "was": 0.1, "lovely": 2.2, "but": -0.3, "service": 0.0, "slow": -1.1}
_BIAS = 0.3
ATTRIBUTIONS = {  # one score per word of REVIEW, for the predicted label (positive)
    "integrated gradients": (0.01, 0.35, 0.08, 1.62, -0.21, 0.02, -0.74),
    "attention": (0.02, 0.31, 0.05, 0.18, 0.03, 0.27, 0.14),
}


def toy_probability(deleted=()) -> float:
    """A toy classifier's probability that REVIEW is positive once the words at positions ``deleted``
    (indices into REVIEW) are replaced by [MASK] (a masked word counts for nothing)."""
    bad = [i for i in deleted if isinstance(i, bool) or not isinstance(i, numbers.Integral)
           or not 0 <= int(i) < len(REVIEW)]
    if bad:
        raise ValueError(f"deleted must hold word positions 0..{len(REVIEW) - 1}, got {list(deleted)}")
    gone = {int(i) for i in deleted}
    logit = _BIAS + sum(_WEIGHTS[w] for i, w in enumerate(REVIEW) if i not in gone)
    return 1 / (1 + math.exp(-logit))


def _aopc(scores, k_max: int = 2, *, ascending: bool = False, skip_zero: bool = False) -> float:
    order = sorted(range(len(REVIEW)), key=lambda i: (scores[i] if ascending else -scores[i], i))
    p0 = toy_probability()
    drops = [p0 - toy_probability(order[:k]) for k in range(0 if not skip_zero else 1, k_max + 1)]
    return float(np.mean(drops))


@checked("AOPC for two attributions", hints=(
    "Deletion tests an explanation by acting on it: remove the words it calls most important, first one, then "
    "two, and watch the probability of the predicted label fall. The faster it falls, the more faithful.",
    "For each method, order the words by its score, highest first. The deletion curve is the probability with "
    "0, 1 and 2 of the top words removed; AOPC is the mean of (probability on the whole review minus the "
    "probability on the curve) over those three points.",
    "The point with nothing removed contributes 0 but still counts in the mean of three. Use the toy "
    "classifier's probability for the words you remove, giving it their positions in the review.",
))
def check_aopc(answer) -> Feedback:
    """answer: (AOPC of integrated gradients, AOPC of attention) over 0, 1 and 2 deleted words, two floats."""
    name = "AOPC for two attributions"
    values = _numbers(answer, 2)
    if values is None:
        return failed(name, "answer with two numbers: (AOPC of integrated gradients, AOPC of attention).")
    ig, att = (ATTRIBUTIONS[m] for m in ("integrated gradients", "attention"))
    want = (_aopc(ig), _aopc(att))
    if all(_close(v, w) for v, w in zip(values, want)):
        return passed(name, f"integrated gradients {want[0]:.3f}, attention {want[1]:.3f}. Attention points at "
                            "'soup' and 'service', which barely move the prediction; integrated gradients points at "
                            "'lovely', which carries it. Deletion ranks explanations by what the model does, not by "
                            "how plausible they look.")
    if all(_close(v, w) for v, w in zip(values, (_aopc(ig, skip_zero=True), _aopc(att, skip_zero=True)))):
        return failed(name, "you averaged over the two deletions only; the curve's first point (nothing deleted) "
                            "counts too, so average over three points.")
    if all(_close(v, w) for v, w in zip(values, (_aopc(ig, ascending=True), _aopc(att, ascending=True)))):
        return failed(name, "delete the highest-scored words first, not the lowest.")
    if all(_close(v, w) for v, w in zip(values, want[::-1])):
        return failed(name, "the two numbers are swapped: integrated gradients first, then attention.")
    return failed(name)


# Exercise 4: counterfactual data augmentation
SENTENCE = "The engineer told his sister that he would meet her at the station."


def _swapped() -> str:
    from ..audit.bias import gender_swap

    return gender_swap(SENTENCE)


def _words(text: str) -> list[str]:
    return text.lower().replace(".", " .").replace(",", " ,").split()


@checked("a gender-swapped sentence", hints=(
    "Counterfactual data augmentation adds a copy of a sentence in which every word that marks gender is "
    "swapped, and nothing else changes: the occupation stays, so it is seen with both genders.",
    "Swap the pronouns (he and she, his and her) and the gendered nouns (sister and brother, and the like). "
    "Leave the occupation and every other word as it is.",
    "'her' has two partners: 'his' before a noun ('her keys') and 'him' when it is an object ('meet her').",
))
def check_gender_swap(answer) -> Feedback:
    """answer: SENTENCE with its gender swapped, as labkit.audit.bias.gender_swap writes it, a str."""
    name = "a gender-swapped sentence"
    if not isinstance(answer, str) or not answer.strip():
        return failed(name, "answer with the swapped sentence as one string.")
    given, want, original = _words(answer), _words(_swapped()), _words(SENTENCE)
    if given == want:
        return passed(name, f"{_swapped()!r}. The engineer is now a woman and the sentence is otherwise the same: "
                            "trained on both copies, a model sees 'engineer' with 'he' and 'she' equally often.")
    if given == original:
        return failed(name, "that is the sentence as it was; swap its gendered words.")
    if len(given) != len(want):
        return failed(name, "a swap replaces words one for one; the sentence keeps its length.")
    wrong = [(o, g, w) for o, g, w in zip(original, given, want) if g != w]
    if any(o == "engineer" for o, _, _ in wrong):
        return failed(name, "keep the occupation: the point is to see the same job with the other gender.")
    if any(o == "sister" for o, _, _ in wrong):
        return failed(name, "'sister' marks gender too; swap it.")
    if any(o == "her" for o, _, _ in wrong):
        return failed(name, "'meet her': here 'her' is an object, so its partner is 'him', not 'his'.")
    return failed(name)
