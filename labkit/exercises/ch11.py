"""Checks for chapter 11 (small, fast and deployed): int8 quantisation of a weight matrix per row, the size of
an int4 matrix with its group scales, the distillation loss for given logits, T and α, and the threshold of a
hybrid edge/cloud deployment that reaches a target accuracy with the fewest deferrals.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch

from . import Feedback, checked, failed, passed

__all__ = ["weight", "check_int8_rows", "INT4_SHAPE", "INT4_GROUP", "check_int4_bytes", "distill_inputs",
           "check_distillation_loss", "hybrid_inputs", "THRESHOLDS", "TARGET", "check_hybrid_threshold"]


def _number(answer) -> float | None:
    """A real number from a float, an int or a one-element array or tensor; None otherwise."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, numbers.Real):
        return float(answer)
    if hasattr(answer, "item") and not isinstance(answer, str) and getattr(answer, "size", None) in (1, (), None):
        try:
            value = answer.item()
        except (ValueError, RuntimeError, TypeError):
            return None
        return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None
    return None


def _close(a: float, b: float, tol: float = 1e-4) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def _matrix(answer, shape: tuple[int, int]) -> np.ndarray | None:
    """A float array of ``shape`` from a tensor, an array or nested lists; None otherwise."""
    if isinstance(answer, (str, bytes, dict)) or callable(answer):
        return None
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().cpu().float().numpy()
    try:
        array = np.asarray(answer, dtype=np.float64)
    except (ValueError, TypeError):
        return None
    return array if array.shape == shape else None


# Exercise 1: int8 per row, by hand
def weight() -> torch.Tensor:
    """A small weight matrix (3 outputs × 8 inputs); row 1 holds one large weight (an outlier)."""
    g = torch.Generator().manual_seed(11)
    w = torch.randn(3, 8, generator=g) * 0.1
    w[1, 5] = 1.5
    return w


def _int8(w: torch.Tensor, qmax: float = 127.0, dim: int | None = 1, rounding=torch.round) -> np.ndarray:
    if dim is None:
        scale = w.abs().max() / qmax
    else:
        scale = w.abs().amax(dim, keepdim=True) / qmax
    return (rounding(w / scale).clamp(-qmax, qmax) * scale).double().numpy()


def _reference_int8() -> np.ndarray:
    from ..compress.quantize import dequantize, quantize

    return dequantize(quantize(weight(), bits=8)).double().numpy()


@checked("int8 per row, by hand", hints=(
    "Each row gets one scale, chosen so that the row's largest weight in absolute value maps to the largest "
    "int8 code, 127. Every weight of the row is then divided by the scale, rounded to a whole number, and "
    "multiplied back.",
    "Per row: the scale is the largest absolute weight of that row over 127. The code of a weight is its value "
    "over the scale, rounded to the nearest integer; the dequantised weight is the code times the scale.",
    "Answer with the dequantised matrix (3 × 8 floats), not the codes. Every entry should differ from the "
    "original by at most half its row's scale.",
))
def check_int8_rows(answer) -> Feedback:
    """answer: weight() quantised to int8 with one scale per row and dequantised, a (3, 8) tensor or array."""
    name = "int8 per row, by hand"
    w = weight()
    given = _matrix(answer, tuple(w.shape))
    if given is None:
        return failed(name, f"answer with a matrix of shape {tuple(w.shape)}: the dequantised weights.")
    want = _reference_int8()
    close = lambda other: np.allclose(given, other, rtol=0, atol=1e-6)  # noqa: E731
    if close(want):
        err = np.abs(want - w.double().numpy()).max(1)
        scale = w.abs().amax(1).double().numpy() / 127
        return passed(name, "every weight within half its row's scale of the original (largest errors "
                            + ", ".join(f"{e:.5f} ≤ {s / 2:.5f}" for e, s in zip(err, scale))
                            + "). Row 1's outlier makes its scale about ten times the others', so its small "
                              "weights are stored on a grid ten times coarser.")
    if close(w.double().numpy()):
        return failed(name, "that is the original matrix; round each weight to its integer code and multiply back.")
    if close(np.round(w.double().numpy() / (w.abs().amax(1, keepdim=True).double().numpy() / 127))):
        return failed(name, "those are the integer codes; multiply each by its row's scale to dequantise.")
    if close(_int8(w, dim=None)):
        return failed(name, "you used one scale for the whole matrix; give each row its own scale.")
    if close(_int8(w, dim=0)):
        return failed(name, "you gave each column a scale; here each row (one output feature) has its own.")
    if close(_int8(w, qmax=128.0)) or close(_int8(w, qmax=255.0)) or close(_int8(w, qmax=256.0)):
        return failed(name, "symmetric int8 codes run from -127 to 127, so the largest weight maps to 127.")
    if close(_int8(w, rounding=torch.trunc)) or close(_int8(w, rounding=torch.floor)):
        return failed(name, "round to the nearest code; cutting off the fraction doubles the worst error.")
    return failed(name)


# Exercise 2: the bytes of an int4 matrix
INT4_SHAPE = (256, 1024)  # N outputs × K inputs
INT4_GROUP = 32  # inputs sharing one float32 scale


