"""Extractive QA pre/post-processing: windows, answer positions, span search, no-answer."""
import random

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from labkit.qa import Span, best_answers, postprocess, prepare_train_features

WORDS = ("the cat dog bird sat ran flew on in over under mat park tree house river red blue small big "
         "a an and was is where who what did when why how").split()


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    """A tiny BERT-style WordPiece tokenizer, built offline from a fixed vocabulary."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + WORDS + [".", ",", "?", "##s"])}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def _answer(context: str, text: str, occurrence: int = 0) -> dict:
    start = -1
    for _ in range(occurrence + 1):
        start = context.index(text, start + 1)
    return {"text": [text], "answer_start": [start]}


def _oracle_logits(features: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits that put all their mass on the labelled start/end tokens (the [CLS] for 0/0)."""
    F, T = len(features["input_ids"]), len(features["input_ids"][0])
    start, end = torch.full((F, T), -10.0), torch.full((F, T), -10.0)
    for f in range(F):
        start[f, features["start_positions"][f]] = 10.0
        end[f, features["end_positions"][f]] = 10.0
    return start, end


def _spanned_text(features: dict, f: int, contexts: list[str]) -> str:
    s, e = features["start_positions"][f], features["end_positions"][f]
    offsets = features["offset_mapping"][f]
    return contexts[features["example_index"][f]][offsets[s][0]:offsets[e][1]]


def test_features_are_fixed_length_windows_with_context_offsets(tokenizer):
    contexts = ["The cat sat on the mat. The dog ran in the park.", "A bird flew."]
    feats = prepare_train_features(tokenizer, ["where did the cat sit?", "who flew?"], contexts,
                                   max_length=16, stride=3)
    # 13 context tokens, 16 - 6 - 3 = 7 per window, each window advancing 7 - stride = 4 tokens
    assert feats["example_index"] == [0, 0, 0, 1]
    for f, ids in enumerate(feats["input_ids"]):
        assert len(ids) == len(feats["offset_mapping"][f]) == len(feats["token_type_ids"][f]) == 16
        tokens = tokenizer.convert_ids_to_tokens(ids)
        sep = tokens.index("[SEP]")
        assert tokens[0] == "[CLS]"
        # question, special and padding tokens have no offsets; context tokens have segment 1
        assert all(o is None for o in feats["offset_mapping"][f][:sep + 1])
        for o, t, m, tt in zip(feats["offset_mapping"][f], tokens, feats["attention_mask"][f], feats["token_type_ids"][f]):
            if o is not None:
                assert tt == 1 and m == 1
                assert contexts[feats["example_index"][f]][o[0]:o[1]].lower() == t
    assert feats["attention_mask"][3][-1] == 0 and feats["offset_mapping"][3][-1] is None  # padded


@pytest.mark.parametrize("where", ["start", "end"])
def test_answer_at_the_edges_of_the_context(tokenizer, where):
    context = "Red bird flew over the river and the small dog ran in the big park"
    text = "Red bird" if where == "start" else "the big park"
    feats = prepare_train_features(tokenizer, ["what?"], [context], [_answer(context, text)], max_length=32, stride=4)
    assert len(feats["input_ids"]) == 1
    s, e = feats["start_positions"][0], feats["end_positions"][0]
    context_tokens = [i for i, o in enumerate(feats["offset_mapping"][0]) if o is not None]
    assert (s if where == "start" else e) == (context_tokens[0] if where == "start" else context_tokens[-1])
    assert _spanned_text(feats, 0, [context]) == text
    assert best_answers(feats, *_oracle_logits(feats), [context]) == [text]


def test_answer_straddling_a_window_boundary_is_labelled_in_the_window_holding_it(tokenizer):
    context = " ".join(["the small cat sat on a red mat and the big dog ran in the park ."] * 3)
    question = "who ran?"
    windows = prepare_train_features(tokenizer, [question], [context], max_length=16, stride=4)
    first = [o for o in windows["offset_mapping"][0] if o is not None]
    second = [o for o in windows["offset_mapping"][1] if o is not None]
    # the answer: the last context token of window 0 and the token after it
    after = next(o for o in second if o[0] >= first[-1][1])
    answer = {"text": [context[first[-1][0]:after[1]]], "answer_start": [first[-1][0]]}
    feats = prepare_train_features(tokenizer, [question], [context], [answer], max_length=16, stride=4)
    assert (feats["start_positions"][0], feats["end_positions"][0]) == (0, 0)  # cut by the boundary
    assert feats["start_positions"][1] > 0 and _spanned_text(feats, 1, [context]) == answer["text"][0]
    [best] = postprocess(feats, *_oracle_logits(feats), [context], n_best=1)
    assert (best[0].text, best[0].start_char) == (answer["text"][0], answer["answer_start"][0])


