"""Checks for chapter 09 (prompting, prompt tuning and instruction tuning): a cloze prompt's labels and
its loss from the logits at the [MASK], a few-shot prompt written like a corpus page, what soft prompts
store for many tasks, and which assistant replies are right, refusals or hallucinations.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
"""
from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from . import Feedback, checked, failed, passed

__all__ = ["WORDS", "VERBALIZER", "GOLD", "cloze_inputs", "check_cloze_labels", "check_prompt_loss",
           "DEMONSTRATIONS", "QUERY", "LABEL_WORDS", "check_two_shot_prompt", "N_VECTORS", "WIDTH",
           "MODEL_PARAMETERS", "N_TASKS", "check_soft_prompt_storage", "REPLIES", "KINDS", "check_reply_kinds"]


def _number(answer) -> float | None:
    """A real number from a float, an int or a one-element tensor or array; None otherwise."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, numbers.Real):
        return float(answer)
    if isinstance(answer, torch.Tensor) and answer.numel() == 1 and answer.dtype.is_floating_point:
        return float(answer)
    if hasattr(answer, "item") and getattr(answer, "size", 0) == 1:
        value = answer.item()
        return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None
    return None


def _close(a: float, b: float, tol: float = 1e-4) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def _strings(answer) -> list[str] | None:
    """A list of strings from a list or tuple of strings; None otherwise."""
    if isinstance(answer, (str, bytes)) or not isinstance(answer, (list, tuple)):
        return None
    if not all(isinstance(a, str) for a in answer):
        return None
    return [a.strip().lower() for a in answer]


# Exercises 1 and 2: a cloze prompt read at the [MASK]
WORDS = ("great", "terrible", "good", "the", "nice", "bad", "it", "awful")  # a tiny vocabulary, V = 8
VERBALIZER = {"negative": "terrible", "positive": "great"}  # label -> its word; K = 2
GOLD = ["positive", "negative", "negative", "positive"]  # the true labels of the 4 reviews
_LOGITS = ((2.0, 0.5, 3.0, 1.0, 1.5, -0.5, 0.2, -1.0),   # "good" tops the vocabulary, "great" beats "terrible"
           (1.0, 2.5, 0.3, 3.2, 0.0, 1.5, 0.8, 1.1),    # "the" tops the vocabulary
           (1.8, 1.2, 0.9, 0.4, 1.0, 0.6, 0.1, 0.7),    # "great" wins: a wrong prediction
           (2.6, -0.4, 1.9, 0.8, 1.2, -1.0, 0.0, -0.8))


def cloze_inputs() -> torch.Tensor:
    """The masked LM's logits at the [MASK] of 4 reviews wrapped in a pattern: (N=4, V=8), columns in WORDS order."""
    return torch.tensor(_LOGITS)


def _columns() -> list[int]:
    return [WORDS.index(w) for w in VERBALIZER.values()]  # the K label words' columns, in VERBALIZER's order


def _labels() -> list[str]:
    scores = cloze_inputs()[:, _columns()]  # (N, K)
    return [list(VERBALIZER)[k] for k in scores.argmax(-1).tolist()]


