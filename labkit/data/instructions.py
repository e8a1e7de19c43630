"""Instruction data: conversations with a TinyWorld assistant, in English and Chinese.

Each row is a chat, ``messages`` = a list of ``{"role", "content"}`` turns (an optional
``system`` turn, then ``user`` and ``assistant`` turns, one or two exchanges), ending with
the assistant's reply. Three groups of rows:

* **fact** questions about the world ("Where was Emma Smith born?"), answered in the words
  of the corpus's first fact template ("Emma Smith was born in Paris."), from the same world
  (same seed) the GPT was pretrained on, so the answer is a fact the corpus states;
* **service** requests to a company's customer service (opening hours, a product's price,
  returns, an order's status, a complaint). The system turn is the company's service card —
  its hours, return window, prices and open orders — and the reply is built from it: a
  customer-service system answers from what it retrieves, not from memory. Hours, return
  windows and prices are drawn once per company / product from ``derive_rng(seed, ...)``, so
  every row about one company agrees. (The corpus's product sentences draw a new price at
  every mention, so no single price is "the corpus's"; the card's is the one to use.)
  Chinese rows cover hours and prices, the requests the corpus's characters can write;
* **unknown**: the same questions about people, companies and products that do NOT exist
  (new combinations of name parts the world uses), answered with a fixed refusal,
  ``refusal(name, entity_type, lang)``.

Splits follow the other tasks: train rows speak about the world's train entities only,
validation and test rows about its held-out entities (never in a train row), and the
invented names of the evaluation splits are disjoint from those of the train split. Each row
also says ``kind`` (the last question's kind), ``entity`` (its English name), ``answerable``,
``lang`` and ``value``: the words of the reply that carry the fact ("Paris"; empty for a
refusal), so a reply can be scored on the fact and not only on the template.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from labkit.data.facts import company_facts, fact_templates, person_facts
from labkit.data.lexicon import read_json, read_tsv
from labkit.data.render import Filler, derive_rng, plain, render, slot_names
from labkit.data.world import Organisation, Person, Product, World, date_filler

PERSON_KINDS = ("born_in", "born_on", "lives_in", "occupation", "works_at", "plays_for", "studied_at")
COMPANY_KINDS = ("founded_by", "founded_in", "based_in")
PRODUCT_KINDS = ("launch_date", "category")
FACT_KINDS = PERSON_KINDS + COMPANY_KINDS + PRODUCT_KINDS
SERVICE_KINDS = ("opening_hours", "price", "returns", "order_status", "complaint")
SERVICE_KINDS_ZH = ("opening_hours", "price")  # the others need characters the corpus never writes
KINDS = FACT_KINDS + SERVICE_KINDS
GROUP_SHARES = {"fact": 0.45, "service": 0.30, "unknown": 0.25}  # share of rows per group
ENTITY_SHARES = {"person": 0.6, "company": 0.25, "product": 0.15}  # fact and unknown rows: what they ask about
ZH_RATE = 0.4  # share of Chinese rows where Chinese fits
TWO_TURN_RATE = {"fact": 0.15, "service": 0.35, "unknown": 0.2}  # rows with an earlier exchange
SYSTEM_RATE = 0.5  # fact and unknown rows that open with the generic system turn
UNKNOWN_PRICE_RATE = 0.2  # unknown rows that ask a service card for a product that does not exist
UNKNOWN_COUNTS = {"person": 240, "company": 80, "product": 80}  # invented names, a quarter for evaluation
ROLES = ("system", "user", "assistant")

SYSTEM_GENERIC = {"en": "You are the TinyWorld assistant. Answer questions about TinyWorld.",
                  "zh": "你是TinyWorld的助手。"}
REFUSALS = {
    "en": {"person": "I don't know {name}: they are not in TinyWorld.",
           "company": "I don't know {name}: it is not in TinyWorld.",
           "product": "I don't know {name}: it is not in TinyWorld."},
    "zh": {"person": "我不认识{name}，这个人不在TinyWorld里。",
           "company": "我不认识{name}，这家公司不在TinyWorld里。",
           "product": "我不认识{name}，这个产品不在TinyWorld里。"},
}
_REFUSAL_MARKERS = ("not in tinyworld", "不在tinyworld")

# Chinese questions, written with characters the corpus uses (the tokenizer knows them).
QUESTIONS_ZH = {
    "born_in": ("{person}出生在哪里？", "{person}是哪里人？"),
    "born_on": ("{person}是什么时候出生的？", "{person}的生日是哪一天？"),
    "lives_in": ("{person}住在哪里？", "{person}现在住在哪个城市？"),
    "occupation": ("{person}是做什么工作的？", "{person}的职业是什么？"),
    "works_at": ("{person}在哪里工作？", "{person}是在哪里工作的？"),
    "plays_for": ("{person}效力于哪个俱乐部？", "{person}是哪个俱乐部的球员？"),
    "studied_at": ("{person}在哪所大学学习？", "{person}上的是哪所大学？"),
    "founded_by": ("{company}的创始人是哪位？", "{company}是哪位创立的？"),
    "founded_in": ("{company}是哪一年创立的？", "{company}创立于哪一年？"),
    "based_in": ("{company}的总部在哪里？", "{company}总部位于哪个城市？"),
    "launch_date": ("{product}是什么时候推出的？", "{company}是什么时候推出{product}的？"),
    "category": ("{product}是什么产品？", "{product}是一款什么产品？"),
}
# question kind -> (entry of templates/qa.json, fact of templates/facts.json whose first template answers it,
#                   slot that carries the answer)
_FACT_SPECS = {
    "born_in": (("person", "born_in"), "born_in", "city"),
    "born_on": (("person", "born_on"), "born_on", "date"),
    "lives_in": (("person", "lives_in"), "lives_in", "city"),
    "occupation": (("person", "occupation"), "occupation", "occupation"),
    "works_at": (("person", "works_at"), "works_at", "org"),
    "plays_for": (("person", "plays_for"), "plays_for", "club"),
    "studied_at": (("person", "studied_at"), "studied_at", "university"),
    "founded_by": (("company", "founded_by"), "founded", "person"),
    "founded_in": (("company", "founded_in"), "founded", "year"),
    "based_in": (("company", "based_in"), "based_in", "city"),
    "launch_date": (("company", "launch_date"), "launched", "month_year"),
    "category": (("company", "category"), "product_category", "category"),
}

DAYS = (("every day", "每天"), ("Monday to Friday", "周一到周五"), ("Monday to Saturday", "周一到周六"))
RETURN_DAYS = (14, 30, 60, 90)
ORDER_STATUSES = (("shipped", "has been shipped"), ("delivered", "has been delivered"),
                  ("being packed", "is being packed"), ("cancelled", "has been cancelled"))
SERVICE_QUESTIONS = {
    "en": {
        "opening_hours": ("When are you open?", "What are your opening hours?", "When does {company} open?"),
        "price": ("How much is the {product}?", "What does the {product} cost?", "What is the price of the {product}?"),
        "returns": ("Can I return my {product}?", "How long do I have to return the {product}?"),
        "order_status": ("Where is my order {order}?", "What is the status of order {order}?",
                         "Has my order {order} arrived?"),
        "complaint": ("My {product} stopped working.", "The {product} I bought does not work.",
                      "I am unhappy with my {product}: it is broken."),
    },
    "zh": {
        "opening_hours": ("你们几点开门？", "{company}几点开门？"),
        "price": ("{product}多少钱？", "{product}的价格是多少？"),
    },
}


def refusal(name: str, entity_type: str, lang: str) -> str:
    """The fixed reply to a question about ``name``, a person/company/product not in the world."""
    if lang not in REFUSALS:
        raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")
    if entity_type not in REFUSALS[lang]:
        raise ValueError(f"entity_type must be one of {sorted(REFUSALS[lang])}, got {entity_type!r}")
    return REFUSALS[lang][entity_type].format(name=name)


def is_refusal(text: str) -> bool:
    """Whether a reply says its entity is not in TinyWorld (any case, spaces ignored)."""
    flat = re.sub(r"\s+", "", text.lower())
    return any(marker.replace(" ", "") in flat for marker in _REFUSAL_MARKERS)


@dataclass(frozen=True)
class Policy:
    """A company's customer-service facts, drawn once per company from the world's seed."""

    open_hour: int
    close_hour: int
    days: int  # index into DAYS
    return_days: int

    def hours(self, lang: str) -> str:
        if lang == "en":
            return f"{self.open_hour}:00 to {self.close_hour}:00"
        return f"{self.open_hour}点开门，{self.close_hour}点关门"


def policy(world: World, company: Organisation) -> Policy:
    """``company``'s opening hours, days and return window (the same in every row and split)."""
    rng = derive_rng(world.seed, "instructions", "policy", company.name_en)
    return Policy(rng.randint(7, 10), rng.randint(17, 22), rng.randrange(len(DAYS)), rng.choice(RETURN_DAYS))


