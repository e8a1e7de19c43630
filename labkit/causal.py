r"""Measuring a causal language model: what it copies, what each pretraining objective is good
at, and what its key–value cache saves.

Three measurements for chapter 08, each usable on its own:

* **Memorisation.** :class:`CorpusIndex` holds the normalised sentences of a training corpus;
  :func:`copied_share` is the share of a model's generated sentences found there word for word.
  A sentence is a run of text ending in ``. ! ? ;`` or ``。！？；``; it is compared after
  lower-casing and dropping punctuation and extra spaces; a generated text's unfinished last
  piece is ignored, and so is any sentence shorter than ``min_length`` units (an English word
  or a Chinese character is one unit).
* **Masked vs causal pretraining.** :func:`masked_vs_causal` asks a masked LM and a GPT the
  same two questions about one hidden word piece of each text: *cloze* (the words on both sides
  are given) and *next word* (only the words to its left are given). A GPT reads left to right,
  so in both it predicts from the left part alone; the masked LM sees the right part in the
  cloze and, for the next word, the left part followed by ``[MASK]`` and ``[SEP]``.
* **The key–value cache.** :func:`time_decoding` times cached and uncached decoding of the
  same prompts; :func:`positions_processed` counts the token positions the model is run on,
  which :func:`decoding_positions` gives in closed form.

Shape letters: B batch, T tokens, V vocabulary.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import torch

from .sampling import SamplingConfig, generate
from .training import evaluating
from .translate import join_cjk

__all__ = ["split_sentences", "normalise_sentence", "sentence_length", "CorpusIndex", "SentenceCheck",
           "copied_share", "ClozeItem", "MaskedVsCausal", "masked_vs_causal", "DecodingTimes", "time_decoding",
           "positions_processed", "decoding_positions"]

_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_END = re.compile(r"[.!?;](?=\s|$|[\"'])|[。！？；]")  # a sentence ends here (not inside 3.5 or e.g.)
_NOT_TEXT = re.compile(rf"[^0-9a-z{_CJK}]+")
_UNIT = re.compile(rf"[{_CJK}]|[0-9a-z]+")


# ----------------------------------------------------------------------------- memorisation
def split_sentences(text: str) -> tuple[list[str], str]:
    """Cut ``text`` after each sentence end: (the complete sentences, the unfinished rest)."""
    sentences, start = [], 0
    for m in _END.finditer(text):
        piece = text[start:m.end()].strip()
        if piece:
            sentences.append(piece)
        start = m.end()
    return sentences, text[start:].strip()


def normalise_sentence(sentence: str) -> str:
    """Lower-case, punctuation to spaces, single spaces, no spaces next to Chinese characters."""
    return join_cjk(" ".join(_NOT_TEXT.sub(" ", sentence.lower()).split()))


def sentence_length(sentence: str) -> int:
    """English words plus Chinese characters (numbers count as words)."""
    return len(_UNIT.findall(sentence.lower()))


@dataclass(frozen=True)
class SentenceCheck:
    sentence: str  # as generated
    copied: bool  # its normalised form is a sentence of the corpus


class CorpusIndex:
    """The normalised sentences of a corpus, for checking generated text against it."""

    def __init__(self, texts: Iterable[str], *, min_length: int = 4):
        if min_length < 1:
            raise ValueError(f"min_length must be at least 1, got {min_length}")
        self.min_length = min_length
        self.sentences = frozenset(normalise_sentence(s) for t in texts for s in split_sentences(t)[0])
        if not self.sentences:
            raise ValueError("the corpus has no complete sentence")

    def __len__(self) -> int:
        return len(self.sentences)

    def __contains__(self, sentence: str) -> bool:
        return normalise_sentence(sentence) in self.sentences

    def check(self, generated: Sequence[str]) -> list[SentenceCheck]:
        """Every complete sentence of ``generated`` with at least ``min_length`` units, in order."""
        return [SentenceCheck(s, s in self) for text in generated for s in split_sentences(text)[0]
                if sentence_length(s) >= self.min_length]

    def copied_share(self, generated: Sequence[str]) -> float:
        """The share of the sentences :meth:`check` counts that occur in the corpus word for word."""
        checks = self.check(generated)
        if not checks:
            raise ValueError(f"the {len(generated)} texts hold no complete sentence of at least "
                             f"{self.min_length} words or characters")
        return sum(c.copied for c in checks) / len(checks)


def copied_share(generated: Sequence[str], corpus: Iterable[str], *, min_length: int = 4) -> float:
    """The share of generated sentences that appear verbatim in ``corpus`` (rules: the module's docstring)."""
    return CorpusIndex(corpus, min_length=min_length).copied_share(generated)


# ----------------------------------------------------------------------------- masked vs causal
@dataclass(frozen=True)
class ClozeItem:
    left: list[str]  # word pieces before the hidden one
    target: str
    right: list[str]  # word pieces after it
    masked_both_sides: str  # the masked LM's guess with both sides
    masked_left_only: str  # its guess with the left side only
    causal: str  # the GPT's guess (always from the left side)


@dataclass(frozen=True)
class MaskedVsCausal:
    """Accuracy of each model on each question, and the items themselves."""

    accuracy: dict[str, dict[str, float]]  # {"cloze (both sides)" | "next word (left only)": {"masked LM" | "GPT": acc}}
    items: list[ClozeItem] = field(repr=False)


def _best_ordinary(logits: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
    """argmax over the vocabulary without the special tokens: (N, V) -> (N,)."""
    return logits.float().index_fill(-1, special, float("-inf")).argmax(-1)


def _run(model, rows: list[list[int]], where: list[int], pad_id: int, batch_size: int) -> torch.Tensor:
    """The logits (N, V) of each row at its position ``where[i]`` (rows right-padded)."""
    device = next(model.parameters()).device
    out = []
    with evaluating(model):
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            T = max(len(r) for r in chunk)
            ids = torch.full((len(chunk), T), pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for j, r in enumerate(chunk):
                ids[j, :len(r)] = torch.tensor(r)
                mask[j, :len(r)] = 1
            logits = model(ids.to(device), mask.to(device)).logits  # (b, T, V)
            at = torch.tensor(where[i:i + batch_size], device=device)
            out.append(logits[torch.arange(len(chunk), device=device), at].cpu())  # (b, V)
    return torch.cat(out)


def masked_vs_causal(mlm, gpt, tokenizer, texts: Sequence[str], *, n_items: int = 200, max_tokens: int = 48,
                     margin: int = 4, seed: int = 0, batch_size: int = 64) -> MaskedVsCausal:
    """One hidden word piece per text, asked of both models twice: with both sides, and with the left side only.

    mlm: a masked LM (``logits`` (B, T, V) from ``(input_ids, attention_mask)``) and gpt a causal LM,
    both on ``tokenizer``'s vocabulary. Each of the first ``n_items`` texts with at least
    ``2 * margin + 1`` word pieces (cut to ``max_tokens``) hides the piece at a position drawn with
    ``seed``, at least ``margin`` pieces from either end. Guesses are the most probable ordinary
    (not special) word piece; a guess counts if it is the hidden piece.
    """
    if len(tokenizer) != gpt.config.vocab_size:
        raise ValueError(f"the GPT's vocabulary ({gpt.config.vocab_size}) is not the tokenizer's ({len(tokenizer)})")
    if margin < 1 or max_tokens < 2 * margin + 1:
        raise ValueError(f"need margin >= 1 and max_tokens >= 2 * margin + 1, got margin={margin}, max_tokens={max_tokens}")
    g = torch.Generator().manual_seed(seed)
    cls, sep, mask_id, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id, tokenizer.pad_token_id
    chosen = []
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        ids = ids[:max_tokens]
        if len(ids) >= 2 * margin + 1:
            i = margin + int(torch.randint(len(ids) - 2 * margin, (1,), generator=g))
            chosen.append((ids, i))
        if len(chosen) == n_items:
            break
    if not chosen:
        raise ValueError(f"none of the {len(texts)} texts has {2 * margin + 1} word pieces")
    both = [[cls, *ids[:i], mask_id, *ids[i + 1:], sep] for ids, i in chosen]
    left_masked = [[cls, *ids[:i], mask_id, sep] for ids, i in chosen]
    left = [[cls, *ids[:i]] for ids, i in chosen]
    at = [i + 1 for _, i in chosen]  # the [MASK]'s position after [CLS]; for the GPT, the position of the piece before
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    guess = {
        "mlm_both": _best_ordinary(_run(mlm, both, at, pad, batch_size), special),
        "mlm_left": _best_ordinary(_run(mlm, left_masked, at, pad, batch_size), special),
        "gpt": _best_ordinary(_run(gpt, left, [i for _, i in chosen], pad, batch_size), special),
    }
    target = torch.tensor([ids[i] for ids, i in chosen])
    hit = {k: (v == target).float().mean().item() for k, v in guess.items()}
    name = tokenizer.convert_ids_to_tokens
    items = [ClozeItem(name(ids[:i]), name(ids[i]), name(ids[i + 1:]), name(int(guess["mlm_both"][n])),
                       name(int(guess["mlm_left"][n])), name(int(guess["gpt"][n])))
             for n, (ids, i) in enumerate(chosen)]
    accuracy = {"cloze (both sides)": {"masked LM": hit["mlm_both"], "GPT": hit["gpt"]},
                "next word (left only)": {"masked LM": hit["mlm_left"], "GPT": hit["gpt"]}}
    return MaskedVsCausal(accuracy, items)


# ----------------------------------------------------------------------------- the key-value cache
@dataclass(frozen=True)
class DecodingTimes:
    cached_seconds: float  # best of the repeats
    uncached_seconds: float
    cached_tokens: torch.Tensor  # (B, T + n): what each run wrote
    uncached_tokens: torch.Tensor = field(repr=False)

    @property
    def ratio(self) -> float:
        """How many times longer decoding takes without the cache."""
        return self.uncached_seconds / self.cached_seconds


def _best_time(fn, repeats: int) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up: first-call allocations
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def time_decoding(model, input_ids: torch.Tensor, cfg: SamplingConfig, *, attention_mask: torch.Tensor | None = None,
                  repeats: int = 3, seed: int = 0) -> DecodingTimes:
    """Wall time of :func:`labkit.sampling.generate` with and without the cache (best of ``repeats``).

    input_ids (B, T) as ``generate`` takes them; a sampling ``cfg`` draws from ``seed`` each run, so
    both runs see the same random numbers. Raises RuntimeError if the two write different tokens."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    runs = {}
    for use_cache in (True, False):
        c = replace(cfg, use_cache=use_cache)
        runs[use_cache] = _best_time(lambda: generate(model, input_ids, attention_mask, c,
                                                      generator=torch.Generator().manual_seed(seed)), repeats)
    if not torch.equal(runs[True][1], runs[False][1]):
        raise RuntimeError("cached and uncached decoding wrote different tokens")
    return DecodingTimes(runs[True][0], runs[False][0], runs[True][1], runs[False][1])


def positions_processed(model, input_ids: torch.Tensor, cfg: SamplingConfig, *,
                        attention_mask: torch.Tensor | None = None, seed: int = 0) -> int:
    """How many token positions (summed over the batch) ``generate`` runs the model on."""
    count = 0

    def hook(module, args, kwargs):
        nonlocal count
        ids = args[0] if args else kwargs["input_ids"]
        count += ids.numel()

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        generate(model, input_ids, attention_mask, cfg, generator=torch.Generator().manual_seed(seed))
    finally:
        handle.remove()
    return count


def decoding_positions(prompt_length: int, new_tokens: int, *, use_cache: bool) -> int:
    """Positions one row runs through the model to write ``new_tokens`` after a prompt of ``prompt_length``.

    Step s (0, 1, ...) runs the whole prefix, prompt_length + s positions, without the cache; with
    it, the first step runs the prompt and every later step the newest token alone."""
    if prompt_length < 1 or new_tokens < 1:
        raise ValueError(f"need prompt_length >= 1 and new_tokens >= 1, got {prompt_length} and {new_tokens}")
    if use_cache:
        return prompt_length + (new_tokens - 1)
    return new_tokens * prompt_length + new_tokens * (new_tokens - 1) // 2
