"""The classroom kit: student copies of the chapters, and grading of submitted notebooks.

Grading runs real checks (``labkit.exercises.ch05``) on small synthetic notebooks: one student
answers with the reference solutions, the others hand in wrong answers, a cell that raises, one
that loops, one that ends its Python, a fabricated result and an unreadable file.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labkit import classroom
from labkit.__main__ import main

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
CH05 = "05_finetuning_classification.ipynb"
TIMEOUT = 3.0  # seconds per cell: the checks take milliseconds; the looping cell costs this once
BOB = ("head_parameters", "sigmoid_of_difference", "macro_f1")  # the exercises bob's notebook has cells for


def _exercise(name: str, body: str, **metadata) -> nbformat.NotebookNode:
    """An exercise cell of chapter 05 as the chapters write them: self-contained, ending with the check."""
    source = f"from labkit.exercises import ch05\n{body}\nch05.check_{name}(answer)"
    return new_code_cell(source, metadata={"tags": ["exercise"], **metadata})


def _solved(name: str) -> nbformat.NotebookNode:
    """An exercise cell whose answer is the reference solution from notebooks/solutions/ch05.py."""
    load = (f"import importlib.util\n"
            f"spec = importlib.util.spec_from_file_location('reference05', {str(SOLUTIONS / 'ch05.py')!r})\n"
            f"reference = importlib.util.module_from_spec(spec)\n"
            f"spec.loader.exec_module(reference)\n"
            f"answer = reference.solution_{name}()")
    return _exercise(name, load)


def _write(path: Path, cells) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


# ----------------------------------------------------------------------------- grading
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade five students once through the command line; return (rows by key, summary text, stderr)."""
    root = tmp_path_factory.mktemp("classroom")
    folder = root / "submitted"
    exercises = classroom.expected_exercises("ch05")
    # alice, in nbgrader's layout (student/assignment/notebook): every exercise right.
    _write(folder / "alice" / "hw5" / CH05, [new_markdown_cell("# Chapter 05"), new_code_cell("x = 1"),
                                             *[_solved(name) for name in exercises]])
    _write(folder / "alice" / "hw5" / ".ipynb_checkpoints" / CH05, [])  # skipped
    _write(folder / "alice" / "scratch.ipynb", [new_code_cell("1 / 0")])  # not a chapter: skipped
    # bob: a wrong answer, a cell that loops (stopped, and the worker restarted), one that raises.
    _write(folder / "bob" / CH05, [_exercise("head_parameters", "answer = 0"),
                                   _exercise("sigmoid_of_difference", "answer = None\nwhile True:\n    pass"),
                                   _exercise("macro_f1", "answer = 1 / 0")])
    # carol: a file that is not a notebook.
    (folder / "carol").mkdir()
    (folder / "carol" / CH05).write_text("{ not a notebook", encoding="utf-8")
    # dan: a made-up result instead of the check's (found by its nbgrader id), a cell that ends
    # its Python; and a chapter 00 notebook without exercise cells.
    made_up = new_code_cell("from labkit.exercises import Feedback\nanswer = 17157\n"
                            "Feedback(\"the head's parameters\", True, 'correct!')",
                            metadata={"tags": ["exercise"], "nbgrader": {"grade_id": "ch05-head_parameters"}})
    _write(folder / "dan" / CH05, [made_up, _exercise("macro_f1", "import os\nanswer = None\nos._exit(3)")])
    _write(folder / "dan" / "00_welcome.ipynb", [new_markdown_cell("# Welcome")])
    # erin: a notebook directly in the folder, outside any student's folder: ignored.
    _write(folder / CH05, [])

    progress: list[str] = []
    graded = classroom.grade(folder, timeout=TIMEOUT, progress=progress.append)
    assert len([line for line in progress if line.startswith("[")]) == 5  # a line per notebook
    assert any(line.startswith(f"ignored {CH05}") for line in progress)
    table = _read_csv(classroom.write_csv(graded, root / "grades.csv"))
    rows = {(r["student"], r["chapter"], r["exercise"]): r for r in table}
    assert len(rows) == len(table), "one row per (student, chapter, exercise)"
    return rows, classroom.summary(graded), exercises


def _read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["student", "chapter", "exercise", "passed", "message", "notebook"]
    return table


def test_grade_expects_every_exercise_of_each_chapter_handed_in(graded):
    rows, _, exercises = graded
    ch00 = classroom.expected_exercises("ch00")
    assert set(BOB) <= set(exercises) and ch00
    assert {k[0] for k in rows} == {"alice", "bob", "carol", "dan"}  # erin's loose notebook is ignored
    for student in ("alice", "bob", "carol", "dan"):
        assert {e for s, c, e in rows if (s, c) == (student, "ch05")} == set(exercises)
        assert {e for s, c, e in rows if (s, c) == (student, "ch00")} == set(ch00)  # dan handed in ch00


