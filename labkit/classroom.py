"""The classroom kit: student copies of the chapters, and grading of the notebooks students hand in.

``labkit classroom student OUT`` writes the chapters without teacher notes or solutions;
``labkit classroom grade FOLDER`` runs every exercise cell of every submitted notebook and
writes one CSV row per (student, chapter, exercise).

Both rely only on the chapters' conventions:

- an exercise is a code cell tagged ``exercise``, self-contained, whose last line is
  ``chNN.check_<name>(answer)``; the check returns a :class:`labkit.exercises.Feedback`;
- a markdown cell tagged ``teacher`` is a note for teachers; a cell tagged ``solution`` holds
  a solution; neither goes to students;
- chapter ``NN_name.ipynb`` (or ``NNb_name.ipynb``) has its checks in ``labkit.exercises.chNN``.

Grading runs each notebook's exercise cells in one fresh Python process (a *worker*), each
cell alone: in a new namespace, with the check modules restored and the hints reset before
it, and with a time limit. A cell that loops is stopped and the worker restarted for the
cells after it. Student code runs with the grader's permissions: it is not a sandbox.
"""
from __future__ import annotations

import ast
import csv
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CHAPTER_FILE", "chapter_of", "expected_exercises", "exercise_of", "student_version",
           "write_student_copies", "StudentCopies", "Grade", "find_submissions", "grade_notebook",
           "grade", "write_csv", "summary"]

CHAPTER_FILE = re.compile(r"(\d\d[a-z]?)_\w+\.ipynb")  # 05_finetuning_classification.ipynb, 05b_x.ipynb
CHECK_CALL = re.compile(r"\b(?:(ch\d\d[a-z]?)\s*\.\s*)?check_(\w+)\s*\(")
GRADE_ID = re.compile(r"(ch\d\d[a-z]?)-(\w+)")
EMPTY_ANSWER = re.compile(r"^answer\s*=\s*(None|\.\.\.)\b", re.MULTILINE)
SOLUTIONS_POINTER = re.compile(r"\s*(?:Reference solutions are in|Solutions:)\s+`notebooks/solutions/[^`]*`\.")
STARTUP_SECONDS = 120.0  # a worker's allowance to start Python and import torch and the checks
CELL_FILENAME = "<exercise cell>"


def _nbformat():
    try:
        import nbformat
    except ModuleNotFoundError as err:  # nbformat comes with the lab extra (jupyterlab)
        raise ModuleNotFoundError(f"the classroom kit needs nbformat ({err}); "
                                  f'install it with pip install -e ".[lab]"') from None
    return nbformat


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _is_exercise(cell) -> bool:
    return cell.get("cell_type") == "code" and "exercise" in _tags(cell)


def chapter_of(path: str | Path) -> str | None:
    """``"ch05"`` for ``05_finetuning_classification.ipynb`` (the module of its checks); None if not a chapter."""
    match = CHAPTER_FILE.fullmatch(Path(path).name)
    return f"ch{match.group(1)}" if match else None


def expected_exercises(chapter: str) -> list[str]:
    """The exercise names of a chapter: its ``check_<name>`` functions in ``labkit.exercises.<chapter>``, in order."""
    import importlib

    try:
        module = importlib.import_module(f"labkit.exercises.{chapter}")
    except ModuleNotFoundError as err:
        if err.name == f"labkit.exercises.{chapter}":
            return []  # a chapter without exercises
        raise ValueError(f"cannot import labkit.exercises.{chapter} ({err}); is the lab fully installed?") from None
    except Exception as err:  # a check module that does not import cannot grade anything
        raise ValueError(f"cannot import labkit.exercises.{chapter} ({type(err).__name__}: {err})") from None
    return [name[len("check_"):] for name, value in vars(module).items()
            if name.startswith("check_") and callable(value)]


