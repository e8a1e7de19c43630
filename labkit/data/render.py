"""Filling templates in English or Chinese while keeping track of where each slot landed.

A template is a string with slots: ``"{person} was born in {city}."``. A slot may name a
variant form, ``{item.pl}`` (English plural) or ``{pron.his}``; a trailing digit tells two
slots of one kind apart (``{person2}``). ``{a}`` / ``{A}`` become the English article that
fits the next word ("a nurse", "an engineer").

Rendering returns the text together with the character span of every slot, so that the
same rendering gives NER tags (spans of entity slots) and QA answers (``answer_start``).
Deterministic randomness comes from ``derive_rng``: a ``random.Random`` seeded from a
SHA-256 of its names, never from Python's per-process ``hash``.
"""

from __future__ import annotations

import hashlib
import random
import re
import zlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

SLOT = re.compile(r"\{([A-Za-z_]+[0-9]?)(?:\.([A-Za-z_]+))?\}")
WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
_AN_EXCEPTIONS = ("hour", "honest", "honour")
_A_EXCEPTIONS = ("uni", "use", "usu", "eu", "one")


@dataclass(frozen=True)
class Filler:
    """A value for one slot, in every language and form.

    ``forms`` maps ``"en"``/``"zh"`` to the base text and ``"en.pl"``, ``"zh.mw"``, ... to
    variants; a variant missing for a language falls back to ``forms[variant]``.
    ``label`` is the entity type ("PER", "ORG", "LOC", "DATE", "PRODUCT") or None.
    """

    key: str
    forms: Mapping[str, str]
    label: str | None = None

    def text(self, lang: str, variant: str | None = None) -> str:
        """The form to write for language ``lang`` (and ``variant``, e.g. ``"pl"``)."""
        if variant is None:
            name = lang
        elif f"{lang}.{variant}" in self.forms:
            name = f"{lang}.{variant}"
        else:
            name = variant
        if name not in self.forms:
            raise ValueError(f"filler {self.key!r} has no form {name!r}; it has {sorted(self.forms)}")
        return self.forms[name]


def plain(key: str, en: str, zh: str | None = None, label: str | None = None, **variants: str) -> Filler:
    """A filler written ``en`` in English and ``zh`` in Chinese (default: same text)."""
    forms = {"en": en, "zh": en if zh is None else zh}
    forms.update({name.replace("_", "."): value for name, value in variants.items()})
    return Filler(key=key, forms=forms, label=label)


@dataclass(frozen=True)
class Span:
    """Characters ``[start, end)`` of a rendered slot; ``label`` as in ``Filler``."""

    start: int
    end: int
    slot: str
    label: str | None


@dataclass(frozen=True)
class Rendered:
    """A rendered text and the spans of the slots filled in it."""

    text: str
    spans: tuple[Span, ...] = field(default_factory=tuple)

    def span(self, slot: str) -> Span | None:
        """First span filled by ``slot`` (None if the slot was not used)."""
        return next((s for s in self.spans if s.slot == slot), None)


def slot_names(template: str) -> list[str]:
    """Slot names used by ``template`` in order of first use, without variants or ``a``."""
    names: list[str] = []
    for match in SLOT.finditer(template):
        name = match.group(1)
        if name not in ("a", "A") and name not in names:
            names.append(name)
    return names


def _article(following: str) -> str:
    word = following.lstrip().lower()
    if word.startswith(_AN_EXCEPTIONS):
        return "an"
    if word.startswith(_A_EXCEPTIONS):
        return "a"
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def render(template: str, lang: str, fillers: Mapping[str, Filler]) -> Rendered:
    """Fill ``template`` for language ``lang`` ("en" or "zh") from ``fillers`` by slot name.

    The first letter is capitalised (a pronoun may open the sentence). Only base forms
    (no variant) of labelled fillers produce labelled spans.
    """
    pieces: list[tuple[str, str | None, str | None]] = []  # (text, slot, label)
    position = 0
    for match in SLOT.finditer(template):
        pieces.append((template[position : match.start()], None, None))
        name, variant = match.group(1), match.group(2)
        if name in ("a", "A"):
            pieces.append(("", name, None))  # resolved below, once the next word is known
        else:
            if name not in fillers:
                raise ValueError(f"template {template!r} needs slot {name!r}; got {sorted(fillers)}")
            filler = fillers[name]
            label = filler.label if variant is None else None
            pieces.append((filler.text(lang, variant), name, label))
        position = match.end()
    pieces.append((template[position:], None, None))

    text_parts: list[str] = []
    spans: list[Span] = []
    length = 0
    for index, (piece, slot, label) in enumerate(pieces):
        if slot in ("a", "A"):
            following = "".join(p for p, _, _ in pieces[index + 1 :])
            piece = _article(following)
            piece = piece.capitalize() if slot == "A" else piece
            slot = None
        if slot is not None:
            spans.append(Span(length, length + len(piece), slot, label))
        text_parts.append(piece)
        length += len(piece)
    text = "".join(text_parts)
    if text[:1].islower():
        text = text[0].upper() + text[1:]
    return Rendered(text=text, spans=tuple(spans))


def join(parts: Sequence[Rendered], separator: str = " ") -> Rendered:
    """Concatenate renderings with ``separator``, shifting their spans."""
    text_parts: list[str] = []
    spans: list[Span] = []
    offset = 0
    for index, part in enumerate(parts):
        if index:
            text_parts.append(separator)
            offset += len(separator)
        text_parts.append(part.text)
        spans.extend(Span(s.start + offset, s.end + offset, s.slot, s.label) for s in part.spans)
        offset += len(part.text)
    return Rendered(text="".join(text_parts), spans=tuple(spans))


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of words and punctuation marks (``o'clock`` stays one word)."""
    return [match.span() for match in WORD.finditer(text)]


def derive_rng(seed: int, *names: object) -> random.Random:
    """A ``random.Random`` seeded from ``seed`` and ``names`` (stable across processes)."""
    material = "/".join([str(seed), *map(str, names)]).encode()
    return random.Random(int.from_bytes(hashlib.sha256(material).digest()[:8], "big"))


def is_reserved(*parts: object, rate: float = 0.15) -> bool:
    """Whether a (template, filler, ...) combination is kept out of labelled train splits.

    Decided by a CRC32 of the parts, so the reserved set is fixed, independent of the seed.
    """
    key = "|".join(map(str, parts)).encode()
    return zlib.crc32(key) % 1000 < rate * 1000
