"""``labkit build``: the whole foundation-model story, end to end, in one command.

data → tokenizer → masked-LM pretraining → next-token pretraining of the mini-GPT → fine-tuning for sentiment, topic, NER, QA and
EN→ZH translation → evaluation on TinyWorld's test splits (unseen entities) → one Hugging
Face-format folder per model, plus ``report.json`` and ``report.md``.
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import replace
from pathlib import Path

from .data import load_task
from .env import best_device, environment_report
from .finetune import finetune
from .folders import save_model
from .paths import check_writable, default_output_dir, require_build
from .pretrain import pretrain_mlm
from .scales import SCALES, Scale, resolve_scale
from .tokenization import train_tokenizer
from .training import seeded
from .transfer import plot_transfer, run_transfer, transfer_markdown
from .transformer import PreTrainingModel, count_parameters

__all__ = ["Scale", "SCALES", "build", "build_real", "build_gpt", "build_assistant", "default_output_dir",
           "ensure_pretrained", "ensure_build", "gpt_samples", "REAL_PREFIX", "ASSISTANT"]

REAL_PREFIX = "real-"  # the real model's classifiers sit beside the mini ones: real-sentiment, real-topic
ASSISTANT = "assistant"  # the instruction-tuned mini-GPT's folder (`labkit build --assistant`)


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
          transfer: bool = True, real: bool = False, gpt: bool = True, assistant: bool = False, progress: bool = True,
          log=print) -> dict:
    """Run the whole pipeline; return the report (also written to out/report.json and out/report.md).

    scale: a name in SCALES or a Scale (a variant made with dataclasses.replace).
    tasks: which fine-tuned models to make (default: all of the scale's tasks); the tokenizer
    and the pretrained model are always made.
    gpt: also pretrain the mini-GPT by next-token prediction, saved as ``out/text-generation``.
    assistant: then instruction-tune the mini-GPT into a TinyWorld assistant (:func:`build_assistant`; needs gpt).
    real: then add the real-model stage (:func:`build_real`). Each model's new weights and batch order come
    from its own training seed, so ``tasks=("topic",)`` gives the topic model of a full build.
    """
    sc = resolve_scale(scale)
    if assistant and not gpt:
        raise ValueError("the assistant is instruction-tuned from the mini-GPT: build with gpt=True (without --no-gpt)")
    tasks = tuple(sc.tasks) if tasks is None else tuple(tasks)
    if unknown := [t for t in tasks if t not in sc.tasks]:
        raise ValueError(f"unknown tasks {unknown}; choose from {list(sc.tasks)}")
    out = Path(out) if out is not None else default_output_dir(sc.name)
    if real:
        from .real import real_model_folder

        real_model_folder()  # RealModelError now, not after the mini build (and before any folder is made)
    check_writable(out)
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

    if gpt:
        report["models"]["text-generation"] = _build_gpt(sc, tokenizer, data["corpus"], out)
        stage("gpt pretraining")

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
    if assistant:
        report = build_assistant(sc, out, progress=progress, log=log)
    if real:
        report = build_real(sc, out, progress=progress, log=log)
    return report


GPT_PROMPTS = ("the weather in", "chen wei works at", "今天")  # the report's and model card's samples


def gpt_samples(model, tokenizer, prompts=GPT_PROMPTS, *, max_new_tokens: int = 24, seed: int = 0) -> list[dict]:
    """For each prompt: its greedy continuation and one sampled with temperature 0.8 and top-p 0.9 (seeded)."""
    import torch

    from .sampling import SamplingConfig, generate
    from .translate import join_cjk

    out = []
    for prompt in prompts:
        ids = torch.tensor([[tokenizer.cls_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]])
        row = {"prompt": prompt}
        for name, cfg in (("greedy", SamplingConfig(max_new_tokens=max_new_tokens)),
                          ("sampled", SamplingConfig(max_new_tokens=max_new_tokens, do_sample=True, temperature=0.8,
                                                     top_p=0.9))):
            cfg = replace(cfg, eos_token_id=tokenizer.sep_token_id)
            ids_out = generate(model, ids, cfg=cfg, generator=torch.Generator().manual_seed(seed),
                               pad_token_id=tokenizer.pad_token_id)
            row[name] = join_cjk(tokenizer.decode(ids_out[0], skip_special_tokens=True))
        out.append(row)
    return out


def _build_gpt(sc: Scale, tokenizer, corpus, out: Path) -> dict:
    """Pretrain the scale's mini-GPT by next-token prediction; save it as ``out/text-generation``."""
    from .gpt import GPT
    from .in_context import evaluate_in_context, in_context_markdown
    from .pretrain import pretrain_clm

    cfg = replace(sc.gpt, vocab_size=len(tokenizer), bos_token_id=tokenizer.cls_token_id,
                  eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id)
    with seeded(sc.gpt_pretrain.seed):
        model = GPT(cfg)
    res = pretrain_clm(model, tokenizer, list(corpus["train"]["text"]), list(corpus["validation"]["text"]),
                       sc.gpt_pretrain, block_length=sc.gpt_block_length)
    model = model.cpu().eval()
    samples = gpt_samples(model, tokenizer)
    in_context = evaluate_in_context(model, tokenizer)  # held-out k-shot prompts (labkit.in_context)
    params = count_parameters(model)
    lines = "\n".join(f"- `{s['prompt']}` → greedy: {s['greedy']!r}; sampled: {s['sampled']!r}" for s in samples)
    card = f"""---
license: mit
language: [en, zh]
library_name: transformers
pipeline_tag: text-generation
tags: [foundation-model-lab, tinyworld]
---
# TinyWorld mini-GPT (next-token prediction)

Trained by `labkit build --scale {sc.name}` in the Foundation Model Lab: a {cfg.n_layers}-layer,
{cfg.d_model}-wide decoder with GPT-2's architecture ({params:,} parameters), pretrained for
{sc.gpt_pretrain.steps} steps on TinyWorld's unlabelled corpus (English and Chinese) to predict the next
word piece, with the lab's WordPiece tokenizer. `pipeline("text-generation")` opens it.

## Evaluation (TinyWorld validation corpus)

| metric | value |
|---|---|
| perplexity | {res.metrics["perplexity"]:.2f} |
| next-token accuracy | {res.metrics["next_token_accuracy"]:.4f} |

## Samples (greedy, and sampled with temperature 0.8, top-p 0.9, seed 0)

{lines}

## In-context learning (held-out items, never on a page of the corpus; `labkit.in_context`)

{in_context_markdown(in_context)}

## Limits
- It knows TinyWorld's vocabulary and templates, not real-world language; it writes fluent-looking
  TinyWorld sentences with facts mixed up. Do not use it outside the lab.
"""
    save_model(model, tokenizer, out / "text-generation", card=card)
    return {"metrics": res.metrics, "parameters": params, "samples": samples, "steps": sc.gpt_pretrain.steps,
            "in_context": in_context}


def build_gpt(scale: str | Scale = "cpu", out: str | Path | None = None, *, progress: bool = True,
              log=print) -> dict:
    """The mini-GPT stage alone, added to an existing build in ``out`` (its corpus and tokenizer):
    what ``labkit build --gpt-only`` runs for a build made without it. Updates report.json and report.md."""
    from .tokenization import load_tokenizer

    sc = resolve_scale(scale)
    out = Path(out) if out is not None else default_output_dir(sc.name)
    require_build(out, sc.name, "gpt")
    check_writable(out)
    if not progress:
        sc = sc.quiet()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    tokenizer = load_tokenizer(out / "tokenizer")
    report["models"]["text-generation"] = _build_gpt(sc, tokenizer, load_task("corpus", size=sc.data), out)
    report.setdefault("seconds", {})["gpt pretraining"] = time.perf_counter() - t0
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "report.md").write_text(report_markdown(report), encoding="utf-8")
    log(f"[{time.perf_counter() - t0:6.1f}s] mini-GPT done: validation perplexity "
        f"{report['models']['text-generation']['metrics']['perplexity']:.2f}")
    return report