def exercise_of(cell, chapter: str) -> tuple[str, str] | None:
    """(module, name) of the check an exercise cell calls: ``("ch05", "macro_f1")`` for a cell
    ending ``ch05.check_macro_f1(answer)``. Read from the last check call in the cell's code, else
    from its nbgrader ``grade_id`` (``ch05-macro_f1``); None if neither names one."""
    calls = CHECK_CALL.findall(_source(cell))
    if calls:
        module, name = calls[-1]
        return module or chapter, name
    match = GRADE_ID.fullmatch(str(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")))
    return (match.group(1), match.group(2)) if match else None


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


# ----------------------------------------------------------------------------- student copies
def _nbgrader_metadata(grade_id: str) -> dict:
    """An nbgrader "autograded answer" cell: the student's to edit, graded by nothing in nbgrader."""
    return {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
            "solution": True, "task": False}


def student_version(nb, chapter: str) -> tuple[object, dict, list[str]]:
    """The student copy of one chapter notebook (an nbformat NotebookNode; ``nb`` is left as it was).

    Drops cells tagged ``teacher`` or ``solution``; clears the outputs of exercise cells and
    gives them nbgrader cell metadata; keeps every other output; drops the pointer to the
    solutions folder from the text and the jupytext pairing from the metadata (a student's
    save then writes only the .ipynb). Returns (notebook, counts, warnings).
    """
    import copy

    nb = copy.deepcopy(nb)
    counts = {"teacher": 0, "solution": 0, "exercise": 0}
    warnings: list[str] = []
    kept, grade_ids = [], set()
    for cell in nb.cells:
        tags = _tags(cell)
        if "teacher" in tags or "solution" in tags:
            counts["teacher" if "teacher" in tags else "solution"] += 1
            continue
        if _is_exercise(cell):
            counts["exercise"] += 1
            cell.outputs, cell.execution_count = [], None
            found = exercise_of(cell, chapter)
            grade_id = "-".join(found) if found else f"{chapter}-exercise"
            while grade_id in grade_ids:  # nbgrader needs ids unique within a notebook
                grade_id += "_"
            grade_ids.add(grade_id)
            cell.metadata["nbgrader"] = _nbgrader_metadata(grade_id)
            if not EMPTY_ANSWER.search(_source(cell)):
                warnings.append(f"the exercise cell of {grade_id} has no `answer = None` line: "
                                "check that it holds no answer")
        elif cell.cell_type == "markdown":
            cell.source = SOLUTIONS_POINTER.sub("", _source(cell))
        kept.append(cell)
    nb.cells = kept
    nb.metadata.pop("jupytext", None)
    if not counts["exercise"] and expected_exercises(chapter):
        warnings.append("no cell is tagged `exercise`, so the grader will find no answers in this chapter")
    return nb, counts, warnings


STUDENT_README = """\
# Foundation Model Lab: your notebooks

These are the lab's chapters, one notebook each (`00_welcome.ipynb`, `01_self_attention.ipynb`,
...), with their results already shown, so you can read a chapter before you run it. The lab's
library, `labkit`, must be installed: your teacher tells you how (usually: clone the course's copy
of the lab and run `make lab`, or on Colab run each notebook's first code cell). `glossary.md`
lists the key terms in English and Chinese.

## Exercises

Each chapter ends with exercises. In each exercise cell, replace `answer = None` with your
answer and run the cell: its last line, `chNN.check_<name>(answer)`, shows ✅, or ❌ with a
hint. Run it again for a stronger hint.

Your notebooks are graded by running each exercise cell **on its own, in a fresh Python**. So:

- the cell must import and compute everything your answer needs; a variable from an earlier
  cell does not exist when it is graded;
- keep the check call as the cell's last line; what it returns is your result;
- do not delete, merge or split exercise cells, or copy your answer into a new cell: the
  cell's tag (`exercise`) is how the grader finds it. Add new cells for scratch work;
- a cell that runs too long (a minute, unless your teacher says otherwise) is stopped and
  counts as not passed.

## Open experiments

A chapter's **Open experiment** asks you to change something, measure it and explain what you
see. Write your answer in a markdown cell right below it. Your teacher reads it with the
rubric the experiment gives (**Change**, **Measure**, **A good answer**).

## Handing in

Save each notebook (in Jupyter: *Kernel → Restart Kernel and Run All Cells* first, to be sure
it runs), keep the file names as they are, and hand in the `.ipynb` files the way your teacher
asks.
"""


@dataclass(frozen=True)
class StudentCopies:
    """What ``write_student_copies`` wrote: the chapters, and what it took out of them."""
    out: Path
    chapters: tuple[str, ...]
    exercise_cells: int
    teacher_cells: int
    solution_cells: int
    warnings: tuple[str, ...]


def write_student_copies(notebooks: str | Path, out: str | Path) -> StudentCopies:
    """Write the student copy of every chapter of ``notebooks`` (``NN_name.ipynb``) into ``out``,
    with ``glossary.md`` and a README for students. Never copies ``solutions/``."""
    nbformat = _nbformat()
    notebooks, out = Path(notebooks), Path(out)
    if not notebooks.is_dir():
        raise FileNotFoundError(f"no notebooks folder {notebooks}; pass --notebooks the lab's notebooks/ folder")
    chapters = sorted(p for p in notebooks.iterdir() if CHAPTER_FILE.fullmatch(p.name))
    if not chapters:
        raise ValueError(f"{notebooks} has no chapter notebooks (NN_name.ipynb); pass --notebooks the lab's notebooks/ folder")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; give a folder for the student copies")
    if out.resolve() == notebooks.resolve():
        raise ValueError(f"the student copies would overwrite the chapters in {notebooks}; give another folder")
    out.mkdir(parents=True, exist_ok=True)
    totals = {"teacher": 0, "solution": 0, "exercise": 0}
    warnings = []
    for path in chapters:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as err:  # an unreadable chapter: say which, and stop
            raise ValueError(f"cannot read {path} ({type(err).__name__}: {err}); fix or remove it") from None
        student, counts, notes = student_version(nb, chapter_of(path))
        for key in totals:
            totals[key] += counts[key]
        warnings += [f"{path.name}: {note}" for note in notes]
        nbformat.write(student, out / path.name)
    if (notebooks / "glossary.md").is_file():
        shutil.copyfile(notebooks / "glossary.md", out / "glossary.md")
    (out / "README.md").write_text(STUDENT_README, encoding="utf-8")
    return StudentCopies(out, tuple(p.name for p in chapters), totals["exercise"], totals["teacher"],
                         totals["solution"], tuple(warnings))


# ----------------------------------------------------------------------------- grading
@dataclass(frozen=True)
class Grade:
    """One row of the grades: did ``student`` pass ``exercise`` of ``chapter``, and why (not)."""
    student: str
    chapter: str
    exercise: str
    passed: bool
    message: str
    notebook: str  # the submitted file, relative to the graded folder ("" when none was submitted)


def find_submissions(folder: str | Path) -> tuple[list[tuple[str, Path]], list[Path]]:
    """(student, notebook) pairs under ``folder`` — ``folder/<student>/NN_name.ipynb`` or deeper,
    as nbgrader's ``folder/<student>/<assignment>/NN_name.ipynb`` — and the chapter notebooks
    ignored because they lie directly in ``folder``. Checkpoints and hidden folders are skipped."""
    folder = Path(folder)
    found, loose = [], []
    for path in sorted(folder.rglob("*.ipynb")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not CHAPTER_FILE.fullmatch(path.name):
            continue
        if len(rel.parts) < 2:
            loose.append(path)
        else:
            found.append((rel.parts[0], path))
    return found, loose


def _worker_command() -> list[str]:
    return [sys.executable, "-c", "from labkit.classroom import _worker; _worker()"]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])  # so the worker imports this labkit
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class _Worker:
    """A Python process that runs exercise cells and reports one JSON line per cell."""

    def __init__(self, cells: list[dict], cwd: Path, modules: list[str]):
        self.log = tempfile.TemporaryFile()
        kwargs = {"start_new_session": True} if os.name == "posix" else {}
        self.proc = subprocess.Popen(_worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, cwd=cwd, env=_worker_env(), text=True,
                                     encoding="utf-8", errors="replace", **kwargs)
        self.lines: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            self.proc.stdin.write(json.dumps({"cells": cells, "modules": modules, "cwd": str(cwd)}))
            self.proc.stdin.close()
        except OSError:  # it ended already; why_it_ended() says why
            pass

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                continue
        self.lines.put(None)  # the worker has ended

    def next(self, seconds: float) -> dict | None:
        """The worker's next report; ``{"timeout": True}`` after ``seconds``; None if it ended."""
        try:
            return self.lines.get(timeout=seconds)
        except queue.Empty:
            return {"timeout": True}

    def why_it_ended(self) -> str:
        code = self.proc.wait()
        self.log.seek(0)
        lines = [line for line in self.log.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return f"exit code {code}" + (f": {lines[-1].strip()[:200]}" if lines else "")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                if os.name == "posix":
                    os.killpg(self.proc.pid, 9)  # the worker and anything its cells started
                else:
                    self.proc.kill()
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.wait()
        self.reader.join(timeout=5)
        self.proc.stdout.close()
        self.log.close()


def _run_cells(cells: list[dict], cwd: Path, timeout: float) -> list[tuple[bool, str]]:
    """Run exercise cells (``{"source", "module", "name"}``), each alone, and return (passed, message) per cell."""
    results: list[tuple[bool, str]] = []
    while len(results) < len(cells):
        todo = cells[len(results):]
        worker = _Worker(todo, cwd, sorted({c["module"] for c in todo}))
        try:
            report = worker.next(STARTUP_SECONDS)
            if report is None or "timeout" in report or not report.get("ready"):
                why = "it took too long" if report and "timeout" in report else worker.why_it_ended()
                return results + [(False, f"the grader could not start Python for this notebook ({why})")] * len(todo)
            for _ in todo:
                report = worker.next(timeout)
                if report is None:
                    results.append((False, f"the cell ended the Python process that ran it ({worker.why_it_ended()})"))
                    break
                if "timeout" in report:
                    results.append((False, f"the cell was stopped after {timeout:g} s (an endless loop, or too slow)"))
                    break
                results.append((bool(report["passed"]), str(report["message"])))
        finally:
            worker.stop()
    return results


def grade_notebook(path: str | Path, student: str, *, root: str | Path | None = None,
                   timeout: float = 60.0) -> list[Grade]:
    """Grade one submitted chapter notebook: one :class:`Grade` per exercise the chapter has
    (``labkit.exercises.chNN``'s checks), plus one per other check its exercise cells call.
    Never raises for a bad notebook or cell: those give rows that did not pass, with the reason."""
    nbformat = _nbformat()
    path = Path(path).resolve()  # the worker runs in the notebook's folder: a relative path would not resolve there
    root = Path(root).resolve() if root is not None else None
    chapter = chapter_of(path)
    if chapter is None:
        raise ValueError(f"{path.name} is not a chapter notebook (NN_name.ipynb)")
    where = path.relative_to(root).as_posix() if root else str(path)
    expected = expected_exercises(chapter)

    def row(exercise: str, passed: bool, message: str) -> Grade:
        return Grade(student, chapter, exercise, passed, message, where)

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # not JSON, not a notebook, not UTF-8...
        reason = f"the notebook could not be read ({type(err).__name__}: {str(err)[:160]})"
        return [row(name, False, reason) for name in expected]
    cells, untagged = [], 0
    for cell in nb.cells:
        if not _is_exercise(cell):
            untagged += cell.get("cell_type") == "code" and bool(CHECK_CALL.search(_source(cell)))
            continue
        found = exercise_of(cell, chapter)
        if found:
            cells.append({"source": _source(cell), "module": found[0], "name": found[1]})
    results = _run_cells(cells, path.parent, timeout) if cells else []

    outcome: dict[tuple[str, str], tuple[bool, str]] = {}  # passed if any of its cells passed
    for cell, (passed, message) in zip(cells, results):
        key = (cell["module"], cell["name"])
        if not outcome.get(key, (False, ""))[0]:
            outcome[key] = (passed, message)
    missing = (f"no exercise cell calls {chapter}.check_{{}}" +
               (" (the notebook calls checks in cells not tagged `exercise`: were the cell tags removed?)"
                if untagged else ""))
    rows = [row(name, *outcome.pop((chapter, name), (False, missing.format(name)))) for name in expected]
    rows += [row(name if module == chapter else f"{module}.{name}", *result) for (module, name), result in outcome.items()]
    return rows


def grade(folder: str | Path, *, timeout: float = 60.0, progress=None) -> list[Grade]:
    """Grade every chapter notebook under ``folder`` (``folder/<student>/.../NN_name.ipynb``).

    A student who handed in no notebook of a chapter that others handed in gets that chapter's
    exercises as not passed. ``progress(line)`` is called once per notebook.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}; give the folder of submissions (FOLDER/<student>/NN_name.ipynb)")
    found, loose = find_submissions(folder)
    if not found:
        hint = f" ({len(loose)} notebooks lie directly in it: put each student's in a subfolder)" if loose else ""
        raise ValueError(f"no submitted chapter notebooks under {folder}{hint}; "
                         "expected FOLDER/<student>/NN_name.ipynb")
    say = progress or (lambda line: None)
    for path in loose:
        say(f"ignored {path.name}: not in a student's folder")
    rows: list[Grade] = []
    for k, (student, path) in enumerate(found, 1):
        start = time.perf_counter()
        graded = grade_notebook(path, student, root=folder, timeout=timeout)
        rows += graded
        say(f"[{k}/{len(found)}] {path.relative_to(folder).as_posix()}: {sum(g.passed for g in graded)}/{len(graded)} "
            f"passed ({time.perf_counter() - start:.1f} s)")
    chapters = sorted({chapter_of(p) for _, p in found})
    for student in sorted({s for s, _ in found}):
        handed_in = {chapter_of(p) for s, p in found if s == student}
        for chapter in chapters:
            if chapter not in handed_in:
                rows += [Grade(student, chapter, name, False, f"no notebook of {chapter} was handed in", "")
                         for name in expected_exercises(chapter)]
    return sorted(rows, key=lambda g: (g.student, g.chapter))


COLUMNS = ("student", "chapter", "exercise", "passed", "message", "notebook")


def write_csv(rows: list[Grade], path: str | Path) -> Path:
    """Write the grades as CSV: student, chapter, exercise, passed (1 or 0), message, notebook."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give --out a file name such as {path / 'grades.csv'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for g in rows:
            out.writerow([g.student, g.chapter, g.exercise, int(g.passed), g.message, g.notebook])
    return path


def _unique(rows: list[Grade]) -> dict[tuple[str, str, str], bool]:
    """(student, chapter, exercise) -> passed; one student's two notebooks of a chapter count once, passed if either did."""
    best: dict[tuple[str, str, str], bool] = {}
    for g in rows:
        key = (g.student, g.chapter, g.exercise)
        best[key] = best.get(key, False) or g.passed
    return best


def summary(rows: list[Grade]) -> str:
    """Markdown tables: per student, exercises passed of those graded; per exercise, the share of students who passed."""
    best = _unique(rows)
    students: dict[str, list[bool]] = {}
    exercises: dict[tuple[str, str], list[bool]] = {}
    for (student, chapter, exercise), ok in best.items():
        students.setdefault(student, []).append(ok)
        exercises.setdefault((chapter, exercise), []).append(ok)
    lines = ["## Per student", "", "| student | passed | of | share |", "|---|---:|---:|---:|"]
    lines += [f"| {s} | {sum(v)} | {len(v)} | {sum(v) / len(v):.0%} |" for s, v in sorted(students.items())]
    lines += ["", "## Per exercise", "", "| chapter | exercise | passed | of | share |", "|---|---|---:|---:|---:|"]
    by_chapter = sorted(exercises.items(), key=lambda item: item[0][0])  # stable: exercises keep their order
    lines += [f"| {c} | {e} | {sum(v)} | {len(v)} | {sum(v) / len(v):.0%} |" for (c, e), v in by_chapter]
    lines += ["", "Open experiments are not graded here: read them with their rubric."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the worker
def _evaluate(source: str, namespace: dict):
    """Run a cell's code as IPython does and return the value of its last line if that is an expression."""
    tree = ast.parse(source, CELL_FILENAME)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, CELL_FILENAME, "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), CELL_FILENAME, "eval"), namespace)


def _raised(err: BaseException) -> str:
    """'raised NameError: ... (line 3)', with the line of the cell where it happened."""
    line = None
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == CELL_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    text = f"the cell raised {type(err).__name__}: {str(err)[:200]}" + (f" (line {line})" if line else "")
    if isinstance(err, NameError):
        text += "; an exercise cell is graded alone, so it must import and define everything it uses"
    return text


def _worker() -> None:
    """Run the cells sent on stdin (JSON) one by one, each alone; report on the original stdout."""
    import builtins
    import functools
    import importlib
    import random

    job = json.loads(sys.stdin.read())
    report = os.fdopen(os.dup(1), "w", encoding="utf-8")  # the reports' own channel...
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # ...so that nothing a cell prints, even from C, can garble them
    sys.stdout = open(os.devnull, "w", encoding="utf-8")

    def send(message: dict) -> None:
        report.write(json.dumps(message) + "\n")
        report.flush()

    exercises = importlib.import_module("labkit.exercises")
    returned: list = []  # (module, name, feedback) for every call of a check, this cell
    pristine: dict[str, dict] = {}
    for module_name in job["modules"]:
        try:
            module = importlib.import_module(f"labkit.exercises.{module_name}")
        except ModuleNotFoundError:
            continue
        for attr, check in list(vars(module).items()):
            if attr.startswith("check_") and callable(check):
                def recording(answer, _check=check, _key=(module_name, attr[len("check_"):])):
                    feedback = _check(answer)
                    returned.append((*_key, feedback))
                    return feedback
                setattr(module, attr, functools.wraps(check)(recording))
        pristine[module.__name__] = dict(vars(module))
    pristine[exercises.__name__] = dict(vars(exercises))
    send({"ready": True})
    sys.stderr = sys.stdout  # from here on, what cells print is dropped

    for cell in job["cells"]:
        for name, saved in pristine.items():  # what an earlier cell changed in the checks is undone
            vars(sys.modules[name]).clear()
            vars(sys.modules[name]).update(saved)
        exercises.reset_hints()
        returned.clear()
        random.seed(0)
        for seeded in ("numpy.random", "torch"):
            if seeded in sys.modules:
                getattr(sys.modules[seeded], "seed" if seeded == "numpy.random" else "manual_seed")(0)
        os.chdir(job["cwd"])
        namespace = {"__name__": "__main__", "__builtins__": builtins, "display": lambda *a, **k: None}
        call = f"{cell['module']}.check_{cell['name']}(answer)"
        try:
            value = _evaluate(cell["source"], namespace)
        except SyntaxError as err:
            send({"passed": False, "message": f"the cell is not valid Python ({err.msg}, line {err.lineno}); "
                                               "IPython magics (%, !) are not run by the grader"})
            continue
        except BaseException as err:  # SystemExit and KeyboardInterrupt from a cell are the cell's failure too
            send({"passed": False, "message": _raised(err)})
            continue
        ours = [f for m, n, f in returned if (m, n) == (cell["module"], cell["name"]) and f is value]
        if ours:
            send({"passed": bool(ours[0].passed), "message": str(ours[0].message)})
        elif cell["module"] not in {n.rsplit(".", 1)[-1] for n in pristine}:
            send({"passed": False, "message": f"there is no labkit.exercises.{cell['module']}"})
        else:
            send({"passed": False, "message": f"the cell must end with {call}: the value of its last line is "
                                               "what is graded"})
