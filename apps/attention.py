r"""Attention explorer: the self-attention weights of the pretrained mini-BERT, layer by layer, head by head.

In layer l, head h, token i attends to token j with weight

.. math::

    A^{(l,h)}_{ij} = \mathrm{softmax}_j\!\left(\frac{q_i \cdot k_j}{\sqrt{d_k}}\right), \qquad \sum_j A_{ij} = 1,

so each row of the heatmap is a distribution, and "which tokens does token i attend to?"
is row i read as a ranking. Shapes: L layers, nh heads, T tokens.
"""
from __future__ import annotations

import re
from functools import lru_cache, partial

import gradio as gr
import numpy as np
import torch
from matplotlib.figure import Figure

from apps.common import (CONCURRENCY_LIMIT, ModelStore, check_int, check_length, clean_text, device_markdown, heatmap,
                         run_alone)
from labkit.viz import encoder_attentions

__all__ = ["MAX_TOKENS", "attention_maps", "attention_heatmap", "token_attention", "explore", "make_demo"]

MAX_TOKENS = 64  # beyond this a T x T heatmap is unreadable


@lru_cache(maxsize=32)
def _attention_maps(store: ModelStore, folders: str, text: str) -> tuple[tuple[str, ...], np.ndarray]:
    # `folders` is only part of the cache key: another model, another entry
    m = store.get("attention")
    check_length(m.tokenizer, text, min(MAX_TOKENS, m.max_position), known=False)
    tokens, attentions = encoder_attentions(m.model, m.tokenizer, text)  # L x (1, nh, T, T)
    return tuple(tokens), torch.cat(attentions).float().numpy()  # (L, nh, T, T)


def attention_maps(store: ModelStore, text: str) -> tuple[list[str], np.ndarray]:
    """The word pieces of ``text`` ([CLS] … [SEP]) and every attention map of the store's BERT, (L, nh, T, T).

    Cached per store, model and text, so moving the sliders does not re-run the model.
    """
    text = clean_text(text, max_chars=1000)
    tokens, maps = _attention_maps(store, str(store.folders("attention")), text)
    return list(tokens), maps


def _layer_head(maps: np.ndarray, layer, head) -> tuple[int, int]:
    """1-based layer and head checked against the model, as 0-based indices."""
    L, nh = maps.shape[:2]
    return check_int(layer, "layer", 1, L) - 1, check_int(head, "head", 1, nh) - 1


def attention_heatmap(store: ModelStore, text: str, layer: int = 1, head: int = 1) -> Figure:
    """Layer ``layer``, head ``head`` (both from 1) as a T x T heatmap: rows attend to columns."""
    tokens, maps = attention_maps(store, text)
    l, h = _layer_head(maps, layer, head)
    return heatmap(maps[l, h], tokens, tokens, title=f"Self-attention, layer {l + 1}, head {h + 1}",
                   xlabel="attended-to token (key)", ylabel="attending token (query)")


def token_attention(store: ModelStore, text: str, layer: int = 1, head: int = 1, token: int = 1) -> dict[str, float]:
    """Where token number ``token`` (0 = [CLS]) looks, in one layer and head: {"j · piece": weight}."""
    tokens, maps = attention_maps(store, text)
    l, h = _layer_head(maps, layer, head)
    if isinstance(token, str) and re.match(r"\s*\d+", token):  # typed into the chooser: "3" or "3 · phone"
        token = int(re.match(r"\s*(\d+)", token)[1])
    i = check_int(token, "token", 0, len(tokens) - 1)
    return {f"{j} · {piece}": round(float(w), 4) for j, (piece, w) in enumerate(zip(tokens, maps[l, h, i]))}


def explore(store: ModelStore, text: str, layer: int = 1,
            head: int = 1) -> tuple[Figure, gr.Dropdown, dict[str, float]]:
    """The heatmap, the token chooser filled with this text's pieces, and where the first word looks."""
    tokens, _ = attention_maps(store, text)
    first = 1 if len(tokens) > 2 else 0  # the first piece after [CLS]
    chooser = gr.Dropdown(choices=[(f"{j} · {piece}", j) for j, piece in enumerate(tokens)], value=first)
    return attention_heatmap(store, text, layer, head), chooser, token_attention(store, text, layer, head, first)


def make_demo(store: ModelStore) -> gr.Blocks:
    """The attention explorer on ``store``'s BERT (reads its config.json; the weights load on the first call)."""
    config = store.config("attention")
    layers, heads = config.get("num_hidden_layers", 12), config.get("num_attention_heads", 12)
    with gr.Blocks(title="Attention explorer · Foundation Model Lab", analytics_enabled=False) as demo:
        gr.Markdown("## Attention explorer\nThe pretrained mini-BERT's self-attention. Each row of the heatmap is "
                    "one token's attention over the sentence (it sums to 1). Pick a token to list where it looks.")
        gr.Markdown(device_markdown(store, "attention"))
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Sentence", lines=2, placeholder="Type any sentence, English or Chinese")
                layer = gr.Slider(1, layers, value=layers, step=1, label=f"Layer (1–{layers})")
                head = gr.Slider(1, heads, value=1, step=1, label=f"Head (1–{heads})")
                button = gr.Button("Show attention", variant="primary")
                token = gr.Dropdown(label="Token (attending)", choices=[], allow_custom_value=True)
                looks_at = gr.Label(label="Tokens it attends to", num_top_classes=8)
            with gr.Column(scale=2):
                plot = gr.Plot(label="Attention heatmap")
        gr.Examples([["The phone is excellent but the battery is weak."],
                     ["Helen Smith moved to Seattle a few years ago."],
                     ["我来自法国。 I am from France."]],
                    inputs=[text], label="Examples")
        gr.on([button.click, text.submit, layer.release, head.release], partial(explore, store), [text, layer, head],
              [plot, token, looks_at], api_name="attention", concurrency_id="model", preprocess=False)
        token.input(partial(token_attention, store), [text, layer, head, token], looks_at, api_name="token_attention",
                    concurrency_id="model", preprocess=False)
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=64)


if __name__ == "__main__":
    run_alone(make_demo)
