"""Writing the world's facts as sentences and short documents, in English or Chinese.

A fact is a name ("born_in", "works_at", ...) plus fillers taken from the world; one of
several paraphrase templates (``templates/facts.json``) writes it. A biography or company
profile strings several facts together, later sentences using a pronoun for the person,
and records where each fact's slots landed so QA can point at answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from labkit.data.lexicon import read_json
from labkit.data.render import Filler, Rendered, Span, is_reserved, join, render
from labkit.data.world import Organisation, Person, World, date_filler, pronoun_filler, year_filler

RESERVED_FACT_SLOTS = ("city", "country", "occupation")


def fact_templates() -> dict[str, list[dict[str, str]]]:
    """Fact name -> list of ``{"en": ..., "zh": ...}`` paraphrase templates."""
    return {k: v for k, v in read_json("templates/facts.json").items() if not k.startswith("_")}


def person_facts(world: World, person: Person) -> dict[str, dict[str, Filler]]:
    """Fillers of every fact about ``person``, by fact name."""
    person_f = world.person_filler(person)
    birth = world.cities[person.birth_city]
    employer = world.orgs[person.employer]
    facts = {
        "born_in": {"person": person_f, "city": world.city_filler(birth.en),
                    "country": world.country_filler(birth.country)},
        "born_on": {"person": person_f, "date": date_filler(person.birth_date)},
        "lives_in": {"person": person_f, "city": world.city_filler(person.home_city)},
        "occupation": {"person": person_f, "occupation": world.occupation_filler(person.occupation)},
        "works_at": {"person": person_f, "org": world.org_filler(employer),
                     "occupation": world.occupation_filler(person.occupation)},
        "studied_at": {"person": person_f, "university": world.org_filler(world.orgs[person.university]),
                       "year": year_filler(person.birth_date.year + 22)},
    }
    if employer.kind == "club" and person.occupation == "athlete":
        del facts["works_at"]
        facts["plays_for"] = {"person": person_f, "club": world.org_filler(employer),
                              "year": year_filler(min(2024, person.birth_date.year + 19))}
    return facts


def company_facts(world: World, company: Organisation) -> list[tuple[str, dict[str, Filler]]]:
    """(fact name, fillers) pairs about ``company``: founding, seat, products."""
    company_f = world.org_filler(company)
    facts: list[tuple[str, dict[str, Filler]]] = [
        ("founded", {"person": world.person_filler(world.person(company.founder)), "company": company_f,
                     "year": year_filler(company.founded)}),
        ("based_in", {"company": company_f, "city": world.city_filler(company.city)}),
    ]
    for product in [p for p in world.products if p.maker == company.name_en]:
        product_f = world.product_filler(product)
        facts.append(("launched", {"company": company_f, "product": product_f,
                                   "month_year": date_filler(product.launch)}))
        facts.append(("product_category", {"product": product_f, "company": company_f,
                                           "category": world.category_filler(product.category)}))
    return facts


def render_fact(fact: str, fillers: dict[str, Filler], lang: str, rng: random.Random, *,
                pronoun: Filler | None = None, reserve: bool = False) -> Rendered:
    """One sentence stating ``fact`` in ``lang``.

    ``pronoun`` replaces the person by he/she (only templates opening with the person
    qualify); ``reserve`` skips (template, city/country/occupation) combinations that are
    kept for evaluation splits.
    """
    templates = fact_templates()[fact]
    if pronoun is not None:
        opening = [t for t in templates if t[lang].startswith("{person}")]
        if opening:
            templates, fillers = opening, {**fillers, "person": pronoun}
    if reserve:
        allowed = [t for t in templates
                   if not any(is_reserved(t["en"], fillers[s].key) for s in RESERVED_FACT_SLOTS if s in fillers)]
        templates = allowed or templates
    template = rng.choice(templates)
    return render(template[lang], lang, fillers)


@dataclass(frozen=True)
class Document:
    """A rendered document and, per (fact, slot), the span that states it."""

    rendered: Rendered
    answers: dict[tuple[str, str], Span]


def assemble(sentences: list[tuple[str, Rendered]], lang: str) -> Document:
    """Join (fact, sentence) pairs into a document, keeping each fact's slot spans."""
    document = join([s for _, s in sentences], " " if lang == "en" else "")
    answers: dict[tuple[str, str], Span] = {}
    offset = 0
    separator = 1 if lang == "en" else 0
    for fact, sentence in sentences:
        for span in sentence.spans:
            key = (fact, span.slot)
            if key not in answers:
                answers[key] = Span(span.start + offset, span.end + offset, span.slot, span.label)
        offset += len(sentence.text) + separator
    return Document(document, answers)


BIO_ORDER = ("born_in", "born_on", "works_at", "plays_for", "studied_at", "lives_in")


def person_bio(world: World, person: Person, lang: str, rng: random.Random, *,
               n_facts: int | None = None, reserve: bool = False, pronoun_rate: float = 0.6) -> Document:
    """A short biography: ``n_facts`` facts (default: all) in a natural order.

    The first sentence names the person; later ones use he/she with ``pronoun_rate``.
    The occupation is stated with the employer or, if that sentence leaves it out, just
    before it.
    """
    facts = person_facts(world, person)
    names = [f for f in BIO_ORDER if f in facts]
    if n_facts is not None and n_facts < len(names):
        names = sorted(rng.sample(names, n_facts), key=BIO_ORDER.index)
    pronoun = pronoun_filler(person.gender)
    sentences: list[tuple[str, Rendered]] = []

    def say(fact: str) -> Rendered:
        use_pronoun = bool(sentences) and rng.random() < pronoun_rate
        return render_fact(fact, facts[fact], lang, rng, pronoun=pronoun if use_pronoun else None,
                           reserve=reserve)

    for fact in names:
        if fact in ("works_at", "plays_for"):
            employment = render_fact(fact, facts[fact], lang, rng, reserve=reserve,
                                     pronoun=pronoun if sentences and rng.random() < pronoun_rate else None)
            if employment.span("occupation") is None:
                sentences.append(("occupation", say("occupation")))
            sentences.append((fact, employment))
        else:
            sentences.append((fact, say(fact)))
    return assemble(sentences, lang)


def company_profile(world: World, company: Organisation, lang: str, rng: random.Random, *,
                    max_products: int = 2, reserve: bool = False) -> Document:
    """A company profile: founding, seat and up to ``max_products`` launches."""
    facts = company_facts(world, company)
    head = [f for f in facts if f[0] in ("founded", "based_in")]
    launches = [i for i, f in enumerate(facts) if f[0] == "launched"]
    chosen = sorted(rng.sample(launches, min(max_products, len(launches))))
    body: list[tuple[str, dict[str, Filler]]] = []
    for number, index in enumerate(chosen):
        # Each product's facts get their own name ("launched#0") so both keep their spans.
        body.append((f"{facts[index][0]}#{number}", facts[index][1]))
        if rng.random() < 0.5:
            body.append((f"{facts[index + 1][0]}#{number}", facts[index + 1][1]))
    sentences = [(name, render_fact(name.split("#")[0], fillers, lang, rng, reserve=reserve))
                 for name, fillers in head + body]
    return assemble(sentences, lang)
