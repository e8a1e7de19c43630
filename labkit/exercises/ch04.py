"""Checks for chapter 04 (pretraining): a softmax probability, the masked-LM loss, next-token pairs.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
The ``*_inputs()`` functions give every learner the same tensors to work on.
"""
from __future__ import annotations

import math

import torch

from . import Feedback, checked, failed, passed

__all__ = ["softmax_inputs", "check_softmax_probability", "mlm_loss_inputs", "check_mlm_loss", "NEXT_TOKEN_BLOCK",
           "check_next_token_pairs"]

_VOCABULARY = ("[MASK]", "the", "screen", "is", "great", "awful", "battery", ".")
_TARGET = "great"
# Exercise 3: one block of token ids, [CLS] ... [SEP].
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
    return float(torch.as_tensor(answer, dtype=torch.float64).reshape(()))


@checked("a softmax probability")
def check_softmax_probability(answer) -> Feedback:
    """answer: P("great" | x) = exp(z_great) / sum_j exp(z_j) for ``z, vocabulary = softmax_inputs()``."""
    name = "a softmax probability"
    z, vocabulary = softmax_inputs()
    k = vocabulary.index(_TARGET)
    given = _scalar(answer)
    p = torch.softmax(z.double(), -1)
    if math.isclose(given, p[k].item(), abs_tol=1e-4):
        return passed(name, f"P(great | x) = {p[k].item():.4f}: the largest logit gets the largest share.")
    if math.isclose(given, z[k].item(), abs_tol=1e-4):
        return failed(name, "that is the logit z itself; a probability needs exp and normalisation.")
    if math.isclose(given, math.exp(z[k].item()), abs_tol=1e-4):
        return failed(name, "you took exp(z) but did not divide by the sum over the whole vocabulary.")
    if math.isclose(given, math.log(p[k].item()), abs_tol=1e-4):
        return failed(name, "that is log P; the exercise asks for the probability.")
    if given < 0 or given > 1:
        return failed(name, "a probability lies between 0 and 1.")
    return failed(name, "find the index of 'great' in the vocabulary and take torch.softmax(z, -1) there.")


@checked("the masked-LM loss")
def check_mlm_loss(answer) -> Feedback:
    """answer: the mean of -log P(label) over the positions whose label is not -100."""
    name = "the masked-LM loss"
    logits, labels = mlm_loss_inputs()
    given = _scalar(answer)
    chosen = labels != -100  # (B, T)
    nll = -torch.log_softmax(logits.double(), -1)[chosen].gather(1, labels[chosen][:, None]).flatten()  # (M,)
    if math.isclose(given, nll.mean().item(), abs_tol=1e-4):
        return passed(name, f"{nll.mean().item():.4f}, the mean over the |M| = {int(chosen.sum())} chosen positions.")
    if math.isclose(given, nll.sum().item(), abs_tol=1e-4):
        return failed(name, "that is the sum; the loss divides by |M|, the number of chosen positions.")
    if math.isclose(given, nll.sum().item() / labels.numel(), abs_tol=1e-4):
        return failed(name, "you divided by every position (B*T); only the chosen ones count.")
    if math.isclose(given, -nll.mean().item(), abs_tol=1e-4):
        return failed(name, "check the sign: the loss is the *negative* log-probability.")
    return failed(name, "F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100) computes it.")


@checked("next-token pairs")
def check_next_token_pairs(answer) -> Feedback:
    """answer: (inputs, targets) with inputs = block[:, :-1] and targets = block[:, 1:]."""
    name = "next-token pairs"
    inputs, targets = (torch.as_tensor(a) for a in answer)
    block = NEXT_TOKEN_BLOCK
    if torch.equal(inputs, block[:, :-1]) and torch.equal(targets, block[:, 1:]):
        return passed(name, "position t reads tokens 0..t and is scored on token t+1; the last token predicts nothing.")
    if torch.equal(inputs, block[:, 1:]) and torch.equal(targets, block[:, :-1]):
        return failed(name, "swapped: the model reads the earlier tokens and predicts the later ones.")
    if torch.equal(inputs, block) and torch.equal(targets, block):
        return failed(name, "a model scored on the token it is reading learns to copy; shift the targets by one.")
    if inputs.shape != targets.shape:
        return failed(name, f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} should have the same "
                            "shape: one target per input position.")
    return failed(name, "drop the last token for the inputs and the first for the targets.")
