"""Checks for chapter 07 (translation): a clipped n-gram precision, the brevity penalty, one
beam-search step, cross-attention by hand, and which weights a warm start copies.

Each ``check_<name>(answer)`` returns a :class:`~labkit.exercises.Feedback` and never raises.
The ``*_inputs()`` functions, ``warm_start_models()`` and the constants give every learner the
same data to work on.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import torch

from . import Feedback, checked, failed, passed

__all__ = ["BLEU_PAIR", "check_clipped_precision", "SHORT_PAIR", "check_brevity_penalty", "beam_step_inputs",
           "check_beam_step", "CrossAttentionInputs", "cross_attention_inputs", "check_cross_attention",
           "warm_start_models", "check_warm_start"]

BLEU_PAIR = ("今天的天气很好很好", "今天天气很好")  # exercise 1: (hypothesis, reference)
SHORT_PAIR = ("今天天气好", "今天天气怎么样？")  # exercise 2: (hypothesis, reference)


def beam_step_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Beam scores (K=2,) = log P(prefix), and next-token log-probabilities (2, V=5), for exercise 3."""
    beam_scores = torch.tensor([-0.3, -1.5])
    next_log_probs = torch.log(torch.tensor([[0.50, 0.40, 0.05, 0.03, 0.02],
                                             [0.90, 0.04, 0.03, 0.02, 0.01]]))
    return beam_scores, next_log_probs


@dataclass(frozen=True)
class CrossAttentionInputs:
    """One head of cross-attention, for exercise 4. T = 3 target positions, S = 5 source tokens, C = 8.

    decoder_states (T, C): the decoder's hidden states; memory (S, C): the encoder's output;
    source_mask (S,): True for a real source token, False for [PAD]; w_query, w_key (C, C):
    the head's projections, applied as ``states @ w``; d_k = C.
    """

    decoder_states: torch.Tensor
    memory: torch.Tensor
    source_mask: torch.Tensor
    w_query: torch.Tensor
    w_key: torch.Tensor


def cross_attention_inputs() -> CrossAttentionInputs:
    """The same decoder states, encoder memory (last two source tokens are [PAD]) and projections for everyone."""
    g = torch.Generator().manual_seed(707)
    return CrossAttentionInputs(decoder_states=torch.randn(3, 8, generator=g), memory=torch.randn(5, 8, generator=g),
                                source_mask=torch.tensor([True, True, True, False, False]),
                                w_query=torch.randn(8, 8, generator=g) / math.sqrt(8),
                                w_key=torch.randn(8, 8, generator=g) / math.sqrt(8))


def warm_start_models():
    """A small "pretrained" MaskedLM and the encoder–decoder ``warm_start_seq2seq`` builds from it, for exercise 5.

    The MaskedLM's weights are shifted by seeded noise, so every pretrained tensor is distinct
    (no layer norm still holds its initial ones and zeros).
    """
    from labkit.transformer import MaskedLM, TransformerConfig
    from labkit.translate import warm_start_seq2seq

    config = TransformerConfig(vocab_size=40, max_position=16, d_model=16, n_layers=2, n_decoder_layers=2,
                               n_heads=2, d_ff=32)
    g = torch.Generator().manual_seed(7)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation that leaves the caller's random state alone
        torch.manual_seed(0)
        pretrained = MaskedLM(config)
        with torch.no_grad():
            for p in pretrained.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g))
        model = warm_start_seq2seq(pretrained)
    return pretrained.eval(), model.eval()


def _scalar(answer) -> float:
    return float(torch.as_tensor(answer, dtype=torch.float64).reshape(()))


def _grams(text: str, n: int) -> Counter:
    return Counter(tuple(text[i:i + n]) for i in range(len(text) - n + 1))


def _as_matrix(answer) -> torch.Tensor | None:
    """A learner's answer as a float tensor, or None when it is not numbers."""
    try:
        t = torch.as_tensor(answer)
    except (TypeError, ValueError, RuntimeError):
        return None
    if t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        return None
    return t.detach().to(torch.float32)


