"""The chapters as files: paired and in sync, executed, installable on Colab, and their exercises solvable.

Running the notebooks themselves is nbval's job:
``LAB_SCALE=ci pytest --nbval-lax notebooks/NN_*.ipynb``. These tests only read files, so they
take seconds.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import re
from pathlib import Path

import jupytext
import pytest

from labkit.exercises import Feedback

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
CHAPTER = re.compile(r"\d\d[a-z]?_\w+")
STEMS = sorted({p.stem for p in NOTEBOOKS.glob("[0-9][0-9]*_*") if p.suffix in (".ipynb", ".py") and CHAPTER.fullmatch(p.stem)})
IPYNBS = [NOTEBOOKS / f"{s}.ipynb" for s in STEMS if (NOTEBOOKS / f"{s}.ipynb").exists()]
MAX_BYTES = 1_000_000
ABSOLUTE_PATH = re.compile(r"(/tmp/|/home/|/root/|/work/|/Users/|[A-Z]:\\\\Users)")

# Every exercise: (chapter, name), found from the checks. The check is
# labkit.exercises.<chapter>.check_<name>; the reference answer is solution_<name>() in
# notebooks/solutions/<chapter>.py, and the chapter's notebook calls the check.
def _discover_exercises() -> list[tuple[str, str]]:
    import pkgutil

    import labkit.exercises as package

    found = []
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        if re.fullmatch(r"ch\d\d[a-z]?", module):
            names = vars(importlib.import_module(f"labkit.exercises.{module}"))
            found += [(module, n[len("check_"):]) for n in sorted(names) if n.startswith("check_") and callable(names[n])]
    return found


EXERCISES = _discover_exercises()


def _ids(paths):
    return [p.name for p in paths]


def _code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _skipped(cell: dict) -> bool:
    return "nbval-skip" in cell.get("metadata", {}).get("tags", [])


def test_every_chapter_has_exercises():
    assert {f"ch0{i}" for i in range(8)} <= {c for c, _ in EXERCISES}, "a chapter lost its exercises"
    assert len(EXERCISES) >= 24


def test_there_are_chapters():
    assert {"00_welcome", "01_self_attention", "02_mini_transformer", "03_data_and_tokenization"} <= set(STEMS)


# ----------------------------------------------------------------------------- (a) pairs in sync
@pytest.mark.parametrize("stem", STEMS)
def test_ipynb_and_py_are_paired_and_in_sync(stem):
    ipynb, py = NOTEBOOKS / f"{stem}.ipynb", NOTEBOOKS / f"{stem}.py"
    assert ipynb.exists() and py.exists(), f"{stem} needs both .ipynb and .py (jupytext --set-formats ipynb,py:percent)"
    from_ipynb, from_py = jupytext.read(ipynb), jupytext.read(py)
    assert "py:percent" in from_py.metadata.get("jupytext", {}).get("formats", ""), f"{py.name} is not paired"
    cells_ipynb = [(c.cell_type, c.source) for c in from_ipynb.cells]
    cells_py = [(c.cell_type, c.source) for c in from_py.cells]
    assert len(cells_ipynb) == len(cells_py), f"{stem}: {len(cells_ipynb)} cells in .ipynb, {len(cells_py)} in .py; run jupytext --sync"
    for i, (a, b) in enumerate(zip(cells_ipynb, cells_py)):
        assert a == b, f"{stem} cell {i} differs between .ipynb and .py; run jupytext --sync"


# ----------------------------------------------------------------------------- (b) executed, tidy
@pytest.mark.parametrize("path", IPYNBS, ids=_ids(IPYNBS))
def test_notebook_has_stored_outputs(path):
    cells = [c for c in _code_cells(path) if not _skipped(c)]
    unexecuted = [i for i, c in enumerate(cells) if c.get("execution_count") is None]
    assert not unexecuted, f"{path.name}: code cells {unexecuted} were never run; execute and store outputs"
    assert any(c.get("outputs") for c in cells), f"{path.name} has no stored outputs"
    errors = [o.get("ename") for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} stores errors: {errors}"


@pytest.mark.parametrize("path", IPYNBS, ids=_ids(IPYNBS))
def test_notebook_is_small_and_has_no_machine_paths(path):
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size:,} bytes (limit {MAX_BYTES:,})"
    outputs = json.dumps([c.get("outputs", []) for c in _code_cells(path)])
    found = ABSOLUTE_PATH.search(outputs)
    assert found is None, f"{path.name} stores an absolute path ({found.group(0)}…) in its outputs"


# ----------------------------------------------------------------------------- (c) Colab install cell
@pytest.mark.parametrize("path", IPYNBS, ids=_ids(IPYNBS))
def test_first_code_cell_installs_the_lab_and_is_skipped_by_nbval(path):
    first = _code_cells(path)[0]
    assert _skipped(first), f"{path.name}: tag the first code cell 'nbval-skip'"
    source = _source(first)
    for needle in ('find_spec("labkit")', "LAB_REPO", "git", "pip", "install", "[lab]"):
        assert needle in source, f"{path.name}: the install cell should contain {needle!r}"


# ----------------------------------------------------------------------------- (d) exercises
def _solutions(chapter: str):
    path = SOLUTIONS / f"{chapter}.py"
    spec = importlib.util.spec_from_file_location(f"lab_solutions_{chapter}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(chapter: str, name: str):
    return getattr(importlib.import_module(f"labkit.exercises.{chapter}"), f"check_{name}")


@pytest.mark.parametrize("chapter,name", EXERCISES, ids=[f"{c}-{n}" for c, n in EXERCISES])
def test_reference_solution_passes(chapter, name):
    answer = getattr(_solutions(chapter), f"solution_{name}")()
    feedback = _check(chapter, name)(answer)
    assert isinstance(feedback, Feedback) and feedback.passed, feedback


@pytest.mark.parametrize("chapter,name", EXERCISES, ids=[f"{c}-{n}" for c, n in EXERCISES])
@pytest.mark.parametrize("empty", [None, ...], ids=["None", "Ellipsis"])
def test_empty_answer_is_not_attempted(chapter, name, empty):
    feedback = _check(chapter, name)(empty)
    assert isinstance(feedback, Feedback) and not feedback.passed and "no answer yet" in feedback.message


@pytest.mark.parametrize("chapter,name", EXERCISES, ids=[f"{c}-{n}" for c, n in EXERCISES])
@pytest.mark.parametrize("wrong", ["not an answer", 0, [1, 2, 3], {"a": 1}, lambda *a: None],
                         ids=["str", "zero", "list", "dict", "function"])
def test_wrong_answer_fails_without_raising(chapter, name, wrong):
    feedback = _check(chapter, name)(wrong)
    assert isinstance(feedback, Feedback) and not feedback.passed and feedback.message


@pytest.mark.parametrize("chapter", sorted({c for c, _ in EXERCISES}))
def test_every_check_a_chapter_calls_has_a_row(chapter):
    """The table covers each check the chapter's notebook calls, so every exercise has a tested solution."""
    notebook = next(NOTEBOOKS.glob(f"{chapter[2:]}_*.py"))
    called = set(re.findall(rf"\b{chapter}\.check_(\w+)\(", notebook.read_text(encoding="utf-8")))
    assert called, f"{notebook.name} calls no {chapter}.check_* function"
    assert called == {n for c, n in EXERCISES if c == chapter}, f"{notebook.name} calls {sorted(called)}"