def test_best_span_in_the_second_feature_is_found(tokenizer):
    context = "the cat sat on the mat . the dog ran in the park . a bird flew over the tree ."
    feats = prepare_train_features(tokenizer, ["what flew?"], [context], max_length=14, stride=2)
    assert len(feats["input_ids"]) >= 3
    start, end = torch.zeros(len(feats["input_ids"]), 14), torch.zeros(len(feats["input_ids"]), 14)
    offsets = feats["offset_mapping"]
    i0 = next(i for i, o in enumerate(offsets[0]) if o is not None)  # a weaker span in feature 0
    start[0, i0], end[0, i0] = 3.0, 3.0
    tokens = tokenizer.convert_ids_to_tokens(feats["input_ids"][1])
    i1 = tokens.index("dog")  # the best span, "dog ran", in feature 1
    start[1, i1], end[1, i1 + 1] = 5.0, 4.0
    spans = postprocess(feats, start, end, [context], n_best=3)[0]
    assert spans[0] == Span("dog ran", offsets[1][i1][0], offsets[1][i1 + 1][1], 9.0)
    assert spans[1].score == 6.0 and spans[1].text == context[offsets[0][i0][0]:offsets[0][i0][1]]
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)


def test_max_answer_length_is_respected(tokenizer):
    context = "the small red bird flew over the big blue river"
    feats = prepare_train_features(tokenizer, ["what?"], [context], max_length=32, stride=4)
    tokens = tokenizer.convert_ids_to_tokens(feats["input_ids"][0])
    start, end = torch.zeros(1, 32), torch.zeros(1, 32)
    start[0, tokens.index("small")] = 5.0  # best start ...
    end[0, tokens.index("river")] = 5.0  # ... and best end, 9 tokens apart
    end[0, tokens.index("bird")] = 2.0  # a 3-token runner-up
    assert best_answers(feats, start, end, [context]) == ["small red bird flew over the big blue river"]
    assert best_answers(feats, start, end, [context], max_answer_length=8) == ["small red bird"]
    for span in postprocess(feats, start, end, [context], n_best=20, max_answer_length=3)[0]:
        assert len(tokenizer(span.text, add_special_tokens=False)["input_ids"]) <= 3


def test_no_answer_wins_only_when_allowed(tokenizer):
    contexts = ["the cat sat on the mat . " * 4]
    feats = prepare_train_features(tokenizer, ["who flew?"], contexts, max_length=16, stride=3)
    F = len(feats["input_ids"])
    assert F > 1
    start, end = torch.zeros(F, 16), torch.zeros(F, 16)
    start[:, 0] = torch.arange(F) + 4.0  # [CLS] scores; the null score is the minimum, 4 + 1
    end[:, 0] = 1.0
    cat = feats["input_ids"][0].index(tokenizer.convert_tokens_to_ids("cat"))
    start[0, cat], end[0, cat] = 2.0, 2.0  # best real span scores 4 < 5
    with_null = postprocess(feats, start, end, contexts, n_best=3, allow_no_answer=True)[0]
    assert with_null[0] == Span("", -1, -1, 5.0) and with_null[1].text == "cat" and len(with_null) == 3
    assert best_answers(feats, start, end, contexts, allow_no_answer=True) == [""]
    assert best_answers(feats, start, end, contexts, allow_no_answer=False) == ["cat"]
    start[0, cat] = 3.5  # now the span (5.5) beats the null score
    assert best_answers(feats, start, end, contexts, allow_no_answer=True) == ["cat"]


def test_example_without_a_valid_span_returns_the_null_span(tokenizer):
    feats = prepare_train_features(tokenizer, ["who?", "who?"], ["", "a cat"], max_length=8, stride=1)
    start, end = torch.ones(2, 8), torch.ones(2, 8)
    result = postprocess(feats, start, end, ["", "a cat"])
    assert result[0] == [Span("", -1, -1, 2.0)]
    assert result[1][0].text in {"a", "cat", "a cat"}


def test_positions_round_trip_through_offsets_on_random_examples(tokenizer):
    rng = random.Random(0)
    questions, contexts, answers = [], [], []
    for _ in range(150):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 60))]
        a = rng.randrange(len(words))
        b = min(len(words), a + rng.randint(1, 4))
        if rng.random() < 0.5:
            words[0] = words[0].capitalize()  # offsets point into the original (cased) text
        prefix, text = " ".join(words[:a]), " ".join(words[a:b])
        contexts.append(" ".join(words) + rng.choice(["", " .", "?"]))
        answers.append({"text": [text], "answer_start": [len(prefix) + (1 if prefix else 0)]})
        questions.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) + "?")
    feats = prepare_train_features(tokenizer, questions, contexts, answers, max_length=24, stride=4)
    found = set()
    for f in range(len(feats["input_ids"])):
        if feats["start_positions"][f] != 0:
            assert _spanned_text(feats, f, contexts) == answers[feats["example_index"][f]]["text"][0]
            found.add(feats["example_index"][f])
        else:
            assert feats["end_positions"][f] == 0
    assert found == set(range(len(contexts)))  # answers of <= stride + 1 tokens always fit in a window
    predicted = best_answers(feats, *_oracle_logits(feats), contexts, allow_no_answer=True)
    assert predicted == [a["text"][0] for a in answers]


