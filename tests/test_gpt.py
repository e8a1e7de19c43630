"""The mini-GPT (labkit.gpt) and decoding (labkit.sampling): GPT-2's architecture, equal to
transformers' GPT2LMHeadModel, a key–value cache that changes nothing but the work, and
greedy decoding that writes what transformers' generate writes."""
from __future__ import annotations

import pytest
import torch
from transformers import GPT2LMHeadModel

from labkit.gpt import GPT, GPTConfig, KVCache, position_ids_from_mask
from labkit.hf import from_gpt2_config, from_hf, to_gpt2_config, to_hf
from labkit.masking import IGNORE_INDEX
from labkit.sampling import SamplingConfig, generate, next_token_distribution, stream, top_k_filter, top_p_filter
from labkit.training import TrainConfig, fit

EOS, PAD = 3, 0


def tiny(**kw) -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=64, max_position=48, d_model=32, n_layers=2, n_heads=4, d_ff=64, dropout=0.0,
                    bos_token_id=EOS, eos_token_id=EOS, pad_token_id=PAD, **kw)
    return GPT(cfg).eval()


def prompts(left: bool = True):
    """Three prompts of 8, 5 and 3 real tokens, padded on the left (or right)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 64, (3, 8), generator=g)
    mask = torch.ones_like(ids)
    for row, n in ((1, 3), (2, 5)):
        if left:
            mask[row, :n] = 0
        else:
            mask[row, 8 - n:] = 0
    return ids.masked_fill(mask == 0, PAD), mask


def test_architecture_is_gpt2():
    m = tiny()
    hf = to_hf(m)
    assert type(hf) is GPT2LMHeadModel and hf.config.activation_function == "gelu_new"
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()  # tied output layer
    assert sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in hf.parameters())
    assert from_gpt2_config(to_gpt2_config(m.config)) == m.config


@pytest.mark.parametrize("left", [False, True])
def test_parity_with_gpt2lmheadmodel_on_padded_batches(left):
    m = tiny()
    hf = to_hf(m).eval()
    ids, mask = prompts(left)
    with torch.no_grad():
        ours = m(ids, mask).logits
        theirs = hf(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask, 8)).logits
    keep = mask.bool()
    assert (ours - theirs)[keep].abs().max().item() < 1e-5
    labels = ids.masked_fill(mask == 0, IGNORE_INDEX)
    if not left:  # the loss: both shift the labels themselves
        with torch.no_grad():
            assert torch.allclose(m(ids, mask, labels).loss, hf(input_ids=ids, attention_mask=mask, labels=labels).loss,
                                  atol=1e-6)


def test_round_trip_and_a_saved_folder_for_the_pipeline(tmp_path):
    from transformers import pipeline

    from labkit.tokenization import train_tokenizer

    tok = train_tokenizer(["the cat sat on the mat", "a dog ran in the park"] * 20, vocab_size=200,
                          model_max_length=48)
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=len(tok), max_position=48, d_model=32, n_layers=2, n_heads=4, d_ff=64,
                      eos_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id, pad_token_id=tok.pad_token_id))
    hf = to_hf(m)
    back = from_hf(hf).eval()
    ids = torch.randint(5, len(tok), (2, 7))
    with torch.no_grad():
        assert torch.equal(back(ids).logits, m.eval()(ids).logits)
    hf.save_pretrained(tmp_path / "gpt")
    tok.save_pretrained(tmp_path / "gpt")
    gen = pipeline("text-generation", model=str(tmp_path / "gpt"), device="cpu")
    out = gen("the cat", max_new_tokens=5, do_sample=False)
    assert out[0]["generated_text"].startswith("the cat")


def test_cache_gives_the_logits_of_a_full_pass():
    m = tiny()
    ids, mask = prompts()
    with torch.no_grad():
        full = m(ids, mask).logits
        out = m(ids[:, :5], mask[:, :5], use_cache=True)
        assert isinstance(out.cache, KVCache) and out.cache.length == 5
        steps = [out.logits]
        for t in range(5, 8):
            steps.append(m(ids[:, t:t + 1], mask[:, :t + 1], cache=out.cache).logits)
    assert out.cache.length == 8
    assert (torch.cat(steps, 1) - full)[mask.bool()].abs().max().item() < 1e-5


def test_greedy_matches_transformers_generate_with_and_without_cache():
    m = tiny()
    hf = to_hf(m).eval()
    ids, mask = prompts()
    ours = generate(m, ids, mask, SamplingConfig(max_new_tokens=16))
    theirs = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=16, do_sample=False, pad_token_id=PAD,
                         eos_token_id=None)
    assert torch.equal(ours, theirs)
    assert torch.equal(generate(m, ids, mask, SamplingConfig(max_new_tokens=16, use_cache=False)), ours)


def test_stop_token_ends_a_row_and_pads_it():
    m = tiny()
    ids, mask = prompts()
    free = generate(m, ids, mask, SamplingConfig(max_new_tokens=12))
    eos = int(free[0, 8 + 3])  # make row 0's fourth new token the stop token
    m.config.eos_token_id = eos
    hf = to_hf(m).eval()
    ours = generate(m, ids, mask, SamplingConfig(max_new_tokens=12, eos_token_id=eos), pad_token_id=PAD)
    theirs = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False, pad_token_id=PAD,
                         eos_token_id=eos)
    assert torch.equal(ours, theirs[:, :ours.size(1)])
    row = ours[0, 8:].tolist()
    stop = row.index(eos)
    assert stop <= 3 and all(t == PAD for t in row[stop + 1:])


def test_sampling_is_seeded_and_its_filters_do_what_they_say():
    m = tiny()
    ids, mask = prompts()
    cfg = SamplingConfig(max_new_tokens=10, do_sample=True, temperature=0.8, top_k=8, top_p=0.9)
    a = generate(m, ids, mask, cfg, generator=torch.Generator().manual_seed(7))
    b = generate(m, ids, mask, cfg, generator=torch.Generator().manual_seed(7))
    c = generate(m, ids, mask, cfg, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    greedy = generate(m, ids, mask, SamplingConfig(max_new_tokens=10))
    assert torch.equal(generate(m, ids, mask, SamplingConfig(max_new_tokens=10, do_sample=True, top_k=1),
                                generator=torch.Generator().manual_seed(0)), greedy)  # top-1 = greedy
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    assert torch.isinf(top_k_filter(logits, 2)).tolist() == [[False, False, True, True]]
    p = logits.softmax(-1)[0]  # 0.61, 0.22, 0.14, 0.03
    assert torch.isinf(top_p_filter(logits, 0.5)).tolist() == [[False, True, True, True]]  # the top token alone
    assert torch.isinf(top_p_filter(logits, float(p[0] + 0.01))).tolist() == [[False, False, True, True]]
    assert torch.isinf(top_p_filter(logits, 1.0)).sum() == 0
    probs = next_token_distribution(logits, SamplingConfig(temperature=0.5))
    assert torch.allclose(probs, (logits / 0.5).softmax(-1))  # sharper than τ = 1
    assert probs[0, 0] > p[0]


def test_stream_yields_the_distribution_of_each_step():
    m = tiny()
    ids, mask = prompts()
    steps = list(stream(m, ids, mask, SamplingConfig(max_new_tokens=4)))
    assert len(steps) == 4
    for token, probs in steps:
        assert token.shape == (3,) and probs.shape == (3, 64)
        assert torch.allclose(probs.sum(-1), torch.ones(3)) and torch.equal(probs.argmax(-1), token)


def test_bad_arguments_say_what_was_wrong():
    m = tiny()
    ids, mask = prompts()
    for kw, msg in (({"temperature": 0}, "temperature"), ({"top_k": 0}, "top_k"), ({"top_p": 1.5}, "top_p"),
                    ({"max_new_tokens": 0}, "max_new_tokens")):
        with pytest.raises(ValueError, match=msg):
            SamplingConfig(**kw)
    with pytest.raises(ValueError, match="pad prompts on the left"):
        generate(m, *prompts(left=False))
    with pytest.raises(ValueError, match="exceed max_position"):
        m(torch.ones(1, 49, dtype=torch.long))
    with pytest.raises(ValueError, match="outside"):
        m(torch.full((1, 3), 64))
    with pytest.raises(ValueError, match="does not divide"):
        GPTConfig(d_model=30, n_heads=4)


def test_the_model_owns_its_loss_and_learns_a_pattern():
    """A few steps of fit on a repeating sequence: the next-token loss falls well below log V."""
    m = tiny()
    seq = torch.tensor([[4, 5, 6, 7, 8, 9] * 4])  # (1, 24)

    def batches():
        while True:
            yield {"input_ids": seq.repeat(8, 1), "labels": seq.repeat(8, 1)}
    history = fit(m, batches(), cfg=TrainConfig(steps=150, batch_size=8, lr=5e-3, progress=False))
    assert history.loss[0] > 3.5 and history.loss[-1] < 0.5  # log(64) = 4.16
    out = generate(m, seq[:, :6], cfg=SamplingConfig(max_new_tokens=6))
    assert out[0, 6:].tolist() == [4, 5, 6, 7, 8, 9]


def test_pretrain_clm_trains_the_gpt_on_tinyworld():
    """The lab's next-token pretraining loop takes the GPT as it is: its validation perplexity falls
    far below the vocabulary size in a short ci-sized run."""
    from labkit.data import load_task
    from labkit.data.pages import is_page
    from labkit.pretrain import pretrain_clm
    from labkit.tokenization import train_tokenizer

    corpus = load_task("corpus", size="ci")
    documents = {split: [t for t in corpus[split]["text"] if not is_page(t)] for split in ("train", "validation")}
    train, val = documents["train"][:2000], documents["validation"][:200]  # as before the corpus had pages
    tok = train_tokenizer(train, vocab_size=1000, model_max_length=64)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tok), max_position=64, d_model=32, n_layers=2, n_heads=4, d_ff=64,
                          dropout=0.0, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id))
    before = pretrain_clm(model, tok, train, val, TrainConfig(steps=1, batch_size=16, lr=1e-9, progress=False))
    after = pretrain_clm(model, tok, train, val, TrainConfig(steps=150, batch_size=16, lr=5e-3, progress=False))
    assert before.metrics["perplexity"] > 0.5 * len(tok)  # untrained: about as unsure as a uniform guess
    assert after.metrics["perplexity"] < before.metrics["perplexity"] / 5
    assert after.metrics["next_token_accuracy"] > 0.1, after.metrics  # measured: perplexity 78, accuracy 0.15


# ----------------------------------------------------------------------------- the build's mini-GPT (--gpt)
def test_the_builds_gpt_opens_with_the_pipeline_and_writes_tinyworld(ci_build):
    import json

    from transformers import AutoTokenizer, pipeline

    from labkit.folders import load_model

    folder = ci_build / "text-generation"
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["GPT2LMHeadModel"]
    report = json.loads((ci_build / "report.json").read_text())["models"]["text-generation"]
    vocab = len(AutoTokenizer.from_pretrained(folder))
    assert report["metrics"]["perplexity"] < vocab / 20  # far better than guessing among the vocabulary
    assert [s["prompt"] for s in report["samples"]] == ["the weather in", "chen wei works at", "今天"]
    assert "The mini-GPT writes" in (ci_build / "report.md").read_text()
    gen = pipeline("text-generation", model=str(folder), device="cpu")
    text = gen("the weather in", max_new_tokens=8, do_sample=False)[0]["generated_text"]
    assert text.startswith("the weather in") and len(text) > len("the weather in")
    model, tok = load_model(folder)  # labkit's GPT: its greedy tokens are transformers' tokens
    assert isinstance(model, GPT)
    ids = torch.tensor([[tok.cls_token_id, *tok("chen wei works at", add_special_tokens=False)["input_ids"]]])
    ours = generate(model, ids, cfg=SamplingConfig(max_new_tokens=12))
    theirs = to_hf(model).eval().generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id,
                                          eos_token_id=None)
    assert torch.equal(ours, theirs)


def test_gpt_only_adds_the_mini_gpt_to_a_build_made_without_it(ci_build, tmp_path):
    """labkit build --gpt-only (build_gpt), and ensure_build on a build from before the GPT joined it."""
    import json
    import shutil
    from dataclasses import replace

    from labkit.build import build_gpt, ensure_build
    from labkit.scales import SCALES

    out = tmp_path / "ci"
    shutil.copytree(ci_build, out, ignore=shutil.ignore_patterns("text-generation", "real-*", "*.png"))
    report = json.loads((out / "report.json").read_text())
    del report["models"]["text-generation"]
    (out / "report.json").write_text(json.dumps(report))
    quick = replace(SCALES["ci"], gpt_pretrain=TrainConfig(steps=3, batch_size=8, lr=3e-3, eval_every=3))
    logs = []
    assert ensure_build(quick, out, progress=False, log=logs.append) == out  # adds only what is missing
    assert logs[0].startswith("the ci-scale build") and "--gpt-only" in logs[0]
    after = json.loads((out / "report.json").read_text())
    assert after["models"]["text-generation"]["steps"] == 3
    assert set(after["models"]) == set(report["models"]) | {"text-generation"}  # nothing else rebuilt or lost
    assert (out / "text-generation" / "model.safetensors").is_file()
    assert "gpt pretraining" in after["seconds"] and "The mini-GPT writes" in (out / "report.md").read_text()
    logs.clear()
    ensure_build(quick, out, log=logs.append)
    assert logs == []  # complete now: nothing to do
    with pytest.raises(ValueError, match="no ci-scale build in .* to add the mini-GPT to"):
        build_gpt("ci", tmp_path / "empty")


def test_cli_gpt_only_on_a_missing_build_is_one_line(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "labkit", "build", "--scale", "ci", "--gpt-only", "--out",
                          str(tmp_path / "none")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "labkit build: error: no ci-scale build" in res.stderr