ASSISTANT_METRICS = ("exact_match", "f1", "correct", "refusal_rate", "false_refusal_rate", "hallucination_rate")
_METRIC_WORDS = {"exact_match": "exact match (answerable questions)", "f1": "token F1 (answerable questions)",
                 "correct": "replies that state the right fact (answerable questions)",
                 "refusal_rate": "refusals on questions about entities not in TinyWorld (higher is better)",
                 "false_refusal_rate": "refusals on answerable questions (lower is better)",
                 "hallucination_rate": "confident wrong replies, all questions (lower is better)"}


def _no_nan(table: dict[str, dict[str, float]]) -> dict[str, dict]:
    """A table of metrics with NaN (no rows of that sort) as None, so report.json stays standard JSON."""
    return {k: {m: (None if v != v else v) for m, v in row.items()} for k, row in table.items()}


def _assistant_samples(rows: list, replies: list[str]) -> list[dict]:
    """One held-out chat per group and language (fact, service, unknown × en, zh) with the reply given;
    "row" is its index in the test split."""
    from .instruct import group_of

    seen, out = set(), []
    for i, (row, reply) in enumerate(zip(rows, replies)):
        key = (group_of(row["kind"], row["answerable"]), row["lang"])
        if key in seen:
            continue
        seen.add(key)
        out.append({"row": i, "group": key[0], "lang": key[1], "question": row["messages"][-2]["content"],
                    "expected": row["messages"][-1]["content"], "reply": reply})
    return sorted(out, key=lambda s: (("fact", "service", "unknown").index(s["group"]), s["lang"]))