@checked("clipped bigram precision", hints=(
    "A bigram is a pair of adjacent characters. Precision asks: of the hypothesis's bigrams, how many "
    "also appear in the reference?",
    "Count each distinct hypothesis bigram, and how often it occurs in the reference; a bigram may be "
    "credited at most as many times as the reference contains it.",
    "Add up those capped counts and divide by the total number of bigrams in the hypothesis (its "
    "length minus one).",
))
def check_clipped_precision(answer) -> Feedback:
    """answer: p_2 = sum over hypothesis bigrams of min(count, count in reference) / number of hypothesis bigrams."""
    name = "clipped bigram precision"
    hyp, ref = BLEU_PAIR
    h, r = _grams(hyp, 2), _grams(ref, 2)
    clipped = sum(min(k, r[g]) for g, k in h.items())
    unclipped = sum(k for g, k in h.items() if g in r)
    given = _scalar(answer)
    if math.isclose(given, clipped / sum(h.values()), abs_tol=1e-4):
        return passed(name, f"{clipped}/{sum(h.values())}: 很好 occurs twice in the hypothesis but once in the "
                            "reference, so it counts once.")
    if math.isclose(given, unclipped / sum(h.values()), abs_tol=1e-4):
        return failed(name, "a repeated bigram may count only as often as the reference contains it (clipping).")
    if math.isclose(given, clipped / sum(r.values()), abs_tol=1e-4):
        return failed(name, "precision divides by the number of *hypothesis* bigrams, not the reference's.")
    if math.isclose(given, clipped, abs_tol=1e-4) or math.isclose(given, unclipped, abs_tol=1e-4):
        return failed(name, "that is a count of matching bigrams; precision is a fraction of the hypothesis's bigrams.")
    return failed(name)


@checked("brevity penalty", hints=(
    "The penalty compares two lengths, counted in characters: the hypothesis's (c) and the reference's (r).",
    "A hypothesis at least as long as the reference is not penalised (the penalty is 1); a shorter one "
    "gets an exponential penalty.",
    "For a short hypothesis the penalty is e raised to the power one minus r divided by c. Count the "
    "full-width question mark as a character.",
))
def check_brevity_penalty(answer) -> Feedback:
    """answer: BP = min(1, exp(1 - r / c)), c and r the hypothesis and reference lengths in characters."""
    name = "brevity penalty"
    c, r = (len(s) for s in SHORT_PAIR)
    given = _scalar(answer)
    if math.isclose(given, min(1.0, math.exp(1 - r / c)), abs_tol=1e-4):
        return passed(name, f"c = {c}, r = {r}: BP = exp(1 − {r}/{c}) = {math.exp(1 - r / c):.4f}.")
    if math.isclose(given, math.exp(1 - c / r), abs_tol=1e-4):
        return failed(name, "the ratio is upside down: the exponent is 1 − r/c, with r the reference length.")
    if math.isclose(given, 1.0, abs_tol=1e-4):
        return failed(name, "BP is 1 only when the hypothesis is at least as long as the reference.")
    if math.isclose(given, c / r, abs_tol=1e-4):
        return failed(name, "BP is exponential: exp(1 − r/c).")
    if math.isclose(given, math.exp(1 - r / (c + 1)), abs_tol=1e-4) or math.isclose(given, math.exp(1 - (r - 1) / c),
                                                                                     abs_tol=1e-4):
        return failed(name, "recount the characters: every Chinese character and the ？ is one token.")
    return failed(name)


