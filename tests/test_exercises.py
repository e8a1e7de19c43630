"""Exercise checks teach without giving the answer away: tiered hints, no solution code in any hint,
strict comparisons.

(``tests/test_notebooks.py`` runs each reference solution, empty and odd answers through every check.)
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re

import pytest

import labkit.exercises as exercises
from labkit.exercises import Feedback, checked, failed, hint, passed, reset_hints

MODULES = sorted(m.name for m in pkgutil.iter_modules(exercises.__path__) if re.fullmatch(r"ch\d\d\w?", m.name))
CHECKS = [(m, name) for m in MODULES for name, f in vars(importlib.import_module(f"labkit.exercises.{m}")).items()
          if name.startswith("check_") and callable(f)]
# What solution code looks like in a hint: a dotted call (torch.softmax(...)), a slice ([:, 1]),
# a matrix product between names (q @ k), or an assignment/comparison between code names.
CODE = re.compile(r"\b[A-Za-z_]\w*\.[A-Za-z_]\w*\(|\[\s*:|\b\w+\s@\s\w+|\b\w+(\[[^\]]*\])?\s*==?\s*[\w.]+\(")


def test_every_chapter_has_checks():
    assert [m for m in MODULES if m[:4] in {f"ch0{i}" for i in range(8)}], MODULES
    assert len(CHECKS) >= 24


@pytest.mark.parametrize("module,name", CHECKS, ids=[f"{m}-{n}" for m, n in CHECKS])
def test_every_check_has_tiered_hints(module, name):
    check = getattr(importlib.import_module(f"labkit.exercises.{module}"), name)
    assert len(getattr(check, "hints", ())) >= 2, f"{module}.{name}: give @checked(..., hints=(...)) two or more tiers"


def _hint_strings(module: str) -> list[str]:
    """Every hint a module's checks can show: the tiers of @checked and the diagnoses given to failed()."""
    tree = ast.parse(inspect.getsource(importlib.import_module(f"labkit.exercises.{module}")))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("failed", "checked"):
            args = node.args[1:] + [k.value for k in node.keywords if k.arg in ("hint", "hints")]
            for arg in args:
                for leaf in ast.walk(arg):
                    if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                        found.append(leaf.value)
    return found


@pytest.mark.parametrize("module", MODULES)
def test_no_hint_prints_solution_code(module):
    code_like = [h for h in _hint_strings(module) if CODE.search(h)]
    assert not code_like, f"labkit.exercises.{module}: these hints show code; describe the idea instead: {code_like}"


def test_tiers_escalate_then_stay_at_the_last():
    @checked("toy", hints=("first", "second", "third"))
    def check_toy(answer):
        return passed("toy") if answer == 42 else failed("toy")

    reset_hints()
    messages = [check_toy(1).message for _ in range(4)]
    assert [m.split(":")[0] for m in messages] == ["not yet. Hint 1 of 3", "not yet. Hint 2 of 3",
                                                   "not yet. Hint 3 of 3", "not yet. Hint 3 of 3"]
    assert "first" in messages[0] and "third" in messages[3]
    assert check_toy(42).passed
    reset_hints()
    assert hint(check_toy).startswith("Hint 1 of 3: first")


def test_a_diagnosis_beats_the_tiers():
    @checked("toy2", hints=("a nudge", "more"))
    def check_toy(answer):
        return failed("toy2", "you gave the negative") if answer == -42 else failed("toy2")

    assert "you gave the negative" in check_toy(-42).message
    assert "a nudge" in check_toy(0).message


def test_hints_must_be_tiers_and_hint_needs_a_check():
    with pytest.raises(ValueError, match="tuple of strings"):
        checked("toy3", hints="one string")
    with pytest.raises(ValueError, match="not an exercise check"):
        hint(print)
    assert isinstance(failed("x"), Feedback)
