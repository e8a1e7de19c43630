"""Reference solutions for chapter 00 (welcome). Each ``solution_<name>()`` returns the
answer that ``labkit.exercises.ch00.check_<name>`` accepts."""


def solution_pipeline_order():
    # Follow the arrows of the concept map: unlabelled data feeds pretraining, which makes the
    # foundation model; fine-tuning adapts it to a downstream task, whose results are evaluated.
    return ["unlabelled data", "pretraining", "foundation model", "fine-tuning", "downstream task", "evaluation"]


def solution_needs_labels():
    # Pretraining is self-supervised: the text supplies its own targets (a masked or next word).
    # Fine-tuning learns from labelled examples, and evaluation compares predictions with labels.
    return {"fine-tuning", "evaluation"}


def solution_adaptation_route():
    # 1. many labels, weights at hand            -> fine-tuning
    # 2. no labels, model only behind a chat     -> prompting
    # 3. no model knows the language, raw text   -> pretraining
    # 4. a finished model, held-out labelled set -> evaluation
    # 5. many labels, runs on own machines       -> fine-tuning
    # 6. two examples in the instruction, once   -> prompting (few-shot)
    return ["fine-tuning", "prompting", "pretraining", "evaluation", "fine-tuning", "prompting"]


def solution_inherited_flaw():
    # Every system that starts from foundation model A may carry what A learned in pretraining:
    # prompting leaves A's weights as they are, and fine-tuning on a few thousand examples only
    # adjusts them. The tagger (built on B) and the spam filter (no foundation model) never saw A.
    return {"review sorter", "support chatbot", "search ranker"}
