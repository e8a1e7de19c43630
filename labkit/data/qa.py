"""Extractive QA in the SQuAD v1.1 format, over biographies and company profiles.

A context is a biography (sometimes followed by a shorter one of a second person, so a
question must be matched to the right name) or a company profile with up to two product
launches. Questions come from paraphrase templates (``templates/qa.json``) that never
copy a context sentence; each answer is the exact span of the fact's slot in the
context, so ``context[answer_start:].startswith(text)`` always holds.
"""

from __future__ import annotations

import random

from labkit.data.facts import Document, company_profile, person_bio
from labkit.data.lexicon import read_json
from labkit.data.render import Filler, Span, join, render
from labkit.data.world import World

SECOND_PERSON_RATE = 0.4  # share of biography contexts followed by a second, shorter biography
# Question fact -> the context facts whose slot answers it (first one found is used).
PERSON_SOURCES = {"occupation": ("occupation", "works_at")}
COMPANY_SOURCES = {"founded_by": "founded", "founded_in": "founded", "based_in": "based_in",
                   "launched": "launched", "launch_date": "launched", "category": "product_category"}


def _merge(first: Document, second: Document, prefix: str) -> Document:
    """``first`` followed by ``second``; the second's answer keys get ``prefix``."""
    rendered = join([first.rendered, second.rendered])
    shift = len(first.rendered.text) + 1
    answers = dict(first.answers)
    for (fact, slot), s in second.answers.items():
        answers[(prefix + fact, slot)] = Span(s.start + shift, s.end + shift, s.slot, s.label)
    return Document(rendered, answers)


def _person_questions(spec: dict, document: Document, fillers: dict[str, Filler], prefix: str,
                      rng: random.Random) -> list[tuple[str, Span]]:
    questions = []
    for fact, entry in spec["person"].items():
        sources = PERSON_SOURCES.get(fact, (fact,))
        span = next((document.answers[(prefix + s, entry["answer"])] for s in sources
                     if (prefix + s, entry["answer"]) in document.answers), None)
        if span is not None:
            questions.append((render(rng.choice(entry["questions"]), "en", fillers).text, span))
    return questions


def _company_questions(spec: dict, document: Document, fillers: dict[str, Filler],
                       rng: random.Random) -> list[tuple[str, Span]]:
    questions = []
    for fact, entry in spec["company"].items():
        source = COMPANY_SOURCES[fact]
        for key in sorted(k for k in document.answers if k[0].split("#")[0] == source and k[1] == entry["answer"]):
            suffix = key[0][len(source):]
            slots = dict(fillers)
            for slot in ("product", "month_year"):
                if (f"launched{suffix}", slot) in document.answers:
                    slots[slot] = _filler_at(document, (f"launched{suffix}", slot))
            if fact == "launched" and "month_year" not in slots:
                continue  # the launch sentence gave no date to ask about
            if fact in ("launch_date", "category") and "product" not in slots:
                continue
            template = rng.choice(entry["questions"])
            questions.append((render(template, "en", slots).text, document.answers[key]))
    return questions


def _filler_at(document: Document, key: tuple[str, str]) -> Filler:
    span = document.answers[key]
    text = document.rendered.text[span.start : span.end]
    return Filler(key=f"{span.slot}:{text}", forms={"en": text, "zh": text})


def generate(world: World, rng: random.Random, n: int, *, heldout: bool | None, reserve: bool,
             split: str) -> list[dict]:
    """``n`` questions (several per context) as SQuAD-style rows."""
    spec = {k: v for k, v in read_json("templates/qa.json").items() if not k.startswith("_")}
    people = world.pool("person", heldout)
    companies = world.pool("company", heldout)
    rows: list[dict] = []
    while len(rows) < n:
        if rng.random() < 0.65:
            person = rng.choice(people)
            document = person_bio(world, person, "en", rng, n_facts=rng.randint(4, 6), reserve=reserve)
            title = person.name_en
            questions = _person_questions(spec, document, {"person": world.person_filler(person)}, "", rng)
            if rng.random() < SECOND_PERSON_RATE:
                other = rng.choice([p for p in people if p is not person])
                second = person_bio(world, other, "en", rng, n_facts=rng.randint(2, 3), reserve=reserve)
                document = _merge(document, second, "other:")
                questions += _person_questions(spec, document, {"person": world.person_filler(other)},
                                               "other:", rng)
        else:
            company = rng.choice(companies)
            document = company_profile(world, company, "en", rng, reserve=reserve)
            title = company.name_en
            questions = _company_questions(spec, document, {"company": world.org_filler(company)}, rng)
        rng.shuffle(questions)
        context = document.rendered.text
        for question, span in questions[: rng.randint(3, 5)]:
            if len(rows) == n:
                break
            rows.append({
                "id": f"tinyworld-{split}-{len(rows):06d}",
                "title": title,
                "context": context,
                "question": question,
                "answers": {"text": [context[span.start : span.end]], "answer_start": [span.start]},
            })
    return rows
