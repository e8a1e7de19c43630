"""Checks for chapter 04 (pretraining): a softmax probability, the masked-LM loss, what the
80/10/10 rule asks of ordinary-looking tokens, a next-sentence shortcut, next-token pairs.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
The ``*_inputs()`` functions and the constants give every learner the same data to work on.
"""
from __future__ import annotations

import math

import torch

from . import Feedback, checked, failed, passed

__all__ = ["softmax_inputs", "check_softmax_probability", "mlm_loss_inputs", "check_mlm_loss",
           "MASK_RATE", "RULE", "check_ordinary_looking_targets", "NSP_PAIRS", "check_nsp_shortcut",
           "NEXT_TOKEN_BLOCK", "check_next_token_pairs"]

_VOCABULARY = ("[MASK]", "the", "screen", "is", "great", "awful", "battery", ".")
_TARGET = "great"

# Exercise 3: BERT's choice rate and its rule for a chosen token: ([MASK], random token, kept).
MASK_RATE = 0.15
RULE = (0.8, 0.1, 0.1)

# Exercise 4: next-sentence pairs (A, B, label) made from a bilingual corpus with the second
# part of a NotNext pair drawn from *any* document. Label 0 = IsNext, 1 = NotNext (labkit.nsp).
NSP_PAIRS = (
    ("Emma Sato was born in Osaka.", "She works as a nurse at Lakeside Hospital.", 0),
    ("曹芳的出生地是旧金山。", "她几年前搬到了芝加哥。", 0),
    ("The screen is bright and sharp.", "Sadly, the battery dies before lunch.", 0),
    ("今天天气怎么样？", "听说下午会下雨。", 0),
    ("Pioneer Bank was founded in 1962.", "Its head office is in Chengdu.", 0),
    ("Mia Petrov studied at Kyoto University.", "这家餐厅的服务很慢。", 1),
    ("谢娟住在布里斯托尔。", "Shares of the company fell after weak sales.", 1),
    ("The hotel room was clean and quiet.", "长桥纺织的总部在杭州。", 1),
    ("Eric tried the new café on Monday.", "The Zentra P7 was released in April 2011.", 1),
    ("白鹤制药成立于1998年。", "我明天要去北京出差。", 1),
)

# Exercise 5: one block of token ids, [CLS] ... [SEP].
NEXT_TOKEN_BLOCK = torch.tensor([[2, 131, 87, 412, 9, 1203, 56, 3]])


def softmax_inputs() -> tuple[torch.Tensor, tuple[str, ...]]:
    """Logits z (8,) at a masked position and the 8-word vocabulary they score, for exercise 1."""
    return torch.tensor([-1.0, 0.5, 0.2, 0.1, 2.3, 1.1, 0.4, -0.3]), _VOCABULARY


