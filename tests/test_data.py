"""Tests of TinyWorld (labkit.data): schemas, honesty of the splits, knobs, determinism."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from datasets import ClassLabel, Sequence, Translation, Value

from labkit.data import (DEFAULT_CANARY, SIZES, DATASETS, build_world, count_tokens, gender_occupation_skew,
                         load_task, split_sizes)
from labkit.data.lexicon import read_json
from labkit.data.ner import NER_TAGS
from labkit.data.render import render
from labkit.data.sentiment import opinion_words
from labkit.data.tasks import build_rows

LABELLED = ("sentiment", "topic", "ner", "qa", "translation")


@pytest.fixture(scope="module", autouse=True)
def cache_env(tmp_path_factory):
    """Every test of this module caches into a fresh folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_CACHE", str(tmp_path_factory.mktemp("labkit-cache")))
        patch.delenv("LAB_SCALE", raising=False)
        yield


@pytest.fixture(scope="module")
def ci(cache_env):
    """Every task at the "ci" scale, seed 0."""
    return {task: load_task(task, "ci") for task in DATASETS}


@pytest.fixture(scope="module")
def world():
    return build_world(0)


def texts_of(split) -> list[str]:
    """All English text of a split, whatever the task's columns."""
    columns = split.column_names
    if "text" in columns:
        return list(split["text"])
    if "tokens" in columns:
        return [" ".join(tokens) for tokens in split["tokens"]]
    if "context" in columns:
        return [f"{c} {q}" for c, q in zip(split["context"], split["question"])]
    return [pair["en"] for pair in split["translation"]]


def mentions(names: list[str], texts: list[str]) -> set[str]:
    """Names that occur in ``texts`` as whole words."""
    blob = "\n".join(texts)
    return {name for name in names if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", blob)}


# ---- schemas --------------------------------------------------------------------------


def test_tasks_and_scales_are_the_public_names():
    assert DATASETS == ("corpus", "sentiment", "topic", "ner", "qa", "translation", "instructions")
    assert SIZES == ("ci", "cpu", "gpu")


@pytest.mark.parametrize("task", DATASETS)
def test_splits_sizes_and_features(ci, task):
    dataset = ci[task]
    assert list(dataset) == ["train", "validation", "test"]
    sizes = split_sizes(task, "ci")
    expected = {"train": sizes.train, "validation": sizes.validation, "test": sizes.test}
    for split, data in dataset.items():
        if task == "corpus":
            tokens = sum(count_tokens(t) for t in data["text"])
            assert expected[split] <= tokens < expected[split] + 200  # stops at the first document past the budget
        else:
            assert len(data) == expected[split]
    features = dataset["train"].features
    if task == "corpus":
        assert features == {"text": Value("string")}
    elif task in ("sentiment", "topic"):
        assert isinstance(features["label"], ClassLabel)
        names = ["negative", "positive"] if task == "sentiment" else \
            ["business", "sports", "technology", "health", "politics"]
        assert features["label"].names == names
    elif task == "ner":
        assert features["tokens"].feature == Value("string")
        assert features["ner_tags"].feature.names == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC",
                                                      "B-DATE", "I-DATE", "B-PRODUCT", "I-PRODUCT"]
    elif task == "qa":
        assert set(features) == {"id", "title", "context", "question", "answers"}
        assert features["answers"] == Sequence({"text": Value("string"), "answer_start": Value("int32")})
    elif task == "instructions":
        assert set(features) == {"messages", "kind", "entity", "answerable", "lang", "value"}
    else:
        assert features["translation"] == Translation(languages=["en", "zh"])


def test_corpus_is_bilingual_and_has_several_kinds(ci):
    texts = ci["corpus"]["train"]["text"]
    chinese = [t for t in texts if re.search(r"[\u4e00-\u9fff]", t)]
    assert 0.2 < len(chinese) / len(texts) < 0.6  # English stories are a third of the documents
    blob = " ".join(texts)
    for marker in ("was born", "percent", "I would", "出生于", "今天", "is based in"):
        assert marker in blob