def _assistant_card(sc: Scale, cfg, entry: dict) -> str:
    m = entry["metrics"]
    rows = "\n".join(f"| {_METRIC_WORDS[k]} | {m[k]:.3f} |" for k in ASSISTANT_METRICS if k in m)
    samples = "\n".join(f"- ({s['group']}, {s['lang']}) `{s['question']}` → `{s['reply']}` (expected: "
                        f"`{s['expected']}`)" for s in entry["samples"])
    return f"""---
license: mit
language: [en, zh]
library_name: transformers
pipeline_tag: text-generation
tags: [foundation-model-lab, tinyworld, instruction-tuning]
---
# TinyWorld assistant (the mini-GPT after instruction tuning)

Made by `labkit build --scale {sc.name} --assistant` in the Foundation Model Lab: the build's mini-GPT
(`text-generation`, {entry["parameters"]:,} parameters, GPT-2's architecture) fine-tuned for {entry["steps"]} steps
of {cfg.train.batch_size} chats on {entry["n_chats"]:,} TinyWorld conversations (`load_task("instructions")`:
questions about the world's people, companies and products, customer-service requests answered from a
service card in the system turn, and questions about entities that do not exist, answered with a refusal),
with the next-token loss on the assistant's words only (`labkit.instruct.instruction_tune`).

The tokenizer carries the lab's chat template, so
`tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)` writes the prompt
(`[CLS]user : ... [SEP]assistant :`); the reply ends at `[SEP]`. `labkit.instruct.answer` does both.

## Evaluation (TinyWorld's {entry["n_test"]} held-out test chats, about entities never in a training chat)

| metric | value |
|---|---|
{rows}

## Replies to held-out questions (greedy)

{samples}

## Limits
- It only knows TinyWorld, a small synthetic world written for teaching, and only what its training
  chats asked about. It **makes things up**: asked about someone it has never seen, it often answers
  confidently and wrongly (the hallucination rate above) instead of refusing.
- Tiny by design ({entry["parameters"]:,} parameters); it lowercases what it reads. Do not use it outside the lab.
"""


