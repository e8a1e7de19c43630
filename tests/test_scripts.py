"""The scripts in scripts/ run (a few steps only; their full runs take minutes)."""
import importlib.util
import math
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_polarity_toy_runs_every_setting(capsys):
    toy = _load("polarity_toy")
    separations = toy.main(["--steps", "3", "--seeds", "1"])
    assert len(separations) == 3 and all(math.isfinite(s) for s in separations)  # labkit ×2 layouts, transformers
    out = capsys.readouterr().out
    assert "one review each" in out and "packed 64-token blocks" in out and "transformers" in out


def test_toy_reviews_pair_words_of_one_polarity():
    toy = _load("polarity_toy")
    from labkit.data.sentiment import opinion_words

    positive = set(opinion_words("positive", False) + opinion_words("positive", True))
    for review in toy.toy_reviews(200, seed=1):
        words = review.rstrip(".").replace(",", "").split()
        first, second = words[3], words[5]
        assert (first in positive) == (second in positive), review
