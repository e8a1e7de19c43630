"""Writing with a causal language model: greedy decoding and sampling (temperature, top-k,
top-p), one token at a time, with a key–value cache.

Each step turns the last position's logits (B, V) into a choice of next token:

* **greedy**: the most probable token (deterministic);
* **temperature** τ: sample from softmax(logits / τ); τ < 1 sharpens, τ > 1 flattens;
* **top-k**: sample only among the k most probable tokens;
* **top-p** (nucleus sampling): sample among the fewest most-probable tokens whose
  probabilities add up to at least p.

Sampling draws from an explicit ``torch.Generator``, so one seed gives one text. A prompt
batch is left-padded (real tokens flush right), so every row's next token goes at the same
column; the model counts positions over real tokens only. With ``use_cache=True`` each step
feeds the newest token alone and reuses the cached keys and values of the rest; without it,
the whole prefix is re-run (same tokens, more work — the tests check both agree).

Shape letters: B batch, T tokens so far, V vocab size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from .training import evaluating

__all__ = ["SamplingConfig", "apply_temperature", "top_k_filter", "top_p_filter", "next_token_distribution",
           "generate", "stream"]


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """How to choose each next token (``do_sample=False``: greedy, and the rest is ignored)."""

    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None  # None: no top-k filter
    top_p: float | None = None  # None: no nucleus filter
    eos_token_id: int | None = None  # stop a row when it writes this token
    use_cache: bool = True

    def __post_init__(self):
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be positive, got {self.max_new_tokens}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 (use do_sample=False for greedy), got {self.temperature}")
        if self.top_k is not None and self.top_k <= 0:
            raise ValueError(f"top_k must be a positive number of tokens or None, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] or None, got {self.top_p}")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits / τ: (B, V) -> (B, V)."""
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep each row's k largest logits; the rest become -inf (probability 0)."""
    k = min(k, logits.size(-1))
    kth = logits.topk(k, dim=-1).values[..., -1:]  # (B, 1): the k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep each row's smallest set of most-probable tokens whose probabilities reach p."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
    probs = sorted_logits.softmax(-1)
    before = probs.cumsum(-1) - probs  # probability mass strictly before each token
    drop_sorted = before >= p  # the top token always stays (nothing comes before it)
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def next_token_distribution(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """The probabilities (B, V) the next token is drawn from, after temperature, top-k and top-p."""
    logits = apply_temperature(logits.float(), cfg.temperature)
    if cfg.top_k is not None:
        logits = top_k_filter(logits, cfg.top_k)
    if cfg.top_p is not None:
        logits = top_p_filter(logits, cfg.top_p)
    return logits.softmax(-1)


def _check_prompt(model, input_ids, attention_mask):
    if input_ids.dim() != 2 or input_ids.size(1) == 0:
        raise ValueError(f"input_ids must be (B, T) with T >= 1, got shape {tuple(input_ids.shape)}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must match input_ids {tuple(input_ids.shape)}")
    if (attention_mask[:, -1] == 0).any():
        raise ValueError("pad prompts on the left (the last column must be real tokens), e.g. tokenizer.padding_side = 'left'")
    return attention_mask.long()


@torch.no_grad()
def stream(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
           cfg: SamplingConfig = SamplingConfig(), *, generator: torch.Generator | None = None,
           pad_token_id: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (next tokens (B,), their distribution (B, V)) step by step; rows that wrote
    ``eos_token_id`` get ``pad_token_id`` afterwards. Stops at max_new_tokens or when every row is done."""
    attention_mask = _check_prompt(model, input_ids, attention_mask)
    device = next(model.parameters()).device
    ids, mask = input_ids.to(device), attention_mask.to(device)
    done = torch.zeros(ids.size(0), dtype=torch.bool, device=device)
    cache = None
    with evaluating(model):
        for step in range(cfg.max_new_tokens):
            if cfg.use_cache and cache is not None:
                out = model(ids[:, -1:], mask, cache=cache)  # the newest token only
            else:
                out = model(ids, mask, use_cache=cfg.use_cache)  # the whole prefix
            cache = out.cache if cfg.use_cache else None
            logits = out.logits[:, -1]  # (B, V): the last position predicts the next token
            if cfg.do_sample:
                probs = next_token_distribution(logits, cfg)
                token = torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)
            else:
                probs = logits.float().softmax(-1)
                token = logits.argmax(-1)
            token = token.masked_fill(done, pad_token_id)
            yield token, probs
            real = ~done  # rows still writing: their token is real, the others' is padding
            if cfg.eos_token_id is not None:
                done = done | (token == cfg.eos_token_id)
            ids = torch.cat([ids, token[:, None]], dim=1)  # (B, T + 1)
            mask = torch.cat([mask, real.long()[:, None]], dim=1)  # (B, T + 1)
            if done.all():
                return


def generate(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
             cfg: SamplingConfig = SamplingConfig(), *, generator: torch.Generator | None = None,
             pad_token_id: int = 0) -> torch.Tensor:
    """The prompt followed by the new tokens: (B, T) -> (B, T + n), n <= cfg.max_new_tokens."""
    new = [token for token, _ in stream(model, input_ids, attention_mask, cfg, generator=generator,
                                        pad_token_id=pad_token_id)]
    return torch.cat([input_ids, torch.stack(new, 1).to(input_ids.device)], dim=1)
