"""Checks for chapter 00 (welcome): the concept map of foundation models.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
The constants below give every learner the same situations and systems to reason about.
"""
from __future__ import annotations

from . import Feedback, checked, failed, passed

__all__ = ["STAGES", "check_pipeline_order", "check_needs_labels", "ROUTES", "SITUATIONS", "check_adaptation_route",
           "SYSTEMS", "check_inherited_flaw"]

# Exercise 1 and 2: the stages, shuffled on purpose, and their order along the concept map.
STAGES = ("fine-tuning", "pretraining", "evaluation", "unlabelled data", "downstream task", "foundation model")
_ORDER = ("unlabelled data", "pretraining", "foundation model", "fine-tuning", "downstream task", "evaluation")
_NEED_LABELS = frozenset({"fine-tuning", "evaluation"})

# Exercise 3: which step of the map each situation calls for.
ROUTES = ("pretraining", "fine-tuning", "prompting", "evaluation")
SITUATIONS = (
    "A hospital has 20,000 discharge notes, each labelled by a doctor with the department it belongs to, "
    "and may train a model on its own servers. It wants a classifier for new notes.",
    "A shop wants to sort today's customer messages into 'complaint' or 'question'. It has no labelled "
    "examples and reaches a large general model only through a chat window.",
    "A research group has billions of words of unlabelled text in a language that no existing model has "
    "seen, and a large compute budget.",
    "A team has fine-tuned a sentiment classifier and must report how often it is right on reviews it has "
    "never seen, using 1,000 reviews that people labelled.",
    "A bank has 3,000 report sentences in which people marked every company and person name, and wants "
    "a tagger that runs on its own machines.",
    "A teacher wants a large general model to translate ten sentences once, and writes two example "
    "translations into the instruction.",
)
_ROUTE_OF = ("fine-tuning", "prompting", "pretraining", "evaluation", "fine-tuning", "prompting")
_HAS_LABELS = (0, 3, 4)  # situations with many human-labelled examples
_NO_WEIGHTS_OR_LABELS = (1, 5)  # no labelled set to train on, or no access to the weights

# Exercise 4: systems built on foundation models ("A", "B") or on none, and how each was adapted.
SYSTEMS = {  # name: (the foundation model underneath, or None; how it was adapted)
    "review sorter": ("A", "fine-tuned on 5,000 labelled reviews"),
    "support chatbot": ("A", "prompted with instructions, weights unchanged"),
    "contract tagger": ("B", "fine-tuned on 2,000 labelled sentences"),
    "spam filter": (None, "trained from scratch on labelled e-mails only"),
    "search ranker": ("A", "fine-tuned on click data"),
}
_ON_A = frozenset(name for name, (base, _) in SYSTEMS.items() if base == "A")
_FINE_TUNED_ON_A = frozenset(n for n, (b, how) in SYSTEMS.items() if b == "A" and how.startswith("fine-tuned"))
_PROMPTED_ON_A = frozenset(n for n, (b, how) in SYSTEMS.items() if b == "A" and how.startswith("prompted"))


def _names(answer) -> list[str] | None:
    """A learner's names, lower-cased and trimmed (a single string is one name); None when not a collection."""
    if isinstance(answer, str):
        return [answer.strip().lower()]
    if not isinstance(answer, (list, tuple, set, frozenset)):
        return None
    return [str(s).strip().lower() for s in answer]


def _route(name: str) -> str:
    return {"fine tuning": "fine-tuning", "finetuning": "fine-tuning", "prompt": "prompting",
            "pretrain": "pretraining", "pre-training": "pretraining", "evaluate": "evaluation"}.get(name, name)


@checked("the pipeline order", hints=(
    "Follow the arrows of the concept map in section 3, starting where nothing points in.",
    "Data comes first; the model exists only after it has been trained on that data; "
    "a task needs a trained model.",
    "Measuring comes last: you can only evaluate a model that already does the downstream task.",
))
def check_pipeline_order(answer) -> Feedback:
    """answer: the six names in ``STAGES``, as a list in the order the concept map follows them."""
    name = "the pipeline order"
    if isinstance(answer, (str, set, frozenset, dict)):
        return failed(name, "give a list (an ordered sequence) of the six names, not a single string, set or dict.")
    given = _names(answer)
    if given is None or sorted(given) != sorted(_ORDER):
        return failed(name, f"use each of these names exactly once: {list(STAGES)}")
    if given == list(_ORDER):
        return passed(name, "data → pretraining → foundation model → adaptation → task → evaluation.")
    if given == list(reversed(_ORDER)):
        return failed(name, "this is the map read backwards: start from the data.")
    if given.index("fine-tuning") < given.index("foundation model"):
        return failed(name, "fine-tuning adapts a model that already exists: it comes after the foundation model.")
    return failed(name)


