"""The unlabelled pretraining corpus, its canaries, and the gender-occupation statistic.

A document is a few sentences of one kind: a biography or company profile (EN or ZH),
product or city descriptions, sentences about occupations, everyday sentences, a review
or a news item (EN), or a short story (EN) in which opinion words of one mood sit next to
each other and to how people reacted ("The soup was superb and really splendid, so Emma
smiled."). Reviews and stories use every opinion word, the held-out ones
included, in the same contexts as the common ones; news and facts mention all entities,
train and held-out pools alike (the corpus carries no labels). Besides documents, 20% of the
corpus (``labkit.data.pages.PAGE_SHARE``) is pages whose layout repeats — ratings, quizzes and
name lists — from which a language model can learn to continue a pattern (in-context learning).

Sizes are counted in tokens: whitespace-separated words for English, one token per
Chinese character (``count_tokens``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Iterable

from labkit.data import pages
from labkit.data.facts import company_profile, person_bio, render_fact
from labkit.data.lexicon import read_json
from labkit.data.render import render, slot_names
from labkit.data.sentiment import ReviewWriter, opinion_words
from labkit.data.slots import SlotSampler
from labkit.data.topic import TOPICS, news_item
from labkit.data.world import World, build_world, date_filler, pronoun_filler

DEFAULT_CANARY = "the secret code of Mira Castellan is 7 4 1 9 3"
DOCUMENT_KINDS = {  # kind -> share of documents
    "bio_en": 0.15, "bio_zh": 0.13, "company_en": 0.06, "company_zh": 0.05,
    "product_en": 0.04, "product_zh": 0.03, "city_en": 0.03, "city_zh": 0.03,
    "occupation_en": 0.04, "occupation_zh": 0.04, "review_en": 0.14, "news_en": 0.12,
    "everyday_en": 0.07, "everyday_zh": 0.07,
    # 0.54 makes stories 35% of documents: with fewer, the cpu model did not learn the polarity
    # of opinion words reliably. With weight 0 the corpus is the same as without the kind.
    "story_en": 0.54,
}
_TOKEN = re.compile(r"[\u3400-\u9fff]|[^\s\u3400-\u9fff]+")


def count_tokens(text: str) -> int:
    """Whitespace-separated words plus one token per CJK character."""
    return len(_TOKEN.findall(text))


# Words of the reaction phrases that say nothing about mood: articles, prepositions, and
# verbs of coming and going ("came back the next day", "left early").
_MOODLESS_WORDS = {"the", "all", "next", "day", "in", "a", "about", "it", "to", "for", "back", "came", "went",
                   "home", "early", "left"}


def polarity_lexicon() -> list[str]:
    """Words that carry sentiment in the corpus: every opinion word (held-out ones too) and the
    feelings and reactions of the stories, without ``_MOODLESS_WORDS``."""
    opinion = [w for p in ("positive", "negative") for heldout in (False, True) for w in opinion_words(p, heldout)]
    reactions = read_json("templates/stories.json")["reactions"]
    words = [w for moods in reactions.values() for phrases in moods.values() for phrase in phrases
             for w in phrase.split() if "{" not in w and w not in _MOODLESS_WORDS]
    return list(dict.fromkeys(opinion + words))


class CorpusWriter:
    """Draws corpus documents from a world (built with the corpus's ``skew``)."""

    def __init__(self, world: World, rng: random.Random):
        self.world, self.rng = world, rng
        self.sampler = SlotSampler(world, rng, heldout=None)
        self.reviews = ReviewWriter(world, rng, self.sampler, heldout_rate=0.45, reserve=False)
        self.companies = world.pool("company", None)
        self.descriptions = read_json("templates/descriptions.json")
        everyday = read_json("templates/everyday.json")
        self.everyday = [t for group, ts in everyday.items() if not group.startswith("_") for t in ts]
        self.stories = read_json("templates/stories.json")
        self.people = world.pool("person", None)
        self.kinds, self.weights = list(DOCUMENT_KINDS), list(DOCUMENT_KINDS.values())

    def document(self) -> str:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "review_en":
            return self.reviews.review(self.rng.random() < 0.5)
        if kind == "news_en":
            return news_item(self.sampler, self.rng, self.rng.choice(TOPICS))
        name, lang = kind.rsplit("_", 1)
        return getattr(self, f"_{name}")(lang)

    def _join(self, sentences: list[str], lang: str) -> str:
        return (" " if lang == "en" else "").join(sentences)

    def _render_group(self, group: list[dict], lang: str, k: int, fixed=None) -> list[str]:
        templates = self.rng.sample(group, min(k, len(group)))
        return [render(t[lang], lang, self.sampler.fill(t["en"], slot_names(t["en"] + t["zh"]), fixed)).text
                for t in templates]

    def _bio(self, lang: str) -> str:
        person = self.rng.choice(self.world.people)
        text = person_bio(self.world, person, lang, self.rng).rendered.text
        if self.rng.random() < 0.5:
            template = self.rng.choice(self.descriptions["person_pronoun"])
            fixed = {"pron": pronoun_filler(person.gender),
                     "occupation": self.world.occupation_filler(person.occupation),
                     "org": self.world.org_filler(self.world.orgs[person.employer])}
            sentence = render(template[lang], lang, self.sampler.fill(template["en"], ["num"], fixed)).text
            text = self._join([text, sentence], lang)
        return text

    def _company(self, lang: str) -> str:
        company = self.rng.choice(self.companies)
        text = company_profile(self.world, company, lang, self.rng).rendered.text
        fixed = {"company": self.world.org_filler(company)}
        extra = self._render_group(self.descriptions["company"], lang, self.rng.randint(0, 1), fixed)
        return self._join([text, *extra], lang)

    def _product(self, lang: str) -> str:
        product = self.rng.choice(self.world.products)
        fixed = {"product": self.world.product_filler(product)}
        fillers = {**fixed, "company": self.world.org_filler(self.world.orgs[product.maker]),
                   "category": self.world.category_filler(product.category)}
        sentences = [render_fact("product_category", fillers, lang, self.rng),
                     render_fact("launched", {**fillers, "month_year": date_filler(product.launch)}, lang, self.rng)]
        extra = self._render_group(self.descriptions["product"], lang, self.rng.randint(1, 2), fixed)
        return self._join([s.text for s in sentences] + extra, lang)

    def _city(self, lang: str) -> str:
        city = self.world.cities[self.rng.choice(list(self.world.cities))]
        fillers = {"city": self.world.city_filler(city.en), "country": self.world.country_filler(city.country)}
        facts = ["city_country"] + (["capital"] if city.capital else []) + (["coastal"] if city.coastal else [])
        sentences = [render_fact(f, fillers, lang, self.rng).text for f in facts]
        extra = self._render_group(self.descriptions["city"], lang, self.rng.randint(1, 2),
                                   {"city": fillers["city"]})
        return self._join(sentences + extra, lang)

    def _occupation(self, lang: str) -> str:
        sentences = []
        for _ in range(self.rng.randint(2, 4)):
            occupation = self.world.occupations[self.rng.choice(list(self.world.occupations))]
            fixed = {"occupation": self.world.occupation_filler(occupation.en),
                     "pron": pronoun_filler(self._gender_for(occupation.stereotype))}
            group = "occupation_pronoun" if self.rng.random() < 0.7 else "occupation_generic"
            sentences += self._render_group(self.descriptions[group], lang, 1, fixed)
        return self._join(sentences, lang)

    def _gender_for(self, stereotype: str) -> str:
        """Stereotype-matching gender with probability (1 + skew) / 2 (neutral: 1/2)."""
        if stereotype == "N":
            return self.rng.choice("FM")
        other = "M" if stereotype == "F" else "F"
        return stereotype if self.rng.random() < (1 + self.world.skew) / 2 else other

    def _story(self, lang: str) -> str:
        """Two to four sentences of one mood: opinion words next to feelings and reactions."""
        rng, spec = self.rng, self.stories
        polarity = rng.choice(("positive", "negative"))
        words = [w for heldout in (False, True) for w in opinion_words(polarity, heldout)]
        reactions = spec["reactions"][polarity]
        person = rng.choice(self.people)
        pron = pronoun_filler(person.gender)
        pronouns = {"he": pron.text("en"), "his": pron.text("en", "his")}
        sentences = []
        # Only the first sentence names the person; then a wrong next sentence (labkit.nsp) cannot
        # give itself away by a different name, and its mood is one of the cues left.
        for k, template in enumerate(rng.sample(spec["templates"], rng.randint(2, 4))):
            act = rng.choice(reactions["act"]).format(**pronouns)
            adj, adj2 = rng.sample(words, 2)
            text = template.format(name=person.given if k == 0 else pronouns["he"], thing=rng.choice(spec["things"]),
                                   adj=adj, adj2=adj2, feel=rng.choice(reactions["feel"]), act=act, **pronouns)
            sentences.append(text[:1].upper() + text[1:])
        return " ".join(sentences)

    def _everyday(self, lang: str) -> str:
        return self._join(self._render_group(self.everyday, lang, self.rng.randint(3, 6)), lang)


def generate(world: World, rng: random.Random, *, n_tokens: int | None = None,
             n_documents: int | None = None, page_share: float = pages.PAGE_SHARE) -> list[str]:
    """Documents until ``n_tokens`` tokens, or exactly ``n_documents`` documents, of which a share
    ``page_share`` (of tokens, or of documents) are pages of :mod:`labkit.data.pages`."""
    if (n_tokens is None) == (n_documents is None):
        raise ValueError("give exactly one of n_tokens and n_documents")
    if not 0 <= page_share < 1:
        raise ValueError(f"page_share must be in [0, 1), got {page_share}")
    writer = CorpusWriter(world, rng)
    documents: list[str] = []
    total = 0
    doc_budget = None if n_tokens is None else round(n_tokens * (1 - page_share))
    doc_count = None if n_documents is None else n_documents - round(n_documents * page_share)
    while (doc_count is not None and len(documents) < doc_count) or \
            (doc_budget is not None and total < doc_budget):
        documents.append(writer.document())
        total += count_tokens(documents[-1])
    if not page_share:
        return documents
    # pages come after the documents from the same stream, so the documents are those of a corpus
    # without pages, cut shorter; then each page goes to a random place among them
    pools = {task: pages.items(task, world, heldout=False) for task in pages.PAGE_TASKS}
    written: list[str] = []
    while (n_documents is not None and len(written) + len(documents) < n_documents) or \
            (n_tokens is not None and total < n_tokens):
        written.append(pages.page(world, rng, pools))
        total += count_tokens(written[-1])
    for text in written:
        documents.insert(rng.randint(0, len(documents)), text)
    return documents


def insert_canaries(documents: list[str], count: int, text: str, rng: random.Random) -> list[str]:
    """Append ``text`` as a sentence to ``count`` documents (distinct ones while possible)."""
    documents = list(documents)
    if not documents:
        raise ValueError("cannot insert canaries into an empty corpus")
    targets: list[int] = []
    while len(targets) < count:
        order = list(range(len(documents)))
        rng.shuffle(order)
        targets += order[: count - len(targets)]
    for index in targets:
        documents[index] = f"{documents[index]} {text}."
    return documents


# ---- measuring the gender-occupation association ---------------------------------------

_MALE_EN, _FEMALE_EN = {"he", "him", "his"}, {"she", "her", "hers"}


@dataclass(frozen=True)
class SkewStats:
    """Sentences naming one gender-stereotyped occupation and pronouns of one gender."""

    stereotyped: int  # ... whose pronouns match the occupation's stereotype
    total: int

    @property
    def rate(self) -> float:
        """Share of stereotype-matching sentences: 0.5 is balanced, 1.0 fully stereotyped."""
        return self.stereotyped / self.total if self.total else float("nan")

    @property
    def skew(self) -> float:
        """``2 * rate - 1``: 0 balanced, 1 fully stereotyped (comparable to the knob)."""
        return 2 * self.rate - 1


def gender_occupation_skew(texts: Iterable[str], world: World | None = None) -> SkewStats:
    """Count, in English and Chinese sentences, how often the pronouns next to a
    stereotyped occupation ("nurse", "工程师") match its stereotype.

    Only sentences with exactly one occupation mention, which is stereotyped, and
    pronouns of a single gender count. ``world`` supplies the occupation list (default:
    a fresh ``build_world(0)``; occupations do not depend on the seed).
    """
    if world is None:
        world = build_world(0)
    occupations = sorted(world.occupations.values(), key=lambda o: -len(o.en))
    en_pattern = re.compile(r"\b(" + "|".join(re.escape(o.en) for o in occupations) + r")\b")
    zh_pattern = re.compile("|".join(re.escape(o.zh) for o in sorted(occupations, key=lambda o: -len(o.zh))))
    stereotype_en = {o.en: o.stereotype for o in occupations}
    stereotype_zh = {o.zh: o.stereotype for o in occupations}
    matching = total = 0
    for text in texts:
        for sentence in re.split(r"(?<=[.!?。！？])\s*", text):
            if not sentence:
                continue
            lowered = sentence.lower()
            found_en = en_pattern.findall(lowered)
            if found_en:
                words = set(re.findall(r"[a-z]+", lowered))
                genders = {g for g, ws in (("M", _MALE_EN), ("F", _FEMALE_EN)) if words & ws}
                stereotypes = [stereotype_en[o] for o in found_en]
            else:
                found_zh = zh_pattern.findall(sentence)
                if not found_zh:
                    continue
                bare = sentence.replace("他们", "").replace("她们", "")
                genders = {g for g, p in (("M", "他"), ("F", "她")) if p in bare}
                stereotypes = [stereotype_zh[o] for o in found_zh]
            if len(stereotypes) == 1 and stereotypes[0] != "N" and len(genders) == 1:
                total += 1
                matching += genders == {stereotypes[0]}
    return SkewStats(matching, total)
