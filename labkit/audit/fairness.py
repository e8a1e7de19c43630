r"""Fairness (公平性), measured: the build's models scored per group, with bootstrap confidence intervals.

TinyWorld knows every person's gender and whether the name is English or Chinese (pinyin), so
each score can be split by the people a text is about:

* **NER**: entity F1 and recall per entity type (PER, ORG, LOC, DATE, PRODUCT), and for person
  names per gender and per name origin (an entity's group is its person's);
* **sentiment**: the reviews mention no people, so a *counterfactual probe* (反事实) puts one in:
  every test review is framed as written by a named person, once for each gender × origin cell,
  with the same text. A model that ignores names gives the same answer in all four; the
  **flip rate** counts how often it does not;
* **QA**: SQuAD F1 by the gender and origin of the person a question names.

For the sentiment classifier on the probe, with :math:`\hat y` the prediction, :math:`y` the gold
label and groups :math:`a, b`:

.. math::

    \text{DP gap} = P(\hat y = 1 \mid a) - P(\hat y = 1 \mid b), \qquad
    \text{EO gap} = \max\big(|\mathrm{TPR}_a - \mathrm{TPR}_b|,\ |\mathrm{FPR}_a - \mathrm{FPR}_b|\big)

(demographic parity, 人口统计均等; equalised odds, 均等几率). Every number comes with a percentile
bootstrap interval (:func:`bootstrap_ci`): the units (sentences, reviews, questions) are drawn
with replacement, every group's score and every gap is recomputed on the same draw, so a gap's
interval is paired wherever the groups share units (the probe). A gap is called **significant**
only when its interval excludes 0; for the equalised-odds gap, a maximum of absolute values that
is never below 0, the verdict reads the signed TPR and FPR differences instead.
"""
from __future__ import annotations

import json
import re
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import metrics as M
from ..data import build_world, load_task
from ..data.world import Person, World
from ..folders import load_model
from ..tasks import TASKS, answer_questions, predict_proba, predict_tags

__all__ = ["FairnessConfig", "ATTRIBUTES", "GROUPS", "name_origin", "person_groups", "bootstrap_ci",
           "parity_gaps", "counterfactual_probe", "name_pattern", "question_subject", "ner_group_counts", "entity_group_scores", "run_fairness",
           "fairness_markdown", "plot_fairness"]

ATTRIBUTES = ("gender", "origin")
GROUPS = {"gender": ("F", "M"), "origin": ("en", "zh")}  # the first minus the second is each gap's sign
CELLS = tuple((g, o) for g in GROUPS["gender"] for o in GROUPS["origin"])  # the probe's four versions


@dataclass(frozen=True, kw_only=True)
class FairnessConfig:
    """What is scored and how the intervals are drawn."""

    size: str | None = None  # TinyWorld preset of the data (None: the build's scale, from its report.json)
    world_seed: int = 0  # the seed the build's data and world were drawn with (load_task's default)
    n_resamples: int = 1000  # bootstrap draws
    confidence: float = 0.95  # of every interval
    frame: str = "{name} wrote: {text}"  # how the probe puts a person into a review
    n_test: int | None = None  # score only the first n test rows of each task (None: all)

    def __post_init__(self):
        if isinstance(self.n_resamples, bool) or not isinstance(self.n_resamples, int) or self.n_resamples < 10:
            raise ValueError(f"n_resamples must be an int >= 10, got {self.n_resamples!r}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence!r}")
        if self.frame.count("{name}") != 1 or self.frame.count("{text}") != 1:
            raise ValueError(f"frame needs exactly one {{name}} and one {{text}}, got {self.frame!r}")
        if self.n_test is not None and self.n_test < 1:
            raise ValueError(f"n_test must be positive or None, got {self.n_test!r}")


# ----------------------------------------------------------------------------- who is who
def name_origin(person: Person) -> str:
    """"zh" for a Chinese (pinyin) name, "en" for an English one: an English name's characters
    carry the transliteration dot (艾玛·史密斯), a Chinese name's (王伟) do not."""
    return "en" if "·" in person.name_zh else "zh"


def person_groups(world: World) -> dict[str, dict[str, str]]:
    """English name -> {"gender": "F"/"M", "origin": "en"/"zh"} for every person of ``world``."""
    return {p.name_en: {"gender": p.gender, "origin": name_origin(p)} for p in world.people}