def mlm_loss_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (B=2, T=6, V=10) and labels (2, 6): -100 except at three chosen positions, for exercise 2."""
    g = torch.Generator().manual_seed(104)
    logits = torch.randn(2, 6, 10, generator=g) * 2
    labels = torch.full((2, 6), -100)
    labels[0, 2], labels[1, 1], labels[1, 4] = 7, 3, 0
    return logits, labels


def _scalar(answer) -> float:
    if isinstance(answer, (str, bytes, bool)):
        raise TypeError(f"give a number, not {type(answer).__name__}")
    return float(torch.as_tensor(answer, dtype=torch.float64).reshape(()))


def _close(given: float, value: float, tol: float = 1e-4) -> bool:
    return math.isclose(given, value, rel_tol=0.0, abs_tol=tol)


@checked("a softmax probability", hints=(
    "a probability depends on every logit of the vocabulary, not on the logit of 'great' alone.",
    "exponentiate all eight logits; the probability of a word is its exponential divided by the sum of all eight.",
    "'great' has the largest logit, so it must get the largest of the eight probabilities — and they add up to 1.",
))
def check_softmax_probability(answer) -> Feedback:
    """answer: P("great" | x) = exp(z_great) / sum_j exp(z_j) for ``z, vocabulary = softmax_inputs()``."""
    name = "a softmax probability"
    z, vocabulary = softmax_inputs()
    k = vocabulary.index(_TARGET)
    given = _scalar(answer)
    p = torch.softmax(z.double(), -1)
    if _close(given, p[k].item()):
        return passed(name, f"P(great | x) = {p[k].item():.4f}: the largest logit gets the largest share.")
    if _close(given, z[k].item()):
        return failed(name, "that is the logit z itself; a probability needs exp and normalisation.")
    if _close(given, math.exp(z[k].item())):
        return failed(name, "you took exp(z) but did not divide by the sum over the whole vocabulary.")
    if _close(given, math.log(p[k].item())):
        return failed(name, "that is log P; the exercise asks for the probability.")
    if _close(given, float(p.max())) or any(_close(given, q) for q in p.tolist()):
        return failed(name, "that is the probability of another word of the vocabulary; look up where 'great' is.")
    if given < 0 or given > 1:
        return failed(name, "a probability lies between 0 and 1.")
    return failed(name)


@checked("the masked-LM loss", hints=(
    "only the positions whose label is not -100 take part: there are three of them.",
    "at each of those positions, turn the ten scores into log-probabilities (log-softmax) and read the one at the "
    "label's index; the loss at that position is minus that number.",
    "the loss is the mean of those three negative log-probabilities: divide their sum by 3, not by B·T.",
))
def check_mlm_loss(answer) -> Feedback:
    """answer: the mean of -log P(label) over the positions whose label is not -100."""
    name = "the masked-LM loss"
    logits, labels = mlm_loss_inputs()
    given = _scalar(answer)
    chosen = labels != -100  # (B, T)
    nll = -torch.log_softmax(logits.double(), -1)[chosen].gather(1, labels[chosen][:, None]).flatten()  # (M,)
    if _close(given, nll.mean().item()):
        return passed(name, f"{nll.mean().item():.4f}, the mean over the |M| = {int(chosen.sum())} chosen positions.")
    if _close(given, nll.sum().item()):
        return failed(name, "that is the sum; the loss divides by |M|, the number of chosen positions.")
    if _close(given, nll.sum().item() / labels.numel()):
        return failed(name, "you divided by every position (B*T); only the chosen ones count.")
    if _close(given, -nll.mean().item()):
        return failed(name, "check the sign: the loss is the *negative* log-probability.")
    every = -torch.log_softmax(logits.double(), -1).gather(2, labels.clamp(min=0)[..., None])  # (B, T, 1)
    if _close(given, every.mean().item()):
        return failed(name, "you scored every position; positions labelled -100 were not chosen and must be left out.")
    return failed(name)


def _ordinary_looking_targets(rate: float = MASK_RATE, rule: tuple[float, float, float] = RULE) -> float:
    as_mask, random, kept = rule
    scored_and_ordinary = rate * (random + kept)  # chosen, but the model sees a word
    ordinary = 1 - rate * as_mask  # every position that does not show [MASK]
    return scored_and_ordinary / ordinary


@checked("targets that look ordinary", hints=(
    "think of the positions the model sees: some show [MASK], all the others show an ordinary word. "
    "Some of those ordinary-looking positions were chosen and are scored by the loss.",
    "a chosen token looks ordinary when it was replaced by a random word or kept; "
    "a position looks ordinary unless it was chosen and replaced by [MASK].",
    "it is a conditional probability: (chance of chosen and ordinary-looking) divided by (chance of ordinary-looking), "
    "both as shares of all the positions that may be chosen.",
))
def check_ordinary_looking_targets(answer) -> Feedback:
    """answer: P(a position is scored by the loss | it shows an ordinary word, not [MASK])."""
    name = "targets that look ordinary"
    given = _scalar(answer)
    rate, (as_mask, random, kept) = MASK_RATE, RULE
    expected = _ordinary_looking_targets()
    if _close(given, expected, 1e-4):
        return passed(name, f"{expected:.4f}: about one ordinary-looking word in {1 / expected:.0f} is secretly a "
                            "target, and the model cannot tell which — so it must build a good contextual vector at "
                            "every position. With 100/0/0 this would be 0, and nothing would train the vectors of "
                            "ordinary words, the only kind fine-tuning ever sees.")
    if _close(given, 100 * expected, 1e-2):
        return failed(name, "give a probability in [0, 1], not a percentage.")
    if _close(given, rate * (random + kept)):
        return failed(name, "that is the chance over all positions; the question is about positions that already "
                            "look ordinary, so divide by the share of positions that do.")
    if _close(given, rate * (random + kept) / (1 - rate)):
        return failed(name, "ordinary-looking positions are not only the unchosen 85%: chosen tokens that were kept "
                            "or randomly replaced look ordinary too.")
    if _close(given, random + kept):
        return failed(name, "that is the share of chosen tokens that look ordinary; the question is the other way "
                            "round: among ordinary-looking positions, how many were chosen?")
    if _close(given, rate * random / (1 - rate * as_mask)) or _close(given, rate * kept / (1 - rate * as_mask)):
        return failed(name, "count both kinds of chosen token that look ordinary: the random replacements and the kept ones.")
    if _close(given, rate):
        return failed(name, "15% is the chance that a token is chosen at all; but most chosen tokens show [MASK], "
                            "and the question is only about positions that do not.")
    if _close(given, 0.0):
        return failed(name, "under 80/10/10 one chosen token in five does not show [MASK]; those positions look "
                            "ordinary and are scored.")
    return failed(name)


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def _shortcut_accuracy() -> float:
    right = [(_is_chinese(a) == _is_chinese(b)) == (label == 0) for a, b, label in NSP_PAIRS]
    return sum(right) / len(right)


@checked("a next-sentence shortcut", hints=(
    "for each pair, decide the shortcut's prediction from the languages of A and B only, then compare it with the label.",
    "the shortcut says IsNext (label 0) when A and B are both Chinese or both not Chinese, and NotNext (label 1) "
    "otherwise; accuracy is the share of the ten pairs it gets right.",
    "every IsNext pair is in one language, so the shortcut gets all of those; it fails only on the NotNext pairs "
    "whose two parts happen to share a language.",
))
def check_nsp_shortcut(answer) -> Feedback:
    """answer: the accuracy on ``NSP_PAIRS`` of "IsNext if and only if A and B are in the same language"."""
    name = "a next-sentence shortcut"
    given = _scalar(answer)
    expected = _shortcut_accuracy()
    cross = sum(_is_chinese(a) != _is_chinese(b) for a, b, _ in NSP_PAIRS)
    if _close(given, expected, 1e-6):
        return passed(name, f"{expected:.0%} without understanding a single sentence — chance is 50%. A random B from "
                            f"a bilingual corpus is often in the other language ({cross} of these 5 NotNext pairs), and "
                            "the model would learn that instead of coherence. That is why labkit.nsp.make_pairs draws B "
                            "from a document in A's language, and why the build even takes the most similar of 8 candidates.")
    if _close(given, 100 * expected, 1e-4):
        return failed(name, "give the accuracy as a fraction in [0, 1], not in percent.")
    if _close(given, expected * len(NSP_PAIRS), 1e-6):
        return failed(name, "that is the number of correct pairs; divide by the number of pairs.")
    if _close(given, 1 - expected, 1e-6):
        return failed(name, "that is the error rate — or the labels are read the wrong way round: 0 means IsNext.")
    if _close(given, 0.5, 1e-6):
        return failed(name, "0.5 is chance; the shortcut does better than chance here. Apply it pair by pair.")
    if _close(given, cross / 5, 1e-6) or _close(given, 1.0, 1e-6):
        return failed(name, "score all ten pairs, the IsNext and the NotNext ones together.")
    return failed(name)


@checked("next-token pairs", hints=(
    "inputs and targets have the same shape: one row, and one column fewer than the block.",
    "the target at position t is the token at position t + 1 of the block; nothing is left to predict after the "
    "last token, and nothing predicts the first.",
    "inputs: the block without its last token; targets: the block without its first token.",
))
def check_next_token_pairs(answer) -> Feedback:
    """answer: (inputs, targets) with inputs = block[:, :-1] and targets = block[:, 1:]."""
    name = "next-token pairs"
    if isinstance(answer, (str, bytes, dict)) or len(answer) != 2:
        return failed(name, "give a pair: (inputs, targets).")
    inputs, targets = (torch.as_tensor(a) for a in answer)
    block = NEXT_TOKEN_BLOCK
    if torch.equal(inputs, block[:, :-1]) and torch.equal(targets, block[:, 1:]):
        return passed(name, "position t reads tokens 0..t and is scored on token t+1; the last token predicts nothing.")
    if torch.equal(inputs, block[:, 1:]) and torch.equal(targets, block[:, :-1]):
        return failed(name, "swapped: the model reads the earlier tokens and predicts the later ones.")
    if torch.equal(inputs, block) and torch.equal(targets, block):
        return failed(name, "a model scored on the token it is reading learns to copy; shift the targets by one.")
    if torch.equal(inputs.flatten(), block[0, :-1]) and torch.equal(targets.flatten(), block[0, 1:]):
        return failed(name, "the right tokens, but keep the batch dimension: shapes (1, T - 1).")
    if inputs.shape != targets.shape:
        return failed(name, f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} should have the same "
                            "shape: one target per input position.")
    return failed(name)
