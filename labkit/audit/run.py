"""``labkit audit``: every audit experiment at one scale, into ``<build>/audit/`` (report.json, report.md, plots).

The bias and privacy experiments pretrain their own mini-GPTs on changed corpora (their sizes are the
scale's :class:`AuditConfig`); fairness, explainability and security judge the build's own models.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from . import AUDITS, check_audits
from ..data import load_task
from ..paths import default_output_dir, require_build
from ..gpt import GPTConfig
from ..tokenization import load_tokenizer
from ..training import TrainConfig
from .explain import ExplainConfig, explain_markdown, faithfulness_verdict, plot_faithfulness, run_explain
from .injection import InjectionConfig, injection_markdown, plot_injection, run_injection
from .fairness import FairnessConfig, fairness_markdown, plot_fairness, run_fairness
from .bias import BiasConfig, augment_counterfactual, occupation_guesses, people_corpus, stereotype_pairs, stereotype_score
from .privacy import DPConfig, canary_report, deduplicate, dp_train_gpt, make_canaries, plant
from .security import (SecurityConfig, plot_poisoning, plot_typos, poisoning_markdown, run_poisoning, run_typos,
                       typos_markdown)
from .runs import LMRecipe, perplexity_on, train_gpt, train_mlm

__all__ = ["AuditConfig", "AUDITS", "audit_config", "run_bias", "run_privacy", "run_audit", "ensure_audit", "audit_markdown", "summary",
           "plot_bias", "plot_privacy"]



@dataclass(frozen=True, kw_only=True)
class AuditConfig:
    """Sizes of one scale's audit."""

    bias: BiasConfig = field(default_factory=BiasConfig)
    bias_tokens: int = 300_000  # tokens of documents about people per skew (labkit.audit.bias.people_corpus)
    bias_recipe: LMRecipe = field(default_factory=LMRecipe)  # every bias mini-GPT, trained from scratch
    privacy_data: str = "ci"  # TinyWorld size preset of the corpus the canaries go into
    privacy_recipe: LMRecipe = field(default_factory=LMRecipe)
    canary_counts: tuple[int, ...] = (0, 1, 4, 16, 64)
    canary_digits: int = 4
    dedup_min_words: int = 8
    dp: DPConfig = field(default_factory=DPConfig)
    fairness: FairnessConfig = field(default_factory=FairnessConfig)  # judges the build's own models
    explain: ExplainConfig = field(default_factory=ExplainConfig)  # the build's sentiment and topic classifiers
    security: SecurityConfig = field(default_factory=SecurityConfig)  # fine-tunes the build's masked LM
    injection: InjectionConfig = field(default_factory=InjectionConfig)  # the build's assistant, where it has one


def _recipe(steps: int, batch_size: int = 32, gpt: GPTConfig | None = None) -> LMRecipe:
    return LMRecipe(gpt=gpt or LMRecipe().gpt,
                    train=TrainConfig(steps=steps, batch_size=batch_size, lr=3e-3, eval_every=steps, progress=False))


# ci: a 32-wide, one-layer GPT for a few dozen steps runs every line of the audit in about a minute; it is too
# small and too short for the knobs to show (the cpu scale shows them)
_TINY = GPTConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_position=128, dropout=0.0)
_CONFIGS = {
    "ci": AuditConfig(bias=BiasConfig(skews=(0.0, 1.0), cda_skews=(1.0,)), bias_tokens=20_000,
                      bias_recipe=_recipe(30, 16, _TINY), privacy_recipe=_recipe(30, 16, _TINY),
                      explain=ExplainConfig(n_examples=40, n_steps=50),
                      security=SecurityConfig(poison_rates=(0.0, 0.1), typo_rates=(0.0, 0.2), n_test=200),
                      injection=InjectionConfig(n=40)),
    "cpu": AuditConfig(bias_recipe=_recipe(600), privacy_recipe=_recipe(600),
                       security=SecurityConfig(seeds=(0, 1, 2)), injection=InjectionConfig(n=200)),
}
_CONFIGS["gpu"] = _CONFIGS["cpu"]


def audit_config(scale: str) -> AuditConfig:
    if scale not in _CONFIGS:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(_CONFIGS)}")
    return _CONFIGS[scale]


