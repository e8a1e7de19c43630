"""Reference solutions for chapter 00 (welcome). Each ``solution_<name>()`` returns the
answer that ``labkit.exercises.ch00.check_<name>`` accepts."""
from labkit.env import best_device


def solution_device():
    # The lab picks cuda, then mps, then cpu: ask it rather than guess.
    return best_device()


def solution_pipeline_order():
    # Follow the arrows of the concept map: unlabelled data feeds pretraining, which makes the
    # foundation model; fine-tuning adapts it to a downstream task, whose results are evaluated.
    return ["unlabelled data", "pretraining", "foundation model", "fine-tuning", "downstream task", "evaluation"]


def solution_needs_labels():
    # Pretraining is self-supervised: the text supplies its own targets (a masked or next word).
    # Fine-tuning learns from labelled examples, and evaluation compares predictions with labels.
    return {"fine-tuning", "evaluation"}
