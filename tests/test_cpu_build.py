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


NUMBER = r"([+-]?\d+(?:\.\d+)?)"
# A rebuild on another machine or with another library version moves the last digits, so the
# chapter's figures are compared with a tolerance: scores within 0.03, gains within 3 points.
SCORE_TOLERANCE, GAIN_TOLERANCE = 0.03, 3.0


def _quoted(text: str, pattern: str) -> list[float]:
    """The numbers of the first match of ``pattern`` (NUMBER marks each) in ``text``."""
    match = re.search(pattern.replace(" ", r"\s+"), text)
    assert match, f"chapter 05 no longer quotes the cpu build where it said {pattern!r}; {REBUILD}"
    return [float(g) for g in match.groups()]


def test_chapter_05_quotes_the_cpu_build(report):
    text = " ".join(re.sub(r"^# ?", "", line) for line in CHAPTER.read_text(encoding="utf-8").splitlines())
    text = re.sub(r"\s+", " ", text)  # the markdown as one line: quotes may wrap anywhere
    pre32, scr32, s32 = _gain(report, "sentiment", 32)
    pre128, scr128, s128 = _gain(report, "sentiment", 128)
    n = NUMBER
    checks = [  # (what the chapter says, what the build gives, tolerance)
        (_quoted(text, f"{n} vs {n} at 32 labels \\({n}; pretrained runs {n}, {n}, {n}\\)"),
         [pre32["score"], scr32["score"], s32, *pre32["runs"]], [SCORE_TOLERANCE] * 2 + [GAIN_TOLERANCE] + [0.05] * 3),
        (_quoted(text, f"{n} vs {n} at 128 \\({n}\\)"), [pre128["score"], scr128["score"], s128],
         [SCORE_TOLERANCE] * 2 + [GAIN_TOLERANCE]),
        (_quoted(text, f"{n} at 512 and {n} at 2,000"),
         [_gain(report, "sentiment", 512)[2], _gain(report, "sentiment", 2000)[2]], [GAIN_TOLERANCE] * 2),
        (_quoted(text, f"NER {n} and {n} entity-F1 points at 32 and 128"),
         [_gain(report, "ner", 32)[2], _gain(report, "ner", 128)[2]], [GAIN_TOLERANCE] * 2),
        (_quoted(text, f"win by {n}–{n} points at 32 and 128 labels"), [min(s32, s128), max(s32, s128)],
         [GAIN_TOLERANCE] * 2),
    ]
    for said, built, tolerance in checks:
        for a, b, tol in zip(said, built, tolerance):
            assert abs(a - b) <= tol, (f"chapter 05 says {said}, the cpu build in {FOLDER} gives "
                                       f"{[round(x, 3) for x in built]} (tolerance {tol}): {REBUILD}")