def _int4_bytes() -> int:
    from ..compress.quantize import quantize

    return quantize(torch.zeros(INT4_SHAPE), bits=4, group_size=INT4_GROUP).nbytes()


@checked("the bytes of an int4 matrix", hints=(
    "An int4 matrix stores two things: the codes, half a byte each, and one float32 scale for every group of "
    "inputs in every row.",
    "Count the codes (one per weight) and halve; count the groups (rows times inputs per row over the group "
    "size) and give each scale 4 bytes. Add the two.",
    "The matrix has 262,144 weights, and each row of 1,024 inputs has 32 groups.",
))
def check_int4_bytes(answer) -> Feedback:
    """answer: the bytes of an INT4_SHAPE float matrix quantised to int4 in groups of INT4_GROUP (codes and
    float32 scales), an int."""
    name = "the bytes of an int4 matrix"
    value = _number(answer)
    if value is None:
        return failed(name, "answer with one number of bytes.")
    n, k = INT4_SHAPE
    codes, groups = n * k // 2, n * k // INT4_GROUP
    want = _int4_bytes()
    if _close(value, want, 1e-9):
        return passed(name, f"{want:,} bytes: {codes:,} of codes and {groups * 4:,} of scales, against "
                            f"{n * k * 4:,} in float32 ({n * k * 4 / want:.1f}× smaller). The scales are a fifth of "
                            "the total: groups of 32 cost a full bit per weight.")
    if _close(value, codes, 1e-9):
        return failed(name, "that is the codes alone; each group's scale is stored too.")
    if _close(value, n * k + groups * 4, 1e-9) or _close(value, n * k, 1e-9):
        return failed(name, "an int4 code is half a byte: two codes share one byte.")
    if _close(value, codes + groups * 2, 1e-9):
        return failed(name, "the scales are float32 here: 4 bytes each.")
    if _close(value, codes + n * 4, 1e-9):
        return failed(name, "that is one scale per row; with groups there is one per group of 32 inputs.")
    if _close(value, 8 * want, 1e-9):
        return failed(name, "that is in bits; answer in bytes.")
    return failed(name)


# Exercise 3: the distillation loss by hand
def distill_inputs() -> dict:
    """Two texts, three labels: the student's and the teacher's logits (2, 3), the gold labels (2,), T and α."""
    return {"student_logits": torch.tensor([[1.0, 0.2, -0.5], [0.3, 0.9, 0.1]]),
            "teacher_logits": torch.tensor([[3.0, 1.5, -1.0], [-0.5, 2.5, 1.0]]),
            "labels": torch.tensor([0, 2]), "temperature": 2.0, "alpha": 0.7}


def _loss(t_soft: float | None = None, factor: bool = True, swap: bool = False, ce_at_t: bool = False,
          alpha: float | None = None, reduction: str = "batchmean") -> float:
    import torch.nn.functional as F

    d = distill_inputs()
    zs, zt, y, a = d["student_logits"], d["teacher_logits"], d["labels"], d["alpha"] if alpha is None else alpha
    t = d["temperature"] if t_soft is None else t_soft
    ls, lt = F.log_softmax(zs / t, -1), F.log_softmax(zt / t, -1)
    kl = (lt.exp() * (lt - ls)) if not swap else (ls.exp() * (ls - lt))
    kl = kl.sum() / (zs.shape[0] if reduction == "batchmean" else 1)
    soft = kl * (d["temperature"] ** 2 if factor else 1.0)
    hard = F.cross_entropy(zs / d["temperature"] if ce_at_t else zs, y)
    return float(a * soft + (1 - a) * hard)


def _reference_loss() -> float:
    from ..compress.distill import DistillConfig, distillation_loss

    d = distill_inputs()
    cfg = DistillConfig(temperature=d["temperature"], alpha=d["alpha"])
    return float(distillation_loss(d["student_logits"], d["teacher_logits"], d["labels"], cfg))


