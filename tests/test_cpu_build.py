"""A finished cpu-scale build, checked against the quality bars and against the figures chapter 05 quotes from it.

A cpu build takes about 8 minutes on two cores, so the suite does not make one. `make demo` (or
`labkit build --scale cpu`) writes it to artifacts/cpu; LABKIT_CPU_BUILD names another folder.
Without a build these tests skip and say how to get one.

Chapter 05 quotes the transfer grid in two fixed forms, anywhere in its markdown:

    <task> at <n> labels: pretrained <score> vs scratch <score> (<gain> points)
    <task> at <n> labels: <gain> points

Every such quote is compared with the build's ``report.json`` with a tolerance (scores ±0.03,
gains ±3 points), so a rebuild on another machine or with other library versions, which moves
the last digits, does not break the test; a quote that drifts further does.
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
SCORE_TOLERANCE, GAIN_TOLERANCE = 0.03, 3.0

_TASK = r"(sentiment|NER)"  # any case; report.json keys are lower case
_LABELS = r"(\d[\d,]*) labels"
_NUMBER = r"([+-]?\d+(?:\.\d+)?)"
FULL_QUOTE = re.compile(rf"\b{_TASK} at {_LABELS}: pretrained {_NUMBER} vs scratch {_NUMBER} \({_NUMBER} points\)", re.I)
GAIN_QUOTE = re.compile(rf"\b{_TASK} at {_LABELS}: {_NUMBER} points", re.I)
REQUIRED = {("sentiment", 32), ("ner", 32), ("ner", 128)}  # the quotes chapter 05's transfer paragraph makes


@pytest.fixture(scope="module")
def report() -> dict:
    path = FOLDER / "report.json"
    if not path.is_file():
        pytest.skip(f"no cpu build in {FOLDER}: run `labkit build --scale cpu` (about 8 minutes on 2 cores) to check its figures")
    report = json.loads(path.read_text(encoding="utf-8"))
    if report.get("scale") != "cpu" or "transfer" not in report:
        pytest.skip(f"{path} is not a cpu build with the transfer grid (built with --no-transfer?)")
    return report


def _cell(report: dict, task: str, labels: int) -> tuple[float, float, float]:
    """(pretrained score, scratch score, gain in points) of one cell of the transfer grid."""
    row = {r["init"]: r["score"] for r in report["transfer"] if r["task"] == task and r["labels"] == labels}
    assert set(row) == {"pretrained", "scratch"}, f"the cpu build in {FOLDER} has no {task} row at {labels} labels"
    return row["pretrained"], row["scratch"], 100 * (row["pretrained"] - row["scratch"])


def _chapter_markdown() -> str:
    """Chapter 05's comment text as one line (a quote may wrap anywhere)."""
    lines = [re.sub(r"^# ?", "", line) for line in CHAPTER.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    return re.sub(r"\s+", " ", " ".join(lines))


def test_cpu_build_meets_the_quality_bars(report):
    m = {name: entry["metrics"] for name, entry in report["models"].items()}
    assert m["sentiment"]["accuracy"] >= 0.90
    assert m["topic"]["accuracy"] >= 0.90
    assert m["ner"]["entity_f1"] >= 0.85
    assert m["qa"]["f1"] >= 75
    assert m["translation"]["bleu_greedy"] >= 30
    for task in ("sentiment", "ner"):
        for labels in (32, 128):
            assert _cell(report, task, labels)[2] >= 10, f"{task} at {labels} labels gains less than 10 points"


def test_chapter_05_quotes_the_cpu_build(report):
    text = _chapter_markdown()
    quoted = set()
    for match in FULL_QUOTE.finditer(text):
        task, labels = match.group(1).lower(), int(match.group(2).replace(",", ""))
        said = [float(x) for x in match.groups()[2:]]
        built = _cell(report, task, labels)
        for a, b, tol in zip(said, built, (SCORE_TOLERANCE, SCORE_TOLERANCE, GAIN_TOLERANCE)):
            assert abs(a - b) <= tol, (f"chapter 05 quotes «{match.group(0)}»; the cpu build in {FOLDER} gives "
                                       f"{built[0]:.3f} vs {built[1]:.3f} ({built[2]:+.1f}), tolerance {tol}: {REBUILD}")
        quoted.add((task, labels))
    for match in GAIN_QUOTE.finditer(text):
        task, labels, said = match.group(1).lower(), int(match.group(2).replace(",", "")), float(match.group(3))
        built = _cell(report, task, labels)[2]
        assert abs(said - built) <= GAIN_TOLERANCE, (f"chapter 05 quotes «{match.group(0)}»; the cpu build in {FOLDER} "
                                                     f"gives {built:+.1f} points (tolerance {GAIN_TOLERANCE}): {REBUILD}")
        quoted.add((task, labels))
    missing = REQUIRED - quoted
    assert not missing, f"chapter 05 no longer quotes the cpu build's {sorted(missing)} in the forms this test reads"


def test_the_quote_forms_are_read():
    """The patterns find what they should, so a quote cannot slip past the comparison unread."""
    text = "Sentiment at 32 labels: pretrained 0.89 vs scratch 0.60 (+29.5 points); NER at 1,024 labels: -2.0 points."
    full, gain = FULL_QUOTE.search(text), GAIN_QUOTE.search(text)
    assert full and full.groups() == ("Sentiment", "32", "0.89", "0.60", "+29.5")
    assert gain and gain.groups() == ("NER", "1,024", "-2.0")
    assert FULL_QUOTE.search(_chapter_markdown()), "chapter 05 quotes no full transfer cell"


# The README's real-vs-mini table: `| task | labels | model | parameters | test ± sd | probes ± sd | s |`
README = REPO / "README.md"
REAL_ROW = re.compile(r"^\| (sentiment|topic) \| (\d+) \| (mini|real) \| [\d,]+ \| ([\d.]+) ± [\d.]+ \| ([\d.]+) ± [\d.]+ \|",
                      re.M)
REAL_TOLERANCE = 0.05  # means over three seeds; a 32-label real run varies by ±0.12 from seed to seed


def test_readme_quotes_the_real_stage_of_the_cpu_build(report):
    if "real" not in report:
        pytest.skip(f"the cpu build in {FOLDER} has no real-model stage; add it with labkit build --scale cpu --real-only")
    from labkit.compare import summarise

    ours = {(s["task"], s["labels"], s["model"]): s for s in summarise(report["real"]["comparison"])}
    quoted = REAL_ROW.findall(README.read_text(encoding="utf-8"))
    assert {(t, int(n), m) for t, n, m, *_ in quoted} == set(ours), "the README's table lacks rows of the build's grid"
    for task, n, model, test, probe in quoted:
        s = ours[(task, int(n), model)]
        assert abs(float(test) - s["test_mean"]) <= REAL_TOLERANCE, (task, n, model, test, s["test_mean"], REBUILD)
        assert abs(float(probe) - s["probe_mean"]) <= REAL_TOLERANCE, (task, n, model, probe, s["probe_mean"], REBUILD)


# The README's mini-GPT table: `| scale | layers × width | parameters | steps | perplexity | seconds |`
GPT_ROW = re.compile(r"^\| (ci|cpu) \| \d+ × \d+ \| ([\d,]+) \| (\d+) \| ([\d.]+) \| \d+ s \|", re.M)


def test_readme_quotes_the_mini_gpt_of_the_cpu_build(report):
    if "text-generation" not in report["models"]:
        pytest.skip(f"the cpu build in {FOLDER} has no mini-GPT; add it with labkit build --scale cpu --gpt-only")
    rows = {scale: (params, steps, ppl) for scale, params, steps, ppl in GPT_ROW.findall(README.read_text(encoding="utf-8"))}
    assert set(rows) == {"ci", "cpu"}, "the README's mini-GPT table lacks a scale"
    g = report["models"]["text-generation"]
    params, steps, ppl = rows["cpu"]
    assert int(params.replace(",", "")) == g["parameters"] and int(steps) == g["steps"], (rows["cpu"], REBUILD)
    assert abs(float(ppl) - g["metrics"]["perplexity"]) <= 0.25, (ppl, g["metrics"]["perplexity"], REBUILD)
    text = " ".join(README.read_text(encoding="utf-8").split())  # one space for every line break
    assert any(s["prompt"] == "chen wei works at" and f'"{s["greedy"]}"' in text
               for s in g["samples"]), "the README's greedy sample is not the build's"
