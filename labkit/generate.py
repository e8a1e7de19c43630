r"""Decoding for labkit's :class:`~labkit.transformer.Seq2Seq`: greedy search and beam search.

The decoder defines :math:`P(y_t \mid y_{<t}, x)`. Decoding looks for a target y with a high

.. math::

    \log P(y \mid x) = \sum_t \log P(y_t \mid y_{<t}, x).

*Greedy* search takes the most likely token at every step. *Beam search* keeps the
``num_beams`` best prefixes ("beams") at every step; a prefix that emits EOS becomes a
finished hypothesis scored :math:`\log P(y \mid x) / |y|^{\alpha}` (α = ``length_penalty``,
|y| the generated tokens, EOS included), so long outputs are not punished just for having
more negative terms. A batch row stops when it holds ``num_beams`` finished hypotheses (as
transformers' ``early_stopping=True``) or after ``max_new_tokens`` steps.

transformers' ``generate`` returns the same tokens (tests/test_generate.py checks it): with
``num_beams=1`` as :func:`greedy_decode`, with ``num_beams=K, early_stopping=True`` as
:func:`beam_search` — except that its beam search fills ended rows with EOS, not padding,
when ``pad_token_id`` is 0.

The source is encoded once. With ``use_cache=True`` (the default) the decoder keeps a
:class:`~labkit.attention.KVCache`: the keys and values of the prefix's self-attention, and the
cross-attention keys and values of the encoder's output, so each step runs the newest token
alone; beam search reorders the cache with its beams. ``use_cache=False`` re-runs the whole
prefix at every step (the same tokens, more work; the tests check both agree).

Shape letters: B batch, K num_beams, S source length, t prefix length, C d_model, V vocab size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from .attention import KVCache
from .training import evaluating
from .transformer import Seq2Seq

__all__ = ["greedy_decode", "beam_search"]


def _check(model: Seq2Seq, input_ids: torch.Tensor, num_beams: int, max_new_tokens: int) -> None:
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (B, S), got shape {tuple(input_ids.shape)}")
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if 1 + max_new_tokens > model.config.max_position:
        raise ValueError(f"1 + max_new_tokens = {1 + max_new_tokens} exceeds the decoder's "
                         f"max_position={model.config.max_position}")
    if 2 * num_beams > model.config.vocab_size:
        raise ValueError(f"num_beams={num_beams} needs a vocabulary of at least {2 * num_beams} tokens, "
                         f"the model has {model.config.vocab_size}")


def _encode(model: Seq2Seq, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The encoder's output ("memory"), computed once per call: (B, S) -> (B, S, C)."""
    return model.encoder(input_ids, attention_mask).last_hidden_state


def _next_token_logits(model: Seq2Seq, prefix: torch.Tensor, memory: torch.Tensor,
                       memory_mask: torch.Tensor | None, cache: KVCache | None = None) -> torch.Tensor:
    """Logits of the token after each prefix: (N, t) prefixes, (N, S, C) memory -> (N, V).
    With a cache holding the first t - 1 positions, only the last token is run."""
    if cache is None:
        h = model.decoder(prefix, memory, memory_mask).last_hidden_state  # (N, t, C): the whole prefix
    else:
        h = model.decoder(prefix[:, cache.length:], memory, memory_mask, cache=cache).last_hidden_state  # (N, 1, C)
    return model.head(h[:, -1])  # (N, C) -> (N, V)