@checked("the distillation loss", hints=(
    "The loss mixes two terms: how far the student's softened distribution is from the teacher's softened one "
    "(a KL divergence), and the ordinary cross-entropy of the student's logits against the gold labels.",
    "Soften both models by dividing their logits by T before the softmax. The KL term takes the teacher's "
    "distribution as the target, is averaged over the texts, and is multiplied by T squared. Weight it by α "
    "and the label term by one minus α.",
    "The label term uses the student's logits as they are, without T. KL of the teacher from the student: sum "
    "over labels of the teacher's probability times the difference of the two log-probabilities.",
))
def check_distillation_loss(answer) -> Feedback:
    """answer: the distillation loss of distill_inputs() (batch mean), a float."""
    name = "the distillation loss"
    value = _number(answer)
    if value is None:
        return failed(name, "answer with one number, the loss.")
    want = _reference_loss()
    if _close(value, want):
        d = distill_inputs()
        return passed(name, f"{want:.4f}. Without the T² factor the soft term would count {d['temperature'] ** 2:g}× "
                            "less, and its gradient would shrink as T grows; with it, changing T changes what the "
                            "student learns from, not how hard it learns.")
    if _close(value, _loss(factor=False)):
        return failed(name, "the soft term is multiplied by T squared; you left the factor out.")
    if _close(value, _loss(swap=True)):
        return failed(name, "the KL divergence is the wrong way round: the teacher's distribution is the target, "
                            "so weight the log-ratio by the teacher's probabilities.")
    if _close(value, _loss(ce_at_t=True)):
        return failed(name, "the label term reads the student's logits as they are; only the soft term divides by T.")
    if _close(value, _loss(alpha=1 - distill_inputs()["alpha"])):
        return failed(name, "α weights the soft (teacher) term and one minus α the labels; you swapped them.")
    if _close(value, _loss(t_soft=1.0, factor=False)) or _close(value, _loss(t_soft=1.0)):
        return failed(name, "soften both distributions: divide both models' logits by T before the softmax.")
    if _close(value, _loss(reduction="sum")):
        return failed(name, "average the KL term over the texts instead of summing it.")
    if _close(value, _loss(alpha=1.0)) or _close(value, _loss(alpha=0.0)):
        return failed(name, "the loss is the mix of both terms, weighted by α and one minus α.")
    return failed(name)


# Exercise 4: the hybrid threshold
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)  # the edge answers where its top probability reaches t
TARGET = 0.9  # the accuracy the service must reach


def hybrid_inputs() -> dict[str, np.ndarray]:
    """An edge model's and a cloud model's probabilities (200, 2) on 200 reviews, and their gold labels (200,)."""
    rng = np.random.default_rng(11)
    n = 200
    gold = rng.integers(0, 2, n)
    sure = rng.beta(2.0, 1.2, n) * 0.5 + 0.5  # the edge model's top probability, 0.5 ... 1
    edge_right = rng.random(n) < sure ** 2  # surer, more often right
    edge_top = np.where(edge_right, gold, 1 - gold)
    edge = np.where(edge_top[:, None] == np.arange(2), sure[:, None], 1 - sure[:, None])
    cloud_right = rng.random(n) < 0.95
    cloud_p = rng.uniform(0.6, 1.0, n)
    cloud_top = np.where(cloud_right, gold, 1 - gold)
    cloud = np.where(cloud_top[:, None] == np.arange(2), cloud_p[:, None], 1 - cloud_p[:, None])
    return {"edge_probs": edge.round(4), "cloud_probs": cloud.round(4), "gold": gold}


def _curve() -> list[dict]:
    from ..compress.bench import hybrid_curve

    d = hybrid_inputs()
    return hybrid_curve(d["edge_probs"], d["cloud_probs"], d["gold"], THRESHOLDS, edge_ms=1.0, cloud_ms=10.0)


@checked("the hybrid threshold", hints=(
    "At a threshold t the edge model answers every review where its top probability is at least t, and the "
    "cloud model answers the rest. A higher t defers more reviews: more accurate, usually, and slower.",
    "For each threshold, count the share deferred and the accuracy of the mixed answers. Keep the thresholds "
    "whose accuracy reaches the target; of those, the one that defers fewest reviews.",
    "Deferrals only grow with the threshold, so the answer is the smallest threshold that reaches the target, "
    "even if a larger one is a little more accurate.",
))
def check_hybrid_threshold(answer) -> Feedback:
    """answer: the threshold from THRESHOLDS that reaches TARGET accuracy with the fewest deferrals, a float."""
    name = "the hybrid threshold"
    value = _number(answer)
    if value is None:
        return failed(name, "answer with one threshold, a number from THRESHOLDS.")
    rows = _curve()
    by = {r["threshold"]: r for r in rows}
    reaching = [r for r in rows if r["accuracy"] >= TARGET]
    want = min(reaching, key=lambda r: (r["deferred"], r["threshold"]))
    if _close(value, want["threshold"], 1e-9):
        return passed(name, f"t = {want['threshold']:g}: accuracy {want['accuracy']:.3f} with {want['deferred']:.0%} "
                            f"of the reviews sent to the cloud (the cloud alone: {by[THRESHOLDS[-1]]['accuracy']:.3f}, "
                            f"every review deferred). The rest are answered on the device, at the edge model's cost.")
    match = [t for t in by if _close(value, t, 1e-9)]
    if not match:
        return failed(name, f"answer with one of the thresholds {THRESHOLDS}.")
    r = by[match[0]]
    if r["accuracy"] < TARGET:
        return failed(name, f"at t = {r['threshold']:g} the accuracy is {r['accuracy']:.3f}, below the target "
                            f"{TARGET}; defer more.")
    best = max(rows, key=lambda x: (x["accuracy"], -x["deferred"]))
    if _close(value, best["threshold"], 1e-9):
        return failed(name, "that threshold has the best accuracy, but the target is only to reach "
                            f"{TARGET}; a smaller threshold gets there with fewer deferrals.")
    return failed(name, f"t = {r['threshold']:g} reaches the target but defers {r['deferred']:.0%} of the reviews; "
                        "a smaller threshold reaches it too.")
