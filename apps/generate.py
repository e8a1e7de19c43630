r"""Text generation demo: the mini-GPT continues a prompt one word piece at a time, and shows what it weighed.

At each step the model turns the text so far into a distribution over its vocabulary,
:math:`P(x_t \mid x_{<t})`, and one word piece is chosen from it (see :mod:`labkit.sampling`):

* **greedy**: the most probable piece, so one prompt always gives one text;
* **sampling**: a random draw from softmax(logits / τ), first keeping only the k most probable
  pieces (top-k, 0 = off) and then the fewest whose probabilities reach p (top-p, 1 = off);
  the seed fixes the draws, so one seed gives one text.

The output streams: the handler is a generator that yields after every new piece. Each step's
top candidates are those of the distribution the piece was drawn from (after temperature,
top-k and top-p when sampling; the model's own softmax when greedy), so they sum to at most 1
and, when greedy, the first one is the piece chosen. The prompt is read as the build reads it:
[CLS] followed by its word pieces (lowercased); the text ends when the model writes [SEP].
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Iterator

import gradio as gr
import torch

from apps.common import (CONCURRENCY_LIMIT, ModelStore, check_float, check_int, check_length, clean_text,
                         device_markdown, run_alone)
from labkit.sampling import SamplingConfig, stream
from labkit.translate import join_cjk

__all__ = ["TAB", "DECODINGS", "MAX_TEMPERATURE", "TOP_CANDIDATES", "TABLE_HEADERS", "Request", "prepare", "generate",
           "complete", "show_step", "make_demo"]

TAB = "text-generation"
DECODINGS = {"greedy": False, "sampling": True}  # choice -> do_sample
MAX_TEMPERATURE = 5.0
MAX_PROMPT_CHARS = 1000
DEFAULT_NEW_TOKENS = 40
TOP_CANDIDATES = 10  # candidates listed per step
TABLE_HEADERS = ["step", "chosen", "probability", "rank", "top 5 candidates"]


@dataclass(frozen=True)
class Request:
    """A checked request: the prompt's ids ([CLS] + word pieces), how to decode, and the seed."""

    prompt_ids: list[int]
    cfg: SamplingConfig
    seed: int
    decoding: str


def _model(store: ModelStore):
    """The store's mini-GPT; a gr.Error that says how to add it when the build predates it."""
    folder = next(iter(store.folders(TAB).values()))
    if Path(folder) == store.build_dir / TAB and not (Path(folder) / "config.json").is_file():
        raise gr.Error(_missing_message(store), print_exception=False)
    return store.get(TAB)


def _missing_message(store: ModelStore) -> str:
    scale = store.report().get("scale") or store.build_dir.name
    return (f"This build ({store.build_dir}) has no text-generation model: it was made before the mini-GPT "
            f"joined `labkit build`, or with --no-gpt. Restart `labkit demo` (it adds the missing model first, "
            f"about 2 minutes at cpu scale) or run `labkit build --scale {scale} --gpt-only --out {store.build_dir}`. "
            f"The other tabs work meanwhile.")


def prepare(store: ModelStore, prompt, decoding="greedy", temperature=1.0, top_k=0, top_p=1.0,
            max_new_tokens=DEFAULT_NEW_TOKENS, seed=0) -> Request:
    """Check every input (gr.Error with a sentence a user can act on) and encode the prompt."""
    prompt = clean_text(prompt, "prompt", max_chars=MAX_PROMPT_CHARS)
    if not isinstance(decoding, str) or decoding not in DECODINGS:
        raise gr.Error(f"Unknown decoding {decoding!r}; choose one of {', '.join(DECODINGS)}.", print_exception=False)
    temperature = check_float(temperature, "temperature", 0, MAX_TEMPERATURE)
    top_p = check_float(top_p, "top-p", 0, 1)
    seed = check_int(seed, "seed", 0, 2**63 - 1)
    m = _model(store)
    tok = m.tokenizer
    top_k = check_int(top_k, "top-k", 0, m.model.config.vocab_size)
    # [CLS] p1 … pn [SEP]: the [SEP] slot is where the first new piece goes, so the limit leaves room for one;
    # also refuses a prompt of unknown characters only
    check_length(tok, prompt, m.max_position, "prompt")
    bos = tok.cls_token_id if tok.cls_token_id is not None else m.model.config.bos_token_id
    eos = tok.sep_token_id if tok.sep_token_id is not None else m.model.config.eos_token_id
    prompt_ids = [bos, *tok(prompt, add_special_tokens=False, verbose=False)["input_ids"]]
    room = m.max_position - len(prompt_ids)
    if room < 1:
        raise gr.Error(f"The prompt is {len(prompt_ids)} word pieces long; this model reads at most "
                       f"{m.max_position - 1} and writes after them. Please shorten it.", print_exception=False)
    max_new_tokens = check_int(max_new_tokens, "number of new word pieces", 1, room)
    do_sample = DECODINGS[decoding]
    filters = dict(top_k=top_k or None, top_p=top_p if top_p < 1 else None) if do_sample else {}  # 0 and 1: off
    cfg = SamplingConfig(max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature,
                         eos_token_id=eos, **filters)
    return Request(prompt_ids, cfg, seed, decoding)