def build_assistant(scale: str | Scale = "cpu", out: str | Path | None = None, *, progress: bool = True,
                    log=print) -> dict:
    """Instruction-tune the build's mini-GPT into a TinyWorld assistant: what ``labkit build --assistant``
    (after the mini-GPT) and ``--assistant-only`` (added to an existing build in ``out``) run.

    1. open ``out/text-generation`` and its tokenizer, and give the tokenizer the chat template;
    2. fine-tune a copy on ``load_task("instructions")``'s training chats with the scale's
       :class:`~labkit.instruct.InstructConfig` (``Scale.instruct``), loss on the assistant's words only;
    3. score it on the held-out test chats (:func:`~labkit.instruct.evaluate_assistant`);
    4. save it as ``out/assistant`` (a GPT2LMHeadModel folder whose tokenizer has the chat template) with a
       model card, and add ``report["models"]["assistant"]`` and ``report["seconds"]["assistant"]`` to
       report.json and report.md.
    """
    from .folders import load_model
    from .instruct import evaluate_assistant, instruction_tune, with_chat_template

    sc = resolve_scale(scale)
    out = Path(out) if out is not None else default_output_dir(sc.name)
    where = "" if out == default_output_dir(sc.name) else f" --out {out}"
    require_build(out, sc.name, "assistant")
    if not (out / "text-generation" / "model.safetensors").is_file():
        raise ValueError(f"the {sc.name}-scale build in {out} has no mini-GPT to instruction-tune; "
                         f"run labkit build --scale {sc.name} --gpt-only{where} first")
    check_writable(out)
    cfg = sc.instruct
    if not progress:
        cfg = replace(cfg, train=replace(cfg.train, progress=False))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    model, tokenizer = load_model(out / "text-generation")
    with_chat_template(tokenizer)
    data = load_task("instructions", size=sc.data)
    res = instruction_tune(model, tokenizer, list(data["train"]), cfg)
    log(f"[{time.perf_counter() - t0:6.1f}s] instruction tuning done: {res.n_chats:,} chats, {cfg.train.steps} steps, "
        f"loss {res.history.loss[0]:.2f} → {res.history.loss[-1]:.2f}")
    test = list(data["test"])
    scores = evaluate_assistant(model, tokenizer, test, cfg)
    model = model.cpu().eval()
    metrics = {k: scores.overall[k] for k in ASSISTANT_METRICS if scores.overall[k] == scores.overall[k]}  # no NaN
    entry = {"metrics": metrics, "parameters": count_parameters(model), "steps": cfg.train.steps,
             "n_chats": res.n_chats, "n_dropped": res.n_dropped, "n_test": len(test),
             "train_seconds": res.seconds, "max_length": cfg.max_length,
             "by_group": _no_nan(scores.by_group), "by_lang": _no_nan(scores.by_lang),
             "samples": _assistant_samples(test, scores.replies)}
    save_model(model, tokenizer, out / ASSISTANT, card=_assistant_card(sc, cfg, entry))
    report["models"][ASSISTANT] = entry
    report.setdefault("seconds", {})["assistant"] = time.perf_counter() - t0
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "report.md").write_text(report_markdown(report), encoding="utf-8")
    o = scores.overall
    log(f"[{report['seconds']['assistant']:6.1f}s] assistant done: held-out exact match {o['exact_match']:.2f}, "
        f"F1 {o['f1']:.2f}, refusals {o['refusal_rate']:.2f}, false refusals {o['false_refusal_rate']:.2f}, "
        f"hallucinations {o['hallucination_rate']:.2f}")
    return report


def build_prompting(scale: str | Scale = "cpu", out: str | Path | None = None, *, progress: bool = True,
                    log=print) -> dict:
    """Prompting, prompt tuning or fine-tuning, measured on the build's masked LM: what
    ``labkit build --prompting-only`` runs (added to an existing build in ``out``).

    For each classification task of ``Scale.prompting`` and each label count (0, 32, 128) and seed:
    cloze prompting (zero-shot at 0 labels, else the whole masked LM trained through the pattern),
    a soft prompt on the frozen model (``Scale.soft_prompt``) and a new head fine-tuned (the majority
    answer at 0 labels). Adds ``report["prompting"]`` (one row per run, with its trainable-parameter
    count) and ``report["seconds"]["prompting"]``, and writes ``prompting.png``.
    """
    from .folders import load_model
    from .prompt_tuning import add_trainable_counts, run_prompt_tuning, tuning_markdown
    from .prompting import plot_prompting, run_prompting

    sc = resolve_scale(scale)
    out = Path(out) if out is not None else default_output_dir(sc.name)
    require_build(out, sc.name, "prompting")
    check_writable(out)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    mlm, tokenizer = load_model(out / "fill-mask")
    data = {t: load_task(t, size=sc.data) for t in sc.prompting.tasks}
    quiet = None if progress else (lambda *_: None)
    rows = run_prompting(mlm, tokenizer, data, sc.prompting, log=log if progress else quiet)
    rows += run_prompt_tuning(mlm, tokenizer, data, sc.soft_prompt, sc.prompting, log=log if progress else quiet)
    rows = add_trainable_counts(rows, mlm, data)
    report["prompting"] = {"rows": rows, "soft_prompt_tokens": sc.soft_prompt.n_tokens,
                           "seeds": list(sc.prompting.seeds), "n_test": sc.prompting.n_test}
    report.setdefault("seconds", {})["prompting"] = time.perf_counter() - t0
    plot_prompting(rows, out / "prompting.png")
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "report.md").write_text(report_markdown(report), encoding="utf-8")
    log(f"[{report['seconds']['prompting']:6.1f}s] prompting done:\n{tuning_markdown(rows)}")
    return report