@torch.no_grad()
def greedy_decode(
    model: Seq2Seq,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    bos_token_id: int,
    eos_token_id: int,
    pad_token_id: int = 0,
    max_new_tokens: int = 64,
    use_cache: bool = True,
) -> torch.Tensor:
    """Decode by taking the most likely next token at every step.

    Args:
        model: an encoder–decoder (put in eval mode for the call, then restored).
        input_ids: (B, S) source ids; attention_mask: (B, S), 1 for real tokens, 0 for padding.
        bos_token_id: the token every output starts with.
        eos_token_id: a row is finished once it emits this token; later positions hold pad_token_id.
        max_new_tokens: the most tokens generated after BOS.
        use_cache: keep the decoder's keys and values between steps (same tokens, less work).

    Returns:
        (B, 1 + n) token ids, n <= max_new_tokens the steps until every row finished.
    """
    _check(model, input_ids, 1, max_new_tokens)
    with evaluating(model):
        memory = _encode(model, input_ids, attention_mask)  # (B, S, C)
        B = input_ids.size(0)
        tokens = torch.full((B, 1), bos_token_id, dtype=torch.long, device=input_ids.device)  # (B, 1)
        finished = torch.zeros(B, dtype=torch.bool, device=input_ids.device)  # (B,)
        cache = KVCache(len(model.decoder.layers)) if use_cache else None
        for _ in range(max_new_tokens):
            next_token = _next_token_logits(model, tokens, memory, attention_mask, cache).argmax(dim=-1)  # (B,)
            next_token = next_token.masked_fill(finished, pad_token_id)  # finished rows only pad
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)  # (B, t + 1)
            finished |= next_token == eos_token_id
            if finished.all():
                break
    return tokens


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    bos_token_id: int,
    eos_token_id: int,
    pad_token_id: int = 0,
    num_beams: int = 4,
    max_new_tokens: int = 64,
    length_penalty: float = 1.0,
    use_cache: bool = True,
) -> torch.Tensor:
    """Decode with beam search; return the best finished hypothesis of every row.

    Args:
        model: an encoder–decoder (put in eval mode for the call, then restored).
        input_ids: (B, S) source ids; attention_mask: (B, S), 1 for real tokens, 0 for padding.
        bos_token_id, eos_token_id, pad_token_id: start token, end token, filler after the end.
        num_beams: K, prefixes kept per row at every step (K = 1 is greedy search).
        max_new_tokens: the most tokens generated after BOS; a beam reaching it is finished.
        length_penalty: α in score = sum of log-probabilities / length ** α.
        use_cache: keep the decoder's keys and values between steps, reordered with the beams.

    Returns:
        (B, 1 + n) token ids, n <= max_new_tokens the longest returned hypothesis.
    """
    _check(model, input_ids, num_beams, max_new_tokens)
    with evaluating(model):
        B, K, device = input_ids.size(0), num_beams, input_ids.device
        memory = _encode(model, input_ids, attention_mask).repeat_interleave(K, dim=0)  # (B*K, S, C)
        memory_mask = attention_mask.repeat_interleave(K, dim=0) if attention_mask is not None else None  # (B*K, S)

        beams = torch.full((B, K, 1), bos_token_id, dtype=torch.long, device=device)  # (B, K, t)
        beam_scores = torch.zeros(B, K, device=device)  # (B, K): log P(prefix | x)
        beam_scores[:, 1:] = float("-inf")  # all beams start equal: expand only the first at step 1
        hypotheses: list[list[tuple[float, torch.Tensor]]] = [[] for _ in range(B)]  # (score, tokens), best first
        done = [False] * B  # a row is done once it holds K finished hypotheses
        cache = KVCache(len(model.decoder.layers)) if use_cache else None  # over the B*K beams

        for step in range(max_new_tokens):
            t = step + 1  # tokens generated after this step
            logits = _next_token_logits(model, beams.reshape(B * K, t), memory, memory_mask, cache)  # (B*K, V)
            V = logits.size(-1)
            log_probs = F.log_softmax(logits, dim=-1).view(B, K, V)  # (B, K, V)
            scores = (beam_scores[:, :, None] + log_probs).view(B, K * V)  # (B, K*V): every one-token extension

            # 2K candidates: even if K of them end with EOS, K remain to continue
            cand_scores, cand_index = scores.topk(2 * K, dim=-1)  # (B, 2K)
            cand_beam, cand_token = cand_index // V, cand_index % V  # (B, 2K) which beam, which next token
            cand_tokens = torch.cat([
                beams.gather(1, cand_beam[:, :, None].expand(B, 2 * K, t)),  # (B, 2K, t) the extended prefixes
                cand_token[:, :, None],  # (B, 2K, 1)
            ], dim=-1)  # (B, 2K, t + 1)
            ends = (cand_token == eos_token_id) | (t == max_new_tokens)  # (B, 2K)

            # 1. candidates among the K best that end become finished hypotheses
            normalised = cand_scores / t ** length_penalty  # (B, 2K)
            for b in range(B):
                if done[b]:
                    continue
                hypotheses[b] += [(normalised[b, r].item(), cand_tokens[b, r]) for r in range(K) if ends[b, r]]
                hypotheses[b] = sorted(hypotheses[b], key=lambda h: h[0], reverse=True)[:K]
                done[b] = len(hypotheses[b]) == K
            if all(done) or t == max_new_tokens:
                break

            # 2. the K best candidates that did not end are the next beams
            running = cand_scores.masked_fill(ends, float("-inf"))  # (B, 2K)
            beam_scores, keep = running.topk(K, dim=-1)  # (B, K)
            beams = cand_tokens.gather(1, keep[:, :, None].expand(B, K, t + 1))  # (B, K, t + 1)
            if cache is not None:  # each new beam continues some old beam: take that beam's keys and values
                source = cand_beam.gather(1, keep) + K * torch.arange(B, device=device)[:, None]  # (B, K)
                cache = cache.select(source.flatten())
    best = [h[0][1] for h in hypotheses]  # B sequences of lengths 1 + n_b
    return pad_sequence(best, batch_first=True, padding_value=pad_token_id)  # (B, 1 + max n_b)
