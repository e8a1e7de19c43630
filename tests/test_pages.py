"""TinyWorld's pages (labkit.data.pages): layouts, the held-out items that never reach a page, and
their place in the corpus."""
from __future__ import annotations

import random
import re

import pytest

from labkit.data import build_world, load_task
from labkit.data.corpus import count_tokens, generate
from labkit.data.pages import (PAGE_SHARE, PAGE_TASKS, RATING_LABELS, formats, heldout_cities, is_page, items,
                               page, render_page)
from labkit.data.sentiment import opinion_words

WORLD = build_world(0)
PAGE = re.compile(r"^(ratings|quiz|names in chinese|names in english) \. ")


def _is_page(text: str) -> bool:
    return bool(PAGE.match(text)) and " : " in text


@pytest.fixture(scope="module")
def corpus_pages():
    texts = load_task("corpus", size="ci")["train"]["text"]
    return texts, [t for t in texts if _is_page(t)]


def test_pages_are_a_fifth_of_the_corpus_tokens_and_spread_through_it(corpus_pages):
    texts, pages = corpus_pages
    share = sum(count_tokens(t) for t in pages) / sum(count_tokens(t) for t in texts)
    assert abs(share - PAGE_SHARE) < 0.02, share
    where = [i for i, t in enumerate(texts) if _is_page(t)]
    assert where[0] < len(texts) * 0.1 and where[-1] > len(texts) * 0.9  # not all at one end
    kinds = {PAGE.match(t).group(1).split()[0] for t in pages}
    assert kinds == {"ratings", "quiz", "names"}


def test_held_out_items_never_appear_on_a_page_but_do_appear_in_the_corpus(corpus_pages):
    texts, pages = corpus_pages
    on_pages = " ".join(pages).lower()
    others = " ".join(t for t in texts if not _is_page(t)).lower()
    for word in opinion_words("positive", True) + opinion_words("negative", True):
        assert f" {word} " not in on_pages and word in others
    for city in heldout_cities():
        assert f" {city.lower()} :" not in on_pages and city.lower() in others
    held_names = [i.zh for i in items("names", WORLD, heldout=True)]
    assert not any(name in on_pages for name in held_names)
    assert sum(name in others for name in held_names) > len(held_names) // 2  # in biographies instead


def test_held_out_names_are_new_combinations_of_parts_seen_on_pages():
    seen = {part for i in items("names", WORLD, heldout=False) for part in i.query.split()}
    for item in items("names", WORLD, heldout=True):
        assert set(item.query.split()) <= seen, item


def test_a_page_keeps_one_layout_throughout():
    rng = random.Random(0)
    for _ in range(200):
        text = page(WORLD, rng)
        title, body = text.split(" . ", 1)
        lines = [line.split(" : ") for line in body.rstrip(" .").split(" ; ")]
        assert 6 <= len(lines) <= 12 and all(len(line) == 2 for line in lines)
        if title == "ratings":
            used = {a for _, a in lines}
            assert any(used <= set(labels) for labels in RATING_LABELS), used
        elif title == "names in chinese":
            assert all(re.fullmatch(r"[\u4e00-\u9fff]+", a) for _, a in lines)
        elif title == "names in english":
            assert all(re.fullmatch(r"[\u4e00-\u9fff]+", q) for q, _ in lines)


def test_formats_and_render_page():
    fmt = formats("ratings")[2]
    good, bad = items("ratings", WORLD, heldout=False)[0], items("ratings", WORLD, heldout=False)[-1]
    assert render_page(fmt, [good, bad]) == f"ratings . {good.query} : plus ; {bad.query} : minus ."
    assert {f.title for f in formats("names")} == {"names in chinese", "names in english"}
    with pytest.raises(ValueError, match="unknown page task 'poems'"):
        formats("poems")
    with pytest.raises(ValueError, match="unknown page task"):
        items("poems", WORLD, heldout=True)
    assert len(heldout_cities()) == 13 and set(PAGE_TASKS) == {"ratings", "quiz", "names"}


def test_page_share_zero_gives_the_corpus_without_pages_and_pages_do_not_change_the_documents():
    plain = generate(WORLD, random.Random(5), n_documents=300, page_share=0.0)
    mixed = generate(WORLD, random.Random(5), n_documents=300)
    assert not any(_is_page(t) for t in plain) and len(mixed) == 300
    documents = [t for t in mixed if not _is_page(t)]
    assert documents == plain[:len(documents)]  # the same documents, cut shorter
    assert len(mixed) - len(documents) == round(300 * PAGE_SHARE)
    with pytest.raises(ValueError, match="page_share"):
        generate(WORLD, random.Random(5), n_documents=10, page_share=1.0)


def test_is_page_tells_pages_from_documents(corpus_pages):
    texts, pages = corpus_pages
    assert [t for t in texts if is_page(t)] == pages
    assert not is_page("Ratings of the new phone were good.") and is_page(render_page(formats("quiz")[0], []))
