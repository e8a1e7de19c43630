"""The instruction chats generated from TinyWorld (labkit.data.instructions)."""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

import pytest

from labkit.data import build_world, load_task
from labkit.data.facts import fact_templates
from labkit.data.instructions import (DAYS, FACT_KINDS, KINDS, QUESTIONS_ZH, REFUSALS, SERVICE_KINDS, SYSTEM_GENERIC,
                                      is_refusal, policy, price, refusal, unknown_entities)
from labkit.data.tasks import build_rows, split_sizes

# SHA-256 of build_rows("corpus", split_sizes("corpus", "ci"), 0) written as sorted JSON, computed
# before the instruction data existed: adding it must not change a single corpus byte. (The corpus has
# since gained pages, labkit.data.pages; without them it is still that corpus.)
CORPUS_CI_SHA256 = "35e7ea05c79fb85f9d1ca5ed57a5c52c6e6e74e16441d4bd56c1d8998cc06e95"


@pytest.fixture(scope="module")
def world():
    return build_world(0)


@pytest.fixture(scope="module")
def rows():
    return build_rows("instructions", split_sizes("instructions", 600), 0)


def test_the_corpus_is_byte_identical_to_before(monkeypatch):
    from labkit.data import corpus as corpus_module

    monkeypatch.setitem(corpus_module.generate.__kwdefaults__, "page_share", 0.0)
    corpus = build_rows("corpus", split_sizes("corpus", "ci"), 0)
    digest = hashlib.sha256(json.dumps(corpus, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    assert digest == CORPUS_CI_SHA256


def test_load_task_gives_cached_chats_with_the_documented_columns(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    data = load_task("instructions", size=200)
    assert list(data) == ["train", "validation", "test"]
    assert len(data["train"]) == 200 and len(data["test"]) == split_sizes("instructions", 200).test
    assert set(data["train"].column_names) == {"messages", "kind", "entity", "answerable", "lang", "value"}
    first = data["train"][0]
    assert isinstance(first["messages"], list) and set(first["messages"][0]) == {"role", "content"}
    assert load_task("instructions", size=200)["test"].to_list() == data["test"].to_list()  # from the cache
    assert len(list((tmp_path / "tinyworld").iterdir())) == 1


def test_rows_are_well_formed_chats(rows):
    for split in rows.values():
        for row in split:
            roles = [m["role"] for m in row["messages"]]
            body = roles[1:] if roles[0] == "system" else roles
            assert body == ["user", "assistant"] * (len(body) // 2) and len(body) in (2, 4), roles
            assert row["kind"] in KINDS and row["lang"] in ("en", "zh")
            assert all(m["content"].strip() for m in row["messages"])
            last = row["messages"][-1]["content"]
            if row["answerable"]:
                assert row["value"] and row["value"] in last and not is_refusal(last)
            else:
                assert row["value"] == "" and is_refusal(last) and (row["entity"] in last or row["lang"] == "zh")


def test_the_mix_has_every_group_kind_and_language(rows):
    train = rows["train"]
    langs = Counter(r["lang"] for r in train)
    assert 0.3 < langs["zh"] / len(train) < 0.5
    assert 0.15 < sum(not r["answerable"] for r in train) / len(train) < 0.35
    assert {r["kind"] for r in train if r["answerable"]} == set(KINDS)
    assert {r["kind"] for r in train if r["lang"] == "zh" and r["kind"] in SERVICE_KINDS} == {"opening_hours", "price"}
    assert any(len(r["messages"]) >= 4 for r in train)  # some chats have two exchanges
    assert any(r["messages"][0]["role"] == "system" for r in train if r["kind"] in FACT_KINDS)
    assert any(r["messages"][0]["role"] != "system" for r in train if r["kind"] in FACT_KINDS)


def test_answers_state_the_worlds_facts(rows, world):
    people = {p.name_en: p for p in world.people}
    products = {p.name: p for p in world.products}
    checked = Counter()
    for row in rows["train"]:
        if not row["answerable"] or row["lang"] != "en":
            continue
        last = row["messages"][-1]["content"]
        if row["kind"] == "born_in":
            assert last == f"{row['entity']} was born in {people[row['entity']].birth_city}."
        elif row["kind"] == "works_at":
            assert last == f"{row['entity']} works at {people[row['entity']].employer}."
        elif row["kind"] == "founded_in":
            assert str(world.orgs[row["entity"]].founded) in last
        elif row["kind"] == "price":
            assert last == f"The {row['entity']} costs {price(world, products[row['entity']])} dollars."
        else:
            continue
        checked[row["kind"]] += 1
    assert len(checked) == 4


def test_service_facts_are_fixed_per_company(rows, world):
    hours = {}
    for row in rows["train"] + rows["test"]:
        if row["kind"] == "opening_hours" and row["answerable"] and row["lang"] == "en":
            hours.setdefault(row["entity"], set()).add(row["value"])
            company = world.orgs[row["entity"]]
            assert row["value"] == policy(world, company).hours("en")
            assert row["value"] in row["messages"][0]["content"]  # the card states what the reply says
    assert hours and all(len(v) == 1 for v in hours.values())
    assert policy(world, world.orgs[next(iter(hours))]) == policy(build_world(0), world.orgs[next(iter(hours))])


def test_evaluation_chats_speak_only_of_held_out_and_unseen_entities(rows, world):
    train_entities = {r["entity"] for r in rows["train"]}
    test_entities = {r["entity"] for r in rows["test"] + rows["validation"]}
    named = {p.name_en for p in world.people} | set(world.orgs) | {p.name for p in world.products}
    held = set(world.entity_names(True)["person"]) | set(world.entity_names(True)["organisation"]) | \
        set(world.entity_names(True)["product"])
    for row in rows["test"]:
        if row["answerable"] and row["kind"] != "order_status":
            assert row["entity"] in held, row
        if not row["answerable"]:
            assert row["entity"] not in named
    assert not (train_entities & test_entities) - {r["entity"] for r in rows["train"] if r["kind"] == "order_status"}
    train_text = " ".join(m["content"] for r in rows["train"] for m in r["messages"])
    for name in sorted(held):  # no held-out name leaks into a train chat
        assert not re.search(rf"(?<!\w){re.escape(name)}(?!\w)", train_text), name


def test_invented_names_are_not_in_the_world_and_splits_do_not_share_them(world):
    train, evaluation = unknown_entities(world, False), unknown_entities(world, True)
    people = {p.name_en for p in world.people}
    for kind in ("person", "company", "product"):
        assert not {n for n, _ in train[kind]} & {n for n, _ in evaluation[kind]}
        assert len(evaluation[kind]) > 10
    assert not {n for n, _ in train["person"] + evaluation["person"]} & people
    assert not {n for n, _ in train["company"]} & set(world.orgs)
    assert not {n for n, _ in train["product"]} & {p.name for p in world.products}


def test_refusals_and_their_detection():
    assert refusal("Mira Stone", "person", "en") == "I don't know Mira Stone: they are not in TinyWorld."
    assert refusal("Zentra Q4", "product", "zh") == "我不认识Zentra Q4，这个产品不在TinyWorld里。"
    assert is_refusal("i don ' t know mira stone : they are not in tinyworld.")
    assert is_refusal("我不认识王伟，这个人不在 tinyworld 里。")
    assert not is_refusal("Mira Stone was born in Paris.")
    with pytest.raises(ValueError, match="lang"):
        refusal("X", "person", "fr")
    with pytest.raises(ValueError, match="entity_type"):
        refusal("X", "film", "en")


def test_chinese_templates_use_only_characters_the_corpus_writes(ci_build):
    """The ci tokenizer's vocabulary is learnt from the corpus: a template character it lacks would be [UNK]."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ci_build / "text-generation")
    answers = [fact_templates()[f][0]["zh"] for f in ("born_in", "born_on", "lives_in", "occupation", "works_at",
                                                         "plays_for", "studied_at", "founded", "based_in",
                                                         "launched", "product_category")]
    texts = [t for ts in QUESTIONS_ZH.values() for t in ts] + list(REFUSALS["zh"].values()) + answers + \
        [SYSTEM_GENERIC["zh"], "".join(zh for _, zh in DAYS), "你是的助手。点开门，点关门。我们售价美元。多少钱的价格是多少？几点开门"]
    for text in texts:
        plain_text = re.sub(r"\{[a-z_]+\}", "", text)
        ids = tokenizer(plain_text, add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id not in ids, plain_text