def run_bias(tokenizer, cfg: AuditConfig, *, progress: bool = False, log: Callable = print) -> dict:
    """The skew sweep: one mini-GPT per skew (and per skew with counterfactual augmentation), each pretrained
    on documents about people drawn at that skew, scored on held-out templates, used downstream as a
    zero-shot occupation classifier (:func:`~labkit.audit.bias.occupation_guesses`), and scored on one
    validation set (the unskewed documents')."""
    pairs, neutral = stereotype_pairs(cfg.bias.langs), stereotype_pairs(cfg.bias.langs, neutral=True)
    val = people_corpus(0.0, cfg.bias_tokens // 20, seed=1)
    rows, seconds = [], {}
    for skew in cfg.bias.skews:
        train = people_corpus(skew, cfg.bias_tokens)
        for cda in (False, True) if skew in cfg.bias.cda_skews else (False,):
            start = time.perf_counter()
            model, _ = train_gpt(tokenizer, augment_counterfactual(train) if cda else train, val, cfg.bias_recipe,
                                 progress=progress)
            name = f"skew {skew:g}" + (" + CDA" if cda else "")
            score = stereotype_score(model, tokenizer, pairs)
            guesses = occupation_guesses(model, tokenizer, cfg.bias.langs)
            rows.append({"model": name, "skew": skew, "cda": cda, **{k: v for k, v in score.items() if k != "n"},
                         "n_pairs": score["n"],
                         **{f"downstream_{k}": v for k, v in guesses.items() if k != "n_templates"},
                         "neutral_she_preference": stereotype_score(model, tokenizer, neutral)["preference"],
                         "perplexity": perplexity_on(model, tokenizer, val, cfg.bias_recipe.block_length)})
            seconds[f"bias: {name}"] = round(time.perf_counter() - start, 1)
            log(f"bias: {name}: stereotyped sentence preferred {rows[-1]['preference']:.3f}, downstream gap "
                f"{rows[-1]['downstream_gap']:+.3f} ({seconds[f'bias: {name}']:.0f}s)")
    return {"bias": rows, "seconds": seconds}


def run_privacy(tokenizer, cfg: AuditConfig, *, progress: bool = False, log: Callable = print) -> dict:
    """The canary experiment: the corpus with canaries inserted 0…64 times, read by a mini-GPT trained as
    usual, one trained on the deduplicated corpus and one trained by DP-SGD."""
    canaries = make_canaries(cfg.canary_counts, n_digits=cfg.canary_digits)
    corpus = load_task("corpus", cfg.privacy_data)
    val = list(corpus["validation"]["text"])
    train = plant(list(corpus["train"]["text"]), canaries)
    deduped, removed = deduplicate(train, min_words=cfg.dedup_min_words)
    rows, seconds = [], {}
    for name in ("plain", "deduplicated", "DP-SGD", "masked LM"):
        start = time.perf_counter()
        extra: dict = {}
        if name == "masked LM":  # exposure only: all digits masked at once (no left-to-right extraction)
            model, _ = train_mlm(tokenizer, train, val, cfg.privacy_recipe, progress=progress)
            rows += [{"model": name, **r, "perplexity": None}
                     for r in canary_report(model, tokenizer, canaries, masked=True)]
            seconds[f"privacy: {name}"] = round(time.perf_counter() - start, 1)
            log(f"privacy: {name}: exposure by times inserted " + ", ".join(
                f"{r['count']}: {r['exposure']:.1f}" for r in rows if r["model"] == name))
            continue
        if name == "DP-SGD":
            model, metrics = dp_train_gpt(tokenizer, train, val, cfg.privacy_recipe, cfg.dp, progress=progress)
            extra = {k: metrics[k] for k in ("epsilon", "delta", "noise_multiplier")}
        else:
            model, _ = train_gpt(tokenizer, deduped if name == "deduplicated" else train, val, cfg.privacy_recipe,
                                 progress=progress)
            if name == "deduplicated":
                extra = {"removed_share": removed}
        ppl = perplexity_on(model, tokenizer, val, cfg.privacy_recipe.block_length)
        rows += [{"model": name, **r, "perplexity": ppl, **extra} for r in canary_report(model, tokenizer, canaries)]
        seconds[f"privacy: {name}"] = round(time.perf_counter() - start, 1)
        log(f"privacy: {name}: exposure by times inserted " + ", ".join(
            f"{r['count']}: {r['exposure']:.1f}" for r in rows if r["model"] == name)
            + f" ({seconds[f'privacy: {name}']:.0f}s)")
    return {"privacy": rows, "canaries": [asdict(c) for c in canaries], "seconds": seconds}


def audit_markdown(report: dict) -> str:
    """The audit's tables as markdown."""
    lines = ["# Audit", ""]
    if report.get("bias"):
        lines += ["## Bias: stereotype preference on held-out templates (0.5 = none)", "",
                  "| model | preference | en | zh | log-ratio (nats) | neutral jobs: she preferred | perplexity |",
                  "|---|---|---|---|---|---|---|"]
        for r in report["bias"]:
            lines.append(f"| {r['model']} | {r['preference']:.3f} | {r.get('preference_en', float('nan')):.3f} | "
                         f"{r.get('preference_zh', float('nan')):.3f} | {r['log_ratio']:+.3f} | "
                         f"{r['neutral_she_preference']:.3f} | {r['perplexity']:.2f} |")
        lines.append("")
        if "downstream_gap" in report["bias"][0]:
            lines += ["### Downstream: the LM as a zero-shot occupation classifier", "",
                      "P(female-stereotyped occupation | she) − P(… | he), 0 = the pronoun tells nothing", "",
                      "| model | gap | en | zh | top-guess gap |", "|---|---|---|---|---|"]
            for r in report["bias"]:
                lines.append(f"| {r['model']} | {r['downstream_gap']:+.3f} | {r.get('downstream_gap_en', float('nan')):+.3f} | "
                             f"{r.get('downstream_gap_zh', float('nan')):+.3f} | {r['downstream_argmax_gap']:+.3f} |")
            lines.append("")
    if report.get("privacy"):
        lines += ["## Privacy: canary exposure (bits) by times inserted", ""]
        counts = sorted({r["count"] for r in report["privacy"]})
        lines += ["| model | " + " | ".join(f"k={k}" for k in counts) + " | extracted | perplexity | ε |",
                  "|---|" + "---|" * (len(counts) + 3)]
        for name in dict.fromkeys(r["model"] for r in report["privacy"]):
            rows = [r for r in report["privacy"] if r["model"] == name]
            by = {r["count"]: r for r in rows}
            eps = rows[0].get("epsilon")
            extracted = f"{sum(r['extracted'] for r in rows)}/{len(rows)}" if "extracted" in rows[0] else "–"
            ppl = f"{rows[0]['perplexity']:.2f}" if rows[0].get("perplexity") is not None else "–"
            lines.append(f"| {name} | " + " | ".join(f"{by[k]['exposure']:.1f}" for k in counts)
                         + f" | {extracted} | {ppl} | " + (f"{eps:.1f}" if eps is not None else "∞") + " |")
        lines.append("")
    for name, title, table in (("fairness", "Fairness: per-group scores and gaps, 95% bootstrap intervals",
                                 fairness_markdown),
                                ("explain", "Explainability: faithfulness by deletion and insertion",
                                 lambda e: explain_markdown(e["rows"]) + "\n\n" + "\n".join(
                                     f"- {k}: {v['text']}" for k, v in e.get("verdicts", {}).items())),
                                ("poisoning", "Security: a backdoor trigger in p of the fine-tuning data", poisoning_markdown),
                                ("typos", "Security: accuracy under typos", typos_markdown),
                                ("injection", "Security: prompt injection against the assistant", injection_markdown)):
        if report.get(name):
            lines += [f"## {title}", "", table(report[name]), ""]
    return "\n".join(lines)


def run_audit(scale: str = "ci", build_dir: str | Path | None = None, out: str | Path | None = None, *,
              audits: tuple[str, ...] = AUDITS, progress: bool = False, log: Callable = print) -> dict:
    """Run ``audits`` at ``scale`` against the build in ``build_dir`` (default: the scale's build); write
    report.json and report.md to ``out`` (default ``<build>/audit``)."""
    cfg = audit_config(scale)
    audits = check_audits(audits)
    build_dir = Path(build_dir) if build_dir is not None else default_output_dir(scale)
    require_build(build_dir, scale, "audit")
    out = Path(out) if out is not None else build_dir / "audit"
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(build_dir / "tokenizer")
    start = time.perf_counter()
    previous = out / "report.json"
    report: dict = json.loads(previous.read_text()) if previous.is_file() else {}
    if report.get("scale") not in (None, scale):
        report = {}  # another scale's audit: start afresh
    report.update(scale=scale, config=json.loads(json.dumps(asdict(cfg), default=str)))
    seconds = report.setdefault("seconds", {})
    for name, run in (("bias", run_bias), ("privacy", run_privacy)):
        if name in audits:
            part = run(tokenizer, cfg, progress=progress, log=log)
            seconds.update(part.pop("seconds"))
            report.update(part)
    if "fairness" in audits:
        part = run_fairness(build_dir, cfg.fairness, log=log)
        seconds.update({f"fairness: {k}": v for k, v in part.pop("seconds").items()})
        report["fairness"] = part
    if "explain" in audits:
        part = run_explain(build_dir, cfg.explain, progress=progress, log=log)
        part["verdicts"] = {f"{task} {metric}": faithfulness_verdict(part, task, metric=metric)
                            for task in cfg.explain.tasks for metric in ("deletion", "insertion")}
        seconds.update({f"explain: {k}": v for k, v in part["seconds"].items()})
        report["explain"] = part
    for name, run in (("poisoning", run_poisoning), ("typos", run_typos)):
        if name in audits:
            t0 = time.perf_counter()
            report[name] = run(build_dir, cfg.security, progress=progress, log=log)
            seconds[name] = round(time.perf_counter() - t0, 1)
    if "injection" in audits:
        if (build_dir / "assistant").is_dir():
            t0 = time.perf_counter()
            report["injection"] = run_injection(build_dir, cfg.injection, progress=progress, log=log)
            seconds["injection"] = round(time.perf_counter() - t0, 1)
        else:
            log(f"injection: skipped, the build has no assistant (labkit build --scale {scale} --assistant-only)")
    seconds["last run"] = round(time.perf_counter() - start, 1)
    report["summary"] = summary(report)
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    (out / "report.md").write_text(audit_markdown(report))
    if report.get("bias"):
        plot_bias(report["bias"], out / "bias.png")
    if report.get("privacy"):
        plot_privacy(report["privacy"], out / "privacy.png")
    if report.get("explain"):
        plot_faithfulness(report["explain"], out / "explain.png")
    if report.get("injection"):
        plot_injection(report["injection"], out / "injection.png")
    for name, plot in (("fairness", plot_fairness), ("poisoning", plot_poisoning), ("typos", plot_typos)):
        if report.get(name):
            plot(report[name], out / f"{name}.png")
    report["out"] = str(out)
    report["seconds"]["total"] = seconds["last run"]
    return report


def summary(report: dict) -> dict:
    """The headline figures of a report, for the CLI's final JSON line."""
    out: dict = {"scale": report.get("scale")}
    if report.get("bias"):
        out["stereotype_preference"] = {r["model"]: round(r["preference"], 3) for r in report["bias"]}
        if "downstream_gap" in report["bias"][0]:
            out["downstream_gap"] = {r["model"]: round(r["downstream_gap"], 3) for r in report["bias"]}
    if report.get("privacy"):
        top = max(r["count"] for r in report["privacy"])
        out[f"exposure_at_{top}"] = {r["model"]: round(r["exposure"], 2) for r in report["privacy"] if r["count"] == top}
        out["extracted"] = {m: sum(r["extracted"] for r in report["privacy"] if r["model"] == m)
                            for m in dict.fromkeys(r["model"] for r in report["privacy"] if "extracted" in r)}
        eps = [r["epsilon"] for r in report["privacy"] if "epsilon" in r]
        if eps:
            out["dp_epsilon"] = round(eps[0], 2)
    if report.get("fairness"):
        gaps = report["fairness"]["gaps"]
        out["fairness_significant_gaps"] = [f"{g['task']} {g['metric']} {g['compared']}" for g in gaps if g["significant"]]
        out["fairness_gaps_tested"] = len(gaps)
    if report.get("explain"):
        out["most_faithful"] = {k: v["best"] + ("" if v["real"] else " (within the uncertainty)")
                                for k, v in report["explain"].get("verdicts", {}).items()}
    if report.get("poisoning"):
        top = max(r["rate"] for r in report["poisoning"])
        at = [r for r in report["poisoning"] if r["rate"] == top]
        floor = [r for r in report["poisoning"] if r["rate"] == 0]
        out["poisoning"] = {"rate": top, "attack_success": round(sum(r["attack_success"] for r in at) / len(at), 3),
                            "attack_success_at_0": round(sum(r["attack_success"] for r in floor) / max(len(floor), 1), 3),
                            "clean_accuracy": round(sum(r["clean_accuracy"] for r in at) / len(at), 3)}
    if report.get("typos"):
        top = max(r["rate"] for r in report["typos"])
        out["typos"] = {"rate": top, **{
            f"{task} accuracy": round(sum(r["accuracy"] for r in mine) / len(mine), 3)
            for task in dict.fromkeys(r["task"] for r in report["typos"])
            for mine in [[r for r in report["typos"] if r["task"] == task and r["rate"] == top]]}}
    if report.get("injection"):
        out["injection_success"] = {f"{r['attack']} / {r['defence']}": round(r["success_rate"], 3)
                                    for r in report["injection"]["rows"]}
    return out


def plot_bias(rows: list[dict], path: str | Path | None = None):
    """Stereotype preference against the corpus's skew, and (where measured) the downstream classifier's
    gap beside it; counterfactual augmentation as separate markers."""
    import matplotlib.pyplot as plt

    downstream = "downstream_gap" in rows[0]
    fig, axes = plt.subplots(1, 2 if downstream else 1, figsize=(10, 3.6) if downstream else (5.5, 3.6), squeeze=False)
    plain = [r for r in rows if not r["cda"]]
    cda = [r for r in rows if r["cda"]]
    panels = [("preference", 0.5, "stereotyped sentence preferred", (0, 1.02), "Bias follows the data")]
    if downstream:
        panels.append(("downstream_gap", 0.0, "P(female-stereotyped job | she) − (… | he)", (-0.1, 1.0),
                       "Downstream: a zero-shot occupation classifier"))
    for ax, (key, fair, ylabel, ylim, title) in zip(axes[0], panels):
        ax.plot([r["skew"] for r in plain], [r[key] for r in plain], "o-", label="pretrained as is")
        if cda:
            ax.plot([r["skew"] for r in cda], [r[key] for r in cda], "s", ms=9, label="with gender-swapped copies (CDA)")
        ax.axhline(fair, color="grey", ls=":", lw=1, label="no bias")
        ax.set(xlabel="gender-occupation skew of the corpus", ylabel=ylabel, ylim=ylim, title=title)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_privacy(rows: list[dict], path: str | Path | None = None):
    """Exposure of a canary against the times it was inserted, one line per training recipe."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = sorted((r for r in rows if r["model"] == name), key=lambda r: r["count"])
        eps = mine[0].get("epsilon")
        label = name + (f" (ε = {eps:.1f})" if eps is not None else "")
        ax.plot([max(r["count"], 0.5) for r in mine], [r["exposure"] for r in mine], "o-", label=label)
    ax.axhline(rows[0]["max_exposure"], color="grey", ls=":", lw=1, label="memorised (rank 1)")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="times the canary was inserted (0 shown at 0.5)", ylabel="exposure (bits)",
           title="Memorisation grows with repetition")
    ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


# What an audit's part of the report must hold to count as done: reports written before an experiment
# joined its audit (the downstream classifier, the masked LM's exposure) lack it, and that audit runs again.
_REQUIRED = {"bias": lambda rows: all("downstream_gap" in r for r in rows),
             "privacy": lambda rows: any(r["model"] == "masked LM" for r in rows)}


def _complete(report: dict, audit: str) -> bool:
    part = report.get(audit)
    return bool(part) and _REQUIRED.get(audit, bool)(part)


def ensure_audit(scale: str = "cpu", build_dir: str | Path | None = None, *, audits: tuple[str, ...] = AUDITS,
                 progress: bool = True, log: Callable = print) -> dict:
    """The audit report of the scale's build (``<build>/audit/report.json``), building the models first if
    they are missing and running the audits the report lacks (about a minute at ci, under an hour at cpu on 2 cores)."""
    from ..build import ensure_build

    build_dir = ensure_build(scale, build_dir if build_dir is not None else default_output_dir(scale),
                             progress=progress, log=log)
    path = build_dir / "audit" / "report.json"
    report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    missing = tuple(a for a in audits if not _complete(report, a)) if report.get("scale") == scale else tuple(audits)
    if missing:
        log(f"the {scale}-scale build in {build_dir} has no audit of {', '.join(missing)}: running it now "
            f"(labkit audit --scale {scale} --only {','.join(missing)})")
        report = run_audit(scale, build_dir, audits=missing, progress=progress, log=log)
    return report