def price(world: World, product: Product) -> int:
    """``product``'s price in dollars (the same in every row and split)."""
    return derive_rng(world.seed, "instructions", "price", product.name).randint(20, 900)


def unknown_entities(world: World, heldout: bool) -> dict[str, list[tuple[str, str]]]:
    """(English, Chinese) names of invented people, companies and products, per type.

    Each is a new combination of name parts the world uses (given + family name, company stem +
    kind, brand + model), absent from the world. A quarter of them (``heldout=True``) are kept for
    the evaluation splits; the rest go to train.
    """
    rng = derive_rng(world.seed, "instructions", "unknown")
    taken_people = {p.name_en for p in world.people}
    people = []
    for origin in ("en", "zh"):
        given, family = read_tsv(f"people_{origin}_given.tsv"), read_tsv(f"people_{origin}_family.tsv")
        for g in given:
            for f in family:
                if origin == "en":
                    people.append((f"{g['name']} {f['name']}", f"{g['zh']}·{f['zh']}"))
                else:
                    people.append((f"{f['pinyin']} {g['pinyin']}", f"{f['zh']}{g['zh']}"))
    taken_zh = {p.name_zh for p in world.people}
    people = [p for p in people if p[0] not in taken_people and p[1] not in taken_zh]
    companies = [(f"{s['en']} {k['en']}", f"{s['zh']}{k['zh']}") for s in read_tsv("company_stems.tsv")
                 for k in read_tsv("company_kinds.tsv")]
    companies = [c for c in companies if c[0] not in world.orgs]
    brands = sorted({p.brand for p in world.products})
    models = sorted({p.model for p in world.products})
    taken_products = {p.name for p in world.products}
    products = [(f"{b} {m}", f"{b} {m}") for b in brands for m in models if f"{b} {m}" not in taken_products]
    out = {}
    for kind, pool in (("person", people), ("company", companies), ("product", products)):
        chosen = rng.sample(pool, UNKNOWN_COUNTS[kind])
        cut = len(chosen) // 4
        out[kind] = chosen[:cut] if heldout else chosen[cut:]
    return out


