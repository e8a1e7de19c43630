"""Decoding speed, measured side by side in one run: labkit with and without its key-value cache
against transformers' ``generate`` with and without its cache, on the same weights and inputs.

    python scripts/bench_decoding.py                  # the cpu build's translation model (else ci's)
    python scripts/bench_decoding.py --build DIR --sentences 64 --new-tokens 48 --repeats 3
    python scripts/bench_decoding.py --build artifacts/gpu --device cuda   # on a GPU
    python scripts/bench_decoding.py --gpt-scale gpu                       # the gpu-size mini-GPT

Two models:

* translation: the build's encoder–decoder on the first N English test sentences, greedy, up
  to ``--new-tokens`` new tokens (transformers' twin: ``EncoderDecoderModel``);
* mini-GPT: a ``labkit.gpt.GPT`` of the build's scale's size (cpu's without a build; random weights:
  speed does not depend on what was learnt) on N prompts of 16 tokens, greedy, exactly ``--new-tokens`` new tokens
  (transformers' twin: ``GPT2LMHeadModel``).

Each timing is the best of ``--repeats`` runs (after one warm-up run); every pair of runs is
checked to write the same tokens. Ratios > 1 mean labkit is faster. Nothing here is a test:
the numbers depend on the machine; the tests check the tokens.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import json
import time
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from labkit.build import default_output_dir
from labkit.data import load_task
from labkit.folders import load_model
from labkit.generate import greedy_decode
from labkit.gpt import GPT
from labkit.hf import to_hf
from labkit.sampling import SamplingConfig, generate
from labkit.scales import SCALES


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()  # GPU work is queued: time it finished, not when it was launched


def best_of(fn, repeats: int) -> tuple[float, torch.Tensor]:
    fn()  # warm-up: first-call allocations and lazy initialisation
    times, out = [], None
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        out = fn()
        _sync()
        times.append(time.perf_counter() - start)
    return min(times), out


def build_scale(build: Path | None) -> str:
    """The scale a build folder was made at (its report.json), cpu without one."""
    if build is None or not (build / "report.json").is_file():
        return "cpu"
    return json.loads((build / "report.json").read_text(encoding="utf-8"))["scale"]


def report(title: str, rows: dict[str, tuple[float, torch.Tensor]], reference: str) -> None:
    print(f"\n{title}")
    base = rows[reference][0]
    for name, (seconds, _) in rows.items():
        print(f"  {name:<42} {1000 * seconds:8.1f} ms   {reference} / this = {base / seconds:5.2f}x")


def translation(build: Path, n: int, new_tokens: int, repeats: int, device: torch.device) -> None:
    model, tok = load_model(build / "translation")
    model = model.to(device).eval()
    hf = to_hf(model).to(device).eval()
    sources = [p["en"] for p in load_task("translation", size=SCALES[build_scale(build)].data)["test"][:n]["translation"]]
    enc = tok(sources, padding=True, return_tensors="pt").to(device)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    kw = dict(bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id,
              max_new_tokens=new_tokens)
    hf_kw = dict(attention_mask=mask, do_sample=False, num_beams=1, max_new_tokens=new_tokens,
                 decoder_start_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
    rows = {
        "labkit greedy_decode, cache": best_of(lambda: greedy_decode(model, ids, mask, **kw), repeats),
        "labkit greedy_decode, no cache": best_of(lambda: greedy_decode(model, ids, mask, **kw, use_cache=False),
                                                  repeats),
        "transformers generate, cache": best_of(lambda: hf.generate(ids, **hf_kw, use_cache=True), repeats),
        "transformers generate, no cache": best_of(lambda: hf.generate(ids, **hf_kw, use_cache=False), repeats),
    }
    outs = [out for _, out in rows.values()]
    assert all(torch.equal(outs[0], o) for o in outs[1:]), "the four runs wrote different tokens"
    report(f"translation ({build / 'translation'}): {n} sentences, greedy, up to {new_tokens} new tokens, "
           f"{outs[0].size(1) - 1} written", rows, "transformers generate, cache")


def mini_gpt(scale: str, n: int, new_tokens: int, repeats: int, device: torch.device) -> None:
    torch.manual_seed(0)
    sc = SCALES[scale]
    cfg = replace(sc.gpt, vocab_size=sc.vocab_size)
    model = GPT(cfg).to(device).eval()
    hf = to_hf(model).to(device).eval()
    ids = torch.randint(5, cfg.vocab_size, (n, 16), generator=torch.Generator().manual_seed(1)).to(device)
    mask = torch.ones_like(ids)
    sc = SamplingConfig(max_new_tokens=new_tokens)
    hf_kw = dict(attention_mask=mask, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                 pad_token_id=0, eos_token_id=None)
    rows = {
        "labkit generate, cache": best_of(lambda: generate(model, ids, mask, sc), repeats),
        "labkit generate, no cache": best_of(
            lambda: generate(model, ids, mask, SamplingConfig(max_new_tokens=new_tokens, use_cache=False)), repeats),
        "transformers generate, cache": best_of(lambda: hf.generate(ids, **hf_kw, use_cache=True), repeats),
        "transformers generate, no cache": best_of(lambda: hf.generate(ids, **hf_kw, use_cache=False), repeats),
    }
    outs = [out for _, out in rows.values()]
    assert all(torch.equal(outs[0], o) for o in outs[1:]), "the four runs wrote different tokens"
    report(f"{scale}-scale mini-GPT ({sum(p.numel() for p in model.parameters()):,} parameters): {n} prompts of 16 tokens, "
           f"greedy, {new_tokens} new tokens", rows, "transformers generate, cache")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=None, help="a labkit build folder (default: cpu's, else ci's)")
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--gpt-scale", choices=sorted(SCALES), default=None,
                        help="the mini-GPT's size (default: the build's scale, cpu without a build)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is visible to torch; leave --device out to time on the CPU")
    device = torch.device(args.device)
    hf_logging.disable_progress_bar()
    build = args.build or next((d for d in (default_output_dir("cpu"), default_output_dir("ci"))
                                if (d / "translation" / "model.safetensors").is_file()), None)
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}")
    if build is None or not (build / "translation" / "model.safetensors").is_file():
        print(f"no translation model in {build or 'artifacts/cpu or artifacts/ci'}: timing the mini-GPT only "
              "(labkit build --scale ci or cpu makes one)")
    else:
        translation(build, args.sentences, args.new_tokens, args.repeats, device)
    mini_gpt(args.gpt_scale or build_scale(build), args.sentences, args.new_tokens, args.repeats, device)


if __name__ == "__main__":
    main()
