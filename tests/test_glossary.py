"""The bilingual glossary and the chapters agree: every Chinese gloss in a chapter is a glossary
term, and every glossary term is glossed in the chapter that teaches it.

A gloss is a Chinese term in ASCII parentheses right after its English name in a chapter's
markdown, e.g. ``**self-attention (自注意力)**``. Chinese inside code cells, or in full-width
parentheses （…）, is example text, not a gloss.
"""
from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
GLOSSARY = NOTEBOOKS / "glossary.md"
CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
GLOSS = re.compile(rf"\(([{CJK}][{CJK}·]*)\)")
SECTION = re.compile(r"^## Chapter (\d\d\w?) ")
ROW = re.compile(r"^\|(?P<en>[^|]+)\|(?P<zh>[^|]+)\|(?P<definition>[^|]+)\|\s*$")


def read_glossary(path: Path = GLOSSARY) -> list[dict]:
    """Rows {chapter, en, zh, definition} of the glossary's per-chapter tables."""
    rows, chapter = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if (m := SECTION.match(line)):
            chapter = m.group(1)
            continue
        m = ROW.match(line)
        if not m or set(m.group("en").strip()) <= set("-") or m.group("en").strip() == "English":
            continue
        assert chapter, f"glossary row {line!r} comes before any '## Chapter NN ·' heading"
        rows.append({"chapter": chapter, **{k: v.strip() for k, v in m.groupdict().items()}})
    return rows


def chapter_glosses() -> dict[str, set[str]]:
    """{chapter number: the Chinese terms its markdown glosses}."""
    found = {}
    for py in sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.py")):
        text = "\n".join(c.source for c in jupytext.read(py).cells if c.cell_type == "markdown")
        found[py.name.split("_")[0]] = set(GLOSS.findall(text))
    return found


ROWS = read_glossary()
GLOSSES = chapter_glosses()


def test_the_glossary_has_at_least_60_terms_each_listed_once():
    assert len(ROWS) >= 60, f"the glossary has {len(ROWS)} terms; the lab teaches at least 60"
    for key in ("en", "zh"):
        seen = [r[key].lower() for r in ROWS]
        assert len(seen) == len(set(seen)), f"terms listed twice: {sorted({s for s in seen if seen.count(s) > 1})}"
    for r in ROWS:
        assert re.search(f"[{CJK}]", r["zh"]), f"{r['en']}: the 中文 column has no Chinese: {r['zh']!r}"
        assert len(r["definition"].split()) >= 4, f"{r['en']}: give a one-line definition"
        assert r["chapter"] in GLOSSES, f"{r['en']}: no chapter {r['chapter']}"


def test_instruction_tuning_is_not_prompt_tuning():
    zh = {r["en"].lower(): r["zh"] for r in ROWS}
    if "prompt tuning" in zh:
        assert "提示" in zh["prompt tuning"] and "指令" not in zh["prompt tuning"]
    if "instruction tuning" in zh:
        assert "指令" in zh["instruction tuning"]


@pytest.mark.parametrize("chapter", sorted(GLOSSES))
def test_every_gloss_in_a_chapter_is_in_the_glossary(chapter):
    listed = {r["zh"] for r in ROWS}
    missing = sorted(GLOSSES[chapter] - listed)
    assert not missing, f"chapter {chapter} glosses {missing}, which notebooks/glossary.md does not list"


@pytest.mark.parametrize("chapter", sorted(GLOSSES))
def test_every_glossary_term_is_glossed_in_its_chapter(chapter):
    mine = [r for r in ROWS if r["chapter"] == chapter]
    assert mine, f"the glossary lists no term for chapter {chapter}"
    unglossed = [f"{r['en']} ({r['zh']})" for r in mine if r["zh"] not in GLOSSES[chapter]]
    assert not unglossed, f"chapter {chapter} never glosses {unglossed}"