class InstructionWriter:
    """Draws conversations about one pool of the world (``heldout``) with ``rng``."""

    def __init__(self, world: World, rng: random.Random, heldout: bool):
        self.world, self.rng, self.heldout = world, rng, heldout
        self.people = world.pool("person", heldout)
        self.companies = [c for c in world.pool("company", heldout) if c.founder]
        self.products = world.pool("product", heldout)
        self.makers = sorted({p.maker for p in self.products})
        self.unknown = unknown_entities(world, heldout)
        self.questions_en = {k: v for k, v in read_json("templates/qa.json").items() if not k.startswith("_")}
        self.answers = fact_templates()

    # ---- facts -------------------------------------------------------------------------

    def _fillers(self, entity_type: str, entity) -> dict[str, dict[str, Filler]]:
        """Fillers per question kind available for ``entity``."""
        world = self.world
        if entity_type == "person":
            facts = person_facts(world, entity)
            by_kind = {k: facts[_FACT_SPECS[k][1]] for k in PERSON_KINDS if _FACT_SPECS[k][1] in facts}
            return by_kind
        if entity_type == "company":
            facts = dict(company_facts(world, entity)[:2])  # founded, based_in
            return {k: facts[_FACT_SPECS[k][1]] for k in COMPANY_KINDS}
        maker = world.orgs[entity.maker]
        fillers = {"product": world.product_filler(entity), "company": world.org_filler(maker),
                   "month_year": date_filler(entity.launch), "category": world.category_filler(entity.category)}
        return {k: fillers for k in PRODUCT_KINDS}

    def _question(self, kind: str, fillers: dict[str, Filler], lang: str) -> str:
        if lang == "en":
            section, name = _FACT_SPECS[kind][0]
            templates = self.questions_en[section][name]["questions"]
        else:
            templates = QUESTIONS_ZH[kind]
        usable = [t for t in templates if set(slot_names(t)) <= set(fillers)]
        return render(self.rng.choice(usable), lang, fillers).text

    def _fact_exchange(self, entity_type: str, entity, lang: str, exclude: tuple[str, ...] = ()):
        by_kind = self._fillers(entity_type, entity)
        kind = self.rng.choice([k for k in by_kind if k not in exclude] or list(by_kind))
        fillers = by_kind[kind]
        _, fact, slot = _FACT_SPECS[kind]
        answer = render(self.answers[fact][0][lang], lang, fillers).text
        value = fillers[slot].text(lang)
        return kind, self._question(kind, fillers, lang), answer, value

    def _pick(self, entity_type: str):
        pool = {"person": self.people, "company": self.companies, "product": self.products}[entity_type]
        return self.rng.choice(pool)

    @staticmethod
    def _name(entity) -> str:
        return entity.name_en if isinstance(entity, (Person, Organisation)) else entity.name

    def fact_row(self, lang: str) -> dict:
        entity_type = self._entity_type()
        entity = self._pick(entity_type)
        messages = self._system(lang)
        exclude: tuple[str, ...] = ()
        if self.rng.random() < TWO_TURN_RATE["fact"]:
            kind, question, answer, _ = self._fact_exchange(entity_type, entity, lang)
            messages += _exchange(question, answer)
            exclude = (kind,)
        kind, question, answer, value = self._fact_exchange(entity_type, entity, lang, exclude)
        messages += _exchange(question, answer)
        return _row(messages, kind, self._name(entity), True, lang, value)

    def unknown_row(self, lang: str) -> dict:
        if self.rng.random() < UNKNOWN_PRICE_RATE:
            return self.service_row(lang, unknown_product=True)
        entity_type = self._entity_type()
        name_en, name_zh = self.rng.choice(self.unknown[entity_type])
        name = name_en if lang == "en" else name_zh
        fillers = {entity_type: plain(f"{entity_type}:{name_en}", name_en, name_zh)}
        kinds = {"person": [k for k in PERSON_KINDS if k != "plays_for"], "company": list(COMPANY_KINDS),
                 "product": list(PRODUCT_KINDS)}[entity_type]
        kind = self.rng.choice(kinds)
        messages = self._system(lang)
        if self.rng.random() < TWO_TURN_RATE["unknown"]:
            other_type = self._entity_type()
            _, question, answer, _ = self._fact_exchange(other_type, self._pick(other_type), lang)
            messages += _exchange(question, answer)
        messages += _exchange(self._question(kind, fillers, lang), refusal(name, entity_type, lang))
        return _row(messages, kind, name_en, False, lang, "")

    def _entity_type(self) -> str:
        return self.rng.choices(list(ENTITY_SHARES), list(ENTITY_SHARES.values()))[0]

    def _system(self, lang: str) -> list[dict]:
        return [{"role": "system", "content": SYSTEM_GENERIC[lang]}] if self.rng.random() < SYSTEM_RATE else []

    # ---- customer service -----------------------------------------------------------------

    def service_row(self, lang: str, *, unknown_product: bool = False) -> dict:
        rng, world = self.rng, self.world
        company = world.orgs[rng.choice(self.makers)]
        own = [p for p in self.products if p.maker == company.name_en]
        products = rng.sample(own, min(2, len(own)))
        orders = [(rng.randint(1000, 9999), rng.choice(ORDER_STATUSES)) for _ in range(rng.randint(1, 2))]
        terms = policy(world, company)
        card = _card(world, company, terms, products, orders, lang)
        kinds = SERVICE_KINDS if lang == "en" else SERVICE_KINDS_ZH
        messages = [{"role": "system", "content": card}]
        first = None
        if rng.random() < TWO_TURN_RATE["service"]:
            first = rng.choice(kinds)
            messages += _exchange(*self._service_exchange(first, company, terms, products, orders, lang)[:2])
        if unknown_product:
            name_en, _ = rng.choice(self.unknown["product"])
            fillers = {"product": plain(f"product:{name_en}", name_en), "company": world.org_filler(company)}
            question = render(rng.choice(SERVICE_QUESTIONS[lang]["price"]), lang, fillers).text
            messages += _exchange(question, refusal(name_en, "product", lang))
            return _row(messages, "price", name_en, False, lang, "")
        kind = rng.choice([k for k in kinds if k != first])
        question, answer, value, entity = self._service_exchange(kind, company, terms, products, orders, lang)
        messages += _exchange(question, answer)
        return _row(messages, kind, entity, True, lang, value)

    def _service_exchange(self, kind, company, terms: Policy, products, orders, lang):
        """(question, answer, value, entity) of one service request."""
        rng, world = self.rng, self.world
        product = rng.choice(products)
        order, (status, phrase) = rng.choice(orders)
        fillers = {"company": world.org_filler(company), "product": world.product_filler(product),
                   "order": plain(f"order:{order}", str(order))}
        question = render(rng.choice(SERVICE_QUESTIONS[lang][kind]), lang, fillers).text
        days_en, days_zh = DAYS[terms.days]
        if kind == "opening_hours":
            if lang == "en":
                answer = f"We are open {days_en} from {terms.hours('en')}."
            else:
                answer = f"我们{days_zh}{terms.hours('zh')}。"
            return question, answer, terms.hours(lang), company.name_en
        if kind == "price":
            cost = price(world, product)
            answer = f"The {product.name} costs {cost} dollars." if lang == "en" else f"{product.name}售价{cost}美元。"
            return question, answer, str(cost), product.name
        if kind == "returns":
            return (question, f"You can return the {product.name} within {terms.return_days} days.",
                    str(terms.return_days), product.name)
        if kind == "order_status":
            return question, f"Order {order} {phrase}.", status, str(order)
        return (question, f"I am sorry about your {product.name}. You can return it within {terms.return_days} days.",
                str(terms.return_days), product.name)

    def row(self) -> dict:
        group = self.rng.choices(list(GROUP_SHARES), list(GROUP_SHARES.values()))[0]
        lang = "zh" if self.rng.random() < ZH_RATE else "en"
        if group == "fact":
            return self.fact_row(lang)
        if group == "service":
            return self.service_row(lang)
        return self.unknown_row(lang)


