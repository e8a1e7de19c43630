"""The assistant stage of `labkit build` (--assistant, --assistant-only): on a variant of the ci scale that
instruction-tunes for 3 steps, added to a copy of the session's ci build (its models linked, its report
copied), so it runs in seconds; then its refusals, ensure_build, the command line and the scales."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
from transformers import AutoTokenizer

import labkit.build
from labkit.build import ASSISTANT, ASSISTANT_METRICS, build, build_assistant, ensure_build
from labkit.data import load_task
from labkit.folders import load_model
from labkit.instruct import InstructConfig, evaluate_assistant
from labkit.scales import SCALES
from labkit.training import TrainConfig

TINY = replace(SCALES["ci"], name="ci-tiny",
               instruct=InstructConfig(train=TrainConfig(steps=3, batch_size=4, lr=3e-3, eval_every=3, progress=False),
                                       max_length=128, max_new_tokens=6))
CHAT = [{"role": "system", "content": "You are the TinyWorld assistant."},
        {"role": "user", "content": "Where was Emma Smith born?"}]


def _copy_of(ci_build, out):
    """``out``: the ci build's folders linked (never written), its report copied (the stage rewrites it)."""
    out.mkdir(parents=True)
    for entry in ci_build.iterdir():
        if entry.name in ("report.json", "report.md"):
            (out / entry.name).write_bytes(entry.read_bytes())
        elif entry.name != ASSISTANT:
            (out / entry.name).symlink_to(entry)
    return out


@pytest.fixture(scope="module")
def tiny_build(ci_build, tmp_path_factory):
    """A copy of the ci build to which ensure_build(..., assistant=True) added the assistant; and its log."""
    out = _copy_of(ci_build, tmp_path_factory.mktemp("assistant") / "ci-tiny")
    logs: list[str] = []
    assert ensure_build(TINY, out, assistant=True, progress=False, log=logs.append) == out
    return out, logs


def test_the_stage_saves_a_gpt_folder_whose_tokenizer_has_the_chat_template(tiny_build):
    out, _ = tiny_build
    folder = out / ASSISTANT
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["GPT2LMHeadModel"]
    assert {"model.safetensors", "tokenizer.json", "README.md"} <= {p.name for p in folder.iterdir()}
    tok = AutoTokenizer.from_pretrained(folder)  # as saved: no with_chat_template needed
    assert tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True) == (
        "[CLS]system : You are the TinyWorld assistant. [SEP]user : Where was Emma Smith born? [SEP]assistant :")
    assert (out / "text-generation").is_symlink()  # the GPT it was tuned from is left as it was


def test_the_report_has_the_assistant_its_scores_and_its_time(tiny_build, ci_build):
    out, logs = tiny_build
    text = (out / "report.json").read_text()
    report = json.loads(text, parse_constant=lambda c: pytest.fail(f"report.json holds {c}"))  # standard JSON
    entry = report["models"][ASSISTANT]
    assert set(entry["metrics"]) == set(ASSISTANT_METRICS)
    assert all(0 <= v <= 1 for v in entry["metrics"].values())
    assert entry["steps"] == 3 and entry["n_chats"] > 1000 and entry["n_test"] == 300
    assert {s["group"] for s in entry["samples"]} == {"fact", "service", "unknown"}
    assert report["seconds"]["assistant"] > entry["train_seconds"] > 0
    before = json.loads((ci_build / "report.json").read_text())
    assert {k: v for k, v in report["models"].items() if k != ASSISTANT} == before["models"]  # the rest is kept
    md = (out / "report.md").read_text()
    assert "## The assistant (the mini-GPT after instruction tuning)" in md and "| assistant |" in md
    assert "| assistant |" in md.split("## Time per stage")[1]
    card = (out / ASSISTANT / "README.md").read_text()
    assert "only knows TinyWorld" in card and "makes things up" in card and "## Evaluation" in card
    assert f"| {entry['metrics']['hallucination_rate']:.3f} |" in card
    assert any("has no assistant: adding it now (labkit build --scale ci-tiny --assistant-only)" in line for line in logs)


