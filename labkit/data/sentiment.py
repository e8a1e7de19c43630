"""Review writing for the ``sentiment`` task and the corpus.

A review is about a product, a film or a service company. It may open with a neutral
sentence ("I bought the Zentra S5 last March."), then has one to three opinion sentences
and perhaps a verdict. Every opinion sentence agrees with the label, except that a
contrast sentence carries both polarities and the label follows its main clause: the one
after "but" ("the screen is great, but the battery is awful" is negative) or after an
"although" clause. Negation flips a clause ("not good" is negative, "not bad at all" is
positive); intensifiers ("very", "extremely") never change it.

Held-out opinion words (``reviews.json``: superb, dreadful, ...) appear with probability
``heldout_rate`` per opinion slot: 0 for the labelled train split, so only a model that
met them during pretraining on the corpus can read them.
"""

from __future__ import annotations

import random
import re

from labkit.data.lexicon import read_json
from labkit.data.render import Filler, is_reserved, render, slot_names
from labkit.data.slots import SlotSampler
from labkit.data.world import World

LABELS = ("negative", "positive")
SERVICE_KINDS = ("Bank", "Insurance", "Airlines", "Hotels", "Telecom")


def opinion_words(polarity: str, heldout: bool) -> list[str]:
    """Opinion adjectives of ``polarity`` ("positive"/"negative"), held-out or common."""
    return list(read_json("templates/reviews.json")["opinion"][polarity]["heldout" if heldout else "common"])


class ReviewWriter:
    """Writes labelled reviews; ``reserve`` keeps reserved (aspect, word) pairs out."""

    def __init__(self, world: World, rng: random.Random, sampler: SlotSampler, *,
                 heldout_rate: float, reserve: bool):
        self.world, self.rng, self.sampler = world, rng, sampler
        self.heldout_rate, self.reserve = heldout_rate, reserve
        self.spec = read_json("templates/reviews.json")
        self.plural = set(self.spec["plural_aspects"])
        heldout = sampler.heldout
        self.products = world.pool("product", heldout)
        self.films = world.pool("film", heldout)
        self.services = [c for c in world.pool("company", heldout) if c.company_kind in SERVICE_KINDS]

    def review(self, positive: bool) -> str:
        """One review whose sentiment is ``positive`` (else negative)."""
        rng = self.rng
        domain = rng.choices(("product", "film", "service"), weights=(0.45, 0.3, 0.25))[0]
        fixed: dict[str, Filler]
        if domain == "product":
            product = rng.choice(self.products)
            fixed = {"product": self.world.product_filler(product)}
            aspects = self.world.categories[product.category]["aspects"].split("|")
        elif domain == "film":
            fixed = {"film": self.world.film_filler(rng.choice(self.films))}
            aspects = self.spec["domains"]["film"]["aspects"]
        else:
            company = rng.choice(self.services)
            fixed = {"company": self.world.org_filler(company)}
            aspects = self.spec["domains"]["service"]["aspects"][company.company_kind]
        past = domain == "film"

        sentences = []
        if rng.random() < 0.8:
            intro = rng.choice(self.spec["domains"][domain]["intros"])
            sentences.append(render(intro, "en", self.sampler.fill(intro, slot_names(intro), fixed)).text)
        n_opinions = rng.choices((1, 2, 3), weights=(0.45, 0.35, 0.2))[0]
        contrast_at = rng.randrange(n_opinions) if rng.random() < 0.4 else -1
        for index in range(n_opinions):
            sentences.append(self._opinion(positive, aspects, past, contrast=index == contrast_at))
        roll = rng.random()
        if roll < 0.3:
            sentences.append(rng.choice(self.spec["verdicts"]["positive" if positive else "negative"]))
        elif roll < 0.5:
            verb = "was" if past else "is"
            adjective = self._adjective(positive, "overall")
            sentences.append(f"Overall, it {verb} {self._intensifier()}{adjective}.")
        return " ".join(sentences)

    def _opinion(self, positive: bool, aspects: list[str], past: bool, contrast: bool) -> str:
        rng = self.rng
        first, second = rng.sample(aspects, 2)
        if contrast:
            before = self._clause(not positive, first, past)
            after = self._clause(positive, second, past)
            if rng.random() < 0.7:
                return f"{_capitalise(before)}, but {after}."
            return f"Although {before}, {after}."
        clause = _capitalise(self._clause(positive, first, past))
        if rng.random() < 0.35:
            return f"{clause} and {self._clause(positive, second, past)}."
        return f"{clause}."

    def _clause(self, positive: bool, aspect: str, past: bool) -> str:
        rng = self.rng
        be = {(False, False): "is", (False, True): "are", (True, False): "was", (True, True): "were"}[
            (past, aspect in self.plural)]
        form = rng.choices(("plain", "negated", "verb"), weights=(0.6, 0.2, 0.2))[0]
        if form == "plain":
            return f"the {aspect} {be} {self._intensifier()}{self._adjective(positive, aspect)}"
        if form == "negated":
            # "not good" is negative; "not bad at all" is positive.
            adjective = self._adjective(not positive, aspect)
            return f"the {aspect} {be} not {adjective}" + (" at all" if positive else "")
        verb = rng.choice(self.spec["verbs"]["positive" if positive else "negative"])
        return f"I {verb} the {aspect}"

    def _intensifier(self) -> str:
        return self.rng.choice(self.spec["intensifiers"]) + " " if self.rng.random() < 0.35 else ""

    def _adjective(self, positive: bool, aspect: str) -> str:
        polarity = "positive" if positive else "negative"
        heldout = self.rng.random() < self.heldout_rate
        words = opinion_words(polarity, heldout)
        for _ in range(20):
            word = self.rng.choice(words)
            if not (self.reserve and is_reserved("opinion", aspect, word)):
                return word
        return word


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def generate(world: World, rng: random.Random, n: int, *, heldout: bool | None,
             heldout_rate: float, reserve: bool) -> list[dict]:
    """``n`` balanced reviews as ``{"text", "label"}`` rows (label 1 = positive)."""
    sampler = SlotSampler(world, rng, heldout, reserve)
    writer = ReviewWriter(world, rng, sampler, heldout_rate=heldout_rate, reserve=reserve)
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    return [{"text": writer.review(bool(label)), "label": label} for label in labels]


def uses_heldout_words(text: str) -> bool:
    """Whether ``text`` contains a held-out opinion word (to score that subset apart)."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    return any(w in words for w in opinion_words("positive", True) + opinion_words("negative", True))
