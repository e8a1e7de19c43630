"""In-context learning, measured (labkit.in_context): prompts, scoring, and the build's figures."""
from __future__ import annotations

import json

import pytest
import torch

from labkit.data import build_world
from labkit.data.pages import formats, items
from labkit.folders import load_model
from labkit.in_context import (ICLConfig, Prompt, complete, evaluate_in_context, few_shot_prompt, in_context_markdown,
                               majority_rate, partial, plot_in_context, prompts_for, score)

WORLD = build_world(0)


def test_a_few_shot_prompt_is_written_like_a_page_and_ends_before_the_answer():
    fmt = formats("ratings")[0]
    pool = items("ratings", WORLD, heldout=False)
    query = items("ratings", WORLD, heldout=True)[0]
    text, gold = few_shot_prompt(fmt, [pool[0], pool[-1]], query)
    assert text == f"ratings . {pool[0].query} : yes ; {pool[-1].query} : no ; {query.query} :"
    assert gold == "yes"  # held-out positive items come first
    assert few_shot_prompt(fmt, [], query)[0] == f"ratings . {query.query} :"


def test_prompts_share_their_demonstrations_across_shots_and_ask_held_out_items_only():
    cfg = ICLConfig(n_items=5, draws=2)
    prompts = prompts_for("names", cfg, WORLD)
    assert len(prompts) == 5 * 2 * len(cfg.shots)
    held = {i.query for i in items("names", WORLD, heldout=True)}
    for p in prompts:
        assert p.text.split(" ; ")[-1].removeprefix("names in chinese . ").removesuffix(" :") in held
    eight, four = prompts[len(cfg.shots) - 1], prompts[len(cfg.shots) - 2]
    assert eight.shots == 8 and four.shots == 4
    assert eight.text.startswith(four.text.rsplit(" ; ", 1)[0])  # the 4 shots start the 8
    assert prompts_for("names", cfg, WORLD) == prompts  # seeded
    assert len(prompts_for("quiz", ICLConfig(n_items=100, draws=1), WORLD)) == 13 * 5  # all 13 held-out cities


def test_scoring_separates_right_answers_from_answers_of_the_right_kind():
    fmt = formats("ratings")[1]
    p = Prompt("ratings", 1, "ratings . x :", "up", fmt)
    assert score(p, "up") == (True, True) and score(p, "down") == (False, True) and score(p, "good") == (False, False)
    q = Prompt("quiz", 0, "quiz . lyon :", "france", formats("quiz")[0])
    assert score(q, "france", {"france", "japan"}) == (True, True) and score(q, "japan", {"japan"}) == (False, True)
    n = Prompt("names", 2, "…", "王伟", formats("names")[0])
    assert score(n, "王 伟") == (True, True) and score(n, "李伟") == (False, True) and score(n, "wang") == (False, False)
    assert partial(n, "李伟") == 0.5 and partial(q, "france") == 1.0
    assert 0 < majority_rate("quiz") < 0.5 and majority_rate("ratings") == 0.5


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="unknown in-context tasks"):
        ICLConfig(tasks=("poems",))
    with pytest.raises(ValueError, match="shots"):
        ICLConfig(shots=(-1,))
    with pytest.raises(ValueError, match="n_items"):
        ICLConfig(n_items=0)


def test_the_build_measures_in_context_learning_of_its_mini_gpt(ci_build, tmp_path):
    report = json.loads((ci_build / "report.json").read_text())
    rows = report["models"]["text-generation"]["in_context"]
    assert {(r["task"], r["shots"]) for r in rows} == {(t, k) for t in ("ratings", "quiz", "names")
                                                      for k in (0, 1, 2, 4, 8)}
    assert all(0 <= r["accuracy"] <= r["format_rate"] <= 1 and r["n"] > 0 for r in rows)
    assert "In-context learning" in (ci_build / "report.md").read_text()
    model, tok = load_model(ci_build / "text-generation")
    cfg = ICLConfig(tasks=("quiz",), shots=(0, 2), n_items=4, draws=1)
    again = evaluate_in_context(model, tok, cfg)
    saved = {(r["task"], r["shots"]): r for r in rows}
    assert len(again) == 2 and all(r["n"] == 4 for r in again)
    replies = complete(model, tok, [p.text for p in prompts_for("quiz", cfg)], max_new_tokens=4)
    assert all(";" not in r and "." not in r for r in replies)  # cut at the separator
    table = in_context_markdown(rows)
    assert table.count("\n| ") == 3 and f"{saved['quiz', 0]['accuracy']:.2f}" in table
    fig = plot_in_context({"ci": rows}, tmp_path / "icl.png")
    assert (tmp_path / "icl.png").stat().st_size > 1000 and len(fig.axes) == 3
