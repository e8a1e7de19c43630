"""Reference solutions for chapter 04 (pretraining). Each ``solution_<name>()`` returns the
answer that ``labkit.exercises.ch04.check_<name>`` accepts."""
import torch
import torch.nn.functional as F

from labkit.exercises.ch04 import MASK_RATE, NEXT_TOKEN_BLOCK, NSP_PAIRS, RULE, mlm_loss_inputs, softmax_inputs


def solution_softmax_probability():
    z, vocabulary = softmax_inputs()  # (V,) logits and the V words they score
    p = torch.exp(z) / torch.exp(z).sum()  # P(w | x) = exp(z_w) / sum_j exp(z_j)
    return p[vocabulary.index("great")].item()


def solution_mlm_loss():
    logits, labels = mlm_loss_inputs()  # (B, T, V), (B, T) with -100 at positions that were not chosen
    # cross_entropy skips ignore_index positions and averages over the rest: -1/|M| sum log P(w_i | x~)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100).item()  # (B*T, V) vs (B*T,)


def solution_ordinary_looking_targets():
    as_mask, random, kept = RULE
    chosen_and_ordinary = MASK_RATE * (random + kept)  # chosen, but shown as a word: 0.15 * 0.2 = 0.03
    ordinary = 1 - MASK_RATE * as_mask  # every position not showing [MASK]: 1 - 0.12 = 0.88
    return chosen_and_ordinary / ordinary  # P(scored | looks ordinary) = 0.03 / 0.88 ≈ 0.034


def solution_nsp_shortcut():
    def is_chinese(text: str) -> bool:
        return any("\u4e00" <= c <= "\u9fff" for c in text)

    # the shortcut: IsNext (label 0) exactly when A and B are in the same language
    right = [(0 if is_chinese(a) == is_chinese(b) else 1) == label for a, b, label in NSP_PAIRS]
    return sum(right) / len(right)  # 8 of 10: all 5 IsNext pairs, and the 3 NotNext pairs that mix languages


def solution_next_token_pairs():
    block = NEXT_TOKEN_BLOCK  # (1, T)
    return block[:, :-1], block[:, 1:]  # position t reads tokens <= t and predicts token t+1
