"""``labkit build``: the whole foundation-model story, end to end, in one command.

data → tokenizer → masked-LM pretraining → fine-tuning for sentiment, topic, NER, QA and
EN→ZH translation → evaluation on TinyWorld's test splits (unseen entities) → one Hugging
Face-format folder per model, plus ``report.json`` and ``report.md``.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

from .data import load_task
from .env import best_device, environment_report
from .finetune import finetune
from .folders import save_model
from .pretrain import pretrain_mlm
from .scales import SCALES, Scale, resolve_scale
from .tokenization import train_tokenizer
from .training import seeded
from .transfer import plot_transfer, run_transfer, transfer_markdown
from .transformer import PreTrainingModel, count_parameters

__all__ = ["Scale", "SCALES", "build", "default_output_dir", "ensure_pretrained", "ensure_build"]


def _artifacts_root() -> Path:
    """The repository's artifacts/ when labkit runs from a checkout (an editable install, as make
    and Colab do), so a notebook in notebooks/ finds what `make demo` built; else ./artifacts."""
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file() and (repo / "notebooks").is_dir():
        return repo / "artifacts"
    return Path("artifacts")


def default_output_dir(scale: str) -> Path:
    """$LABKIT_ARTIFACTS/<scale>, else the checkout's artifacts/<scale> (ignored by git)."""
    root = os.environ.get("LABKIT_ARTIFACTS")
    return (Path(root) if root else _artifacts_root()) / scale


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"cannot write to {out} ({err.strerror}); choose another folder with --out") from None


def _card(title: str, pipeline_tag: str, body: str, metrics: dict, scale: Scale, params: int) -> str:
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    objectives = " and ".join(o.name.replace("_", " ") for o in scale.pretrain.objectives)
    return f"""---
license: mit
language: [en, zh]
library_name: transformers
pipeline_tag: {pipeline_tag}
tags: [foundation-model-lab, tinyworld]
---
# {title}

Trained by `labkit build --scale {scale.name}` in the Foundation Model Lab: a
{scale.model.n_layers}-layer, {scale.model.d_model}-wide BERT ({params:,} parameters) pretrained on TinyWorld's
unlabelled corpus ({objectives}), then fine-tuned as below.

{body}

## Evaluation (TinyWorld test split: people, products and organisations unseen in training)

| metric | value |
|---|---|
{rows}

## Limits
- TinyWorld is a small synthetic world written for teaching: the model knows its
  vocabulary and templates, not real-world language. Do not use it outside the lab.
- Tiny by design; numbers are for comparing methods inside the lab, not with published models.
"""


