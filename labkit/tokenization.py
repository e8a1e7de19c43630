"""Training a BERT-style WordPiece tokenizer for English + Chinese text.

The pipeline, step by step (all from the ``tokenizers`` library):

1. normaliser  ``BertNormalizer``: lowercase, strip accents, clean control characters and
   put spaces around every CJK character, so each Chinese character is its own word;
2. pre-tokeniser ``BertPreTokenizer``: split on whitespace and punctuation;
3. model ``WordPiece``: a word is the longest vocabulary piece, then ``##``-prefixed
   continuation pieces; a word that cannot be spelled with the vocabulary (a rare symbol,
   an emoji) becomes ``[UNK]``;
4. post-processor: ``[CLS] A [SEP]`` and, for pairs, ``[CLS] A [SEP] B [SEP]`` with
   token type ids 0 then 1;
5. decoder ``WordPiece``: glue ``##`` pieces back together.

The result is wrapped as a ``transformers`` fast tokenizer, so ``save_pretrained`` and
``AutoTokenizer.from_pretrained`` round-trip it and pipelines (``fill-mask``) can use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import WordPiece
from transformers import AutoTokenizer, PreTrainedTokenizerFast

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4, in this order


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


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8000, *, min_frequency: int = 2,
                    model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """Train a lowercase WordPiece tokenizer on ``texts`` (an iterable of str).

    Args:
        texts: training text; read once, may be a generator.
        vocab_size: largest vocabulary, special tokens and single characters included
            (must exceed the 5 special tokens).
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

    backend = Tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix="##", show_progress=False)
    backend.train_from_iterator(_checked_texts(texts), trainer=trainer)

    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
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