def test_corpus_stories_pair_opinion_words_with_reactions_of_one_mood():
    import random

    from unittest import mock

    from labkit.data.corpus import DOCUMENT_KINDS, CorpusWriter, polarity_lexicon
    from labkit.data.corpus import generate as generate_corpus
    from labkit.data.sentiment import opinion_words
    share = DOCUMENT_KINDS["story_en"] / sum(DOCUMENT_KINDS.values())
    assert 0.3 < share < 0.4  # about a third of the documents
    world = build_world(0)
    without = {k: v for k, v in DOCUMENT_KINDS.items() if k != "story_en"}
    with mock.patch.dict(DOCUMENT_KINDS, {"story_en": 0.0}):
        zero_weight = generate_corpus(world, random.Random(3), n_documents=500)
    with mock.patch.dict(DOCUMENT_KINDS, without, clear=True):
        assert generate_corpus(world, random.Random(3), n_documents=500) == zero_weight  # weight 0 = no such kind
    writer = CorpusWriter(world, random.Random(0))
    stories = [writer._story("en") for _ in range(200)]
    positive = set(opinion_words("positive", False) + opinion_words("positive", True))
    negative = set(opinion_words("negative", False) + opinion_words("negative", True))
    for story in stories:
        words = set(re.findall(r"[a-z]+", story.lower()))
        assert not (words & positive and words & negative)  # one mood per story
    names = {p.given for p in world.people}
    for story in stories:  # only the first sentence names the person
        later = " ".join(re.split(r"(?<=[.!])\s+", story)[1:])
        assert not set(re.findall(r"[A-Z][a-z]+", later)) & names
    pairs = [m for s in stories for m in re.findall(r"was (\w+) and (?:really )?(\w+)", s)]
    assert len(pairs) > 20 and all(a != b for a, b in pairs)  # "was superb and splendid": two words, one mood
    lexicon = polarity_lexicon()
    assert positive | negative <= set(lexicon) and {"smiled", "frowned", "happy", "angry"} <= set(lexicon)
    assert not {"the", "back", "{his}"} & set(lexicon)


# ---- task-specific validity -----------------------------------------------------------


def test_qa_answers_point_at_their_text(ci):
    for split in ci["qa"].values():
        per_context = Counter(split["context"])
        assert sum(per_context.values()) / len(per_context) >= 2.5  # several questions per context
        for row in split:
            (text,), (start,) = row["answers"]["text"], row["answers"]["answer_start"]
            assert text and row["context"][start : start + len(text)] == text
            assert row["question"] not in row["context"]
        assert len(set(split["id"])) == len(split)


def test_qa_question_phrasings_vary(ci):
    openings = Counter(" ".join(q.split()[:2]) for q in ci["qa"]["train"]["question"])
    assert len(openings) >= 15


def test_ner_tags_are_aligned_valid_bio(ci):
    seen = Counter()
    for split in ci["ner"].values():
        for tokens, tags in zip(split["tokens"], split["ner_tags"]):
            assert len(tokens) == len(tags) > 0
            previous = "O"
            for tag in (NER_TAGS[t] for t in tags):
                if tag.startswith("I-"):
                    assert previous[2:] == tag[2:], f"{tag} after {previous} in {tokens}"
                previous = tag
                seen[tag] += 1
    for kind in ("PER", "ORG", "LOC", "DATE", "PRODUCT"):
        assert seen[f"B-{kind}"] > 0


def test_ner_entity_spans_match_world_names(ci, world):
    people = {p.name_en for p in world.people}
    found = 0
    for tokens, tags in zip(ci["ner"]["test"]["tokens"], ci["ner"]["test"]["ner_tags"]):
        labels = [NER_TAGS[t] for t in tags]
        for start, label in enumerate(labels):
            if label == "B-PER":
                end = start + 1
                while end < len(labels) and labels[end] == "I-PER":
                    end += 1
                assert " ".join(tokens[start:end]) in people
                found += 1
    assert found > 20


