"""Checks for the chapters' exercises: ``labkit.exercises.chNN.check_<name>(answer)``.

A check never raises on a wrong or missing answer — a learner's notebook keeps running —
it returns :class:`Feedback`, which shows as ✅ or ❌ with a hint. Tests and teachers use
``feedback.passed``. Reference solutions live in ``notebooks/solutions/``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["Feedback", "passed", "failed", "not_attempted", "checked"]


@dataclass(frozen=True)
class Feedback:
    exercise: str
    passed: bool
    message: str

    def __repr__(self) -> str:
        return f"{'✅' if self.passed else '❌'} {self.exercise}: {self.message}"

    def _repr_markdown_(self) -> str:
        return f"{'✅' if self.passed else '❌'} **{self.exercise}**: {self.message}"

    def __bool__(self) -> bool:
        return self.passed


def passed(exercise: str, message: str = "correct!") -> Feedback:
    return Feedback(exercise, True, message)


def failed(exercise: str, hint: str) -> Feedback:
    return Feedback(exercise, False, f"not yet. Hint: {hint}")


def not_attempted(exercise: str) -> Feedback:
    return Feedback(exercise, False, "no answer yet: replace the `None` (or `...`) above with your answer and run the cell again.")


def checked(exercise: str):
    """Decorate a check: None or ``...`` → "no answer yet"; an exception while checking → a hint, never a raise."""
    def wrap(check):
        @functools.wraps(check)
        def run(answer) -> Feedback:
            if answer is None or answer is Ellipsis:
                return not_attempted(exercise)
            try:
                return check(answer)
            except Exception as err:  # a learner's odd answer must not stop the notebook
                return failed(exercise, f"checking your answer raised {type(err).__name__}: {err}")
        return run
    return wrap
