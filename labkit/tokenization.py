"""Training a BERT-style WordPiece tokenizer for English + Chinese text.

The pipeline, step by step (all from the ``tokenizers`` library):

1. normaliser  ``BertNormalizer``: lowercase, strip accents, clean control characters and
   put spaces around every CJK character, so each Chinese character is its own word;
2. pre-tokeniser ``BertPreTokenizer``: split on whitespace and punctuation;
3. model ``WordPiece``: a word is the longest vocabulary piece, then ``##``-prefixed
   continuation pieces; a word that cannot be spelled with the vocabulary (a rare symbol,
   an emoji) becomes ``[UNK]``. The vocabulary is learned here, in plain Python, the way
   the library's ``WordPieceTrainer`` learns it (BPE-style merging), but with every tie
   broken by a fixed rule (the pair of older pieces wins) so the same texts always give
   the same vocabulary; the library's trainer breaks ties in hash order. Start from the
   single characters (``c`` and ``##c``), then repeatedly add the merge of the most
   frequent adjacent pair of pieces (``un`` + ``##der`` → ``under``, ``##d`` + ``##er`` →
   ``##der``), until the vocabulary is full or the best pair is rarer than ``min_frequency``;
4. post-processor: ``[CLS] A [SEP]`` and, for pairs, ``[CLS] A [SEP] B [SEP]`` with
   token type ids 0 then 1;
5. decoder ``WordPiece``: glue ``##`` pieces back together.

The result is wrapped as a ``transformers`` fast tokenizer, so ``save_pretrained`` and
``AutoTokenizer.from_pretrained`` round-trip it and pipelines (``fill-mask``) can use it.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Iterator

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from transformers import AutoTokenizer, PreTrainedTokenizerFast

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4, in this order
PREFIX = "##"  # marks a piece that continues a word


def _checked_texts(texts: Iterable[str]) -> Iterator[str]:
    """Yield ``texts``; raise ValueError if one is not a str or none has content."""
    any_content = False
    for text in texts:
        if not isinstance(text, str):
            raise ValueError(f"texts must be strings; got {type(text).__name__}")
        any_content = any_content or bool(text.strip())
        yield text
    if not any_content:
        raise ValueError("texts is empty (or only whitespace): nothing to train a tokenizer on")


def _count_words(backend: Tokenizer, texts: Iterable[str]) -> Counter:
    """How often each word occurs, words cut by the backend's own normaliser and pre-tokeniser."""
    counts: Counter = Counter()
    for text in texts:
        pieces = backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))
        counts.update(word for word, _ in pieces)
    return counts


def _alphabet(word_counts: Counter) -> list[str]:
    """Single-character pieces: ``c`` for every character, then ``##c`` for every character
    seen inside a word; each group most frequent first, ties by string (as the library
    does, word-initial pieces come first, which decides which of two equal pairs wins)."""
    counts: Counter = Counter()
    for word, n in word_counts.items():
        counts[word[0]] += n
        for char in word[1:]:
            counts[char] += 0  # every character may start a word
            counts[PREFIX + char] += n
    return sorted(counts, key=lambda piece: (piece.startswith(PREFIX), -counts[piece], piece))


def _pair_counts(words: list[list[str]], freqs: list[int]) -> tuple[Counter, dict]:
    """Weighted count of every adjacent pair of pieces, and which words hold it."""
    counts: Counter = Counter()
    where: dict = defaultdict(set)
    for index, (pieces, n) in enumerate(zip(words, freqs)):
        for pair in zip(pieces, pieces[1:]):
            counts[pair] += n
            where[pair].add(index)
    return counts, where


def _merge_word(pieces: list[str], pair: tuple[str, str], merged: str) -> list[str]:
    """``pieces`` with every occurrence of ``pair`` (left to right) replaced by ``merged``."""
    out, i = [], 0
    while i < len(pieces):
        if i + 1 < len(pieces) and (pieces[i], pieces[i + 1]) == pair:
            out.append(merged)
            i += 2
        else:
            out.append(pieces[i])
            i += 1
    return out