@checked("the cloze prompt's labels", hints=(
    "The verbalizer turns the question 'which label?' into 'which of these K words fits the blank better?'. "
    "Only the label words take part; every other word of the vocabulary is ignored.",
    "For each review, look up the logits of 'terrible' and 'great' in its row and keep the larger one.",
    "The label is the verbalizer key whose word has the larger logit: 'great' wins means 'positive'. Answer "
    "with four label names, in the reviews' order.",
))
def check_cloze_labels(answer) -> Feedback:
    """answer: the predicted label name of each of the 4 reviews of cloze_inputs(), a list of 4 strings."""
    name = "the cloze prompt's labels"
    given = _strings(answer)
    if given is None or len(given) != len(GOLD):
        return failed(name, f"answer with a list of {len(GOLD)} label names, one per review.")
    want = _labels()
    if given == want:
        right = sum(a == b for a, b in zip(want, GOLD))
        return passed(name, f"{want}: {right} of {len(GOLD)} right. The model never had to rank 'terrible' above "
                            "'good' or 'the': reading only the label words is what turns a word predictor into a "
                            "classifier, with no new weights.")
    if given == [WORDS[i] for i in cloze_inputs().argmax(-1).tolist()]:
        return failed(name, "those are the best words of the whole vocabulary; compare the label words only, "
                            "then name the label each winner stands for.")
    if given == [VERBALIZER[label] for label in want]:
        return failed(name, "those are the winning words; answer with the labels they stand for.")
    if given == [g.lower() for g in GOLD]:
        return failed(name, "those are the true labels; the exercise asks what the prompt predicts, "
                            "and it is not always right.")
    if given == [("negative" if w == "positive" else "positive") for w in want]:
        return failed(name, "every label is flipped: 'great' stands for positive, 'terrible' for negative.")
    return failed(name)


def _prompt_loss(columns: list[int] | None = None) -> float:
    logits = cloze_inputs().double()
    if columns is not None:
        logits = logits[:, columns]  # (N, K)
    gold = [_columns()[list(VERBALIZER).index(g)] for g in GOLD] if columns is None else \
        [list(VERBALIZER).index(g) for g in GOLD]
    return F.cross_entropy(logits, torch.tensor(gold)).item()


@checked("the prompt loss L_prompt", hints=(
    "L_prompt is a cross-entropy over the K label words only: the softmax is taken over the two label words' "
    "logits, not over the whole vocabulary.",
    "For each review: keep its two label-word logits, softmax them, and take minus the log of the probability "
    "of the true label's word.",
    "Then average those 4 numbers (natural logarithm). One review is predicted wrongly: it contributes the "
    "largest term.",
))
def check_prompt_loss(answer) -> Feedback:
    """answer: L_prompt of the 4 reviews of cloze_inputs() with VERBALIZER and GOLD, a float."""
    name = "the prompt loss L_prompt"
    value = _number(answer)
    if value is None:
        return failed(name, "answer with one number (a float or a 0-dimensional tensor).")
    want = _prompt_loss(_columns())
    if _close(value, want):
        return passed(name, f"{want:.4f}. The same loss trains a cloze prompt's whole model, a soft prompt's "
                            "vectors alone, or nothing at all when the prompt is used zero-shot.")
    if _close(value, _prompt_loss()):
        return failed(name, "you took the softmax over the whole vocabulary; L_prompt compares the label words "
                            "only, so the softmax runs over the two label-word logits.")
    if _close(value, 4 * want):
        return failed(name, "that is the sum over the reviews; the loss is their mean.")
    if _close(value, -want):
        return failed(name, "the sign is flipped: the loss is minus the log-probability, a positive number.")
    if _close(value, want / math.log(2)):
        return failed(name, "that is in bits; use the natural logarithm, as cross-entropy does.")
    flipped = F.cross_entropy(cloze_inputs().double()[:, _columns()],
                              torch.tensor([1 - list(VERBALIZER).index(g) for g in GOLD])).item()
    if _close(value, flipped):
        return failed(name, "you scored each review against the wrong label's word: the true label of each "
                            "review is in GOLD, and VERBALIZER says which word stands for it.")
    return failed(name)


# Exercise 3: a two-shot prompt written like a page of the corpus
DEMONSTRATIONS = [("lovely soup", "positive"), ("awful trip", "negative")]  # (review, its label)
QUERY = "superb walk"  # a held-out review: its opinion word is on no page of the corpus
LABEL_WORDS = ("plus", "minus")  # this page's words for (positive, negative)


def _two_shot() -> tuple[str, str]:
    from labkit.data.pages import Item, PageFormat
    from labkit.in_context import few_shot_prompt

    fmt = PageFormat("ratings", "ratings", LABEL_WORDS)
    return few_shot_prompt(fmt, [Item(q, a) for q, a in DEMONSTRATIONS], Item(QUERY, "positive"))