def _settings(req: Request) -> str:
    if not req.cfg.do_sample:
        return "greedy"
    k = f"top-k {req.cfg.top_k}" if req.cfg.top_k else "top-k off"
    p = f"top-p {req.cfg.top_p:g}" if req.cfg.top_p else "top-p off"
    return f"sampling (temperature {req.cfg.temperature:g}, {k}, {p}, seed {req.seed})"


def _step_label(step: dict) -> dict[str, float]:
    """One step's top candidates for gr.Label: {piece: probability}."""
    return {c["token"]: c["probability"] for c in step["top"]}


def _caption(step: dict) -> str:
    return (f"Step {step['step']}: the model chose **{step['token']}** (probability {step['probability']:.3f}, "
            f"rank {step['rank']} of its candidates).")


def _table(steps: list[dict]) -> list[list]:
    return [[s["step"], s["token"], round(s["probability"], 4), s["rank"],
             " · ".join(f"{c['token']} {c['probability']:.3f}" for c in s["top"][:5])] for s in steps]


@torch.no_grad()
def generate(store: ModelStore, prompt, decoding="greedy", temperature=1.0, top_k=0, top_p=1.0,
             max_new_tokens=DEFAULT_NEW_TOKENS, seed=0) -> Iterator[tuple]:
    """Continue ``prompt`` with the store's mini-GPT, yielding after every new word piece.

    Yields (text: the prompt and its continuation so far, summary, the newest step's top candidates
    {piece: probability} and a caption saying what it chose, the per-step table rows, the step
    slider, every step as data). A step is
    {"step", "token", "id", "probability", "rank", "top": [{"token", "probability"}, …]}: the piece
    chosen, its probability and rank in the distribution it was drawn from, and that distribution's
    TOP_CANDIDATES most probable pieces.
    """
    req = prepare(store, prompt, decoding, temperature, top_k, top_p, max_new_tokens, seed)
    m = store.get(TAB)
    model = m.model
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(req.seed)  # the model's device
    new: list[int] = []
    steps: list[dict] = []
    for token, probs in stream(model, torch.tensor([req.prompt_ids]), cfg=req.cfg, generator=generator,
                               pad_token_id=m.tokenizer.pad_token_id or 0):
        tok = m.tokenizer  # this thread's copy: gradio may resume a generator on another thread
        chosen, p = int(token[0]), probs[0].float()
        top = p.topk(min(TOP_CANDIDATES, p.numel()))
        top_ids = top.indices.tolist()
        steps.append({"step": len(steps) + 1, "token": tok.convert_ids_to_tokens(chosen), "id": chosen,
                      "probability": round(float(p[chosen]), 6), "rank": int((p > p[chosen]).sum()) + 1,
                      "top": [{"token": t, "probability": round(float(q), 6)}
                              for t, q in zip(tok.convert_ids_to_tokens(top_ids), top.values.tolist())
                              if q > 0]})  # top-k / top-p may leave fewer than TOP_CANDIDATES
        new.append(chosen)
        text = join_cjk(tok.decode(req.prompt_ids + new, skip_special_tokens=True))
        n = len(steps)
        if chosen == req.cfg.eos_token_id:
            summary = f"**{n - 1} new word pieces**, then [SEP]: the model ended the text. · {_settings(req)}"
        elif n == req.cfg.max_new_tokens:
            summary = f"**{n} new word pieces** (the most you asked for). · {_settings(req)}"
        else:
            summary = f"Writing… step {n} of at most {req.cfg.max_new_tokens} · {_settings(req)}"
        yield (text, summary, _step_label(steps[-1]), _caption(steps[-1]), _table(steps),
               gr.Slider(minimum=1, maximum=max(n, 2), value=n, interactive=n > 1),  # min < max: gradio's rule
               list(steps))  # a copy: each update is a snapshot, not the list that keeps growing


def complete(store: ModelStore, *args, **kwargs) -> tuple:
    """What a client that does not stream gets: :func:`generate`'s last yield."""
    last = None
    for last in generate(store, *args, **kwargs):
        pass
    return last