def _merge_everywhere(pair: tuple[str, str], merged: str, words: list[list[str]], freqs: list[int],
                      counts: Counter, where: dict) -> set:
    """Merge ``pair`` in every word that holds it, updating ``words``, ``counts`` and ``where``
    in place; return the pairs whose count changed."""
    touched = set()
    for index in where.pop(pair):
        old, n = words[index], freqs[index]
        new = _merge_word(old, pair, merged)
        if len(new) == len(old):
            continue  # this word lost the pair to an earlier merge
        for gone in zip(old, old[1:]):
            counts[gone] -= n
            touched.add(gone)
        for added in zip(new, new[1:]):
            counts[added] += n
            where[added].add(index)
            touched.add(added)
        words[index] = new
    return touched


def _learn_vocab(word_counts: Counter, vocab_size: int, min_frequency: int) -> list[str]:
    """Special tokens, then the alphabet, then merged pieces in the order they were learned.

    Each step merges the pair with the highest count; ties go to the pair of older pieces
    (smaller ids, as in the library), so the result never depends on hash order.
    """
    vocab = list(SPECIAL_TOKENS) + _alphabet(word_counts)
    if len(vocab) >= vocab_size:
        return vocab  # as the library: every character stays spellable, even past vocab_size
    ids = {piece: i for i, piece in enumerate(vocab)}
    ordered = sorted(word_counts)
    words = [[w[0]] + [PREFIX + c for c in w[1:]] for w in ordered]
    freqs = [word_counts[w] for w in ordered]
    counts, where = _pair_counts(words, freqs)
    heap = [(-n, ids[a], ids[b], a, b) for (a, b), n in counts.items()]
    heapq.heapify(heap)
    while heap and len(vocab) < vocab_size:
        negative, _, _, a, b = heapq.heappop(heap)
        if counts.get((a, b), 0) != -negative:
            continue  # stale entry: this pair's count changed and a fresh entry was pushed
        if -negative < min_frequency:
            break
        merged = a + b[len(PREFIX):]
        if merged not in ids:
            ids[merged] = len(vocab)
            vocab.append(merged)
        for pair in _merge_everywhere((a, b), merged, words, freqs, counts, where):
            if counts[pair] > 0:
                heapq.heappush(heap, (-counts[pair], ids[pair[0]], ids[pair[1]], *pair))
            else:
                del counts[pair]
    return vocab


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8000, *, min_frequency: int = 2,
                    model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """Train a lowercase WordPiece tokenizer on ``texts`` (an iterable of str).

    Training is deterministic: the same texts and arguments always give the same vocabulary.

    Args:
        texts: training text; read once, may be a generator.
        vocab_size: largest vocabulary, special tokens and single characters included
            (must exceed the 5 special tokens). If the characters alone are more, all of
            them are kept, as the library's trainer does, so every word stays spellable.
        min_frequency: pieces seen fewer times are not merged into the vocabulary.
        model_max_length: longest input the model will accept (tokens).

    Returns:
        A ``transformers`` fast tokenizer with ``[PAD]`` = 0, ``[UNK]``, ``[CLS]``,
        ``[SEP]`` and ``[MASK]``.
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be an int > {len(SPECIAL_TOKENS)} (the special tokens "
                         f"{SPECIAL_TOKENS}); got {vocab_size!r}")
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency must be an int >= 1; got {min_frequency!r}")
    if isinstance(model_max_length, bool) or not isinstance(model_max_length, int) or model_max_length < 2:
        raise ValueError(f"model_max_length must be an int >= 2 (room for [CLS] and [SEP]); got {model_max_length!r}")
    if isinstance(texts, str):
        raise ValueError("texts must be an iterable of strings, not a single string")

    backend = Tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix=PREFIX))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    vocab = _learn_vocab(_count_words(backend, _checked_texts(texts)), vocab_size, min_frequency)
    backend.model = WordPiece(vocab={token: i for i, token in enumerate(vocab)}, unk_token="[UNK]",
                              continuing_subword_prefix=PREFIX, max_input_chars_per_word=100)
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    backend.decoder = decoders.WordPiece(prefix=PREFIX)
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", SPECIAL_TOKENS.index("[CLS]")), ("[SEP]", SPECIAL_TOKENS.index("[SEP]"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=model_max_length,
        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
        padding_side="right",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved with ``save_pretrained`` (via ``AutoTokenizer``)."""
    path = Path(directory)
    if not (path / "tokenizer.json").is_file():
        raise ValueError(f"{path} holds no tokenizer.json; save a tokenizer there with save_pretrained first")
    return AutoTokenizer.from_pretrained(str(path))