def _real_card(task, data, real, metrics: dict, probe: float, recipe, n: int) -> str:
    return f"""---
license: apache-2.0
language: [en]
library_name: transformers
pipeline_tag: text-classification
base_model: {real.name if real.name != "all-MiniLM-L6-v2" else "sentence-transformers/all-MiniLM-L6-v2"}
tags: [foundation-model-lab, tinyworld]
---
# {real.name} fine-tuned for TinyWorld {task.name}

A real pretrained encoder ({real.parameters:,} parameters, pretrained on English Wikipedia and books, then
trained on about a billion English sentence pairs; weights SHA-256 `{real.sha256[:16]}…`, checked by
`labkit.real`) fine-tuned by `labkit build --real` on {n:,} labelled TinyWorld examples over
{task.labels(data)}: its head alone for {recipe.probe_steps} steps, then the whole model for
{recipe.steps_for(n)} steps.

## Evaluation

| split | accuracy |
|---|---|
| TinyWorld test (unseen entities) | {metrics["accuracy"]:.4f} |
| out-of-world probes (`data/probes`, everyday English) | {probe:.4f} |

## Limits
English only. Fine-tuned on a small synthetic world written for teaching; for comparing with the
lab's mini model, not for use outside the lab.
"""


def build_real(scale: str | Scale = "cpu", out: str | Path | None = None, *, source=None, progress: bool = True,
               log=print) -> dict:
    """The real-model stage of a build, added to the mini build in ``out``.

    1. open the real encoder (:func:`labkit.real.load_real`: digest checked);
    2. fine-tune it for each compared task on every labelled training example and save it as
       ``out/real-<task>`` (a BertForSequenceClassification folder), scored on the TinyWorld test
       split and the out-of-world probes, beside the build's mini classifier;
    3. the grid of :func:`labkit.compare.compare_encoders`: real vs mini at few labels, several seeds.

    Writes ``report["real"]`` into out/report.json and report.md, and real_vs_mini.png.
    """
    from .compare import Contender, compare_encoders, compare_markdown, plot_comparison
    from .data.probes import load_probes
    from .folders import load_model
    from .real import MINILM, load_real, real_model_folder
    from .tasks import predict_proba
    from .transfer import finetune_lpft

    sc = resolve_scale(scale)
    out = Path(out) if out is not None else default_output_dir(sc.name)
    rc = sc.real
    real_model_folder(source)  # RealModelError (a ValueError) saying what to do, before anything else
    require_build(out, sc.name, "real")
    check_writable(out)
    real = load_real(source)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    log(f"real model: {real.name} ({real.parameters:,} parameters) from {real.folder}, SHA-256 verified")
    mini, mini_tok = load_model(out / "fill-mask")
    tasks = rc.compare.tasks
    data = {t: load_task(t, size=sc.data) for t in tasks}
    probes = {t: load_probes(t) for t in tasks}
    section: dict = {"model": {"name": real.name, "hub_id": MINILM.hub_id if real.sha256 == MINILM.sha256 else None,
                               "sha256": real.sha256, "parameters": real.parameters, "folder": str(real.folder)},
                     "mini_parameters": count_parameters(mini.encoder), "classifiers": {}}
    for name in tasks:
        task, ds = sc.tasks[name], data[name]
        n = len(ds["train"])
        model = task.make_model(real.encoder, ds, seed=0)
        started = time.perf_counter()
        res = finetune_lpft(task, model, real.tokenizer, ds, rc.classifier, n_train=n, seed=0, lr=rc.real_lr,
                            progress=progress)
        seconds = time.perf_counter() - started
        probe = task.evaluate(model, real.tokenizer, probes[name])[0]["accuracy"]
        save_model(model.cpu(), real.tokenizer, out / f"{REAL_PREFIX}{name}",
                   card=_real_card(task, ds, real, res.metrics, probe, rc.classifier, n))
        entry = {"test": res.metrics["accuracy"], "probe": probe, "labels": n, "seconds": seconds,
                 "parameters": count_parameters(model)}
        if (out / name / "model.safetensors").is_file():  # the build's mini classifier on the same probes
            mini_clf, tok = load_model(out / name)
            gold = list(probes[name]["label"])
            pred = predict_proba(mini_clf, tok, list(probes[name]["text"])).argmax(-1).tolist()
            entry["mini_probe"] = sum(p == g for p, g in zip(pred, gold)) / len(gold)
            entry["mini_test"] = report["models"].get(name, {}).get("metrics", {}).get("accuracy")
        section["classifiers"][name] = entry
        log(f"[{time.perf_counter() - t0:6.1f}s] real-{name} done: TinyWorld test {entry['test']:.3f}, "
            f"probes {probe:.3f} (the build's mini {name}: probes {entry.get('mini_probe', float('nan')):.3f})")
    contenders = [Contender("mini", mini, mini_tok, lr=rc.mini_lr, about="the lab's mini-BERT, pretrained on TinyWorld"),
                  Contender("real", real.encoder, real.tokenizer, lr=rc.real_lr,
                            about=f"{real.name}, pretrained on large English corpora")]
    rows = compare_encoders(contenders, data, probes, rc.compare, progress=False, log=log)
    section["comparison"] = rows
    section["config"] = {"label_counts": list(rc.compare.label_counts), "seeds": list(rc.compare.seeds),
                         "n_test": rc.compare.n_test, "real_lr": rc.real_lr, "mini_lr": rc.mini_lr,
                         "probe_steps": rc.compare.recipe.probe_steps,
                         "steps": {n: rc.compare.recipe.steps_for(n) for n in rc.compare.label_counts}}
    plot_comparison(rows, out / "real_vs_mini.png")
    report["real"] = section
    report.setdefault("seconds", {})["real"] = time.perf_counter() - t0
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "report.md").write_text(report_markdown(report), encoding="utf-8")
    log(f"[{time.perf_counter() - t0:6.1f}s] real vs mini done\n{compare_markdown(rows)}")
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
    if "text-generation" in report["models"]:
        g = report["models"]["text-generation"]
        lines += ["## The mini-GPT writes (next-token pretraining)", "",
                  f"{g['parameters']:,} parameters, {g['steps']} steps; validation perplexity "
                  f"{g['metrics']['perplexity']:.2f}, next-token accuracy {g['metrics']['next_token_accuracy']:.3f}.", "",
                  "| prompt | greedy | sampled (temperature 0.8, top-p 0.9) |", "|---|---|---|"]
        lines += [f"| {s['prompt']} | {s['greedy']} | {s['sampled']} |" for s in g["samples"]]
        lines.append("")
        if "in_context" in g:
            from .in_context import in_context_markdown
            lines += ["### In-context learning (k examples in the prompt, held-out items)", "",
                      in_context_markdown(g["in_context"]), ""]
    if ASSISTANT in report["models"]:
        a = report["models"][ASSISTANT]

        def cell(v):
            return "–" if v is None else f"{v:.2f}"

        lines += ["## The assistant (the mini-GPT after instruction tuning)", "",
                  f"{a['steps']} steps on {a['n_chats']:,} TinyWorld chats (loss on the assistant's words only); "
                  f"scored on {a['n_test']} held-out chats about entities never in a training chat. It only knows "
                  f"TinyWorld, and it makes things up.", "",
                  "| rows | n | exact match | F1 | correct | refusals (unknown entities) | false refusals | "
                  "hallucinations |", "|---|---|---|---|---|---|---|---|"]
        groups = [("all", {**a["metrics"], "n": a["n_test"]})] + [(f"lang {k}", v) for k, v in a["by_lang"].items()] \
            + [(f"group {k}", v) for k, v in a["by_group"].items()]
        for name, m in groups:
            lines.append(f"| {name} | {m['n']} | " + " | ".join(cell(m.get(k)) for k in ASSISTANT_METRICS) + " |")
        lines += ["", "| group | language | question | reply | expected |", "|---|---|---|---|---|"]
        lines += [f"| {s['group']} | {s['lang']} | {s['question']} | {s['reply']} | {s['expected']} |"
                  for s in a["samples"]]
        lines.append("")
    if "transfer" in report:
        lines += ["## Transfer: pretrained vs random initialisation", "", transfer_markdown(report["transfer"]), ""]
    if "real" in report:
        from .compare import compare_markdown

        r = report["real"]
        lines += [f"## A real pretrained encoder beside the mini one ({r['model']['name']})", "",
                  f"{r['model']['name']}: {r['model']['parameters']:,} parameters (SHA-256 {r['model']['sha256'][:16]}…); "
                  f"the mini encoder: {r['mini_parameters']:,}. Classifiers fine-tuned on every labelled example:", "",
                  "| task | real: TinyWorld test | real: probes | mini: TinyWorld test | mini: probes |", "|---|---|---|---|---|"]
        for name, c in r["classifiers"].items():
            mt = f"{c['mini_test']:.3f}" if c.get("mini_test") is not None else "–"
            mp = f"{c['mini_probe']:.3f}" if "mini_probe" in c else "–"
            lines.append(f"| {name} | {c['test']:.3f} | {c['probe']:.3f} | {mt} | {mp} |")
        lines += ["", "Few labels, same recipe and seeds (mean ± std over seeds):", "", compare_markdown(r["comparison"]), ""]
    if "prompting" in report:
        from .prompt_tuning import tuning_markdown
        lines += ["## Prompting, prompt tuning or fine-tuning (labkit build --prompting-only)", "",
                  tuning_markdown(report["prompting"]["rows"]), ""]
    lines += ["## Time per stage (seconds)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in report["seconds"].items()]
    return "\n".join(lines) + "\n"


def _complete(out: Path, names: tuple[str, ...]) -> bool:
    return all((out / n / "model.safetensors").is_file() for n in names) and (out / "report.json").is_file()


def ensure_build(scale: str | Scale = "cpu", out: str | Path | None = None, *, real: bool = False,
                 assistant: bool = False, prompting: bool = False, progress: bool = True, log=print) -> Path:
    """The folder of a finished build at this scale, building it first if any model is missing.

    A build made before the mini-GPT joined the build gets it added (:func:`build_gpt`, minutes).
    real: also the real-model stage (:func:`build_real`), run on its own if only it is missing.
    assistant: also the instruction-tuned assistant (:func:`build_assistant`), added if missing.
    prompting: also the prompting comparison (:func:`build_prompting`), added if missing."""
    sc = resolve_scale(scale)
    name = sc.name
    out = Path(out) if out is not None else default_output_dir(name)
    if not _complete(out, ("fill-mask", *sc.tasks)):
        log(f"no complete {name}-scale build in {out}: building it now (labkit build --scale {name}"
            + (" --assistant" if assistant else "") + (" --real)" if real else ")"))
        build(scale, out, real=real, assistant=assistant, progress=progress, log=log)
        if prompting:
            build_prompting(scale, out, progress=progress, log=log)
        return out
    if not _complete(out, ("text-generation",)):
        log(f"the {name}-scale build in {out} has no mini-GPT: adding it now (labkit build --scale {name} --gpt-only)")
        build_gpt(scale, out, progress=progress, log=log)
    if assistant and not _complete(out, (ASSISTANT,)):
        log(f"the {name}-scale build in {out} has no assistant: adding it now "
            f"(labkit build --scale {name} --assistant-only)")
        build_assistant(scale, out, progress=progress, log=log)
    if prompting and "prompting" not in json.loads((out / "report.json").read_text(encoding="utf-8")):
        log(f"the {name}-scale build in {out} has no prompting comparison: adding it now "
            f"(labkit build --scale {name} --prompting-only)")
        build_prompting(scale, out, progress=progress, log=log)
    if real and not _has_real(out, scale):
        log(f"the {name}-scale build in {out} has no real-model stage: adding it now "
            f"(labkit build --scale {name} --real-only)")
        build_real(scale, out, progress=progress, log=log)
    return out


def _has_real(out: Path, scale: str) -> bool:
    names = tuple(f"{REAL_PREFIX}{t}" for t in resolve_scale(scale).real.compare.tasks)
    return _complete(out, names) and "real" in json.loads((out / "report.json").read_text(encoding="utf-8"))


def ensure_pretrained(scale: str = "cpu", out: str | Path | None = None, *, progress: bool = True, log=print):
    """The pretrained mini-BERT (a labkit PreTrainingModel, which is a MaskedLM) and its tokenizer for this scale.

    Reuses ``<out>/fill-mask`` from an earlier build; otherwise runs only the data,
    tokenizer and pretraining stages of ``labkit build`` (a few minutes) and saves them.
    """
    from .folders import load_model

    out = Path(out) if out is not None else default_output_dir(scale)
    if not _complete(out, ("fill-mask",)):
        log(f"no pretrained {scale}-scale model in {out}: pretraining one now")
        build(scale, out, tasks=(), transfer=False, gpt=False, progress=progress, log=log)
    return load_model(out / "fill-mask")
