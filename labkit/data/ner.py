"""English NER sentences with BIO tags, from the spans of rendered templates.

Annotation guide (it follows from the templates, so it is applied consistently):

* PER: people's full names. ORG: companies, universities, hospitals, sports clubs
  ("the" before a club is outside). LOC: cities and countries.
* DATE: calendar expressions that fill a slot: full dates ("3 March 1985"), month and year,
  years, months, weekdays. Relative phrases ("last week", "next year") are O.
* PRODUCT: product names ("Zentra S5"); the category word after it ("phone") is O.

Tokens are words and punctuation marks (``render.word_spans``); a multi-word entity is
B- then I- tags.
"""

from __future__ import annotations

import random

from labkit.data.facts import company_facts, person_facts, render_fact
from labkit.data.lexicon import read_json
from labkit.data.render import Rendered, render, slot_names, word_spans
from labkit.data.slots import SlotSampler
from labkit.data.world import World

ENTITY_TYPES = ("PER", "ORG", "LOC", "DATE", "PRODUCT")
NER_TAGS = ("O",) + tuple(f"{prefix}-{kind}" for kind in ENTITY_TYPES for prefix in ("B", "I"))


def to_bio(rendered: Rendered) -> tuple[list[str], list[int]]:
    """Tokens of ``rendered.text`` and their tag ids (indices into ``NER_TAGS``)."""
    tokens, tags = [], []
    entity_spans = [s for s in rendered.spans if s.label in ENTITY_TYPES]
    previous = None
    for start, end in word_spans(rendered.text):
        tokens.append(rendered.text[start:end])
        span = next((s for s in entity_spans if s.start <= start and end <= s.end), None)
        if span is None:
            tags.append(0)
        else:
            prefix = "I" if previous is span else "B"
            tags.append(NER_TAGS.index(f"{prefix}-{span.label}"))
        previous = span
    return tokens, tags


class SentenceWriter:
    """Draws single English sentences mentioning entities, as ``Rendered``."""

    def __init__(self, world: World, rng: random.Random, heldout: bool | None, reserve: bool):
        self.world, self.rng, self.reserve = world, rng, reserve
        self.sampler = SlotSampler(world, rng, heldout, reserve)
        self.people = world.pool("person", heldout)
        self.companies = world.pool("company", heldout)
        news = read_json("templates/news.json")
        self.news = [t for topic in news["topics"].values() for t in topic]
        everyday = read_json("templates/everyday.json")
        entity_slots = ("person", "city", "country", "day", "month")
        self.everyday = [t["en"] for group, ts in everyday.items() if not group.startswith("_")
                         for t in ts if any(s in entity_slots for s in slot_names(t["en"]))]
        descriptions = read_json("templates/descriptions.json")
        self.descriptions = [t["en"] for group in ("product", "company", "city") for t in descriptions[group]]

    def sentence(self) -> Rendered:
        rng = self.rng
        source = rng.choices(("person", "company", "news", "everyday", "description"),
                             weights=(0.35, 0.12, 0.33, 0.1, 0.1))[0]
        if source == "person":
            facts = person_facts(self.world, rng.choice(self.people))
            fact = rng.choice(sorted(facts))
            return render_fact(fact, facts[fact], "en", rng, reserve=self.reserve)
        if source == "company":
            fact, fillers = rng.choice(company_facts(self.world, rng.choice(self.companies)))
            return render_fact(fact, fillers, "en", rng, reserve=self.reserve)
        template = rng.choice({"news": self.news, "everyday": self.everyday,
                               "description": self.descriptions}[source])
        return render(template, "en", self.sampler.fill(template, slot_names(template)))


def generate(world: World, rng: random.Random, n: int, *, heldout: bool | None, reserve: bool) -> list[dict]:
    """``n`` rows ``{"tokens": [...], "ner_tags": [...]}``."""
    writer = SentenceWriter(world, rng, heldout, reserve)
    rows = []
    for _ in range(n):
        tokens, tags = to_bio(writer.sentence())
        rows.append({"tokens": tokens, "ner_tags": tags})
    return rows