@checked("a beam-search step", hints=(
    "A surviving extension is a (beam, token) pair; its score is the score of the whole new prefix.",
    "The log-probability of a prefix grows by addition: old prefix score plus the new token's "
    "log-probability. Score all 2 × 5 extensions that way.",
    "Keep the two highest-scoring extensions among all ten, whichever beams they come from — both may "
    "come from the same beam — and list the better one first.",
))
def check_beam_step(answer) -> Feedback:
    """answer: the 2 best (beam, token) pairs by beam_score + next_log_prob, best first."""
    name = "a beam-search step"
    beam_scores, log_probs = beam_step_inputs()
    total = beam_scores[:, None] + log_probs  # (K, V)
    top = total.flatten().topk(2).indices.tolist()
    expected = [divmod(i, total.shape[1]) for i in top]
    given = [tuple(int(v) for v in pair) for pair in answer]
    if any(len(pair) != 2 for pair in given) or len(given) != 2:
        return failed(name, "give exactly two (beam, token) pairs, e.g. a list of two tuples of two integers.")
    if [tuple(float(v) for v in pair) for pair in answer] != [tuple(map(float, pair)) for pair in given]:
        return failed(name, "beam and token are whole-number indices.")
    if given == expected:
        return passed(name, f"{expected}: both survivors extend beam 0 — beam 1's likely next token cannot make up "
                            "for its weaker prefix.")
    if sorted(given) == sorted(expected):
        return failed(name, "the right pairs, in the wrong order: best first.")
    per_beam = [(k, int(log_probs[k].argmax())) for k in range(len(log_probs))]
    if given == per_beam or sorted(given) == sorted(per_beam):
        return failed(name, "taking each beam's best token keeps one child per beam; beam search compares all "
                            "K × V extensions together.")
    by_next_only = [divmod(i, log_probs.shape[1]) for i in log_probs.flatten().topk(2).indices.tolist()]
    if given == by_next_only or sorted(given) == sorted(by_next_only):
        return failed(name, "add each beam's score so far: an extension is scored by log P(prefix) + log P(token).")
    return failed(name)


def _cross_variants(x: CrossAttentionInputs) -> dict[str, torch.Tensor]:
    """The right (T, S) weights and the matrices that typical mistakes produce."""
    d_k = x.w_key.shape[1]
    q, k = x.decoder_states @ x.w_query, x.memory @ x.w_key  # (T, C), (S, C)
    scores = q @ k.T / math.sqrt(d_k)  # (T, C) @ (C, S) -> (T, S)
    masked = scores.masked_fill(~x.source_mask, float("-inf"))  # padded source columns get -inf
    zeroed = torch.softmax(scores, -1) * x.source_mask
    return {
        "right": torch.softmax(masked, -1),
        "no mask": torch.softmax(scores, -1),
        "no scale": torch.softmax((q @ k.T).masked_fill(~x.source_mask, float("-inf")), -1),  # (T, S)
        "d_k scale": torch.softmax((q @ k.T / d_k).masked_fill(~x.source_mask, float("-inf")), -1),  # (T, S)
        "wrong axis": torch.softmax(masked.masked_fill(~x.source_mask, -1e9), 0),
        "zeroed after softmax": zeroed,
        "scores": masked,
        "raw scores": scores,
    }


@checked("cross-attention weights", hints=(
    "Cross-attention is scaled dot-product attention in which the two sides come from different places: "
    "one side is the decoder, the other the encoder's output. Which side asks, and which is asked?",
    "The queries are the decoder states times the query matrix; the keys are the encoder memory times the "
    "key matrix. Score every (target position, source token) pair by a dot product divided by the square "
    "root of d_k = 8: a 3 × 5 table.",
    "Before the softmax, set the scores of the padded source tokens to minus infinity; then take the "
    "softmax of each row, over the five source tokens, so that each target position's weights sum to 1.",
))
def check_cross_attention(answer) -> Feedback:
    """answer: the (T=3, S=5) cross-attention weights for ``cross_attention_inputs()``."""
    name = "cross-attention weights"
    x = cross_attention_inputs()
    given = _as_matrix(answer)
    if given is None:
        return failed(name, "give the weights as a tensor (or nested list) of numbers.")
    if given.shape == (5, 3):
        return failed(name, "shape (5, 3) is the transpose: the rows belong to the decoder's positions (the queries), "
                            "the columns to the source tokens (the keys).")
    if given.shape in ((3, 3), (5, 5)):
        return failed(name, f"shape {tuple(given.shape)} is a self-attention: cross-attention takes its queries "
                            "from the decoder and its keys from the encoder's memory, giving (3, 5).")
    if given.shape != (3, 5):
        return failed(name, f"expect one weight per (target position, source token): shape (3, 5); "
                            f"got {tuple(given.shape)}.")
    variants = _cross_variants(x)
    close = {k: torch.allclose(given, v, atol=1e-4) for k, v in variants.items()}
    if close["right"]:
        return passed(name, "each target position's weights sum to 1 over the three real source tokens; the "
                            "padded ones get exactly 0.")
    diagnoses = {
        "no mask": "the padded source tokens got weight: mask them (score −∞) before the softmax.",
        "no scale": "divide the scores by √d_k before the softmax.",
        "d_k scale": "you divided by d_k; divide by its square root.",
        "wrong axis": "each row — one target position — must be a distribution over the source tokens; your "
                      "softmax normalised the columns.",
        "zeroed after softmax": "zeroing the padded weights after the softmax leaves rows that no longer sum to 1: "
                                "mask the scores before it.",
        "scores": "these look like scores; the exercise asks for the weights after the softmax.",
        "raw scores": "these look like scores; the exercise asks for the weights after the softmax.",
    }
    for key, message in diagnoses.items():
        if close[key]:
            return failed(name, message)
    swapped = torch.softmax(((x.decoder_states @ x.w_key) @ (x.memory @ x.w_query).T / math.sqrt(8))
                            .masked_fill(~x.source_mask, float("-inf")), -1)  # (T, S)
    if torch.allclose(given, swapped, atol=1e-4):
        return failed(name, "the query matrix belongs to the decoder side and the key matrix to the encoder side; "
                            "you swapped them.")
    return failed(name)