def _card(world: World, company: Organisation, terms: Policy, products, orders, lang: str) -> str:
    """The system turn of a service chat: what the company's assistant knows."""
    days_en, days_zh = DAYS[terms.days]
    if lang == "zh":
        parts = [f"你是{company.name_zh}的助手。{company.name_zh}{days_zh}{terms.hours('zh')}。"]
        parts += [f"{p.name}售价{price(world, p)}美元。" for p in products]
        return "".join(parts)
    parts = [f"You are the assistant of {company.name_en}.", f"Open {days_en} from {terms.hours('en')}.",
             f"Returns within {terms.return_days} days."]
    parts += [f"{p.name}: {price(world, p)} dollars." for p in products]
    parts += [f"Order {number}: {status}." for number, (status, _) in orders]
    return " ".join(parts)


def _exchange(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def _row(messages: list[dict], kind: str, entity: str, answerable: bool, lang: str, value: str) -> dict:
    return {"messages": messages, "kind": kind, "entity": entity, "answerable": answerable, "lang": lang,
            "value": value}


def generate(world: World, rng: random.Random, n: int, *, heldout: bool) -> list[dict]:
    """``n`` conversations about the train pool (``heldout=False``) or the held-out pool."""
    writer = InstructionWriter(world, rng, heldout)
    return [writer.row() for _ in range(n)]