# ----------------------------------------------------------------------------- (e) stored outputs at cpu scale
STORED_LINE = "*Stored outputs: `LAB_SCALE=cpu`, with a cpu build present.*"


@pytest.mark.parametrize("stem", STEMS)
def test_first_cell_says_the_stored_outputs_come_from_the_cpu_scale(stem):
    first = jupytext.read(NOTEBOOKS / f"{stem}.py").cells[0]
    assert first.cell_type == "markdown" and STORED_LINE in first.source, f"{stem}: end the first cell with {STORED_LINE!r}"


@pytest.mark.parametrize("path", IPYNBS, ids=_ids(IPYNBS))
def test_stored_outputs_were_made_at_the_cpu_scale(path):
    """Every chapter prints LAB_SCALE in its setup cell; the stored print must say 'cpu' (make notebooks)."""
    printed = [o.get("text", "") for c in _code_cells(path) for o in c.get("outputs", []) if o.get("output_type") == "stream"]
    scales = re.findall(r"LAB_SCALE\s*=\s*'(\w+)'", "".join("".join(t) if isinstance(t, list) else t for t in printed))
    assert scales, f"{path.name}: the setup cell should print LAB_SCALE = '...'"
    assert set(scales) == {"cpu"}, f"{path.name} stores outputs made at LAB_SCALE={scales[0]!r}; run make notebooks"


def test_run_times_are_measured_for_every_chapter():
    times = json.loads((NOTEBOOKS / "run_times.json").read_text(encoding="utf-8"))
    missing = [s for s in STEMS if s not in times.get("cpu", {})]
    assert not missing, f"no measured cpu run time for {missing}: run make notebooks"
    slow = {s: t for s, t in times["cpu"].items() if s in STEMS and t > 180}
    assert not slow, f"chapters over 3 minutes at cpu scale with a build present: {slow}"


RUNS_IN = re.compile(r"the code runs in about (\d+) s at cpu scale with a build present")


@pytest.mark.parametrize("stem", STEMS)
def test_each_chapter_states_its_measured_run_time(stem):
    """The first cell's "runs in about N s" agrees with notebooks/run_times.json (make notebooks measures it)."""
    measured = json.loads((NOTEBOOKS / "run_times.json").read_text(encoding="utf-8")).get("cpu", {}).get(stem)
    text = re.sub(r"\s*\n#?\s*", " ", jupytext.read(NOTEBOOKS / f"{stem}.py").cells[0].source)
    stated = RUNS_IN.search(text)
    assert stated, f"{stem}: say 'the code runs in about N s at cpu scale with a build present' in the first cell"
    assert measured is not None, f"{stem}: no measured time in run_times.json; run make notebooks"
    assert abs(int(stated.group(1)) - measured) <= max(15, 0.5 * measured), \
        f"{stem} says {stated.group(1)} s; make notebooks measured {measured} s"