def _new_parameters() -> set[str]:
    """Names of the encoder–decoder's parameters whose values are not a copy of any pretrained tensor."""
    pretrained, model = warm_start_models()
    old = list(pretrained.state_dict().values())
    return {n for n, p in model.named_parameters()
            if not any(p.shape == q.shape and torch.equal(p, q) for q in old)}


@checked("what a warm start copies", hints=(
    "A weight that was copied holds exactly the same numbers as some weight of the pretrained model; "
    "a new one does not.",
    "Go through the encoder–decoder's named parameters and, for each one, look for a pretrained tensor of "
    "the same shape with identical values. Collect the names of those that have none.",
    "Ask which part of the encoder–decoder has no counterpart in a model that only encodes: the part that "
    "lets a decoder position read the source, together with its own layer norm, in every decoder block.",
))
def check_warm_start(answer) -> Feedback:
    """answer: the set of parameter names of ``warm_start_models()[1]`` that do not come from the pretrained model."""
    name = "what a warm start copies"
    if isinstance(answer, str) or not all(isinstance(a, str) for a in answer):
        return failed(name, "give a set (or list) of parameter names, as ``named_parameters()`` spells them.")
    given, expected = set(answer), _new_parameters()
    if given == expected:
        return passed(name, f"{len(expected)} tensors — the cross-attention and its layer norm in both decoder "
                            "blocks — start from scratch; everything else, the decoder's embeddings, "
                            "self-attention and feed-forward layers included, starts from the pretrained encoder.")
    _, model = warm_start_models()
    names = {n for n, _ in model.named_parameters()}
    extra, missing = given - expected, expected - given
    if given - names:
        return failed(name, f"{sorted(given - names)[:2]} are not parameter names of the encoder–decoder.")
    if any(n.startswith("encoder.") for n in extra):
        return failed(name, "the encoder is a copy of the pretrained encoder: none of its parameters is new.")
    if any(n.startswith("decoder.") and ".cross" not in n for n in extra):
        return failed(name, "the decoder's embeddings, self-attention and feed-forward layers are copied from the "
                            "encoder's (the BERT-to-BERT warm start): compare them with the pretrained tensors.")
    if any(n.startswith("head.") for n in extra):
        return failed(name, "the output head is copied from the pretrained masked-LM head.")
    if missing and all("cross_norm" in n for n in missing):
        return failed(name, "the layer norm that follows cross-attention is new as well.")
    if missing and all("bias" in n for n in missing):
        return failed(name, "the biases of the new layers are new too, not only their weight matrices.")
    if missing and {n.split(".")[2] for n in missing} != {n.split(".")[2] for n in expected}:
        return failed(name, "the decoder has more than one block: each has its own new cross-attention.")
    return failed(name)
