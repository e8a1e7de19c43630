"""Reference solutions for chapter 04 (pretraining). Each ``solution_<name>()`` returns the
answer that ``labkit.exercises.ch04.check_<name>`` accepts."""
import torch
import torch.nn.functional as F

from labkit.exercises.ch04 import NEXT_TOKEN_BLOCK, mlm_loss_inputs, softmax_inputs


def solution_softmax_probability():
    z, vocabulary = softmax_inputs()  # (V,) logits and the V words they score
    p = torch.exp(z) / torch.exp(z).sum()  # P(w | x) = exp(z_w) / sum_j exp(z_j)
    return p[vocabulary.index("great")].item()


def solution_mlm_loss():
    logits, labels = mlm_loss_inputs()  # (B, T, V), (B, T) with -100 at positions that were not chosen
    # cross_entropy skips ignore_index positions and averages over the rest: -1/|M| sum log P(w_i | x~)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100).item()  # (B*T, V) vs (B*T,)


def solution_next_token_pairs():
    block = NEXT_TOKEN_BLOCK  # (1, T)
    return block[:, :-1], block[:, 1:]  # position t reads tokens <= t and predicts token t+1
