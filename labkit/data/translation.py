"""English -> Chinese sentence pairs rendered from parallel templates.

Both sides of a pair come from one template pair with the same slot values, so the
translation is correct by construction and consistent across the dataset (a name is
always transliterated the same way; product names stay in Latin script, as in Chinese
text). Sources: everyday sentences (weather, time, shopping, travel, food, people),
world facts about people and companies, and descriptive sentences.
"""

from __future__ import annotations

import random

from labkit.data.facts import company_facts, fact_templates, person_facts
from labkit.data.lexicon import read_json
from labkit.data.render import is_reserved, render, slot_names
from labkit.data.slots import RESERVABLE, SlotSampler, base_kind
from labkit.data.world import Person, World

DESCRIPTION_GROUPS = ("product", "company", "city", "occupation_generic")


class PairWriter:
    """Draws (en, zh) pairs; entity pools and reservations as in ``SlotSampler``."""

    def __init__(self, world: World, rng: random.Random, heldout: bool | None, reserve: bool):
        self.world, self.rng, self.reserve = world, rng, reserve
        self.sampler = SlotSampler(world, rng, heldout, reserve)
        self.people = world.pool("person", heldout)
        self.companies = world.pool("company", heldout)
        everyday = read_json("templates/everyday.json")
        self.everyday = [t for group, ts in everyday.items() if not group.startswith("_") for t in ts]
        descriptions = read_json("templates/descriptions.json")
        self.descriptions = [t for group in DESCRIPTION_GROUPS for t in descriptions[group]]
        self.facts = fact_templates()

    def pair(self, person: Person | None = None) -> tuple[str, str]:
        """A random pair, or (with ``person``) a pair stating a fact about ``person``."""
        rng = self.rng
        source = "person" if person else rng.choices(("everyday", "person", "company", "description"),
                                                     weights=(0.5, 0.3, 0.1, 0.1))[0]
        if source in ("person", "company"):
            if source == "person":
                facts = person_facts(self.world, person or rng.choice(self.people))
                fact = rng.choice(sorted(facts))
                fillers = facts[fact]
            else:
                fact, fillers = rng.choice(company_facts(self.world, rng.choice(self.companies)))
            templates = self.facts[fact]
            if self.reserve:
                templates = [t for t in templates if not any(
                    is_reserved(t["en"], f.key) for s, f in fillers.items() if base_kind(s) in RESERVABLE)] or templates
            template = rng.choice(templates)
        else:
            template = rng.choice(self.everyday if source == "everyday" else self.descriptions)
            fillers = self.sampler.fill(template["en"], slot_names(template["en"] + template["zh"]))
        return render(template["en"], "en", fillers).text, render(template["zh"], "zh", fillers).text


def generate(world: World, rng: random.Random, n: int, *, heldout: bool | None, reserve: bool,
             exclude: frozenset[str] = frozenset()) -> list[dict]:
    """``n`` distinct pairs ``{"translation": {"en", "zh"}}`` whose English is not in ``exclude``."""
    writer = PairWriter(world, rng, heldout, reserve)
    seen = set(exclude)
    rows = []
    attempts = 0
    # First one sentence about each of a few people covering every name part of the pool,
    # so held-out people (new combinations of these parts) can be translated.
    subjects = _covering_people(writer.people, rng)[: n // 2]
    while len(rows) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"could only draw {len(rows)} distinct translation pairs of {n} requested")
        en, zh = writer.pair(subjects.pop(0) if subjects else None)
        if en in seen:
            continue
        seen.add(en)
        rows.append({"translation": {"en": en, "zh": zh}})
    return rows


def _covering_people(people: list[Person], rng: random.Random) -> list[Person]:
    """People whose given and family names together include every name part of ``people``."""
    order = list(people)
    rng.shuffle(order)
    covered: set[str] = set()
    chosen = []
    for person in order:
        if person.given not in covered or person.family not in covered:
            chosen.append(person)
            covered.update((person.given, person.family))
    return chosen
