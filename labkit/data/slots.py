"""Drawing slot values for templates from a world and the everyday vocabulary.

``SlotSampler(world, rng, heldout=...)`` fills the slots a template names. Entity slots
(person, company, university, hospital, club, org, product, film) draw from the train pool
(``heldout=False``), the held-out pool (``True``) or both (``None``, for the unlabelled
corpus). With ``reserve=True`` (labelled train splits) a (template, value) combination
marked by ``is_reserved`` is never drawn, so evaluation splits contain template/value
combinations that training never showed.
"""

from __future__ import annotations

import random
from typing import Iterable

from labkit.data.lexicon import read_json
from labkit.data.render import Filler, is_reserved, plain
from labkit.data.world import Date, World, date_filler, year_filler

ENTITY_KINDS = ("person", "company", "university", "hospital", "club", "product", "film")
EVERYDAY_KINDS = ("weather", "item", "place", "transport", "food", "drink", "relative",
                  "language", "colour", "day", "month", "hobby")
RESERVABLE = EVERYDAY_KINDS + ("city", "country", "occupation")
_EVERYDAY_KEYS = {"item": "items", "place": "places", "food": "foods", "drink": "drinks",
                  "relative": "relatives", "language": "languages", "colour": "colours",
                  "day": "days", "month": "months", "weather": "weather", "transport": "transport",
                  "hobby": "hobbies"}


def base_kind(slot: str) -> str:
    """Slot kind without its distinguishing digit: ``person2`` -> ``person``."""
    return slot.rstrip("0123456789")


class SlotSampler:
    """Fills template slots with values drawn by ``rng`` (see module docstring)."""

    def __init__(self, world: World, rng: random.Random, heldout: bool | None, reserve: bool = False):
        self.world = world
        self.rng = rng
        self.heldout = heldout
        self.reserve = reserve
        self._everyday = read_json("everyday.json")
        self._races = read_json("templates/news.json")["races"]
        self._workplaces = read_json("templates/descriptions.json")["workplaces"]
        self._pools = {kind: world.pool(kind, heldout) for kind in ENTITY_KINDS}
        self._pools["org"] = self._pools["company"] + self._pools["university"] + self._pools["hospital"]
        self._cities = list(world.cities)
        self._countries = list(world.countries)
        self._occupations = list(world.occupations)

    def fill(self, template_key: str, slots: Iterable[str],
             fixed: dict[str, Filler] | None = None) -> dict[str, Filler]:
        """Fillers for ``slots`` of the template identified by ``template_key``.

        ``fixed`` fillers are kept as given (e.g. the product a review is about).
        """
        fillers: dict[str, Filler] = dict(fixed or {})
        slots = [s for s in slots if s not in fillers]
        # A product fixes its category and maker, an occupation its workplace: order draws.
        order = {"product": 0, "category": 2, "workplace": 2}
        for slot in sorted(slots, key=lambda s: order.get(base_kind(s), 1)):
            used = {f.key for f in fillers.values()}
            for _ in range(30):
                filler = self._draw(slot, fillers)
                if filler.key in used:
                    continue
                if self.reserve and base_kind(slot) in RESERVABLE and is_reserved(template_key, filler.key):
                    continue
                break
            fillers[slot] = filler
        return fillers

    def _draw(self, slot: str, fillers: dict[str, Filler]) -> Filler:
        kind = base_kind(slot)
        rng, world = self.rng, self.world
        if kind == "person":
            return world.person_filler(rng.choice(self._pools["person"]))
        if kind in ("company", "university", "hospital", "club", "org"):
            product = self._chosen_product(fillers)
            if kind == "company" and product is not None and "company" not in fillers:
                return world.org_filler(world.orgs[product.maker])
            return world.org_filler(rng.choice(self._pools[kind]))
        if kind == "product":
            return world.product_filler(rng.choice(self._pools["product"]))
        if kind == "category":
            product = self._chosen_product(fillers)
            category = product.category if product else rng.choice(list(world.categories))
            return world.category_filler(category)
        if kind == "workplace":
            occupation = fillers["occupation"].key.split(":", 1)[1] if "occupation" in fillers else None
            place = world.occupations[occupation].workplace if occupation else rng.choice(list(self._workplaces))
            row = self._workplaces[place]
            return plain(f"workplace:{place}", row["en"], row["zh"])
        if kind == "film":
            return world.film_filler(rng.choice(self._pools["film"]))
        if kind == "city":
            return world.city_filler(rng.choice(self._cities))
        if kind == "country":
            return world.country_filler(rng.choice(self._countries))
        if kind == "occupation":
            return world.occupation_filler(rng.choice(self._occupations))
        if kind in _EVERYDAY_KEYS:
            row = rng.choice(self._everyday[_EVERYDAY_KEYS[kind]])
            variants = {f"{lang}_{name}": value for name, value in row.items()
                        if name not in ("en", "zh") for lang in ("en", "zh")}
            label = "DATE" if kind in ("day", "month") else None
            return plain(f"{kind}:{row['en']}", row["en"], row["zh"], label, **variants)
        if kind in ("num", "hour"):
            row = rng.choice(self._everyday["numbers" if kind == "num" else "hours"])
            return plain(f"{kind}:{row['en']}", row["en"], row["zh"])
        if kind == "race":
            return plain("race:" + (race := rng.choice(self._races)), race)
        if kind in ("price", "pct", "amount"):
            low, high = {"price": (5, 300), "pct": (2, 40), "amount": (20, 900)}[kind]
            return plain(f"{kind}:{(value := rng.randint(low, high))}", str(value))
        if kind in ("score", "draw"):
            loser = rng.randint(0, 3)
            winner = loser if kind == "draw" else loser + rng.randint(1, 3)
            return plain(f"{kind}:{winner}-{loser}", f"{winner}-{loser}")
        if kind == "year":
            return year_filler(rng.randint(1990, 2024))
        if kind == "date":
            return date_filler(Date(rng.randint(1960, 2024), rng.randint(1, 12), rng.randint(1, 28)))
        if kind == "month_year":
            return date_filler(Date(rng.randint(2005, 2024), rng.randint(1, 12)))
        raise ValueError(f"no values known for slot {slot!r}")

    def _chosen_product(self, fillers: dict[str, Filler]):
        product_filler = fillers.get("product")
        if product_filler is None:
            return None
        name = product_filler.key.split(":", 1)[1]
        return next(p for p in self.world.products if p.name == name)