@checked("stages that need labels", hints=(
    "A label is an answer a person wrote down for an example. Which stages use such answers?",
    "Pretraining makes its own targets from raw text. Look for the stages that compare the model "
    "with a human answer, while training or while measuring.",
))
def check_needs_labels(answer) -> Feedback:
    """answer: the set of names from ``STAGES`` that need labelled (human-annotated) data."""
    name = "stages that need labels"
    if _names(answer) is None:
        return failed(name, "give a set of stage names, e.g. a set of strings taken from STAGES.")
    given = set(_names(answer))
    if unknown := given - set(STAGES):
        return failed(name, f"{sorted(unknown)} are not stage names; choose from {list(STAGES)}")
    if given == _NEED_LABELS:
        return passed(name, "pretraining is self-supervised; labels enter when you adapt and when you measure.")
    if "pretraining" in given:
        return failed(name, "pretraining is self-supervised (自监督): the text itself supplies the targets.")
    if given == {"fine-tuning"}:
        return failed(name, "fine-tuning, yes; but how do you know the result is right on unseen examples?")
    if given == {"evaluation"}:
        return failed(name, "evaluation, yes; which stage *trains* on labelled examples?")
    return failed(name)


@checked("which route?", hints=(
    "For each situation ask three questions: is there a model that already knows this kind of text? "
    "Are there many labelled examples? Can the weights be changed?",
    "No model knows the text → build one from unlabelled text. Many labels and the weights at hand → "
    "train further. No labels, or no access to the weights → steer with instructions and examples. "
    "A model already trained → measure it.",
    "Exactly two situations are prompting and two are fine-tuning; one is pretraining and one is evaluation.",
))
def check_adaptation_route(answer) -> Feedback:
    """answer: a list with one name from ``ROUTES`` per entry of ``SITUATIONS``, in order."""
    name = "which route?"
    if isinstance(answer, (str, set, frozenset, dict)):
        return failed(name, f"give a list with one route per situation, {len(SITUATIONS)} in all, in order.")
    if _names(answer) is None:
        return failed(name, f"give a list with one route per situation, {len(SITUATIONS)} in all, in order.")
    given = [_route(s) for s in _names(answer)]
    if len(given) != len(SITUATIONS):
        return failed(name, f"give one route per situation: {len(SITUATIONS)} names, got {len(given)}.")
    if unknown := sorted(set(given) - set(ROUTES)):
        return failed(name, f"{unknown} are not routes; choose from {list(ROUTES)}")
    if given == list(_ROUTE_OF):
        return passed(name, "no model for the data → pretrain; labels and weights → fine-tune; "
                            "no labels or no weights → prompt; a finished model → evaluate.")
    wrong = [i + 1 for i, (g, e) in enumerate(zip(given, _ROUTE_OF)) if g != e]
    if any(given[i] == "pretraining" for i in _HAS_LABELS):
        return failed(name, "pretraining learns from unlabelled text; a situation with thousands of "
                            f"human-labelled examples is about adapting or measuring. Look again at {wrong}.")
    if any(given[i] == "fine-tuning" for i in _NO_WEIGHTS_OR_LABELS):
        return failed(name, "fine-tuning changes the weights using labelled examples; when there are none "
                            f"to train on, or the weights are out of reach, it is impossible. Look again at {wrong}.")
    if given[3] == "fine-tuning":
        return failed(name, "in situation 4 the model is already fine-tuned: labelled reviews it has never "
                            "seen are for measuring it, not for training it.")
    if given[2] != "pretraining":
        return failed(name, "in situation 3 no existing model has seen the language: what has to happen "
                            "before anything can be adapted?")
    return failed(name)


@checked("an inherited flaw", hints=(
    "Follow the map from the flawed foundation model to every system built on it, whatever the route.",
    "Does prompting change a model's weights? Does fine-tuning on a few thousand examples rewrite "
    "everything pretraining learned?",
    "The flaw lives in A's weights. A system that never used A cannot have it from A; "
    "every system that starts from A may.",
))
def check_inherited_flaw(answer) -> Feedback:
    """answer: the set of names from ``SYSTEMS`` that may carry a flaw foundation model A learned in pretraining."""
    name = "an inherited flaw"
    if isinstance(answer, dict):
        return failed(name, "give a set (or list) of system names, not a dict.")
    if _names(answer) is None:
        return failed(name, "give a set (or list) of system names taken from SYSTEMS.")
    given = set(_names(answer))
    if unknown := sorted(given - set(SYSTEMS)):
        return failed(name, f"{unknown} are not system names; choose from {list(SYSTEMS)}")
    if given == _ON_A:
        return passed(name, "homogenisation (同质化): every system built on A shares A's strengths and its "
                            "flaws, whichever way it was adapted.")
    if given - _ON_A:
        return failed(name, "the flaw is in what A learned; a system built on B, or on no foundation model, "
                            "never saw A's pretraining data.")
    if given == _PROMPTED_ON_A:
        return failed(name, "fine-tuning adjusts the weights on a small labelled set; it does not erase what "
                            "pretraining put there unless that set was built to.")
    if given == _FINE_TUNED_ON_A:
        return failed(name, "prompting leaves the weights unchanged: a prompted system carries all that the "
                            "model learned.")
    return failed(name)