def test_translation_contains_everyday_and_weather_sentences(ci):
    train = ci["translation"]["train"]["translation"]
    pairs = {(p["en"], p["zh"]) for p in train}
    assert ("What is the weather like today?", "今天天气怎么样？") in pairs
    assert any(p["en"].startswith("How much is this") for p in train)
    all_en = [p["en"] for split in ci["translation"].values() for p in split["translation"]]
    assert len(all_en) == len(set(all_en))  # no pair repeated, none shared across splits


def test_sentiment_label_follows_clause_after_but(ci):
    positive = set(opinion_words("positive", False) + opinion_words("positive", True))
    negative = set(opinion_words("negative", False) + opinion_words("negative", True))
    intensifiers = "|".join(read_json("templates/reviews.json")["intensifiers"])
    pattern = re.compile(rf", but the [a-z -]+? (?:is|are|was|were) (?:(?:{intensifiers}) )?([a-z]+)\.")
    checked = 0
    for split in ci["sentiment"].values():
        for text, label in zip(split["text"], split["label"]):
            for word in pattern.findall(text):
                if word in positive | negative:
                    assert (word in positive) == (label == 1), text
                    checked += 1
    assert checked > 30


def test_labels_are_balanced(ci):
    for task, n_labels in (("sentiment", 2), ("topic", 5)):
        for split in ci[task].values():
            counts = Counter(split["label"])
            assert len(counts) == n_labels
            assert max(counts.values()) - min(counts.values()) <= 1


# ---- honest generalisation ------------------------------------------------------------


def test_entity_pools_are_disjoint_and_compositional(world):
    train, held = world.entity_names(False), world.entity_names(True)
    for kind in train:
        assert held[kind] and not set(train[kind]) & set(held[kind])
    train_people = world.pool("person", False)
    givens, families = {p.given for p in train_people}, {p.family for p in train_people}
    for person in world.pool("person", True):
        assert person.given in givens and person.family in families


@pytest.mark.parametrize("task", LABELLED)
def test_no_heldout_entity_in_labelled_train(ci, world, task):
    held = world.entity_names(True)
    names = held["person"] + held["organisation"] + held["product"] + held["film"]
    assert mentions(names, texts_of(ci[task]["train"])) == set()
    # ... while the evaluation splits do use them.
    assert len(mentions(names, texts_of(ci[task]["test"]))) >= 10


def test_translation_test_people_are_new_combinations_of_known_parts(ci, world):
    train_text = " ".join(texts_of(ci["translation"]["train"]))
    test_people = mentions([p.name_en for p in world.pool("person", True)], texts_of(ci["translation"]["test"]))
    assert len(test_people) >= 10
    for name in test_people:
        person = world.person(name)
        assert re.search(rf"\b{person.given}\b", train_text) and re.search(rf"\b{person.family}\b", train_text)


def test_heldout_sentiment_words_only_outside_labelled_train(ci):
    heldout = opinion_words("positive", True) + opinion_words("negative", True)
    assert mentions(heldout, ci["sentiment"]["train"]["text"]) == set()
    assert mentions(heldout, ci["sentiment"]["test"]["text"]) == set(heldout)
    assert mentions(heldout, ci["corpus"]["train"]["text"]) == set(heldout)


# ---- knobs ----------------------------------------------------------------------------


def test_skew_knob_changes_gender_occupation_statistic():
    balanced = gender_occupation_skew(load_task("corpus", 1500, skew=0.0)["train"]["text"])
    stereotyped = gender_occupation_skew(load_task("corpus", 1500, skew=1.0)["train"]["text"])
    assert balanced.total > 100 and stereotyped.total > 100
    assert abs(balanced.rate - 0.5) < 0.1
    assert stereotyped.rate > 0.95


@pytest.mark.parametrize("count", [0, 1, 7])
def test_canaries_appear_exactly_k_times(count):
    dataset = load_task("corpus", 300, canaries=count)
    assert sum(t.count(DEFAULT_CANARY) for t in dataset["train"]["text"]) == count
    for split in ("validation", "test"):
        assert not any(DEFAULT_CANARY in t for t in dataset[split]["text"])


