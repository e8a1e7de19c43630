"""Pages whose layout repeats: the corpus's in-context learning material.

Real web text is full of lists — quiz sheets, glossaries, tables of ratings — in which one
layout repeats line after line. A language model that has read many such pages can continue
a new one from a few of its lines: that is in-context learning (上下文学习). TinyWorld writes
three kinds, each a title and 6 to 12 items ``query : answer`` separated by ``;``:

* ``ratings`` — a short review and a verdict: "ratings . lovely soup : yes ; awful trip : no ;".
  Each page picks one of :data:`RATING_LABELS` (yes/no, up/down, plus/minus, positive/negative),
  so only the page's own items say which words it uses.
* ``quiz`` — a city and its country: "quiz . lyon : france ; osaka : japan ;".
* ``names`` — a Chinese person's name in pinyin and in characters, one direction per page:
  "names in chinese . wang wei : 王伟 ;" or "names in english . 王伟 : wang wei ;".

What never appears on a page is the test (:func:`items` with ``heldout=True``): the held-out
opinion words (``superb``, ``lousy``…, which the corpus's stories and reviews do use), the
cities of :func:`heldout_cities` (which city descriptions and biographies do mention), and the
people of the world's held-out pool (whose family and given names occur in other names on
pages). So a model can only answer them by combining the page layout with what it learnt
elsewhere in the corpus.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from labkit.data.lexicon import read_json, read_tsv
from labkit.data.sentiment import opinion_words
from labkit.data.world import World

__all__ = ["is_page", "PAGE_TASKS", "RATING_LABELS", "PAGE_SHARE", "Item", "PageFormat", "formats", "items", "heldout_cities",
           "render_page", "page"]

PAGE_TASKS = ("ratings", "quiz", "names")
RATING_LABELS = (("yes", "no"), ("up", "down"), ("plus", "minus"), ("positive", "negative"))  # (positive, negative)
# share of a corpus's tokens (or documents, when sized in documents) that are pages. Measured at cpu scale
# (mini-GPT, 350 steps): with 0.08, 8-shot prompts did not teach it a page's rating words (right kind 0.23);
# with 0.2 one example did (0.99)
PAGE_SHARE = 0.2
ITEMS_PER_PAGE = (6, 12)


@dataclass(frozen=True)
class Item:
    """One line's content before formatting: what is asked, and the answer's parts."""

    query: str  # "lovely soup", "lyon", "wang wei"
    answer: str  # "positive"/"negative" for ratings, the country for quiz, the Chinese name for names
    zh: str = ""  # names: the name in characters


@dataclass(frozen=True)
class PageFormat:
    """How one page writes its items: its title and the answer words it uses."""

    task: str
    title: str
    labels: tuple[str, str] = ("", "")  # ratings: (positive word, negative word)
    reverse: bool = False  # names: characters first, pinyin after

    def line(self, item: Item) -> tuple[str, str]:
        """(query, answer) as this page writes them."""
        if self.task == "ratings":
            return item.query, self.labels[0] if item.answer == "positive" else self.labels[1]
        if self.task == "names":
            return (item.zh, item.query) if self.reverse else (item.query, item.zh)
        return item.query, item.answer

    def answers(self) -> tuple[str, ...] | None:
        """The closed set of answers this format allows (None: open, like a name)."""
        return self.labels if self.task == "ratings" else None


def formats(task: str) -> list[PageFormat]:
    """Every layout a page of ``task`` may take."""
    if task == "ratings":
        return [PageFormat("ratings", "ratings", labels) for labels in RATING_LABELS]
    if task == "quiz":
        return [PageFormat("quiz", "quiz")]
    if task == "names":
        return [PageFormat("names", "names in chinese"), PageFormat("names", "names in english", reverse=True)]
    raise ValueError(f"unknown page task {task!r}; choose one of {PAGE_TASKS}")


_TITLES = tuple(f"{fmt.title} . " for task in PAGE_TASKS for fmt in formats(task))


def is_page(text: str) -> bool:
    """Whether ``text`` is a page (it starts with a page title), not a document."""
    return text.startswith(_TITLES)


def heldout_cities() -> list[str]:
    """Every fourth city of ``cities.tsv`` (13 of 55): never on a quiz page."""
    return [row["en"] for i, row in enumerate(read_tsv("cities.tsv")) if i % 4 == 3]


def _things() -> list[str]:
    return list(read_json("templates/stories.json")["things"])


def items(task: str, world: World, *, heldout: bool) -> list[Item]:
    """Every item of ``task``: the page pool (``heldout=False``) or the test pool, which no page uses."""
    if task == "ratings":
        return [Item(f"{word} {thing}", polarity) for polarity in ("positive", "negative")
                for word in opinion_words(polarity, heldout) for thing in _things()]
    if task == "quiz":
        chosen = set(heldout_cities())
        return [Item(city.en.lower(), city.country.lower()) for city in world.cities.values()
                if (city.en in chosen) == heldout]
    if task == "names":
        return [Item(p.name_en.lower(), p.name_zh, zh=p.name_zh) for p in world.pool("person", heldout)
                if "·" not in p.name_zh]
    raise ValueError(f"unknown page task {task!r}; choose one of {PAGE_TASKS}")


def render_page(fmt: PageFormat, lines: list[Item]) -> str:
    """"title . q : a ; q : a ; … q : a ." (one page of a corpus)."""
    body = " ; ".join(" : ".join(fmt.line(item)) for item in lines)
    return f"{fmt.title} . {body} ."


def page(world: World, rng: random.Random, pools: dict[str, list[Item]] | None = None) -> str:
    """One page of a random task and layout, with 6 to 12 distinct items from the page pools."""
    task = rng.choice(PAGE_TASKS)
    fmt = rng.choice(formats(task))
    pool = pools[task] if pools else items(task, world, heldout=False)
    return render_page(fmt, rng.sample(pool, min(len(pool), rng.randint(*ITEMS_PER_PAGE))))
