"""The prompting stage of `labkit build` (--prompting-only, ensure_build(prompting=True)): on a variant of the
ci scale whose runs take 3 steps, added to a copy of the session's ci build, so it runs in seconds."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from labkit.build import build_prompting, ensure_build
from labkit.prompt_tuning import SoftPromptConfig
from labkit.prompting import PromptingConfig
from labkit.scales import SCALES
from labkit.transfer import TransferConfig

TINY = replace(SCALES["ci"], name="ci-tiny",
               prompting=PromptingConfig(label_counts=(0, 32), seeds=(0,), n_test=40,
                                         recipe=TransferConfig(probe_steps=2, min_steps=3, steps_cap=3)),
               soft_prompt=SoftPromptConfig(steps=3))


def _copy_of(ci_build, out):
    out.mkdir(parents=True)
    for entry in ci_build.iterdir():
        if entry.name == "report.json":  # without the stage, whether or not the session's build has run it
            report = json.loads(entry.read_text(encoding="utf-8"))
            report.pop("prompting", None)
            (out / entry.name).write_text(json.dumps(report), encoding="utf-8")
        elif entry.name == "report.md":
            (out / entry.name).write_bytes(entry.read_bytes())
        elif entry.name != "prompting.png":
            (out / entry.name).symlink_to(entry)
    return out


@pytest.fixture(scope="module")
def tiny_build(ci_build, tmp_path_factory):
    out = _copy_of(ci_build, tmp_path_factory.mktemp("prompting") / "ci-tiny")
    logs: list[str] = []
    assert ensure_build(TINY, out, prompting=True, progress=False, log=logs.append) == out
    return out, logs


def test_the_stage_reports_every_method_with_its_trainable_count(tiny_build):
    out, logs = tiny_build
    assert any("--prompting-only" in line for line in logs)
    report = json.loads((out / "report.json").read_text())
    rows = report["prompting"]["rows"]
    cells = {(r["task"], r["labels"], r["method"]) for r in rows}
    assert cells == {(t, n, m) for t in ("sentiment", "topic") for n in (0, 32) for m in ("cloze", "head")} | \
        {(t, 32, "soft prompt") for t in ("sentiment", "topic")}
    trainable = {(r["labels"], r["method"]): r["trainable"] for r in rows if r["task"] == "sentiment"}
    assert trainable[32, "soft prompt"] == 16 * SCALES["ci"].model.d_model  # P × C
    assert trainable[0, "cloze"] == 0 < trainable[32, "soft prompt"] < trainable[32, "head"]
    assert all(0 <= r["accuracy"] <= 1 for r in rows) and report["seconds"]["prompting"] > 0
    assert (out / "prompting.png").stat().st_size > 1000
    assert "Prompting, prompt tuning or fine-tuning" in (out / "report.md").read_text()


def test_ensure_build_leaves_a_build_with_the_stage_alone(tiny_build):
    out, _ = tiny_build
    logs: list[str] = []
    ensure_build(TINY, out, prompting=True, progress=False, log=logs.append)
    assert logs == []


def test_the_stage_needs_a_build(tmp_path):
    with pytest.raises(ValueError, match="no ci-scale build with a masked LM"):
        build_prompting("ci", tmp_path / "nothing", progress=False)


def test_the_command_line_says_what_to_do_without_a_build(tmp_path):
    r = subprocess.run([sys.executable, "-m", "labkit", "build", "--scale", "ci", "--prompting-only",
                        "--out", str(tmp_path / "none")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "run labkit build --scale ci" in r.stderr
    r = subprocess.run([sys.executable, "-m", "labkit", "build", "--prompting-only", "--real-only"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not allowed with argument" in r.stderr