def test_grade_passes_the_reference_solutions(graded):
    rows, _, exercises = graded
    for name in exercises:
        row = rows["alice", "ch05", name]
        assert row["passed"] == "1", row
        assert row["notebook"] == f"alice/hw5/{CH05}"
    assert all(rows["alice", "ch00", name]["passed"] == "0" and "no notebook of ch00" in rows["alice", "ch00", name]["message"]
               for name in classroom.expected_exercises("ch00"))


def test_grade_records_wrong_raising_looping_and_missing_cells(graded):
    rows, _, exercises = graded
    bob = {e: rows["bob", "ch05", e] for e in exercises}
    assert all(r["passed"] == "0" for r in bob.values())
    assert bob["head_parameters"]["message"].startswith("not yet")  # the check's own verdict
    assert "stopped after 3 s" in bob["sigmoid_of_difference"]["message"]
    assert "ZeroDivisionError" in bob["macro_f1"]["message"] and "line 2" in bob["macro_f1"]["message"]
    for name in set(exercises) - set(BOB):
        assert "no exercise cell calls ch05.check_" + name in bob[name]["message"]


def test_grade_never_trusts_a_made_up_result_or_crashes_on_a_bad_notebook(graded):
    rows, _, exercises = graded
    dan = {e: rows["dan", "ch05", e] for e in exercises}
    assert dan["head_parameters"]["passed"] == "0"
    assert "must end with ch05.check_head_parameters(answer)" in dan["head_parameters"]["message"]
    assert dan["macro_f1"]["passed"] == "0" and "exit code 3" in dan["macro_f1"]["message"]
    assert all(rows["dan", "ch00", e]["passed"] == "0" for e in classroom.expected_exercises("ch00"))
    for name in exercises:
        assert rows["carol", "ch05", name]["passed"] == "0"
        assert "could not be read" in rows["carol", "ch05", name]["message"]


def test_grade_summary_per_student_and_per_exercise(graded):
    rows, summary, exercises = graded
    n = len(exercises) + len(classroom.expected_exercises("ch00"))
    assert f"| alice | {len(exercises)} | {n} |" in summary
    for student in ("bob", "carol", "dan"):
        assert f"| {student} | 0 | {n} | 0% |" in summary
    assert "| ch05 | head_parameters | 1 | 4 | 25% |" in summary
    assert "rubric" in summary


def test_grade_command_writes_the_csv_and_the_summary(tmp_path, capsys):
    _write(tmp_path / "in" / "ann" / "00_welcome.ipynb", [new_markdown_cell("# Welcome")])  # nothing to run
    out = tmp_path / "out" / "week1.csv"
    assert main(["classroom", "grade", str(tmp_path / "in"), "--out", str(out), "--timeout", "5"]) == 0
    printed = capsys.readouterr()
    assert "[1/1] ann/00_welcome.ipynb: 0/" in printed.err
    assert "| ann | 0 |" in printed.out and str(out) in printed.out
    rows = _read_csv(out)
    assert {r["exercise"] for r in rows} == set(classroom.expected_exercises("ch00"))
    assert "## Per exercise" in (tmp_path / "out" / "week1-summary.md").read_text(encoding="utf-8")


def test_find_submissions_layouts(tmp_path):
    for rel in ("ann/05_x.ipynb", "ann/hw/01_y.ipynb", "ben/.ipynb_checkpoints/05_x.ipynb", "ben/notes.ipynb",
                "05_x.ipynb"):
        _write(tmp_path / rel, [])
    found, loose = classroom.find_submissions(tmp_path)
    assert [(s, p.relative_to(tmp_path).as_posix()) for s, p in found] == [("ann", "ann/05_x.ipynb"),
                                                                           ("ann", "ann/hw/01_y.ipynb")]
    assert [p.name for p in loose] == ["05_x.ipynb"]
    assert classroom.chapter_of("05b_extra.ipynb") == "ch05b" and classroom.chapter_of("notes.ipynb") is None


def test_a_cell_is_evaluated_like_ipython():
    namespace: dict = {}
    assert classroom._evaluate("a = 2\na + 1", namespace) == 3
    assert classroom._evaluate("b = a * 5", namespace) is None and namespace["b"] == 10
    assert classroom._evaluate("if a:\n    a", namespace) is None  # only a last top-level expression counts


