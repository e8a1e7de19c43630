"""Checks for the chapters' exercises: ``labkit.exercises.chNN.check_<name>(answer)``.

A check never raises on a wrong or missing answer — a learner's notebook keeps running —
it returns :class:`Feedback`, which shows as ✅ or ❌ with a hint. Tests and teachers use
``feedback.passed``. Reference solutions live in ``notebooks/solutions/``.

Hints come in two kinds, and neither ever shows the solution code:

- a *diagnosis*: the check recognises a typical mistake (the raw scores instead of the scaled
  ones, a transposed matrix) and says what it is — ``failed(name, "you divided by d_k ...")``;
- *tiered hints*, for an answer the check does not recognise — ``failed(name)``. Each check
  declares them, from a nudge to nearly the whole idea:
  ``@checked("macro-F1", hints=("first tier", "second tier", "third tier"))``. Every unrecognised
  wrong answer shows the next tier; ``hint(check)`` shows the next one without answering.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["Feedback", "passed", "failed", "not_attempted", "checked", "hint", "reset_hints"]


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


_UNRECOGNISED = "not yet."
_tier: dict[str, int] = {}  # exercise -> how many tiered hints it has shown in this kernel


def failed(exercise: str, hint: str | None = None) -> Feedback:
    """A wrong answer: with ``hint``, a diagnosis of this mistake; without, the exercise's next tiered hint."""
    return Feedback(exercise, False, f"not yet. Hint: {hint}" if hint else _UNRECOGNISED)


def _next_tier(exercise: str, hints: tuple[str, ...]) -> str:
    shown = _tier.get(exercise, 0)
    _tier[exercise] = shown + 1
    level = min(shown, len(hints) - 1)
    more = "" if level == len(hints) - 1 else " (run it again for a stronger hint)"
    return f"Hint {level + 1} of {len(hints)}: {hints[level]}{more}"


def reset_hints() -> None:
    """Start every exercise's tiered hints from the first again."""
    _tier.clear()


def hint(check) -> str:
    """The next tiered hint of a check (``hint(ch05.check_macro_f1)``), without giving an answer."""
    hints = getattr(check, "hints", ())
    if not hints:
        raise ValueError(f"{getattr(check, '__name__', check)!r} is not an exercise check with tiered hints")
    return _next_tier(check.exercise, hints)


def not_attempted(exercise: str) -> Feedback:
    return Feedback(exercise, False, "no answer yet: replace the `None` (or `...`) above with your answer and run the cell again.")


def checked(exercise: str, hints: tuple[str, ...] = ()):
    """Decorate a check: None or ``...`` → "no answer yet"; an exception while checking → a hint,
    never a raise; an unrecognised wrong answer (``failed(name)``) → the next of ``hints``."""
    if isinstance(hints, str):
        raise ValueError(f"hints for {exercise!r} must be a tuple of strings, one per tier, not one string")

    def wrap(check):
        @functools.wraps(check)
        def run(answer) -> Feedback:
            if answer is None or answer is Ellipsis:
                return not_attempted(exercise)
            try:
                feedback = check(answer)
            except Exception as err:  # a learner's odd answer must not stop the notebook
                return failed(exercise, f"checking your answer raised {type(err).__name__}: {err}")
            if not feedback.passed and feedback.message == _UNRECOGNISED:
                tier = _next_tier(exercise, hints) if hints else "compare your answer with the exercise's text."
                return Feedback(exercise, False, f"not yet. {tier}")
            return feedback
        run.exercise, run.hints = exercise, tuple(hints)
        return run
    return wrap
