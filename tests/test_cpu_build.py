"""A finished cpu-scale build, checked against the quality bars and against what chapter 05 quotes from it.

A cpu build takes about 9 minutes on two cores, so the suite does not make one. `make demo` (or
`labkit build --scale cpu`) writes it to artifacts/cpu; LABKIT_CPU_BUILD names another folder.
Without a build these tests skip and say how to get one.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDER = Path(os.environ.get("LABKIT_CPU_BUILD") or REPO / "artifacts" / "cpu")
CHAPTER = REPO / "notebooks" / "05_finetuning_classification.py"
REBUILD = "rebuild it with the current code (labkit build --scale cpu), or update the text"


@pytest.fixture(scope="module")
def report() -> dict:
    path = FOLDER / "report.json"
    if not path.is_file():
        pytest.skip(f"no cpu build in {FOLDER}: run `labkit build --scale cpu` (about 9 minutes) to check its figures")
    report = json.loads(path.read_text(encoding="utf-8"))
    if report.get("scale") != "cpu" or "transfer" not in report:
        pytest.skip(f"{path} is not a cpu build with the transfer grid (built with --no-transfer?)")
    return report


def _gain(report: dict, task: str, labels: int) -> tuple[dict, dict, float]:
    """The pretrained and scratch rows of one cell, and the gain in points as report.md prints it."""
    row = {r["init"]: r for r in report["transfer"] if r["task"] == task and r["labels"] == labels}
    return row["pretrained"], row["scratch"], round(100 * (row["pretrained"]["score"] - row["scratch"]["score"]), 1)


def test_cpu_build_meets_the_quality_bars(report):
    m = {name: entry["metrics"] for name, entry in report["models"].items()}
    assert m["sentiment"]["accuracy"] >= 0.90
    assert m["topic"]["accuracy"] >= 0.90
    assert m["ner"]["entity_f1"] >= 0.85
    assert m["qa"]["f1"] >= 75
    assert m["translation"]["bleu_greedy"] >= 30
    for task in ("sentiment", "ner"):
        for labels in (32, 128):
            assert _gain(report, task, labels)[2] >= 10, f"{task} at {labels} labels gains less than 10 points"


def test_chapter_05_quotes_the_cpu_build(report):
    text = " ".join(re.sub(r"^# ?", "", line) for line in CHAPTER.read_text(encoding="utf-8").splitlines())
    text = re.sub(r"\s+", " ", text)  # the markdown as one line: quotes may wrap anywhere
    pre32, scr32, s32 = _gain(report, "sentiment", 32)
    pre128, scr128, s128 = _gain(report, "sentiment", 128)
    runs = ", ".join(f"{r:.3f}" for r in pre32["runs"])
    quotes = [
        f"{pre32['score']:.3f} vs {scr32['score']:.3f} at 32 labels ({s32:+.1f}; pretrained runs {runs})",
        f"{pre128['score']:.3f} vs {scr128['score']:.3f} at 128 ({s128:+.1f})",
        f"{_gain(report, 'sentiment', 512)[2]:+.1f} at 512 and {_gain(report, 'sentiment', 2000)[2]:+.1f} at 2,000",
        f"NER {_gain(report, 'ner', 32)[2]:+.1f} and {_gain(report, 'ner', 128)[2]:+.1f} entity-F1 points at 32 and 128",
        f"win by {round(min(s32, s128))}–{round(max(s32, s128))} points at 32 and 128 labels",
    ]
    for quote in quotes:
        assert quote in text, f"chapter 05 does not say {quote!r}, which the cpu build in {FOLDER} gives: {REBUILD}"
