"""The out-of-world probe set: balanced, labelled with the tasks' labels, and really outside TinyWorld."""
from __future__ import annotations

import re
from collections import Counter

import pytest

from labkit.data import load_task
from labkit.data.probes import PROBE_TASKS, load_probes, probes_path

WORD = re.compile(r"[a-z]+")


@pytest.mark.parametrize("task", PROBE_TASKS)
def test_probes_are_balanced_labelled_and_distinct(task):
    probes = load_probes(task)
    names = probes.features["label"].names
    counts = Counter(probes["label"])
    assert len(probes) >= 40, f"{task}: {len(probes)} probes; the lab promises at least 40"
    assert set(counts) == set(range(len(names))) and len(set(counts.values())) == 1, f"{task} is unbalanced: {counts}"
    assert len(set(probes["text"])) == len(probes), "a probe is listed twice"
    assert probes.features == load_task(task, size="ci")["test"].features


@pytest.mark.parametrize("task", PROBE_TASKS)
def test_every_probe_uses_words_tinyworld_never_wrote(task):
    """Out of world, measured: each probe has a word no TinyWorld split of the task contains."""
    data = load_task(task, size="ci")
    seen = {w for split in data.values() for text in split["text"] for w in WORD.findall(text.lower())}
    for text in load_probes(task)["text"]:
        new = set(WORD.findall(text.lower())) - seen
        assert new, f"every word of {text!r} occurs in TinyWorld's {task} data"
    unseen = [len(set(WORD.findall(t.lower())) - seen) / len(set(WORD.findall(t.lower()))) for t in load_probes(task)["text"]]
    assert sum(unseen) / len(unseen) > 0.25, "the probes should be mostly new words, not TinyWorld with one word changed"


def test_bad_task_or_label_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no out-of-world probes for task 'ner'"):
        load_probes("ner")
    bad = tmp_path / "probes.tsv"
    bad.write_text("task\tlabel\ttext\nsentiment\tneutral\tIt was fine.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'neutral' is not one of sentiment's labels"):
        load_probes("sentiment", bad)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_probes("topic", tmp_path / "none.tsv")
    assert probes_path().is_file()
