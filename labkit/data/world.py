"""TinyWorld: a seeded world of people, places, organisations and products.

``build_world(seed)`` draws entities from the lexicons in ``data/tinyworld`` and links
them with facts (born in, lives in, works at, studied at, founded, launched, ...).
Every person, organisation, product and film sits in one of two disjoint pools:

* ``train`` entities may appear in labelled train splits;
* ``heldout`` entities appear only in validation/test splits (and the unlabelled corpus).

Held-out entities are new *combinations* of parts seen in training: a held-out person's
given and family names both occur among training people, a held-out company's stem
("Blue River") and kind ("Bank") both occur among training companies, and so on. Facts
never link a training entity to a held-out one, so rendering the facts of a training
entity cannot leak a held-out name.

``skew`` (0 … 1) biases occupations towards gender stereotypes (nurses female,
engineers male); it changes occupations and employers only, via separate random streams.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from labkit.data.lexicon import read_json, read_tsv
from labkit.data.render import Filler, derive_rng, plain

HELDOUT_FRACTION = 0.25
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July",
             "August", "September", "October", "November", "December")


@dataclass(frozen=True)
class Date:
    """A calendar date; ``day`` 0 means only month and year are known."""

    year: int
    month: int  # 1..12
    day: int = 0

    def en(self) -> str:
        month = MONTHS_EN[self.month - 1]
        return f"{self.day} {month} {self.year}" if self.day else f"{month} {self.year}"

    def zh(self) -> str:
        return f"{self.year}年{self.month}月{self.day}日" if self.day else f"{self.year}年{self.month}月"


@dataclass(frozen=True)
class City:
    en: str
    zh: str
    country: str  # English country name
    capital: bool
    coastal: bool


@dataclass(frozen=True)
class Occupation:
    en: str
    zh: str
    stereotype: str  # "F", "M" or "N" (neutral)
    workplace: str  # "company", "hospital", "university" or "club"


@dataclass(frozen=True)
class Person:
    name_en: str  # "Emma Smith" or, for Chinese people, "Wang Wei" (family name first)
    name_zh: str  # "艾玛·史密斯" / "王伟"
    given: str  # English-script given name
    family: str  # English-script family name
    gender: str  # "F" or "M"
    heldout: bool
    birth_city: str
    birth_date: Date
    home_city: str
    occupation: str  # Occupation.en
    employer: str  # Organisation.name_en
    university: str  # Organisation.name_en


@dataclass(frozen=True)
class Organisation:
    name_en: str  # "Blue River Bank", "Paris University", "Berlin Falcons"
    name_zh: str
    kind: str  # "company", "university", "hospital" or "club"
    city: str  # where it is based
    heldout: bool
    company_kind: str = ""  # companies: "Bank", "Foods", ...
    founder: str = ""  # companies: Person.name_en
    founded: int = 0  # companies: year


@dataclass(frozen=True)
class Product:
    name: str  # "Zentra S5" (Latin script in both languages)
    brand: str
    model: str
    category: str  # "phone", ...
    maker: str  # Organisation.name_en of a company
    launch: Date
    heldout: bool


@dataclass(frozen=True)
class Film:
    title_en: str  # "The Silent River"
    title_zh: str  # "《沉默的河流》"
    heldout: bool


@dataclass
class World:
    """Everything ``build_world`` drew, with lookups by English name."""

    seed: int
    skew: float
    cities: dict[str, City]
    countries: dict[str, str]  # English -> Chinese
    occupations: dict[str, Occupation]
    categories: dict[str, dict[str, str]]  # product category rows by English name
    people: list[Person]
    orgs: dict[str, Organisation]
    products: list[Product]
    films: list[Film]
    _people_by_name: dict[str, Person] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._people_by_name = {p.name_en: p for p in self.people}

    def person(self, name_en: str) -> Person:
        return self._people_by_name[name_en]

    def pool(self, kind: str, heldout: bool | None) -> list:
        """Entities of ``kind`` ("person", "company", "university", "hospital", "club",
        "product", "film") in the held-out pool, the train pool, or both (``None``)."""
        if kind == "person":
            items: list = self.people
        elif kind == "product":
            items = self.products
        elif kind == "film":
            items = self.films
        elif kind in ("company", "university", "hospital", "club"):
            items = [o for o in self.orgs.values() if o.kind == kind]
        else:
            raise ValueError(f"unknown entity kind {kind!r}; expected person, company, "
                             "university, hospital, club, product or film")
        return items if heldout is None else [e for e in items if e.heldout == heldout]

    def entity_names(self, heldout: bool) -> dict[str, list[str]]:
        """English names per entity kind in one pool (for leakage checks)."""
        return {
            "person": [p.name_en for p in self.pool("person", heldout)],
            "organisation": [o.name_en for o in self.orgs.values() if o.heldout == heldout],
            "product": [p.name for p in self.pool("product", heldout)],
            "film": [f.title_en for f in self.pool("film", heldout)],
        }

    # ---- fillers: how an entity is written in each language ---------------------------

    def person_filler(self, person: Person) -> Filler:
        female = person.gender == "F"
        return plain(f"person:{person.name_en}", person.name_en, person.name_zh, "PER",
                     en_he="she" if female else "he", en_his="her" if female else "his",
                     zh_he="她" if female else "他", zh_his="她的" if female else "他的")

    def org_filler(self, org: Organisation) -> Filler:
        return plain(f"org:{org.name_en}", org.name_en, org.name_zh, "ORG")

    def city_filler(self, city: str) -> Filler:
        return plain(f"city:{city}", city, self.cities[city].zh, "LOC")

    def country_filler(self, country: str) -> Filler:
        return plain(f"country:{country}", country, self.countries[country], "LOC")

    def occupation_filler(self, occupation: str) -> Filler:
        return plain(f"occupation:{occupation}", occupation, self.occupations[occupation].zh)

    def product_filler(self, product: Product) -> Filler:
        return plain(f"product:{product.name}", product.name, product.name, "PRODUCT")

    def category_filler(self, category: str) -> Filler:
        row = self.categories[category]
        return plain(f"category:{category}", category, row["zh"], en_pl=row["plural"], zh_mw=row["measure"])

    def film_filler(self, film: Film) -> Filler:
        return plain(f"film:{film.title_en}", film.title_en, film.title_zh, "FILM")


def date_filler(date: Date) -> Filler:
    return plain(f"date:{date.en()}", date.en(), date.zh(), "DATE")


def year_filler(year: int) -> Filler:
    return plain(f"year:{year}", str(year), f"{year}年", "DATE")


def pronoun_filler(gender: str) -> Filler:
    """'he'/'she' as a slot value (no entity label), with ``his`` and ``he`` variants."""
    female = gender == "F"
    return plain(f"pron:{gender}", "she" if female else "he", "她" if female else "他",
                 en_his="her" if female else "his", zh_his="她的" if female else "他的",
                 en_he="she" if female else "he", zh_he="她" if female else "他")


# ---- building ------------------------------------------------------------------------


def _split_compositional(items: list, parts, rng: random.Random) -> set[int]:
    """Indices of items to hold out so that every part of a held-out item stays in train.

    ``parts(item)`` gives the item's parts (e.g. given and family name).
    """
    counts: Counter = Counter(part for item in items for part in parts(item))
    target = round(len(items) * HELDOUT_FRACTION)
    order = list(range(len(items)))
    rng.shuffle(order)
    heldout: set[int] = set()
    for index in order:
        if len(heldout) >= target:
            break
        item_parts = parts(items[index])
        if all(counts[part] > 1 for part in item_parts):
            heldout.add(index)
            for part in item_parts:
                counts[part] -= 1
    return heldout


def _draw_names(rng: random.Random) -> list[tuple[str, str, str, str, str]]:
    """(given, family, gender, name_en, name_zh) for English and Chinese people."""
    people = []
    for origin, n in (("en", 360), ("zh", 160)):
        given = read_tsv(f"people_{origin}_given.tsv")
        family = read_tsv(f"people_{origin}_family.tsv")
        combos = [(g, f) for g in given for f in family]
        for g, f in rng.sample(combos, n):
            if origin == "en":
                people.append((g["name"], f["name"], g["gender"], f"{g['name']} {f['name']}",
                               f"{g['zh']}·{f['zh']}"))
            else:
                people.append((g["pinyin"], f["pinyin"], g["gender"], f"{f['pinyin']} {g['pinyin']}",
                               f"{f['zh']}{g['zh']}"))
    return people


def _draw_orgs(cities: dict[str, City], rng: random.Random) -> list[Organisation]:
    stems = read_tsv("company_stems.tsv")
    kinds = read_tsv("company_kinds.tsv")
    city_names = list(cities)
    orgs: list[Organisation] = []
    combos = [(s, k) for s in stems for k in kinds]
    chosen = rng.sample(combos, 150)
    held = _split_compositional(chosen, lambda c: (c[0]["en"], c[1]["en"]), rng)
    for index, (stem, kind) in enumerate(chosen):
        orgs.append(Organisation(f"{stem['en']} {kind['en']}", f"{stem['zh']}{kind['zh']}", "company",
                                 rng.choice(city_names), index in held, company_kind=kind["en"]))
    institutions = read_tsv("institutions.tsv")
    for kind, count in (("university", 36), ("hospital", 36)):
        patterns = [row for row in institutions if row["kind"] == kind]
        combos = [(p, c) for p in patterns for c in city_names]
        chosen_inst = rng.sample(combos, count)
        held = set(rng.sample(range(count), round(count * HELDOUT_FRACTION)))
        for index, (pattern, city) in enumerate(chosen_inst):
            orgs.append(Organisation(pattern["en"].format(city=city), pattern["zh"].format(city=cities[city].zh),
                                     kind, city, index in held))
    mascots = read_tsv("club_mascots.tsv")
    combos = [(c, m) for c in city_names for m in mascots]
    chosen_clubs = rng.sample(combos, 32)
    held = _split_compositional(chosen_clubs, lambda c: (c[1]["en"],), rng)
    for index, (city, mascot) in enumerate(chosen_clubs):
        orgs.append(Organisation(f"{city} {mascot['en']}", f"{cities[city].zh}{mascot['zh']}", "club",
                                 city, index in held))
    return orgs


def _assign_occupation(gender: str, occupations: list[Occupation], skew: float, rng: random.Random) -> Occupation:
    """Uniform draw; with probability ``skew`` an anti-stereotypical draw is redone among
    the occupations that are neutral or stereotyped for ``gender``."""
    occupation = rng.choice(occupations)
    redo = rng.random() < skew
    if occupation.stereotype not in ("N", gender) and redo:
        occupation = rng.choice([o for o in occupations if o.stereotype in ("N", gender)])
    return occupation


def build_world(seed: int = 0, skew: float = 0.0) -> World:
    """Draw a world from the lexicons; same ``seed`` and ``skew`` give the same world."""
    if not 0.0 <= skew <= 1.0:
        raise ValueError(f"skew must be in [0, 1]; got {skew}")
    cities = {r["en"]: City(r["en"], r["zh"], r["country"], r["capital"] == "yes", r["coastal"] == "yes")
              for r in read_tsv("cities.tsv")}
    countries = {r["en"]: r["zh"] for r in read_tsv("countries.tsv")}
    occupations = {r["en"]: Occupation(r["en"], r["zh"], r["stereotype"], r["workplace"])
                   for r in read_tsv("occupations.tsv")}
    categories = {r["en"]: r for r in read_tsv("product_categories.tsv")}
    city_names = list(cities)

    orgs = _draw_orgs(cities, derive_rng(seed, "world", "orgs"))
    by_kind = {kind: {h: [o for o in orgs if o.kind == kind and o.heldout == h] for h in (False, True)}
               for kind in ("company", "university", "hospital", "club")}

    names = _draw_names(derive_rng(seed, "world", "names"))
    held_people = _split_compositional(names, lambda n: (n[0], n[1]), derive_rng(seed, "world", "people-split"))
    facts_rng = derive_rng(seed, "world", "person-facts")
    job_rng = derive_rng(seed, "world", "occupations")  # skew only gates redraws
    occupation_list = list(occupations.values())
    people: list[Person] = []
    for index, (given, family, gender, name_en, name_zh) in enumerate(names):
        heldout = index in held_people
        occupation = _assign_occupation(gender, occupation_list, skew, job_rng)
        employer = job_rng.choice(by_kind[occupation.workplace][heldout] or by_kind[occupation.workplace][False])
        university = facts_rng.choice(by_kind["university"][heldout] or by_kind["university"][False])
        birth = Date(facts_rng.randint(1955, 2002), facts_rng.randint(1, 12), facts_rng.randint(1, 28))
        home = employer.city if facts_rng.random() < 0.7 else facts_rng.choice(city_names)
        people.append(Person(name_en, name_zh, given, family, gender, heldout,
                             facts_rng.choice(city_names), birth, home, occupation.en,
                             employer.name_en, university.name_en))

    # Companies get founders from their own pool (so no fact crosses pools).
    company_rng = derive_rng(seed, "world", "companies")
    founded_orgs: list[Organisation] = []
    for org in orgs:
        if org.kind == "company":
            pool = [p for p in people if p.heldout == org.heldout and p.birth_date.year <= 1990]
            founder = company_rng.choice(pool)
            born = founder.birth_date.year
            year = company_rng.randint(born + 24, min(born + 45, 2020))
            org = Organisation(org.name_en, org.name_zh, org.kind, org.city, org.heldout,
                               org.company_kind, founder.name_en, year)
        founded_orgs.append(org)
    orgs_by_name = {o.name_en: o for o in founded_orgs}

    products = _draw_products(by_kind, derive_rng(seed, "world", "products"))
    films = _draw_films(derive_rng(seed, "world", "films"))
    return World(seed, skew, cities, countries, occupations, categories, people, orgs_by_name, products, films)


MAKER_KINDS = ("Electronics", "Software", "Robotics", "Telecom", "Motors")


def _draw_products(by_kind: dict, rng: random.Random) -> list[Product]:
    brands = read_tsv("product_brands.tsv")
    letters = "ACEKMPSTVXZ"
    models = [f"{letter}{digit}" for letter in letters for digit in range(2, 10)]
    chosen = [(b, m) for b in brands for m in rng.sample(models, 6)]
    held = _split_compositional(chosen, lambda c: (c[0]["brand"], c[1]), rng)
    products = []
    for index, (brand, model) in enumerate(chosen):
        heldout = index in held
        makers = [o for o in by_kind["company"][heldout] if o.company_kind in MAKER_KINDS]
        makers = makers or [o for o in by_kind["company"][False] if o.company_kind in MAKER_KINDS]
        launch = Date(rng.randint(2010, 2024), rng.randint(1, 12))
        products.append(Product(f"{brand['brand']} {model}", brand["brand"], model, brand["category"],
                                rng.choice(makers).name_en, launch, heldout))
    return products


def _draw_films(rng: random.Random) -> list[Film]:
    words = read_tsv("film_words.tsv")
    adjectives = [w for w in words if w["part"] == "adjective"]
    nouns = [w for w in words if w["part"] == "noun"]
    chosen = rng.sample([(a, n) for a in adjectives for n in nouns], 100)
    held = _split_compositional(chosen, lambda c: (c[0]["en"], c[1]["en"]), rng)
    return [Film(f"The {a['en']} {n['en']}", f"《{a['zh']}{n['zh']}》", index in held)
            for index, (a, n) in enumerate(chosen)]


def everyday_words() -> dict:
    """The everyday vocabulary (weather, items, places, ...) from ``everyday.json``."""
    return read_json("everyday.json")