def test_n_best_spans_are_distinct_ranked_and_inside_the_context(tokenizer):
    contexts = ["the cat sat on the mat and the dog ran in the park . " * 3]
    feats = prepare_train_features(tokenizer, ["who?"], contexts, max_length=20, stride=6)
    g = torch.Generator().manual_seed(0)
    F = len(feats["input_ids"])
    spans = postprocess(feats, torch.randn(F, 20, generator=g), torch.randn(F, 20, generator=g), contexts, n_best=10)[0]
    assert len(spans) == 10
    assert len({(s.start_char, s.end_char) for s in spans}) == 10  # windows overlap, spans do not repeat
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)
    for s in spans:
        assert 0 <= s.start_char < s.end_char <= len(contexts[0]) and contexts[0][s.start_char:s.end_char] == s.text


def test_bad_arguments_raise(tokenizer):
    q, c = ["who ran?"], ["the dog ran in the park"]
    with pytest.raises(ValueError, match="max_length must be > stride"):
        prepare_train_features(tokenizer, q, c, max_length=8, stride=8)
    with pytest.raises(ValueError, match="question 0 has 3 tokens"):
        prepare_train_features(tokenizer, q, c, max_length=8, stride=2)  # 8 - 3 - 3 = 2 context tokens
    with pytest.raises(ValueError, match="stride must be >= 0"):
        prepare_train_features(tokenizer, q, c, stride=-1)
    with pytest.raises(ValueError, match="1 questions but 2 contexts"):
        prepare_train_features(tokenizer, q, c * 2)
    with pytest.raises(ValueError, match="not at character 3"):
        prepare_train_features(tokenizer, q, c, [{"text": ["dog"], "answer_start": [3]}])
    feats = prepare_train_features(tokenizer, q, c, max_length=16, stride=4)
    with pytest.raises(ValueError, match=r"\(1, 16\).*got \(1, 15\)"):
        postprocess(feats, torch.zeros(1, 15), torch.zeros(1, 15), c)
    with pytest.raises(ValueError, match="n_best"):
        postprocess(feats, torch.zeros(1, 16), torch.zeros(1, 16), c, n_best=0)
    with pytest.raises(ValueError, match="2 contexts"):
        postprocess(feats, torch.zeros(1, 16), torch.zeros(1, 16), c * 2)


# ----------------------------------------------------------------------------- answers are whole words
def _pieces_of(context: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Character offsets of WordPiece-like pieces that tile the words of ``context`` in order."""
    offsets, at = [], 0
    for piece in pieces:
        at = context.index(piece, at)
        offsets.append((at, at + len(piece)))
        at += len(piece)
    return offsets


def test_an_answer_starting_inside_a_word_is_widened_to_the_whole_word():
    from labkit.qa import best_answers

    context = "She works at Lakeside Hospital in Toronto."
    pieces = ["She", "works", "at", "Lake", "side", "Hospital", "in", "Toron", "to", "."]
    offsets = [None] + _pieces_of(context, pieces)  # position 0 is [CLS]
    features = {"offset_mapping": [offsets], "example_index": [0]}
    start, end = torch.full((1, len(offsets)), -5.0), torch.full((1, len(offsets)), -5.0)
    start[0, 1 + pieces.index("side")] = 5.0  # the model starts the answer at ##side ...
    end[0, 1 + pieces.index("Hospital")] = 5.0  # ... and ends it at Hospital
    assert best_answers(features, start, end, [context], snap_to_words=False) == ["side Hospital"]
    assert best_answers(features, start, end, [context]) == ["Lakeside Hospital"]
    start[0, :], end[0, :] = -5.0, -5.0
    start[0, 1 + pieces.index("in")], end[0, 1 + pieces.index("Toron")] = 5.0, 5.0  # ... ends inside Toronto
    assert best_answers(features, start, end, [context]) == ["in Toronto"]


def test_word_edges_keeps_whole_words_punctuation_and_chinese_characters():
    from labkit.qa import word_edges

    text = "Anna (a nurse) works in 多伦多, Canada."
    assert word_edges(text, text.index("nurse"), text.index(")")) == (text.index("nurse"), text.index(")"))
    assert word_edges(text, text.index("urs"), text.index("urs") + 2) == (text.index("nurse"), text.index(")"))
    assert word_edges(text, text.index("伦"), text.index("伦") + 1) == (text.index("伦"), text.index("伦") + 1)
    assert word_edges(text, 0, len(text)) == (0, len(text))
    with pytest.raises(ValueError, match="not inside"):
        word_edges(text, 5, len(text) + 1)