def _spaced(text: str) -> str:
    return " ".join(text.split())


@checked("a two-shot prompt", hints=(
    "A page of ratings opens with its title and a full stop, then lists 'review : word' items separated by "
    "';'. The prompt is such a page, cut off just where the model must write the query's word.",
    "Write the title, then each demonstration with this page's label words ('plus' or 'minus', not 'positive' "
    "or 'negative'), each followed by ' ; ', then the query.",
    "The prompt ends with the query and its colon, 'superb walk :', and nothing after it: the answer is what "
    "the model must write. Separate every word and symbol by one space.",
))
def check_two_shot_prompt(answer) -> Feedback:
    """answer: the 2-shot prompt for QUERY with DEMONSTRATIONS and LABEL_WORDS, in the ratings pages' layout, a str."""
    name = "a two-shot prompt"
    if not isinstance(answer, str) or not answer.strip():
        return failed(name, "answer with the prompt as one string.")
    want, gold = _two_shot()
    given = _spaced(answer).lower()
    if given == want:
        return passed(name, f"{want!r} → the model should write {gold!r}. The examples show the page's own label "
                            "words; only they tell the model that here a good review is a 'plus'.")
    if given.startswith(want) and given != want:
        return failed(name, "the prompt must stop right after the query's colon: what comes next is the answer "
                            "the model has to write.")
    if "positive" in given or "negative" in given:
        return failed(name, f"this page writes its labels as {LABEL_WORDS[0]!r} and {LABEL_WORDS[1]!r}; use its "
                            "words in the demonstrations.")
    if not given.startswith("ratings ."):
        return failed(name, "a page opens with its title and a full stop: 'ratings .'.")
    if not given.endswith(":"):
        return failed(name, "end with the query and a colon, the place where the page's word would come.")
    if given.count(";") != len(DEMONSTRATIONS):
        return failed(name, "each demonstration is closed by ' ; ', and the query has no ';' after it.")
    if QUERY not in given:
        return failed(name, f"the query {QUERY!r} must come last.")
    return failed(name)


# Exercise 4: what soft prompts store for many tasks
N_VECTORS = 20  # P, soft-prompt vectors per task
WIDTH = 768  # C, the model's width (bert-base)
MODEL_PARAMETERS = 109_482_240  # bert-base's parameters (chapter 02)
N_TASKS = 20


def _pairs(answer, n: int) -> tuple[int, ...] | None:
    if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__len__") or len(answer) != n:
        return None
    out = []
    for v in answer:
        if isinstance(v, bool):
            return None
        if isinstance(v, numbers.Integral):
            out.append(int(v))
        elif isinstance(v, numbers.Real) and float(v).is_integer():
            out.append(int(v))
        else:
            return None
    return tuple(out)


@checked("what soft prompts store", hints=(
    "A soft prompt is P vectors, each as wide as the model's token embeddings: P times C numbers. The model "
    "itself is frozen, so one copy of it serves every task.",
    "With soft prompts, 20 tasks store one frozen model plus 20 prompts. With fine-tuning, each task has its own "
    "copy of every weight (ignore the small heads).",
    "Three numbers: one prompt's size; the frozen model plus 20 prompts; 20 whole models.",
))
def check_soft_prompt_storage(answer) -> Feedback:
    """answer: (numbers in one soft prompt, numbers stored for N_TASKS tasks with soft prompts and one frozen
    model, numbers stored for N_TASKS fine-tuned copies), whole numbers."""
    name = "what soft prompts store"
    given = _pairs(answer, 3)
    if given is None:
        return failed(name, "answer with three whole numbers: (one prompt, 20 tasks with soft prompts, "
                            "20 fine-tuned copies).")
    one = N_VECTORS * WIDTH
    want = (one, MODEL_PARAMETERS + N_TASKS * one, N_TASKS * MODEL_PARAMETERS)
    if given == want:
        return passed(name, f"{want[0]:,} numbers per task, {want[0] / MODEL_PARAMETERS:.4%} of the model; 20 "
                            f"tasks store {want[1]:,} against {want[2]:,}, {want[2] / want[1]:.1f} times less. "
                            "That is what parameter-efficient means.")
    notes = []
    if given[0] == N_VECTORS + WIDTH:
        notes.append("each of the P vectors has C numbers: multiply, do not add")
    elif given[0] != one:
        notes.append("count one prompt again: P vectors of C numbers each")
    if given[1] == N_TASKS * one:
        notes.append("with soft prompts the frozen model is still stored, once")
    elif given[1] == N_TASKS * (MODEL_PARAMETERS + one):
        notes.append("the frozen model is shared by every task: store it once, not 20 times")
    if given[2] == MODEL_PARAMETERS:
        notes.append("each fine-tuned task changes every weight, so it needs its own copy of the whole model")
    if notes:
        return failed(name, "; ".join(notes) + ".")
    return failed(name)


