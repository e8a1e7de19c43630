"""Pictures for the chapters: attention heatmaps (offline), bertviz views, training curves.

Everything here draws with matplotlib (and ipywidgets for the interactive explorer), so
it works with no network. ``bertviz_view`` wraps bertviz, whose views load JavaScript from
a CDN and therefore need internet in the browser.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .fonts import use_cjk_font

use_cjk_font()  # Chinese tokens render in every plot drawn after importing labkit.viz

__all__ = ["attention_heatmap", "attention_heads", "attention_explorer", "encoder_attentions", "bertviz_view",
           "plot_history", "LivePlot"]


def _np(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def attention_heatmap(weights, query_tokens: Sequence[str], key_tokens: Sequence[str] | None = None, *, ax=None,
                      title: str | None = None, annotate: bool | None = None):
    """Draw one (Lq, Lk) attention matrix: row = the token that attends, column = attended token."""
    import matplotlib.pyplot as plt

    w = _np(weights)
    key_tokens = list(query_tokens) if key_tokens is None else list(key_tokens)
    if w.shape != (len(query_tokens), len(key_tokens)):
        raise ValueError(f"weights of shape {w.shape} do not match {len(query_tokens)} query and "
                         f"{len(key_tokens)} key tokens")
    if ax is None:
        size = max(3.0, 0.45 * max(w.shape) + 1.5)
        _, ax = plt.subplots(figsize=(size, size * w.shape[0] / max(w.shape[1], 1) + 0.6))
    ax.imshow(w, cmap="Blues", vmin=0.0, vmax=max(float(w.max()), 1e-9))
    ax.set_xticks(range(len(key_tokens)), key_tokens, rotation=90)
    ax.set_yticks(range(len(query_tokens)), query_tokens)
    ax.set_xlabel("attended to (keys)")
    ax.set_ylabel("attending (queries)")
    if annotate if annotate is not None else max(w.shape) <= 10:
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if w[i, j] > 0.5 * w.max() else "black")
    if title:
        ax.set_title(title)
    return ax


@torch.no_grad()
def encoder_attentions(model, tokenizer, text: str, text_pair: str | None = None):
    """Run a labkit encoder-based model on one text; return (tokens, attentions).

    attentions is a tuple over layers of (1, nh, T, T) tensors — the format bertviz expects.
    """
    encoder = getattr(model, "encoder", model)
    enc = tokenizer(text, text_pair, return_tensors="pt", truncation=True)
    device = next(encoder.parameters()).device
    out = encoder(enc["input_ids"].to(device), enc["attention_mask"].to(device),
                  enc.get("token_type_ids").to(device) if "token_type_ids" in enc else None, output_attentions=True)
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    return tokens, tuple(a.cpu() for a in out.attentions)


def attention_heads(attentions, tokens: Sequence[str], layer: int = 0):
    """All heads of one layer side by side."""
    import matplotlib.pyplot as plt

    if not 0 <= layer < len(attentions):
        raise ValueError(f"layer must be in [0, {len(attentions)}), got {layer}")
    heads = attentions[layer][0]  # (nh, T, T)
    fig, axes = plt.subplots(1, len(heads), figsize=(3.2 * len(heads), 3.4), squeeze=False)
    for h, ax in enumerate(axes[0]):
        attention_heatmap(heads[h], tokens, ax=ax, title=f"layer {layer}, head {h}", annotate=False)
        if h:
            ax.set_ylabel("")
    fig.tight_layout()
    return fig


def attention_explorer(model, tokenizer, text: str):
    """An ipywidgets view (works offline): sliders pick the layer and head, the heatmap redraws."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    tokens, attentions = encoder_attentions(model, tokenizer, text)
    n_layers, n_heads = len(attentions), attentions[0].shape[1]
    layer = widgets.IntSlider(0, 0, n_layers - 1, description="layer")
    head = widgets.IntSlider(0, 0, n_heads - 1, description="head")
    average = widgets.Checkbox(False, description="average the heads")
    out = widgets.Output()

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            w = attentions[layer.value][0]  # (nh, T, T)
            w = w.mean(0) if average.value else w[head.value]
            attention_heatmap(w, tokens, title=f"layer {layer.value}, " + ("mean of heads" if average.value else f"head {head.value}"))
            plt.show()

    for control in (layer, head, average):
        control.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox([layer, head, average]), out])
    display(box)
    return box


def bertviz_view(model, tokenizer, text: str, kind: str = "head"):
    """bertviz's head_view or model_view of a labkit encoder (needs internet in the browser for its JavaScript)."""
    from bertviz import head_view, model_view

    if kind not in ("head", "model"):
        raise ValueError(f"kind must be 'head' or 'model', got {kind!r}")
    tokens, attentions = encoder_attentions(model, tokenizer, text)
    view = head_view if kind == "head" else model_view
    return view(attentions, tokens)


def plot_history(history, metric: str | None = None, *, ax=None, smooth: int = 20):
    """Training loss (raw and moving average) and, on a second axis, one validation metric."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    loss = np.asarray(history.loss)
    ax.plot(history.steps, loss, color="tab:blue", alpha=0.25, lw=0.8)
    if len(loss) >= smooth:
        avg = np.convolve(loss, np.ones(smooth) / smooth, mode="valid")
        ax.plot(history.steps[smooth - 1:], avg, color="tab:blue", label=f"training loss ({smooth}-step mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if metric is not None and history.eval_metrics:
        ax2 = ax.twinx()
        ax2.plot(history.eval_steps, [m[metric] for m in history.eval_metrics], "o-", color="tab:orange", label=metric)
        ax2.set_ylabel(metric, color="tab:orange")
    if ax.get_legend_handles_labels()[0]:  # the moving average needs at least `smooth` steps
        ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return ax


class LivePlot:
    """Pass as ``on_eval=`` to a training function: redraws the loss curve after each evaluation."""

    def __init__(self, metric: str | None = None):
        self.metric = metric

    def __call__(self, history) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import clear_output

        clear_output(wait=True)
        plot_history(history, self.metric)
        plt.show()