# ----------------------------------------------------------------------------- the bootstrap
def bootstrap_ci(units: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], *, n_resamples: int = 1000,
                 confidence: float = 0.95, seed: int = 0) -> np.ndarray:
    """Percentile bootstrap of a vector of statistics.

    Args:
        units: (N, ...) one row per independent unit (a sentence, a review with all its versions).
        statistic: rows (N', ...) -> (S,) values; called on ``units`` and on each draw of N rows
            with replacement, so all S values of one draw share it (paired differences).

    Returns:
        (S, 3): the estimate on ``units``, then the lower and upper percentile of the draws
        (NaN draws, e.g. a group absent from a draw, are left out).
    """
    units = np.asarray(units)
    if units.ndim == 0 or len(units) < 2:
        raise ValueError(f"bootstrap needs at least 2 units, got an array of shape {units.shape}")
    if n_resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"need n_resamples >= 1 and confidence in (0, 1), got {n_resamples}, {confidence}")
    estimate = np.atleast_1d(np.asarray(statistic(units), dtype=float))  # (S,)
    rng = np.random.default_rng(seed)
    draws = np.empty((n_resamples, len(estimate)))  # (R, S)
    for r in range(n_resamples):
        draws[r] = statistic(units[rng.integers(0, len(units), len(units))])
    alpha = (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column gives NaN bounds
        low, high = np.nanpercentile(draws, [100 * alpha, 100 * (1 - alpha)], axis=0)  # (S,), (S,)
    return np.stack([estimate, low, high], 1)


# ----------------------------------------------------------------------------- parity
def _rate(mask: np.ndarray, values: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")


def parity_gaps(predictions: Sequence[int], labels: Sequence[int], groups: Sequence, *,
                compared: tuple = ("a", "b"), positive: int = 1) -> dict[str, float]:
    """Demographic-parity and equalised-odds gaps of a binary classifier between two groups.

    Args:
        predictions, labels: (N,) predicted and gold classes.
        groups: (N,) each row's group; rows of neither compared group are ignored.
        compared: (a, b); every gap is a's rate minus b's.

    Returns:
        positive rate, TPR and FPR of each group (keys like ``positive_rate_a``), the signed
        ``dp_gap``, ``tpr_gap`` and ``fpr_gap``, and ``eo_gap`` = max(|tpr_gap|, |fpr_gap|).
    """
    pred, gold, group = np.asarray(predictions), np.asarray(labels), np.asarray(groups)
    if not len(pred) == len(gold) == len(group):
        raise ValueError(f"predictions, labels and groups must have one length, got {len(pred)}, {len(gold)}, "
                         f"{len(group)}")
    if len(compared) != 2 or compared[0] == compared[1]:
        raise ValueError(f"compared must name two different groups, got {compared!r}")
    if missing := [g for g in compared if not (group == g).any()]:
        raise ValueError(f"groups {missing} have no rows; the groups present are {sorted(set(group.tolist()))}")
    hit, pos = pred == positive, gold == positive
    out: dict[str, float] = {}
    for name, g in zip(("a", "b"), compared):
        mine = group == g
        out[f"positive_rate_{name}"] = _rate(mine, hit)
        out[f"tpr_{name}"] = _rate(mine & pos, hit)
        out[f"fpr_{name}"] = _rate(mine & ~pos, hit)
    out["dp_gap"] = out["positive_rate_a"] - out["positive_rate_b"]
    out["tpr_gap"] = out["tpr_a"] - out["tpr_b"]
    out["fpr_gap"] = out["fpr_a"] - out["fpr_b"]
    out["eo_gap"] = max(abs(out["tpr_gap"]), abs(out["fpr_gap"]))
    return out


# ----------------------------------------------------------------------------- the counterfactual probe
def _pools(world: World, heldout: bool) -> dict[tuple[str, str], list[str]]:
    pools: dict[tuple[str, str], list[str]] = {cell: [] for cell in CELLS}
    for p in world.pool("person", heldout):
        pools[(p.gender, name_origin(p))].append(p.name_en)
    return pools


def counterfactual_probe(texts: Sequence[str], world: World, *, frame: str = FairnessConfig.frame, seed: int = 0,
                         heldout: bool = True) -> dict[tuple[str, str], list[str]]:
    """For each (gender, origin) cell, every text framed as written by a person of that cell.

    Names come from the world's held-out (``heldout``) people, drawn per text and cell from
    ``seed``; the texts are otherwise identical across the four cells.
    """
    if "{name}" not in frame or "{text}" not in frame:
        raise ValueError(f"frame needs {{name}} and {{text}}, got {frame!r}")
    pools = _pools(world, heldout)
    if empty := [cell for cell, names in pools.items() if not names]:
        raise ValueError(f"the world has no {'held-out' if heldout else 'training'} people in cells {empty}")
    rng = np.random.default_rng(seed)
    out: dict[tuple[str, str], list[str]] = {cell: [] for cell in CELLS}
    for text in texts:
        for cell in CELLS:
            name = pools[cell][int(rng.integers(len(pools[cell])))]
            out[cell].append(frame.format(name=name, text=text))
    return out


def _probe_statistic(n_cells: int) -> Callable[[np.ndarray], np.ndarray]:
    """units (N, C+1): C cells' predictions then the gold label -> per attribute, the _PROBE_FIELDS values."""
    cell_of = {cell: i for i, cell in enumerate(CELLS)}

    def statistic(units: np.ndarray) -> np.ndarray:
        pred, gold = units[:, :n_cells], units[:, n_cells]  # (N, C), (N,)
        values = []
        for attribute in ATTRIBUTES:
            index = ATTRIBUTES.index(attribute)
            cols = {g: [cell_of[c] for c in CELLS if c[index] == g] for g in GROUPS[attribute]}
            flat_pred = np.concatenate([pred[:, cols[g]].ravel() for g in GROUPS[attribute]])
            flat_gold = np.concatenate([np.repeat(gold, len(cols[g])) for g in GROUPS[attribute]])
            flat_group = np.concatenate([np.full(pred[:, cols[g]].size, g) for g in GROUPS[attribute]])
            gaps = parity_gaps(flat_pred, flat_gold, flat_group, compared=GROUPS[attribute])
            acc = [float((pred[:, cols[g]] == gold[:, None]).mean()) for g in GROUPS[attribute]]
            a, b = cols[GROUPS[attribute][0]], cols[GROUPS[attribute][1]]  # cells matched on the other attribute
            flips = float((pred[:, a] != pred[:, b]).mean())
            values += [*acc, gaps["positive_rate_a"], gaps["positive_rate_b"], acc[0] - acc[1], gaps["dp_gap"],
                       gaps["tpr_gap"], gaps["fpr_gap"], gaps["eo_gap"], flips]
        return np.array(values)

    return statistic


_PROBE_FIELDS = ("accuracy_a", "accuracy_b", "positive_rate_a", "positive_rate_b", "accuracy_gap", "dp_gap",
                 "tpr_gap", "fpr_gap", "eo_gap", "flip_rate")


# ----------------------------------------------------------------------------- NER per group
def _entity_keys(types: Sequence[str]) -> list[tuple[str, str]]:
    return [("type", t) for t in types] + [(a, g) for a in ATTRIBUTES for g in GROUPS[a]]


def ner_group_counts(words: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                     people: dict[str, dict[str, str]], types: Sequence[str]) -> np.ndarray:
    """Per sentence and group, (correct, predicted, gold) entity counts: (N, K, 3).

    The K groups are the entity ``types``, then gender F/M and origin en/zh. An entity (gold or
    predicted) belongs to a person's gender and origin when its words are a name in ``people``;
    it is correct when type and both boundaries match a gold entity (CoNLL, as
    :func:`labkit.metrics.entity_scores`).
    """
    if not len(words) == len(gold) == len(pred):
        raise ValueError(f"words, gold and pred must have one length, got {len(words)}, {len(gold)}, {len(pred)}")
    keys = _entity_keys(types)
    column = {k: i for i, k in enumerate(keys)}
    counts = np.zeros((len(words), len(keys), 3), dtype=np.int64)  # (N, K, 3)
    for i, (w, g, p) in enumerate(zip(words, gold, pred)):
        if not len(w) == len(g) == len(p):
            raise ValueError(f"sentence {i}: {len(w)} words, {len(g)} gold tags and {len(p)} predicted tags")
        gold_set, pred_set = set(M.extract_entities(g)), set(M.extract_entities(p))
        for slot, entities in ((1, pred_set), (2, gold_set), (0, gold_set & pred_set)):
            for type_, start, end in entities:
                groups = [("type", type_)]
                person = people.get(" ".join(w[start:end + 1]))
                if person is not None:
                    groups += [(a, person[a]) for a in ATTRIBUTES]
                for key in groups:
                    if key in column:
                        counts[i, column[key], slot] += 1
    return counts


def entity_group_scores(counts: np.ndarray) -> np.ndarray:
    """(…, K, 3) counts summed over units -> (K, 3) precision, recall, F1 per group (0/0 = 0)."""
    tp, n_pred, n_true = counts.reshape(-1, *counts.shape[-2:]).sum(0).T.astype(float)  # 3 x (K,)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_pred > 0, tp / n_pred, 0.0)
        recall = np.where(n_true > 0, tp / n_true, np.nan)  # a group with no gold entity has no recall
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = np.where(np.isnan(recall), np.nan, f1)
    return np.stack([precision, recall, f1], 1)


# ----------------------------------------------------------------------------- rows
def _group_row(task, metric, attribute, group, ci, n) -> dict:
    return {"task": task, "metric": metric, "attribute": attribute, "group": group, "value": float(ci[0]),
            "low": float(ci[1]), "high": float(ci[2]), "n": int(n)}


def _gap_row(task, metric, attribute, ci, *, paired: bool, verdict_cis=None) -> dict:
    a, b = GROUPS.get(attribute, ("", ""))
    cis = verdict_cis if verdict_cis is not None else [ci]
    significant = any(c[1] > 0 or c[2] < 0 for c in cis)  # some interval excludes 0
    return {"task": task, "metric": metric, "attribute": attribute, "compared": f"{a} − {b}", "gap": float(ci[0]),
            "low": float(ci[1]), "high": float(ci[2]), "paired": paired, "significant": bool(significant)}


def _ner(build_dir: Path, cfg: FairnessConfig, people, seed: int) -> tuple[list[dict], list[dict]]:
    model, tokenizer = load_model(build_dir / "ner")
    test = _test(load_task("ner", _size(build_dir, cfg), cfg.world_seed), cfg)
    names = test.features["ner_tags"].feature.names
    words = [list(w) for w in test["tokens"]]
    gold = [[names[t] for t in row] for row in test["ner_tags"]]
    pred = predict_tags(model, tokenizer, words, max_length=_task(build_dir, "ner").max_length)
    types = sorted({n[2:] for n in names if n != "O"})
    counts = ner_group_counts(words, gold, pred, people, types)  # (N, K, 3)
    keys = _entity_keys(types)
    gap_pairs = [(keys.index((a, GROUPS[a][0])), keys.index((a, GROUPS[a][1]))) for a in ATTRIBUTES]

    def statistic(units):
        s = entity_group_scores(units)  # (K, 3)
        gaps = [s[i, m] - s[j, m] for i, j in gap_pairs for m in (2, 1)]
        return np.concatenate([s[:, 2], s[:, 1], gaps])

    ci = bootstrap_ci(counts, statistic, n_resamples=cfg.n_resamples, confidence=cfg.confidence, seed=seed)
    support = counts.sum(0)[:, 2]
    groups, gaps = [], []
    for m_index, metric in enumerate(("entity_f1", "entity_recall")):
        for k, (attribute, group) in enumerate(keys):
            groups.append(_group_row("ner", metric, attribute, group, ci[m_index * len(keys) + k], support[k]))
    for a_index, attribute in enumerate(ATTRIBUTES):
        for m_index, metric in enumerate(("entity_f1", "entity_recall")):
            row = ci[2 * len(keys) + 2 * a_index + m_index]
            gaps.append(_gap_row("ner", metric, attribute, row, paired=False))
    return groups, gaps


def _sentiment(build_dir: Path, cfg: FairnessConfig, world: World, seed: int) -> tuple[list[dict], list[dict]]:
    model, tokenizer = load_model(build_dir / "sentiment")
    test = _test(load_task("sentiment", _size(build_dir, cfg), cfg.world_seed), cfg)
    probe = counterfactual_probe(list(test["text"]), world, frame=cfg.frame, seed=seed)
    max_length = _task(build_dir, "sentiment").max_length
    pred = np.stack([predict_proba(model, tokenizer, probe[c], max_length=max_length).argmax(-1) for c in CELLS],
                    1)  # (N, C)
    units = np.concatenate([pred, np.asarray(test["label"])[:, None]], 1)  # (N, C+1)
    ci = bootstrap_ci(units, _probe_statistic(len(CELLS)), n_resamples=cfg.n_resamples,
                      confidence=cfg.confidence, seed=seed)
    ci = ci.reshape(len(ATTRIBUTES), len(_PROBE_FIELDS), 3)
    groups, gaps = [], []
    n = len(test)
    for a_index, attribute in enumerate(ATTRIBUTES):
        c = dict(zip(_PROBE_FIELDS, ci[a_index]))
        a, b = GROUPS[attribute]
        for metric in ("accuracy", "positive_rate"):
            groups.append(_group_row("sentiment", metric, attribute, a, c[f"{metric}_a"], 2 * n))
            groups.append(_group_row("sentiment", metric, attribute, b, c[f"{metric}_b"], 2 * n))
        gaps.append(_gap_row("sentiment", "accuracy", attribute, c["accuracy_gap"], paired=True))
        gaps.append(_gap_row("sentiment", "demographic_parity", attribute, c["dp_gap"], paired=True))
        gaps.append(_gap_row("sentiment", "equalised_odds", attribute, c["eo_gap"], paired=True,
                             verdict_cis=[c["tpr_gap"], c["fpr_gap"]]))
        flip = c["flip_rate"]
        gaps.append({**_gap_row("sentiment", "flip_rate", attribute, flip, paired=True),
                     "significant": bool(flip[0] > 0)})  # a deterministic model's flip is a fact, not a sample
    return groups, gaps


def name_pattern(names) -> re.Pattern:
    """A regular expression matching any of ``names`` as whole words (longest first)."""
    return re.compile(r"\b(" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")\b")


def question_subject(question: str, pattern: re.Pattern) -> str | None:
    """The first name ``pattern`` (:func:`name_pattern`) finds in ``question``, or None."""
    match = pattern.search(question)
    return match.group(1) if match else None


def _qa(build_dir: Path, cfg: FairnessConfig, people, seed: int) -> tuple[list[dict], list[dict]]:
    model, tokenizer = load_model(build_dir / "qa")
    test = _test(load_task("qa", _size(build_dir, cfg), cfg.world_seed), cfg)
    task = _task(build_dir, "qa")
    answers = answer_questions(model, tokenizer, list(test["question"]), list(test["context"]),
                               max_length=task.max_length, stride=task.stride)
    f1 = np.array([M.squad_f1(a, gold["text"]) for a, gold in zip(answers, test["answers"])])
    pattern = name_pattern(people)
    subjects = [question_subject(q, pattern) for q in test["question"]]
    codes = np.array([[GROUPS[a].index(people[s][a]) if s else -1 for a in ATTRIBUTES] for s in subjects])
    units = np.concatenate([f1[:, None], codes], 1)  # (N, 1 + attributes)

    def statistic(rows):
        values = []
        for a_index in range(len(ATTRIBUTES)):
            means = [rows[rows[:, 1 + a_index] == g, 0].mean() if (rows[:, 1 + a_index] == g).any() else np.nan
                     for g in (0, 1)]
            values += [*means, means[0] - means[1]]
        return np.array(values)

    ci = bootstrap_ci(units, statistic, n_resamples=cfg.n_resamples, confidence=cfg.confidence, seed=seed)
    groups, gaps = [], []
    for a_index, attribute in enumerate(ATTRIBUTES):
        for g_index, group in enumerate(GROUPS[attribute]):
            n = int((codes[:, a_index] == g_index).sum())
            groups.append(_group_row("qa", "f1", attribute, group, ci[3 * a_index + g_index], n))
        gaps.append(_gap_row("qa", "f1", attribute, ci[3 * a_index + 2], paired=False))
    return groups, gaps


def _scale_name(build_dir: Path) -> str:
    return json.loads((build_dir / "report.json").read_text(encoding="utf-8"))["scale"]


def _size(build_dir: Path, cfg: FairnessConfig) -> str:
    """The data preset: the config's, else the build's scale's."""
    if cfg.size is not None:
        return cfg.size
    from ..scales import SCALES

    scale = _scale_name(build_dir)
    return SCALES[scale].data if scale in SCALES else scale


def _task(build_dir: Path, name: str):
    """The task as the build's scale set it up (its max_length), else labkit.tasks.TASKS's."""
    from ..scales import SCALES

    scale = SCALES.get(_scale_name(build_dir)) if (build_dir / "report.json").is_file() else None
    return scale.tasks[name] if scale is not None and name in scale.tasks else TASKS[name]


def _test(data, cfg: FairnessConfig):
    test = data["test"]
    return test if cfg.n_test is None else test.select(range(min(cfg.n_test, len(test))))


def run_fairness(build_dir: str | Path, cfg: FairnessConfig = FairnessConfig(), *, seed: int = 0,
                 progress: bool = False, log=None) -> dict:
    """Per-group scores and gaps of the build's ner, sentiment and qa models (JSON-able).

    ``seed`` draws the probe's names and the bootstrap; ``progress`` is accepted for the audit's common
    signature (scoring shows no bar); ``log(str)`` gets one line per task. Returns {"groups": rows of {task, metric,
    attribute, group, value, low, high, n}, "gaps": rows of {task, metric, attribute, compared, gap,
    low, high, paired, significant}, "seconds": per task, "config"}.
    """
    build_dir = Path(build_dir)
    if missing := [m for m in ("ner", "sentiment", "qa") if not (build_dir / m / "model.safetensors").is_file()]:
        raise ValueError(f"{build_dir} lacks the models {missing}; run `labkit build` first")
    if not isinstance(cfg, FairnessConfig):
        raise ValueError(f"cfg must be a FairnessConfig, got {type(cfg).__name__}")
    world = build_world(cfg.world_seed)
    people = person_groups(world)
    result: dict = {"groups": [], "gaps": [], "seconds": {}, "config": {**asdict(cfg), "seed": seed}}
    for task, run in (("ner", lambda: _ner(build_dir, cfg, people, seed)),
                      ("sentiment", lambda: _sentiment(build_dir, cfg, world, seed)),
                      ("qa", lambda: _qa(build_dir, cfg, people, seed))):
        start = time.perf_counter()
        groups, gaps = run()
        result["groups"] += groups
        result["gaps"] += gaps
        result["seconds"][task] = round(time.perf_counter() - start, 2)
        if log:
            log(f"fairness {task}: {len(groups)} group scores, {sum(g['significant'] for g in gaps)} of "
                f"{len(gaps)} gaps significant ({result['seconds'][task]:.1f}s)")
    return result


# ----------------------------------------------------------------------------- tables and figure
def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.3f}"  # NaN: no unit of that group


def fairness_markdown(result: dict) -> str:
    """Two tables: per-group scores with their intervals, then the gaps with the verdict."""
    level = int(round(100 * result.get("config", {}).get("confidence", 0.95)))
    out = [f"| task | metric | attribute | group | score [{level}% CI] | n |", "|---|---|---|---|---|---|"]
    for r in result["groups"]:
        out.append(f"| {r['task']} | {r['metric']} | {r['attribute']} | {r['group']} | {_fmt(r['value'])} "
                   f"[{_fmt(r['low'])}, {_fmt(r['high'])}] | {r['n']} |")
    out += ["", f"| task | gap | attribute | compared | gap [{level}% CI] | paired | significant |",
            "|---|---|---|---|---|---|---|"]
    for r in result["gaps"]:
        out.append(f"| {r['task']} | {r['metric']} | {r['attribute']} | {r['compared']} | {_fmt(r['gap'])} "
                   f"[{_fmt(r['low'])}, {_fmt(r['high'])}] | {'yes' if r['paired'] else 'no'} | "
                   f"{'**yes**' if r['significant'] else 'no'} |")
    return "\n".join(out)


def plot_fairness(rows: dict | list[dict], path: str | Path | None = None):
    """Per-group bars with interval whiskers, one panel per (task, metric, attribute)."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = rows["groups"] if isinstance(rows, dict) else rows
    if not rows:
        raise ValueError("no group rows to plot")
    panels = list(dict.fromkeys((r["task"], r["metric"], r["attribute"]) for r in rows))
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows), squeeze=False)
    for ax, (task, metric, attribute) in zip(axes.ravel(), panels):
        mine = [r for r in rows if (r["task"], r["metric"], r["attribute"]) == (task, metric, attribute)]
        values = np.array([r["value"] for r in mine], dtype=float)
        err = np.array([[r["value"] - r["low"] for r in mine], [r["high"] - r["value"] for r in mine]], dtype=float)
        ax.bar(range(len(mine)), np.nan_to_num(values), yerr=np.nan_to_num(err), capsize=4,
               color=[f"C{i}" for i in range(len(mine))], alpha=0.8)
        ax.set_xticks(range(len(mine)), [r["group"] for r in mine])
        ax.set_title(f"{task}: {metric} by {attribute}", fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
