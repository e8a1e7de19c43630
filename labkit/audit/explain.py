r"""Explainability (可解释性), measured: is an explanation of a classifier's prediction *faithful*?

An attribution gives each word piece of a text one score for the predicted label: how much that
piece pushed the model towards it. Four ways to get one, all on the same unit (word pieces;
``[CLS]`` and ``[SEP]`` are kept in place and never scored or removed):

* **integrated gradients** (Sundararajan et al., 2017) through captum's
  ``LayerIntegratedGradients`` on the token-embedding table. Walk from a *baseline* text (every
  word piece replaced by the baseline token, ``[MASK]`` by default) to the text, summing the
  gradient of the predicted label's probability :math:`f`; the attributions add up to the change
  of :math:`f` (*completeness*), and captum reports how far they miss (the convergence delta):

  .. math::
     \mathrm{IG}_i = (e_i - e'_i) \cdot \int_0^1 \nabla_{e_i} f\bigl(e' + \alpha (e - e')\bigr)\, d\alpha,
     \qquad \sum_i \mathrm{IG}_i \approx f(x) - f(x').

* **occlusion**: replace one word piece by the baseline token and measure how far :math:`f` falls,
  :math:`f(x) - f(x_{\setminus i})` (the dashboard's word importance, per word piece here).
* **attention**: the ``[CLS]`` row of the last layer's attention, averaged over heads, the weight
  the classifier's own summary position gives each piece. Popular; not built to be faithful.
* **random**: scores drawn at random, the floor every method must beat.

Faithfulness is measured by perturbing the text in the order an attribution gives
(Samek et al., 2017; Petsiuk et al., 2018). **Deletion**: replace the highest-scored pieces by the
baseline token, a fraction :math:`q` of the text's pieces at a time, and follow :math:`f`; the area
over that curve, :math:`\mathrm{AOPC} = \frac{1}{|Q|}\sum_{q \in Q} \bigl(f(x) - f(x^{(q)})\bigr)`, is
higher when the pieces ranked first really carried the prediction. **Insertion**: start from the
all-baseline text, put the highest-scored pieces back first; the area under that curve is higher
when they restore the prediction fastest. Both are averaged over test texts, with a bootstrap
interval, so a verdict can say whether one method's lead is larger than the noise.

    model, tok = load_model(build / "sentiment")
    attributions(model, tok, "The website is incredibly outstanding.", "integrated_gradients")
    result = run_explain(build, ExplainConfig(n_examples=40))
    print(explain_markdown(result["rows"]))

Shape letters: T word pieces of one text ([CLS] and [SEP] included), B texts in a batch, K labels,
C d_model, Q deletion fractions.
"""
from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..heads import SequenceClassifier
from ..tasks import TASKS, ClassificationTask

__all__ = ["METHODS", "BASELINES", "ExplainConfig", "Attribution", "encode", "class_probabilities",
           "integrated_gradients", "occlusion", "attention_scores", "random_scores", "explain_ids", "attributions",
           "perturbation_curves", "aopc", "insertion_auc", "explain_texts", "run_explain", "explain_markdown",
           "plot_faithfulness", "faithfulness_verdict"]

METHODS = ("integrated_gradients", "occlusion", "attention", "random")
BASELINES = ("mask", "pad")  # the token that stands for "no word here"
_NAMES = {"integrated_gradients": "integrated gradients", "occlusion": "occlusion", "attention": "attention ([CLS] row)",
          "random": "random"}
_CLASSIFIER_TASKS = tuple(k for k, v in TASKS.items() if isinstance(v, ClassificationTask))


def _check_fractions(fractions) -> tuple[float, ...]:
    try:
        q = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ValueError(f"fractions must be numbers from 0 to 1, got {fractions!r}") from None
    if len(q) < 2 or q[0] != 0.0 or q[-1] != 1.0 or any(b <= a for a, b in zip(q, q[1:])):
        raise ValueError(f"fractions must rise strictly from 0.0 to 1.0 (at least two values), got {fractions!r}")
    return q