# ----------------------------------------------------------------------------- student copies
def _teacher_notebook(folder: Path) -> Path:
    exercise = _exercise("macro_f1", "answer = None  # your code: a float")
    exercise.execution_count = 7
    exercise.outputs = [new_output("execute_result", {"text/plain": "❌ macro-F1: no answer yet"}, execution_count=7)]
    shown = new_code_cell("print('the model learned')", execution_count=1,
                          outputs=[new_output("stream", name="stdout", text="the model learned\n")])
    cells = [new_markdown_cell("# Chapter 05\n\nReplace each `None` and run the cell. "
                               "Solutions: `notebooks/solutions/ch05.py`."),
             new_markdown_cell("Teachers: this takes 20 minutes.", metadata={"tags": ["teacher"]}),
             shown, exercise,
             new_code_cell("answer = 0.7056", metadata={"tags": ["solution"]}),
             new_markdown_cell("**Open experiment.** Change ...", metadata={"tags": ["experiment"]})]
    nb = new_notebook(cells=cells, metadata={"jupytext": {"formats": "ipynb,py:percent"}})
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / CH05)
    (folder / "solutions").mkdir()
    (folder / "solutions" / "ch05.py").write_text("def solution_macro_f1():\n    return 0.7056\n")
    (folder / "glossary.md").write_text("# Glossary\n")
    return folder


def test_student_copies_strip_teacher_notes_and_solutions(tmp_path, capsys):
    source = _teacher_notebook(tmp_path / "notebooks")
    out = tmp_path / "class"
    assert main(["classroom", "student", str(out), "--notebooks", str(source)]) == 0
    assert "wrote 1 chapters" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [CH05, "README.md", "glossary.md"]  # no solutions/
    nb = nbformat.read(out / CH05, as_version=4)
    nbformat.validate(nb)
    tags = [cell.metadata.get("tags", []) for cell in nb.cells]
    assert ["teacher"] not in tags and ["solution"] not in tags and ["experiment"] in tags
    shown, exercise = nb.cells[1], nb.cells[2]
    assert shown.outputs and shown.outputs[0].text == "the model learned\n"  # results stay visible
    assert exercise.outputs == [] and exercise.execution_count is None
    assert exercise.source.splitlines()[1] == "answer = None  # your code: a float"
    assert exercise.metadata["nbgrader"] == {"grade": False, "grade_id": "ch05-macro_f1", "locked": False,
                                             "schema_version": 3, "solution": True, "task": False}
    assert "notebooks/solutions" not in nb.cells[0].source and nb.cells[0].source.endswith("run the cell.")
    assert "jupytext" not in nb.metadata
    assert "exercise" in (out / "README.md").read_text(encoding="utf-8")
    assert nbformat.read(source / CH05, as_version=4).cells[1].metadata["tags"] == ["teacher"]  # source untouched


def test_student_copies_of_the_real_chapters(tmp_path):
    source = tmp_path / "notebooks"
    source.mkdir()
    for path in [*NOTEBOOKS.glob("*.ipynb"), *NOTEBOOKS.glob("*.md")]:
        shutil.copy(path, source)
    shutil.copytree(SOLUTIONS, source / "solutions")
    made = classroom.write_student_copies(source, tmp_path / "class")
    chapters = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if classroom.CHAPTER_FILE.fullmatch(p.name))
    assert list(made.chapters) == chapters and len(chapters) >= 8
    written = sorted(p.relative_to(made.out).as_posix() for p in made.out.rglob("*"))
    assert written == sorted(chapters + ["README.md"] + (["glossary.md"] if (NOTEBOOKS / "glossary.md").exists() else []))
    for name in chapters:
        teacher = nbformat.read(source / name, as_version=4)
        student = nbformat.read(made.out / name, as_version=4)
        nbformat.validate(student)
        kept = [c for c in teacher.cells if not {"teacher", "solution"} & set(c.metadata.get("tags", []))]
        assert [c.source for c in student.cells if c.cell_type == "code"] == \
               [c.source for c in kept if c.cell_type == "code"]
        for before, after in zip([c for c in kept if c.cell_type == "code"],
                                 [c for c in student.cells if c.cell_type == "code"]):
            if "exercise" in after.metadata.get("tags", []):
                assert after.outputs == [] and after.metadata["nbgrader"]["solution"] is True
            else:
                assert after.outputs == before.outputs  # stored results kept
        assert not any({"teacher", "solution"} & set(c.metadata.get("tags", [])) for c in student.cells)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("argv", [["grade", "{tmp}/missing"], ["grade", "{tmp}"], ["student", "{tmp}/out", "--notebooks", "{tmp}/missing"],
                                  ["student", "{tmp}", "--notebooks", "{tmp}"], ["grade", "{tmp}", "--out", "{tmp}"]])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, argv):
    _write(tmp_path / "05_x.ipynb", [])  # a notebook outside any student's folder
    assert main(["classroom", *[a.format(tmp=tmp_path) for a in argv]]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("labkit classroom: error: ") and "\n" not in err and "Traceback" not in err


def test_a_notebook_given_by_a_relative_path_is_graded(tmp_path, monkeypatch):
    """The worker runs in the notebook's folder; a path relative to the caller's folder must still work."""
    _write(tmp_path / "sub" / CH05, [_solved("macro_f1")])
    monkeypatch.chdir(tmp_path)
    rows = {g.exercise: g for g in classroom.grade_notebook(Path("sub") / CH05, "alice", timeout=30)}
    assert rows["macro_f1"].passed, rows["macro_f1"].message