def build(scale: str | Scale = "cpu", out: str | Path | None = None, *, tasks: tuple[str, ...] | None = None,
          transfer: bool = True, progress: bool = True, log=print) -> dict:
    """Run the whole pipeline; return the report (also written to out/report.json and out/report.md).

    scale: a name in SCALES or a Scale (a variant made with dataclasses.replace).
    tasks: which fine-tuned models to make (default: all of the scale's tasks); the tokenizer
    and the pretrained model are always made. Each model's new weights and batch order come
    from its own training seed, so ``tasks=("topic",)`` gives the topic model of a full build.
    """
    sc = resolve_scale(scale)
    tasks = tuple(sc.tasks) if tasks is None else tuple(tasks)
    if unknown := [t for t in tasks if t not in sc.tasks]:
        raise ValueError(f"unknown tasks {unknown}; choose from {list(sc.tasks)}")
    out = Path(out) if out is not None else default_output_dir(sc.name)
    _check_writable(out)
    if not progress:
        sc = sc.quiet()
    times: dict[str, float] = {}
    report: dict = {"scale": sc.name, "seed": sc.pretrain.train.seed, "device": str(best_device()),
                    "environment": environment_report(), "models": {}}
    t0 = time.perf_counter()

    def stage(name: str):
        times[name] = time.perf_counter() - stage.start
        stage.start = time.perf_counter()
        log(f"[{sum(times.values()):6.1f}s] {name} done ({times[name]:.1f}s)")
    stage.start = t0

    needed = ("corpus", *tasks, *(sc.transfer.tasks if transfer else ()))
    data = {t: load_task(t, size=sc.data) for t in dict.fromkeys(needed)}
    stage("data")
    tokenizer = train_tokenizer(list(data["corpus"]["train"]["text"]), vocab_size=sc.vocab_size,
                                model_max_length=sc.model.max_position)
    tokenizer.save_pretrained(out / "tokenizer")
    report["tokenizer"] = {"vocab_size": len(tokenizer)}
    stage("tokenizer")

    cfg = replace(sc.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    with seeded(sc.pretrain.train.seed):
        mlm = PreTrainingModel(cfg)  # masked LM + next-sentence prediction heads, as BERT
    pre = pretrain_mlm(mlm, tokenizer, list(data["corpus"]["train"]["text"]),
                       list(data["corpus"]["validation"]["text"]), sc.pretrain)
    params = count_parameters(mlm.encoder)
    report["pretraining"] = {**pre.metrics, "steps": sc.pretrain.train.steps, "encoder_parameters": params,
                             "objectives": [o.name for o in sc.pretrain.objectives],
                             "loss_history": pre.history.loss[:: max(1, len(pre.history.loss) // 200)]}
    save_model(mlm, tokenizer, out / "fill-mask", card=_card(
        "TinyWorld mini-BERT (masked LM)", "fill-mask",
        sc.pretrain.describe() + " Saved as BertForPreTraining; `pipeline(\"fill-mask\")` opens it as BertForMaskedLM.",
        pre.metrics, sc, params))
    report["models"]["fill-mask"] = {"metrics": pre.metrics, "parameters": count_parameters(mlm)}
    stage("pretraining")

    for name in tasks:
        task, train_cfg = sc.tasks[name], sc.finetune[name]
        model = task.make_model(mlm, data[name], seed=train_cfg.seed)
        res = finetune(task, model, tokenizer, data[name], train_cfg)
        save_model(model, tokenizer, out / name, card=_card(task.title, task.pipeline_tag,
                                                            task.card(data[name], res.metrics, res.report),
                                                            res.metrics, sc, params),
                   **task.save_kwargs(tokenizer))
        report["models"][name] = {"metrics": res.metrics, "parameters": count_parameters(model),
                                  **({"report": res.report} if res.report else {})}
        stage(name)

    if transfer and sc.transfer.tasks:
        table = run_transfer(mlm, tokenizer, {t: data[t] for t in sc.transfer.tasks}, sc.transfer,
                             progress=progress, tasks=sc.tasks)
        report["transfer"] = table
        plot_transfer(table, out / "transfer.png")
        stage("transfer")

    report["seconds"] = {**times, "total": time.perf_counter() - t0}
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "report.md").write_text(report_markdown(report), encoding="utf-8")
    return report


def report_markdown(report: dict) -> str:
    """The report as a Markdown page."""
    env = report["environment"]
    lines = [f"# labkit build report (scale: {report['scale']})", "",
             f"Device: {report['device']} · seed {report['seed']} · Python {env['python']} · torch {env['torch']} · "
             f"transformers {env['transformers']} · tokenizers {env['tokenizers']} · datasets {env['datasets']} · "
             f"{platform.machine()}", "",
             "## Models (test splits with unseen entities)", "", "| model | parameters | metrics |", "|---|---|---|"]
    for name, m in report["models"].items():
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in m["metrics"].items())
        lines.append(f"| {name} | {m['parameters']:,} | {metrics} |")
    pre = report["pretraining"]
    lines += ["", f"Pretraining: {pre['steps']} steps, masked-token accuracy {pre['masked_accuracy']:.3f}, "
              f"perplexity {pre['perplexity']:.1f}"
              + (f", next-sentence accuracy {pre['next_sentence_accuracy']:.3f}" if "next_sentence_accuracy" in pre else "")
              + f" (validation). Tokenizer: {report['tokenizer']['vocab_size']} word pieces.", ""]
    if "transfer" in report:
        lines += ["## Transfer: pretrained vs random initialisation", "", transfer_markdown(report["transfer"]), ""]
    lines += ["## Time per stage (seconds)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in report["seconds"].items()]
    return "\n".join(lines) + "\n"


def _complete(out: Path, names: tuple[str, ...]) -> bool:
    return all((out / n / "model.safetensors").is_file() for n in names) and (out / "report.json").is_file()


def ensure_build(scale: str = "cpu", out: str | Path | None = None, *, progress: bool = True, log=print) -> Path:
    """The folder of a finished build at this scale, building it first if any model is missing."""
    out = Path(out) if out is not None else default_output_dir(scale)
    if not _complete(out, ("fill-mask", *resolve_scale(scale).tasks)):
        log(f"no complete {scale}-scale build in {out}: building it now (labkit build --scale {scale})")
        build(scale, out, progress=progress, log=log)
    return out


def ensure_pretrained(scale: str = "cpu", out: str | Path | None = None, *, progress: bool = True, log=print):
    """The pretrained mini-BERT (a labkit PreTrainingModel, which is a MaskedLM) and its tokenizer for this scale.

    Reuses ``<out>/fill-mask`` from an earlier build; otherwise runs only the data,
    tokenizer and pretraining stages of ``labkit build`` (a few minutes) and saves them.
    """
    from .folders import load_model

    out = Path(out) if out is not None else default_output_dir(scale)
    if not _complete(out, ("fill-mask",)):
        log(f"no pretrained {scale}-scale model in {out}: pretraining one now")
        build(scale, out, tasks=(), transfer=False, progress=progress, log=log)
    return load_model(out / "fill-mask")
