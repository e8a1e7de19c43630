"""The scripts in scripts/ run (a few steps only; their full runs take minutes)."""
import importlib.util
import math
from pathlib import Path

import pytest
import torch

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


def test_embedding_polarity_sees_a_planted_polarity_direction(ci_build):
    diag = _load("sentiment_diagnostics")
    from labkit.data.sentiment import opinion_words
    from labkit.folders import load_model

    torch.manual_seed(0)
    model, tokenizer = load_model(ci_build / "fill-mask")
    table = model.encoder.embeddings.token.weight
    direction = torch.randn(table.shape[1])
    with torch.no_grad():
        for polarity, sign in (("positive", 1.0), ("negative", -1.0)):
            for word in opinion_words(polarity, False) + opinion_words(polarity, True):
                i = tokenizer.convert_tokens_to_ids(word)
                table[i] = sign * direction + 0.1 * torch.randn_like(direction)
    assert diag.embedding_polarity(model, tokenizer) == 1.0
    with torch.no_grad():  # random embeddings carry no polarity
        table.copy_(torch.randn_like(table))
    assert diag.embedding_polarity(model, tokenizer) < 0.9


def test_sentiment_diagnostics_runs(ci_build, capsys):
    diag = _load("sentiment_diagnostics")
    result = diag.main(["--scale", "ci", "--model", str(ci_build / "fill-mask"), "--steps", "3"])
    assert set(result) == {"embedding_polarity", "rating_readout"}
    assert all(0.0 <= v <= 1.0 for v in result.values())
    assert "leave-one-out" in capsys.readouterr().out


@pytest.mark.slow
def test_rating_readout_learns_review_polarity(ci_build):
    """Chapter 05's claim: trained on the rating blank alone, the masked-LM head reads polarity (about two minutes)."""
    diag = _load("sentiment_diagnostics")
    from labkit.data import load_task
    from labkit.folders import load_model

    _, tokenizer = load_model(ci_build / "fill-mask")
    assert diag.rating_readout(tokenizer, load_task("sentiment", size="cpu"), "ci") > 0.9


def test_sentiment_diagnostics_reject_a_tokenizer_without_the_words():
    diag = _load("sentiment_diagnostics")
    from labkit.data import load_task
    from labkit.tokenization import train_tokenizer
    from labkit.transformer import MaskedLM, TransformerConfig

    tokenizer = train_tokenizer(["the cat sat on the mat"] * 5, vocab_size=40, min_frequency=1)
    model = MaskedLM(TransformerConfig(vocab_size=len(tokenizer), d_model=16, n_layers=1, n_heads=2, d_ff=32,
                                       max_position=32))
    with pytest.raises(ValueError, match="opinion words"):
        diag.embedding_polarity(model, tokenizer)
    with pytest.raises(ValueError, match="digits"):
        diag.rating_readout(tokenizer, load_task("sentiment", size="ci"), "ci", steps=1)


def test_run_notebooks_selects_chapters_and_names_unknown_ones():
    runner = _load("run_notebooks")
    every = runner.chapters([])
    assert [p.name.split("_")[0] for p in every][:2] == ["00", "01"] and all(p.suffix == ".py" for p in every)
    assert [p.name for p in runner.chapters(["01"])] == ["01_self_attention.py"]
    with pytest.raises(SystemExit, match="no chapter"):
        runner.chapters(["99"])


def test_bench_decoding_runs_and_prints_ratios(ci_build, capsys):
    """The benchmark on the ci build, shrunk to a few tokens: every pair of runs writes the same tokens
    (it asserts so itself) and each row prints a ratio. Speed itself is not tested."""
    bench = _load("bench_decoding")
    bench.main(["--build", str(ci_build), "--sentences", "3", "--new-tokens", "4", "--repeats", "1"])
    out = capsys.readouterr().out
    assert out.count("transformers generate, cache / this =") == 8
    assert "translation (" in out and "ci-scale mini-GPT (" in out  # the build's scale sizes the mini-GPT


def test_bench_decoding_refuses_a_missing_gpu_in_one_line(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit):
        _load("bench_decoding").main(["--device", "cuda"])
    assert "no CUDA GPU is visible" in capsys.readouterr().err