@dataclass(frozen=True, kw_only=True)
class ExplainConfig:
    """Which classifiers, how many test texts, and how finely to integrate and perturb."""

    tasks: tuple[str, ...] = ("sentiment", "topic")  # the build's classifier folders
    n_examples: int = 200  # test texts per task (all of them if the split is smaller)
    n_steps: int = 200  # integrated gradients: points on the path (50 left |delta| ~0.13 on the cpu sentiment model)
    fractions: tuple[float, ...] = tuple(i / 10 for i in range(11))  # share of word pieces deleted/inserted per step
    baseline: str = "mask"  # the baseline token, "mask" ([MASK]) or "pad" ([PAD])
    seed: int = 0  # which test texts, the random attribution, the bootstrap
    max_length: int = 128  # word pieces per text, [CLS] and [SEP] included (the classifiers' own limit)
    n_resamples: int = 2000  # bootstrap resamples for the intervals
    confidence: float = 0.95  # of the bootstrap intervals
    size: str | None = None  # TinyWorld size preset of the test split; None: the build's scale (report.json)

    def __post_init__(self):
        if not self.tasks:
            raise ValueError("ExplainConfig needs at least one task")
        if unknown := [t for t in self.tasks if t not in _CLASSIFIER_TASKS]:
            raise ValueError(f"unknown task(s) {unknown}: explanations are measured on the classifiers "
                             f"{list(_CLASSIFIER_TASKS)}")
        for name in ("n_examples", "n_steps", "n_resamples", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.max_length < 3:
            raise ValueError(f"max_length={self.max_length} leaves no room for a word piece beside [CLS] and [SEP]")
        object.__setattr__(self, "fractions", _check_fractions(self.fractions))
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must lie strictly between 0 and 1, got {self.confidence}")


# ----------------------------------------------------------------------------- one text
@dataclass
class Attribution:
    """One method's scores for one text, for the label the model predicts."""

    scores: torch.Tensor  # (T,) one score per word piece; 0 at [CLS]/[SEP] except for attention
    target: int  # the predicted label's index
    probability: float  # the model's probability of that label on the whole text
    delta: float | None = None  # integrated gradients only: captum's convergence delta


@contextmanager
def _eval_mode(model):
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _check_model(model) -> None:
    if not isinstance(model, SequenceClassifier):
        raise ValueError(f"explanations need a labkit SequenceClassifier (a build's sentiment or topic folder), "
                         f"got {type(model).__name__}")


def encode(tokenizer, text: str, *, max_length: int = 128) -> torch.Tensor:
    """``[CLS] word pieces [SEP]`` of ``text``: (T,) ids, cut to ``max_length``."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
    if len(ids) <= 2:  # [CLS] [SEP] and nothing between
        raise ValueError(f"text {text!r} has no word pieces to explain")
    return torch.tensor(ids)


def _special(ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """(T,) True at special tokens ([CLS], [SEP], ...), which stay in place."""
    return torch.isin(ids, torch.tensor(tokenizer.all_special_ids))


def _baseline_id(tokenizer, baseline: str) -> int:
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    return tokenizer.mask_token_id if baseline == "mask" else tokenizer.pad_token_id


def class_probabilities(model, input_ids: torch.Tensor) -> torch.Tensor:
    """Label probabilities (B, K) of unpadded rows of equal length (B, T)."""
    logits = model(input_ids.to(next(model.parameters()).device)).logits  # (B, K)
    return torch.softmax(logits.float(), -1)


def integrated_gradients(model, ids: torch.Tensor, target: int, baseline_ids: torch.Tensor, *, n_steps: int = 200,
                         internal_batch_size: int | None = None) -> tuple[torch.Tensor, float]:
    """Integrated gradients of the ``target`` probability w.r.t. the token embeddings: (scores (T,), delta).

    captum's ``LayerIntegratedGradients`` on ``model.encoder.embeddings.token``, from the embeddings of
    ``baseline_ids`` (T,) to those of ``ids`` (T,); a piece's score is its embedding vector's attribution
    summed over C. Position and segment embeddings are the same on both ends, so they take no share.
    """
    from captum.attr import LayerIntegratedGradients

    device = next(model.parameters()).device
    lig = LayerIntegratedGradients(lambda x: class_probabilities(model, x), model.encoder.embeddings.token)
    with _eval_mode(model):
        attr, delta = lig.attribute(ids[None].to(device), baselines=baseline_ids[None].to(device), target=target,
                                    n_steps=n_steps, internal_batch_size=internal_batch_size,
                                    return_convergence_delta=True)  # (1, T, C), (1,)
    return attr.sum(-1)[0].detach().cpu(), float(delta.detach())  # (T,)


@torch.no_grad()
def occlusion(model, ids: torch.Tensor, target: int, baseline_ids: torch.Tensor) -> torch.Tensor:
    """How far the ``target`` probability falls when one word piece is replaced by its baseline: (T,).

    All T occluded copies go through the model as one batch; a position where ``baseline_ids``
    equals ``ids`` ([CLS], [SEP]) scores 0.
    """
    T = ids.shape[0]
    occluded = ids.repeat(T, 1)  # (T, T): row i is the text with piece i replaced
    idx = torch.arange(T)
    occluded[idx, idx] = baseline_ids
    with _eval_mode(model):
        probs = class_probabilities(model, torch.cat([ids[None], occluded]))[:, target].cpu()  # (1 + T,)
    return torch.where(baseline_ids == ids, 0.0, probs[0] - probs[1:])  # (T,)


@torch.no_grad()
def attention_scores(model, ids: torch.Tensor) -> torch.Tensor:
    """The [CLS] row of the last layer's attention, averaged over heads: (T,), summing to 1."""
    with _eval_mode(model):
        attn = model(ids[None].to(next(model.parameters()).device), output_attentions=True).attentions[-1]  # (1, nh, T, T)
    return attn[0, :, 0, :].mean(0).float().cpu()  # (nh, T) -> (T,)


def random_scores(ids: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Scores drawn uniformly from [0, 1): (T,), the floor any method must beat."""
    return torch.rand(ids.shape[0], generator=generator)


def explain_ids(model, ids: torch.Tensor, method: str, *, baseline_ids: torch.Tensor, n_steps: int = 200,
                seed: int = 0) -> Attribution:
    """One method's attribution of ``ids`` (T,) for the label the model predicts on it."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if ids.ndim != 1 or baseline_ids.shape != ids.shape:
        raise ValueError(f"ids must be (T,) and baseline_ids the same shape, got {tuple(ids.shape)} and "
                         f"{tuple(baseline_ids.shape)}")
    with torch.no_grad(), _eval_mode(model):
        probs = class_probabilities(model, ids[None])[0]  # (K,)
    target = int(probs.argmax())
    keep = baseline_ids != ids  # (T,) pieces that can be removed
    delta = None
    if method == "integrated_gradients":
        scores, delta = integrated_gradients(model, ids, target, baseline_ids, n_steps=n_steps)
    elif method == "occlusion":
        scores = occlusion(model, ids, target, baseline_ids)
    elif method == "attention":
        scores = attention_scores(model, ids)
    else:
        scores = torch.where(keep, random_scores(ids, torch.Generator().manual_seed(seed)), 0.0)
    return Attribution(scores, target, float(probs[target]), delta)


def attributions(model, tokenizer, text: str, method: str, *, baseline: str = "mask", n_steps: int = 200,
                 seed: int = 0, max_length: int = 128) -> list[tuple[str, float]]:
    """(word piece, score) for each piece of ``text`` ([CLS]/[SEP] left out), for the predicted label.

    A positive score supports the prediction (attention is never negative). For a dashboard:
    the predicted label is ``model.id2label[explain_ids(...).target]``.
    """
    _check_model(model)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if isinstance(text, str) and not text.strip():
        raise ValueError("text is empty: nothing to explain")
    ids = encode(tokenizer, text, max_length=max_length)
    special = _special(ids, tokenizer)
    baseline_ids = torch.where(special, ids, _baseline_id(tokenizer, baseline))  # (T,)
    a = explain_ids(model, ids, method, baseline_ids=baseline_ids, n_steps=n_steps, seed=seed)
    pieces = tokenizer.convert_ids_to_tokens(ids.tolist())
    return [(p, float(s)) for p, s, sp in zip(pieces, a.scores.tolist(), special.tolist()) if not sp]


# ----------------------------------------------------------------------------- faithfulness
def _order(scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Positions of the removable pieces, highest score first (ties: the earlier piece first)."""
    positions = keep.nonzero().squeeze(1)  # (n,)
    ranked = torch.sort(scores[positions], descending=True, stable=True).indices
    return positions[ranked]


@torch.no_grad()
def perturbation_curves(model, ids: torch.Tensor, scores: torch.Tensor, target: int, baseline_ids: torch.Tensor,
                        fractions: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The ``target`` probability as the highest-scored pieces are deleted, and as they are inserted.

    Returns (deletion (Q,), insertion (Q,)). At fraction q, the round(q n) highest-scored of the n
    removable pieces (where ``baseline_ids`` differs from ``ids``) are replaced by their baseline
    (deletion) or are the only ones not replaced (insertion). deletion[0] is the model's probability
    on the text; deletion at q = 1 and insertion at q = 0 are its probability on the all-baseline text.
    """
    fractions = _check_fractions(fractions)
    order = _order(scores, baseline_ids != ids)  # (n,)
    n = order.numel()
    rows = []
    for q in fractions:
        top = order[: int(math.floor(q * n + 0.5))]
        deleted, inserted = ids.clone(), baseline_ids.clone()
        deleted[top], inserted[top] = baseline_ids[top], ids[top]
        rows += [deleted, inserted]
    with _eval_mode(model):
        p = class_probabilities(model, torch.stack(rows))[:, target].cpu().numpy()  # (2Q,)
    return p[0::2], p[1::2]


def aopc(deletion: np.ndarray) -> float:
    """Area over the deletion curve: the mean over steps of p(text) - p(after the step) (higher = more faithful)."""
    deletion = np.asarray(deletion, dtype=float)
    return float(np.mean(deletion[0] - deletion))


def insertion_auc(fractions: Sequence[float], insertion: np.ndarray) -> float:
    """Area under the insertion curve over fractions 0..1, trapezoidal (higher = more faithful)."""
    q, y = np.asarray(fractions, dtype=float), np.asarray(insertion, dtype=float)
    return float(np.sum((q[1:] - q[:-1]) * (y[1:] + y[:-1]) / 2))


def explain_texts(model, tokenizer, texts: Sequence[str], cfg: ExplainConfig, *, methods: Sequence[str] = METHODS,
                  progress: bool = False) -> dict:
    """Every method's curves on every text: {method: {deletion (N, Q), insertion (N, Q), delta (N,) or None,
    seconds}} plus {"p_original": (N,), "p_baseline": (N,)} (numpy arrays)."""
    _check_model(model)
    if unknown := [m for m in methods if m not in METHODS]:
        raise ValueError(f"unknown method(s) {unknown}; choose from {METHODS}")
    if isinstance(texts, str) or not len(texts):
        raise ValueError("texts must be a non-empty list of strings")
    base = _baseline_id(tokenizer, cfg.baseline)
    out = {m: {"deletion": [], "insertion": [], "delta": [], "seconds": 0.0} for m in methods}
    p_original, p_baseline = [], []
    items = enumerate(texts)
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(items, total=len(texts), desc="explaining")
    for i, text in items:
        ids = encode(tokenizer, text, max_length=cfg.max_length)
        baseline_ids = torch.where(_special(ids, tokenizer), ids, base)  # (T,)
        for m in methods:
            t0 = time.perf_counter()
            a = explain_ids(model, ids, m, baseline_ids=baseline_ids, n_steps=cfg.n_steps, seed=cfg.seed * 1_000_003 + i)
            out[m]["seconds"] += time.perf_counter() - t0
            deletion, insertion = perturbation_curves(model, ids, a.scores, a.target, baseline_ids, cfg.fractions)
            out[m]["deletion"].append(deletion)
            out[m]["insertion"].append(insertion)
            out[m]["delta"].append(a.delta)
        p_original.append(deletion[0])
        p_baseline.append(deletion[-1])
    for m in methods:
        out[m]["deletion"], out[m]["insertion"] = np.stack(out[m]["deletion"]), np.stack(out[m]["insertion"])
        out[m]["delta"] = np.array(out[m]["delta"], dtype=float) if m == "integrated_gradients" else None
    return {**out, "p_original": np.array(p_original), "p_baseline": np.array(p_baseline)}


def _mean_ci(values: np.ndarray, *, seed: int, n_resamples: int, confidence: float) -> tuple[float, float, float, float]:
    """(mean, standard error, low, high) with a percentile bootstrap interval of the mean."""
    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=float)
    mean = float(v.mean())
    if v.size < 2 or np.all(v == v[0]):
        return mean, 0.0, mean, mean
    se = float(v.std(ddof=1) / math.sqrt(v.size))
    ci = bootstrap((v,), np.mean, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                   rng=np.random.default_rng(seed)).confidence_interval
    return mean, se, float(ci.low), float(ci.high)


def _rows_for(task: str, measured: dict, cfg: ExplainConfig, methods: Sequence[str]) -> tuple[list[dict], dict, dict]:
    rows, curves, per_example = [], {}, {}
    boot = {"seed": cfg.seed, "n_resamples": cfg.n_resamples, "confidence": cfg.confidence}
    for m in methods:
        d, ins = measured[m]["deletion"], measured[m]["insertion"]  # (N, Q)
        del_scores = np.array([aopc(c) for c in d])  # (N,)
        ins_scores = np.array([insertion_auc(cfg.fractions, c) for c in ins])  # (N,)
        dm, dse, dlo, dhi = _mean_ci(del_scores, **boot)
        im, ise, ilo, ihi = _mean_ci(ins_scores, **boot)
        delta = measured[m]["delta"]
        rows.append({"task": task, "method": m, "n": int(d.shape[0]), "aopc_deletion": dm, "deletion_se": dse,
                     "deletion_ci": [dlo, dhi], "auc_insertion": im, "insertion_se": ise, "insertion_ci": [ilo, ihi],
                     "convergence_delta": None if delta is None else float(np.mean(np.abs(delta))),
                     "seconds": float(measured[m]["seconds"])})
        curves[m] = {"deletion": d.mean(0).tolist(), "insertion": ins.mean(0).tolist()}
        per_example[m] = {"aopc_deletion": del_scores.tolist(), "auc_insertion": ins_scores.tolist()}
    return rows, curves, per_example


def _build_scale(build_dir: Path) -> str:
    report = build_dir / "report.json"
    if not report.is_file():
        raise ValueError(f"{build_dir} has no report.json to read the build's scale from; pass ExplainConfig(size=...)")
    return json.loads(report.read_text(encoding="utf-8"))["scale"]


def run_explain(build_dir: str | Path, cfg: ExplainConfig = ExplainConfig(), *, progress: bool = False,
                log=None) -> dict:
    """Faithfulness of every method on each task's classifier in ``build_dir``, on ``cfg.n_examples`` test texts.

    Returns a JSON-able dict: rows (one per task and method: AOPC of deletion and area under
    insertion, each with standard error and bootstrap interval; IG's mean |convergence delta|;
    seconds spent attributing), curves[task][method] (mean deletion and insertion curves over
    ``fractions``), per_example[task][method] (each text's two areas, for paired comparisons),
    reference[task] (mean probability of the predicted label on the text and on the all-baseline
    text), seconds[task] and the config.
    """
    from ..data import load_task
    from ..folders import load_model

    build_dir = Path(build_dir)
    if missing := [t for t in cfg.tasks if not (build_dir / t / "config.json").is_file()]:
        raise ValueError(f"{build_dir} has no classifier folder for {missing}; run `labkit build` first")
    size = cfg.size or _build_scale(build_dir)
    result = {"config": {**asdict(cfg), "size": size}, "fractions": list(cfg.fractions), "rows": [], "curves": {},
              "per_example": {}, "reference": {}, "seconds": {}}
    for task in cfg.tasks:
        t0 = time.perf_counter()
        model, tokenizer = load_model(build_dir / task)
        test = load_task(task, size)["test"]
        rng = np.random.default_rng(cfg.seed)
        picked = sorted(rng.choice(len(test), size=min(cfg.n_examples, len(test)), replace=False).tolist())
        texts = [test[i][TASKS[task].text_column] for i in picked]
        measured = explain_texts(model, tokenizer, texts, cfg, progress=progress)
        rows, curves, per_example = _rows_for(task, measured, cfg, METHODS)
        result["rows"] += rows
        result["curves"][task], result["per_example"][task] = curves, per_example
        result["reference"][task] = {"p_original": float(measured["p_original"].mean()),
                                     "p_baseline": float(measured["p_baseline"].mean())}
        result["seconds"][task] = time.perf_counter() - t0
        if log:
            for r in rows:
                log(f"{task:<9} {r['method']:<20} AOPC {r['aopc_deletion']:.3f} ± {r['deletion_se']:.3f}  "
                    f"insertion {r['auc_insertion']:.3f} ± {r['insertion_se']:.3f}  ({r['seconds']:.1f}s)")
    return result


# ----------------------------------------------------------------------------- reading the result
def explain_markdown(rows: list[dict]) -> str:
    """The table: per task and method, deletion AOPC and insertion area with their intervals, IG's delta, seconds."""
    if not rows:
        raise ValueError("no rows to tabulate")
    out = ["| task | method | deletion AOPC ↑ (interval) | insertion area ↑ (interval) | texts | IG mean abs. Δ | seconds |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        delta = "–" if r.get("convergence_delta") is None else f"{r['convergence_delta']:.1e}"
        out.append(f"| {r['task']} | {_NAMES.get(r['method'], r['method'])} | {r['aopc_deletion']:.3f} "
                   f"[{r['deletion_ci'][0]:.3f}, {r['deletion_ci'][1]:.3f}] | {r['auc_insertion']:.3f} "
                   f"[{r['insertion_ci'][0]:.3f}, {r['insertion_ci'][1]:.3f}] | {r['n']} | {delta} | {r['seconds']:.1f} |")
    return "\n".join(out)


def plot_faithfulness(result: dict, path: str | Path | None = None):
    """Mean deletion curves (top) and insertion curves (bottom), one line per method, one column per task."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    tasks, q = list(result["curves"]), result["fractions"]
    if not tasks:
        raise ValueError("the result has no curves to plot")
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.6 * len(tasks), 6.4), squeeze=False)
    styles = {"integrated_gradients": "o-", "occlusion": "s-", "attention": "^--", "random": "x:"}
    for col, task in enumerate(tasks):
        for row, kind in enumerate(("deletion", "insertion")):
            ax = axes[row, col]
            for method, curve in result["curves"][task].items():
                ax.plot(q, curve[kind], styles.get(method, ".-"), label=_NAMES.get(method, method))
            ax.set_xlabel(f"share of word pieces {'deleted' if kind == 'deletion' else 'inserted'}, most important first")
            ax.set_ylabel("p(predicted label)")
            ax.set_title(f"{task}: {kind}")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
        axes[0, col].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def faithfulness_verdict(result: dict, task: str, *, metric: str = "deletion") -> dict:
    """Which method is most faithful on ``task`` by ``metric`` ("deletion": AOPC, "insertion": area),
    and whether its lead over the runner-up is larger than the uncertainty.

    The lead is the mean of paired per-text differences, with a bootstrap interval at the result's
    confidence; the lead is *real* when that interval lies above 0. Returns {task, metric, best,
    second, scores (method -> mean), lead, lead_ci, real, beats_random, text}.
    """
    if metric not in ("deletion", "insertion"):
        raise ValueError(f"metric must be 'deletion' or 'insertion', got {metric!r}")
    if task not in result.get("per_example", {}):
        raise ValueError(f"the result has no task {task!r}; it has {list(result.get('per_example', {}))}")
    per = result["per_example"][task]
    if len(per) < 2:
        raise ValueError(f"a verdict compares at least two methods; {task!r} has {list(per)}")
    key = "aopc_deletion" if metric == "deletion" else "auc_insertion"
    c = result["config"]
    boot = {"seed": c["seed"], "n_resamples": c["n_resamples"], "confidence": c["confidence"]}
    scores = {m: float(np.mean(v[key])) for m, v in per.items()}
    best, second = sorted(scores, key=scores.get, reverse=True)[:2]

    def lead_over(other: str) -> tuple[float, float, float]:
        diff = np.asarray(per[best][key]) - np.asarray(per[other][key])  # (N,) paired: the same texts
        mean, _, lo, hi = _mean_ci(diff, **boot)
        return mean, lo, hi

    lead, lo, hi = lead_over(second)
    real = lo > 0
    beats_random = best != "random" and ("random" not in per or lead_over("random")[1] > 0)
    name = "deletion AOPC" if metric == "deletion" else "insertion area"
    text = (f"{task}, by {name}: {_NAMES.get(best, best)} is the most faithful ({scores[best]:.3f}), ahead of "
            f"{_NAMES.get(second, second)} ({scores[second]:.3f}) by {lead:+.3f}, "
            f"{100 * c['confidence']:.0f}% interval of the paired lead [{lo:+.3f}, {hi:+.3f}]: "
            + ("a lead larger than the uncertainty." if real else "within the uncertainty, so no clear winner."))
    return {"task": task, "metric": metric, "best": best, "second": second, "scores": scores, "lead": lead,
            "lead_ci": [lo, hi], "real": bool(real), "beats_random": bool(beats_random), "text": text}