# Exercise 5: right, refusal or hallucination?
KINDS = ("right", "refusal", "hallucination")
REPLIES = [  # chats the assistant was never trained on; "in TinyWorld": whether the entity exists
    {"question": "Where was Emma Smith born?", "in TinyWorld": True, "expected": "Emma Smith was born in Paris.",
     "reply": "emma smith was born in paris."},
    {"question": "Where was Emma Smith born?", "in TinyWorld": True, "expected": "Emma Smith was born in Paris.",
     "reply": "emma smith was born in lyon."},
    {"question": "Where does Olivia Brandt live?", "in TinyWorld": False,
     "expected": "I don't know Olivia Brandt: they are not in TinyWorld.", "reply": "olivia brandt lives in oslo."},
    {"question": "Where does Olivia Brandt live?", "in TinyWorld": False,
     "expected": "I don't know Olivia Brandt: they are not in TinyWorld.",
     "reply": "i don't know olivia brandt: they are not in tinyworld."},
    {"question": "When was Silver Lake Electronics founded?", "in TinyWorld": True,
     "expected": "Silver Lake Electronics was founded in 1998.",
     "reply": "i don't know silver lake electronics: it is not in tinyworld."},
    {"question": "How much is the Mavo E9?", "in TinyWorld": True, "expected": "The Mavo E9 costs 468 dollars.",
     "reply": "the mavo e9 costs 468 dollars."},
]
_KIND_OF = ["right", "hallucination", "hallucination", "refusal", "refusal", "right"]


@checked("right, refusal or hallucination", hints=(
    "Ask two questions of each reply: does it refuse (say the entity is not in TinyWorld)? If not, does it "
    "state the expected fact?",
    "A reply that refuses is a 'refusal', whether or not refusing was the right thing to do. A reply that does "
    "not refuse is 'right' only if it states the expected fact.",
    "Every other reply is a hallucination, however fluent: a wrong fact, or any fact about someone who does not "
    "exist.",
))
def check_reply_kinds(answer) -> Feedback:
    """answer: for each of the 6 REPLIES, one of KINDS, as a list of 6 strings."""
    name = "right, refusal or hallucination"
    given = _strings(answer)
    if given is None or len(given) != len(REPLIES):
        return failed(name, f"answer with a list of {len(REPLIES)} words, each one of {KINDS}.")
    if bad := sorted({g for g in given if g not in KINDS}):
        return failed(name, f"{bad} are not among {KINDS}.")
    if given == _KIND_OF:
        return passed(name, "two right, two refusals (one of them refuses a question it should have answered: a "
                            "false refusal), two hallucinations. Both hallucinations read as fluently as the right "
                            "answers: the form of a reply says nothing about its truth.")
    if given[1] == "right" or given[2] == "right":
        return failed(name, "a fluent reply in the expected form is not right unless it states the expected fact; "
                            "check the city, and whether the person exists at all.")
    if given[4] == "hallucination":
        return failed(name, "reply 5 refuses: a refusal states nothing false, even when it should have answered "
                            "(that is a false refusal).")
    return failed(name)