def show_step(steps, step) -> tuple[dict[str, float], str]:
    """Step ``step`` (from 1) of a generation's steps: its top candidates and a caption."""
    if not isinstance(steps, list) or not steps:
        raise gr.Error("Generate some text first; then pick a step.", print_exception=False)
    s = steps[check_int(step, "step", 1, len(steps)) - 1]
    try:
        return _step_label(s), _caption(s)
    except (KeyError, TypeError):
        raise gr.Error("These steps are not a generation's steps; generate again.", print_exception=False) from None


def _about(store: ModelStore) -> str:
    gpt = store.report(TAB).get("models", {}).get(TAB, {})
    size = f" ({gpt['parameters']:,} parameters)" if "parameters" in gpt else ""
    ppl = gpt.get("metrics", {}).get("perplexity")
    fit = f" Its validation perplexity is {ppl:.1f}." if ppl else ""
    return (f"The lab's mini-GPT{size}, a decoder with GPT-2's architecture, pretrained only to predict the next "
            f"word piece of **TinyWorld**'s synthetic English and Chinese text.{fit} It knows nothing else: no "
            f"real news, no facts beyond TinyWorld's invented people, companies and cities, and it lowercases "
            f"what you type. Expect TinyWorld-style sentences, not answers.")


def make_demo(store: ModelStore) -> gr.Blocks:
    """The text-generation app on ``store``'s mini-GPT (reads its config.json; the weights load on the first call)."""
    config = store.config(TAB)
    longest = max(2, config.get("n_positions", 256) - 2)  # [CLS] + one prompt piece leave this many
    folder = next(iter(store.folders(TAB).values()))
    with gr.Blocks(title="Text generation · Foundation Model Lab", analytics_enabled=False) as demo:
        gr.Markdown("## Text generation\nA causal language model writes one word piece at a time, each chosen from "
                    "a probability distribution over its vocabulary. Pick a step to see which pieces it weighed.")
        gr.Markdown(_about(store))
        if Path(folder) == store.build_dir / TAB and not (Path(folder) / "config.json").is_file():
            gr.Markdown(f"⚠️ {_missing_message(store)}")
        gr.Markdown(device_markdown(store, TAB))
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", lines=2, placeholder="Start a TinyWorld sentence: the weather in",
                                    elem_id="generate-prompt")
                decoding = gr.Radio(list(DECODINGS), value="sampling", label="Decoding")
                temperature = gr.Slider(0.05, MAX_TEMPERATURE, value=0.8, step=0.05,
                                        label="Temperature τ (sampling: below 1 sharpens, above 1 flattens)")
                top_k = gr.Slider(0, 100, value=0, step=1, label="Top-k (sampling; 0 = off)")
                top_p = gr.Slider(0.05, 1, value=0.9, step=0.05, label="Top-p, nucleus (sampling; 1 = off)")
                max_new = gr.Slider(1, longest, value=min(DEFAULT_NEW_TOKENS, longest), step=1,
                                    label="Max new word pieces")
                seed = gr.Number(value=0, precision=0, label="Seed (sampling: same seed, same text)")
                button = gr.Button("Generate", variant="primary", elem_id="generate-button")
            with gr.Column():
                text = gr.Textbox(label="Prompt + continuation", lines=5, interactive=False, elem_id="generate-output")
                summary = gr.Markdown(elem_id="generate-summary")
                step = gr.Slider(1, 2, value=1, step=1, label="Step (drag to see any step's distribution)")
                caption = gr.Markdown()
                candidates = gr.Label(label=f"Next-word-piece distribution: top {TOP_CANDIDATES}",
                                      num_top_classes=TOP_CANDIDATES, elem_id="generate-candidates")
        table = gr.Dataframe(headers=TABLE_HEADERS, label="Every step: the piece chosen and the top candidates",
                             interactive=False, wrap=True, column_widths=["8%", "14%", "12%", "8%", "58%"])
        with gr.Accordion("Every step as data (JSON)", open=False):
            steps = gr.JSON(label="Steps")
        gr.Examples([["the weather in", "greedy", 1.0, 0, 1.0, 24, 0],
                     ["chen wei works at", "sampling", 0.8, 0, 0.9, 40, 0],
                     ["chen wei works at", "sampling", 1.5, 0, 1.0, 40, 0],
                     ["今天", "sampling", 0.8, 20, 1.0, 30, 1]],
                    inputs=[prompt, decoding, temperature, top_k, top_p, max_new, seed], label="Examples")
        gr.on([button.click, prompt.submit], partial(generate, store),
              [prompt, decoding, temperature, top_k, top_p, max_new, seed],
              [text, summary, candidates, caption, table, step, steps],
              api_name="generate", concurrency_id="model", preprocess=False)
        step.release(show_step, [steps, step], [candidates, caption], api_name="generation_step", preprocess=False)
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=64)


if __name__ == "__main__":
    run_alone(make_demo)
