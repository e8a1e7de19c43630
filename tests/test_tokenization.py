"""Tests of labkit.tokenization: WordPiece training, round trips, Chinese, [UNK], offsets."""

from __future__ import annotations

from collections import Counter

import pytest
import transformers
from tokenizers import Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import WordPiece

from labkit.tokenization import SPECIAL_TOKENS, load_tokenizer, train_tokenizer

ENGLISH = "What is the weather like in Shanghai today? The battery is superb."
CHINESE = "今天天气怎么样？艾玛·史密斯在蓝河银行工作。"
MIXED = "Emma Smith 出生于 Paris, 她在 Blue River Bank 工作。"


@pytest.fixture(scope="module")
def corpus_texts(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_CACHE", str(tmp_path_factory.mktemp("labkit-cache")))
        from labkit.data import load_task

        return load_task("corpus", 1500)["train"]["text"]


@pytest.fixture(scope="module")
def tokenizer(corpus_texts):
    return train_tokenizer(corpus_texts, vocab_size=3000)


@pytest.fixture(scope="module")
def saved(tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(folder)
    return folder


def test_special_tokens_have_fixed_ids(tokenizer):
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tokenizer.pad_token_id == 0 and tokenizer.mask_token == "[MASK]"
    assert 1000 < len(tokenizer) <= 3000


@pytest.mark.parametrize("text", [ENGLISH, CHINESE, MIXED])
def test_save_and_auto_tokenizer_round_trip(tokenizer, saved, text):
    reloaded = transformers.AutoTokenizer.from_pretrained(saved)
    assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert load_tokenizer(saved)(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert reloaded.model_max_length == 512 and reloaded.mask_token_id == tokenizer.mask_token_id


def test_single_and_pair_templates(tokenizer):
    single = tokenizer("the screen is good")
    tokens = tokenizer.convert_ids_to_tokens(single["input_ids"])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "[CLS]" not in tokens[1:]
    pair = tokenizer("who founded it ?", "emma founded it .")
    tokens = tokenizer.convert_ids_to_tokens(pair["input_ids"])
    first_sep = tokens.index("[SEP]")
    assert tokens[-1] == "[SEP]" and tokens.count("[SEP]") == 2
    assert pair["token_type_ids"] == [0] * (first_sep + 1) + [1] * (len(tokens) - first_sep - 1)


def test_chinese_characters_are_one_token_each(tokenizer):
    tokens = tokenizer.tokenize("今天天气怎么样")
    assert tokens == list("今天天气怎么样")


def test_lowercase_wordpiece_and_decode(tokenizer):
    tokens = tokenizer.tokenize("SUPERB Weather")
    assert tokens == ["superb", "weather"]
    rare = tokenizer.tokenize("superbweatherish")
    assert len(rare) > 1 and all(t.startswith("##") for t in rare[1:])
    ids = tokenizer("The battery is superb.")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the battery is superb."


def test_unknown_characters_become_unk(tokenizer):
    tokens = tokenizer.tokenize("good 🙂 ☃ ok")
    assert tokens.count("[UNK]") == 2 and tokens[0] == "good"


def test_offsets_map_back_to_the_text(tokenizer):
    for text in (ENGLISH, CHINESE, MIXED):
        encoding = tokenizer(text, return_offsets_mapping=True)
        tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
        for token, (start, end) in zip(tokens, encoding["offset_mapping"]):
            if token in SPECIAL_TOKENS:
                assert (start, end) == (0, 0)
            else:
                assert text[start:end].lower() == token.removeprefix("##")


def test_folder_works_with_fill_mask_pipeline(tokenizer, saved):
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    transformers.BertForMaskedLM(config).save_pretrained(saved)
    fill = transformers.pipeline("fill-mask", model=str(saved), tokenizer=str(saved), device="cpu")
    predictions = fill("the weather is [MASK] today .", top_k=3)
    assert len(predictions) == 3 and all("[MASK]" not in p["sequence"] for p in predictions)


@pytest.mark.parametrize("texts, kwargs, message", [
    (["some text"], {"vocab_size": 5}, "vocab_size"),
    (["some text"], {"vocab_size": 0}, "vocab_size"),
    ([], {}, "empty"),
    (["", "   "], {}, "empty"),
    ("a single string", {}, "iterable of strings"),
    ([1, 2], {}, "strings"),
    (["some text"], {"min_frequency": 0}, "min_frequency"),
])
def test_bad_arguments_raise_value_error(texts, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_tokenizer(texts, **kwargs)


def training_words(tokenizer, texts) -> Counter:
    """Words of ``texts`` as the tokenizer's own normaliser and pre-tokeniser cut them."""
    backend = tokenizer.backend_tokenizer
    return Counter(word for text in texts
                   for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text)))


def library_vocab(texts, vocab_size: int) -> dict[str, int]:
    """The vocabulary of the ``tokenizers`` WordPieceTrainer (not deterministic) on ``texts``."""
    backend = Tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS),
                                        continuing_subword_prefix="##", show_progress=False)
    backend.train_from_iterator(texts, trainer=trainer)
    return backend.get_vocab()


def test_training_is_deterministic(tokenizer, corpus_texts):
    again = train_tokenizer(corpus_texts, vocab_size=3000)
    assert again.get_vocab() == tokenizer.get_vocab()
    for text in (ENGLISH, CHINESE, MIXED, *corpus_texts[:20]):
        assert again(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_generator_and_list_give_the_same_vocab(tokenizer, corpus_texts):
    from_generator = train_tokenizer((text for text in corpus_texts), vocab_size=3000)
    assert from_generator.get_vocab() == tokenizer.get_vocab()


def test_vocab_limits_and_every_training_word_is_known(tokenizer, corpus_texts):
    vocab = tokenizer.get_vocab()
    assert len(vocab) <= 3000 and sorted(vocab.values()) == list(range(len(vocab)))
    assert {token: vocab[token] for token in SPECIAL_TOKENS} == {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    model = tokenizer.backend_tokenizer.model
    unknown = [word for word in training_words(tokenizer, corpus_texts)
               if any(piece.value == "[UNK]" for piece in model.tokenize(word))]
    assert unknown == []
    # Asked for fewer pieces than the alphabet, it keeps every character (as the library
    # trainer does), so no word of the training text becomes [UNK].
    texts = ["the cat sat on the mat", "a cat"]
    small = train_tokenizer(texts, vocab_size=12)
    words = " ".join(texts).split()
    alphabet = {c for w in words for c in w} | {"##" + c for w in words for c in w[1:]}
    assert len(small) == len(SPECIAL_TOKENS) + len(alphabet) == 19
    assert small.unk_token not in small.tokenize(" ".join(texts)) and small.convert_tokens_to_ids("[MASK]") == 4


def test_agrees_with_the_library_trainer(tokenizer, corpus_texts):
    ours, theirs = tokenizer.get_vocab(), library_vocab(corpus_texts, 3000)
    assert abs(len(ours) - len(theirs)) <= 0.1 * len(theirs)
    assert len(ours.keys() & theirs.keys()) >= 0.95 * len(theirs)  # the library agrees with itself to ~99.5%
    words = training_words(tokenizer, corpus_texts)
    frequent = [w for w in theirs if len(w) > 1 and words[w] >= 20]
    assert len(frequent) > 100 and [w for w in frequent if w not in ours] == []


def test_load_tokenizer_needs_a_saved_folder(tmp_path):
    with pytest.raises(ValueError, match="tokenizer.json"):
        load_tokenizer(tmp_path)