def test_the_saved_assistant_is_the_one_that_was_scored(tiny_build):
    out, _ = tiny_build
    model, tok = load_model(out / ASSISTANT)
    test = list(load_task("instructions", size="ci")["test"])
    scores = evaluate_assistant(model, tok, test, TINY.instruct)  # the stage's batches, so the same replies
    entry = json.loads((out / "report.json").read_text())["models"][ASSISTANT]
    assert entry["metrics"] == {k: scores.overall[k] for k in ASSISTANT_METRICS}
    for s in entry["samples"]:
        row = test[s["row"]]
        assert (s["question"], s["expected"]) == (row["messages"][-2]["content"], row["messages"][-1]["content"])
        assert scores.replies[s["row"]] == s["reply"]


def test_ensure_build_adds_nothing_when_the_assistant_is_there(tiny_build):
    out, _ = tiny_build
    logs = []
    assert ensure_build(TINY, out, assistant=True, log=logs.append) == out
    assert logs == []


def test_the_stage_needs_a_build_with_a_mini_gpt(tmp_path):
    with pytest.raises(ValueError, match="no ci-scale build in .* run labkit build --scale ci --assistant --out"):
        build_assistant("ci", tmp_path / "none", progress=False, log=lambda *a: None)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.json").write_text("{}")
    with pytest.raises(ValueError, match="has no mini-GPT to instruction-tune; run .*--gpt-only"):
        build_assistant("ci", tmp_path / "old", progress=False, log=lambda *a: None)
    assert not (tmp_path / "old" / ASSISTANT).exists()


def test_build_refuses_an_assistant_without_the_gpt_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="instruction-tuned from the mini-GPT"):
        build("ci", tmp_path / "a", gpt=False, assistant=True)
    assert not (tmp_path / "a").exists()


def test_each_scale_says_how_to_instruction_tune():
    ci, cpu, gpu = SCALES["ci"].instruct, SCALES["cpu"].instruct, SCALES["gpu"].instruct
    assert (ci.train.steps, ci.train.batch_size, ci.train.lr, ci.max_length) == (400, 16, 3e-3, 128)
    assert cpu == InstructConfig() and (cpu.train.steps, cpu.train.batch_size, cpu.train.lr, cpu.max_length) == (
        600, 16, 2e-3, 160)  # the cpu measurement
    assert gpu == cpu
    for scale in SCALES.values():  # every chat kept must fit in the mini-GPT's positions
        assert scale.instruct.max_length <= scale.gpt.max_position, scale.name


# ----------------------------------------------------------------------------- the command line
def _run(*args):
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (("--assistant", "--no-gpt"), "argument --assistant: not allowed with --no-gpt"),
    (("--assistant", "--gpt-only"), "argument --assistant: not allowed with --gpt-only"),
    (("--assistant", "--assistant-only"), "use --assistant-only alone"),
    (("--assistant-only", "--real"), "not allowed with argument --assistant-only"),
])
def test_cli_misuse_is_a_parser_error(args, message, capsys):
    from labkit.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["build", "--scale", "ci", *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("labkit build: error: ")


def test_cli_assistant_only_on_a_missing_build_is_one_line(tmp_path):
    r = _run("build", "--scale", "ci", "--assistant-only", "--out", str(tmp_path / "none"))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "labkit build: error: no ci-scale build" in r.stderr and f"--assistant --out {tmp_path / 'none'}" in r.stderr


def test_cli_wires_the_flags_to_the_stage(monkeypatch, capsys, tmp_path):
    from labkit.__main__ import main

    calls = []
    report = {"models": {ASSISTANT: {"metrics": {"f1": 0.5, "hallucination_rate": 0.25}}},
              "seconds": {"assistant": 12.0, "total": 30.0}}
    monkeypatch.setattr(labkit.build, "build_assistant", lambda *a, **k: calls.append(("only", a, k)) or report)
    monkeypatch.setattr(labkit.build, "build", lambda *a, **k: calls.append(("build", a, k)) or report)
    (tmp_path / "report.json").write_text("{}")  # a build to add to: the command line checks for one first
    assert main(["build", "--scale", "ci", "--assistant-only", "--out", str(tmp_path), "--quiet"]) == 0
    assert calls[-1] == ("only", ("ci", str(tmp_path)), {"progress": False})
    assert "added the assistant" in capsys.readouterr().out
    assert main(["build", "--scale", "ci", "--assistant", "--out", str(tmp_path)]) == 0
    assert calls[-1][0] == "build" and calls[-1][2]["assistant"] is True and calls[-1][2]["gpt"] is True
    assert "+12s for the assistant" in capsys.readouterr().out
    assert main(["build", "--scale", "ci", "--out", str(tmp_path)]) == 0
    assert calls[-1][2]["assistant"] is False