def test_custom_canary_text_and_more_canaries_than_documents():
    secret = "my pin is 2 7 1 8"
    dataset = load_task("corpus", 20, canaries=45, canary_text=secret)
    assert sum(t.count(secret) for t in dataset["train"]["text"]) == 45
    assert DEFAULT_CANARY not in " ".join(dataset["train"]["text"])


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "poetry"}, "corpus"),
    ({"name": "topic", "size": "huge"}, "gpu"),
    ({"name": "topic", "size": 0}, "positive"),
    ({"name": "topic", "size": -5}, "positive"),
    ({"name": "corpus", "skew": 1.5}, "[0, 1]"),
    ({"name": "corpus", "skew": -0.1}, "[0, 1]"),
    ({"name": "corpus", "canaries": -1}, ">= 0"),
    ({"name": "sentiment", "skew": 0.5}, "corpus"),
    ({"name": "qa", "canaries": 3}, "corpus"),
    ({"name": "ner", "canary_text": "secret"}, "corpus"),
    ({"name": "corpus", "canaries": 2, "canary_text": "  "}, "non-empty"),
])
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_task(**kwargs)


def test_scale_comes_from_environment(monkeypatch):
    monkeypatch.setenv("LAB_SCALE", "ci")
    assert len(load_task("topic")["train"]) == split_sizes("topic", "ci").train
    monkeypatch.setenv("LAB_SCALE", "laptop")
    with pytest.raises(ValueError, match="LAB_SCALE"):
        load_task("topic")


def test_integer_size_scales_evaluation_splits():
    dataset = load_task("sentiment", 120)
    assert [len(dataset[s]) for s in ("train", "validation", "test")] == [120, 50, 100]
    assert split_sizes("sentiment", 4000).test == 1000


# ---- determinism and cache ------------------------------------------------------------

DIGEST_SCRIPT = """
import hashlib, json
from labkit.data.tasks import build_rows, split_sizes
digest = hashlib.sha256()
for task in ("corpus", "sentiment", "topic", "ner", "qa", "translation", "instructions"):
    rows = build_rows(task, split_sizes(task, 40), seed=3)
    digest.update(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode())
print(digest.hexdigest())
"""


def test_same_arguments_give_identical_data_across_processes():
    local = subprocess.run([sys.executable, "-c", DIGEST_SCRIPT], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "1"}).stdout.strip()
    other = subprocess.run([sys.executable, "-c", DIGEST_SCRIPT], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "4242"}).stdout.strip()
    assert len(local) == 64 and local == other
    rows = {task: build_rows(task, split_sizes(task, 40), seed=3) for task in DATASETS}
    digest = hashlib.sha256()
    for task in DATASETS:
        digest.update(json.dumps(rows[task], sort_keys=True, ensure_ascii=False).encode())
    assert digest.hexdigest() == local


def test_seed_changes_the_data():
    first = build_rows("sentiment", split_sizes("sentiment", 40), seed=0)
    second = build_rows("sentiment", split_sizes("sentiment", 40), seed=1)
    assert first["train"] != second["train"]


def test_cache_is_reused_and_a_corrupt_cache_is_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    fresh = load_task("topic", 60, seed=5)["test"].to_list()
    (folder,) = (tmp_path / "tinyworld").iterdir()
    stamp = (folder / "tinyworld.json").stat().st_mtime_ns
    assert load_task("topic", 60, seed=5)["test"].to_list() == fresh
    assert (folder / "tinyworld.json").stat().st_mtime_ns == stamp  # loaded, not rebuilt
    for arrow in folder.rglob("*.arrow"):
        arrow.unlink()
        arrow.write_bytes(b"not an arrow file")
    assert load_task("topic", 60, seed=5)["test"].to_list() == fresh


def test_data_dir_can_be_overridden(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="LABKIT_DATA_DIR"):
        build_world(0)


def test_render_tracks_spans_and_articles(world):
    person = world.pool("person", False)[0]
    rendered = render("{person} is {a} {occupation}.", "en",
                      {"person": world.person_filler(person), "occupation": world.occupation_filler("engineer")})
    assert rendered.text == f"{person.name_en} is an engineer."
    span = rendered.span("person")
    assert rendered.text[span.start : span.end] == person.name_en and span.label == "PER"
