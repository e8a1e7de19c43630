"""Short English news items for the ``topic`` task and the corpus.

A news item is one to three sentences drawn from one topic's templates
(``templates/news.json``), sometimes followed by a topic-neutral sentence. Entities come
from the pool the split allows, so test news mentions people and companies that the
labelled train split never showed.
"""

from __future__ import annotations

import random

from labkit.data.lexicon import read_json
from labkit.data.render import render, slot_names
from labkit.data.slots import SlotSampler
from labkit.data.world import World

TOPICS = ("business", "sports", "technology", "health", "politics")


def news_item(sampler: SlotSampler, rng: random.Random, topic: str) -> str:
    """One news item about ``topic`` (one of ``TOPICS``)."""
    spec = read_json("templates/news.json")
    n_sentences = rng.choices((1, 2, 3), weights=(0.3, 0.45, 0.25))[0]
    templates = rng.sample(spec["topics"][topic], n_sentences)
    if rng.random() < 0.2:
        templates.append(rng.choice(spec["neutral"]))
    return " ".join(render(t, "en", sampler.fill(t, slot_names(t))).text for t in templates)


def generate(world: World, rng: random.Random, n: int, *, heldout: bool | None, reserve: bool) -> list[dict]:
    """``n`` news items as ``{"text", "label"}`` rows, each topic equally often."""
    sampler = SlotSampler(world, rng, heldout, reserve)
    labels = [i % len(TOPICS) for i in range(n)]
    rng.shuffle(labels)
    return [{"text": news_item(sampler, rng, TOPICS[label]), "label": label} for label in labels]
