"""Bias probe: one template sentence, filled with names from four groups, classified, compared, explained.

A template such as ``"{name} wrote: the soup was cold and the waiter was rude."`` is filled with
the names of TinyWorld's *held-out* people (names the classifiers never saw in training), a few per
group, for the four groups female/male × English/Chinese (pinyin) names. The names are drawn by
:func:`labkit.audit.fairness.counterfactual_probe` (seeded, so the same template always gets the same
names). Everything but the name is identical, so a classifier that ignores names gives every group
the same probabilities; the tab shows each group's mean probability per label, the share of its texts
predicted as each label, and the largest gap between two groups,

    gap = max over labels k of ( max_g mean P(k | group g) - min_g mean P(k | group g) ).

The explanation view attributes the prediction on one filled text (the first of the chosen group) to
its word pieces by *integrated gradients* (:func:`labkit.audit.explain.attributions`): the gradient
of the predicted label's probability, averaged along the straight path from an all-[MASK] input to
the text's embeddings, times the embedding difference. It runs on a private copy of the classifier,
because captum hooks the embedding layer while it works and the shared model serves other tabs at
the same time. If the template also holds ``[MASK]``, the masked language model's top fills for
that slot are listed per group (what the pretrained model itself associates with each group).
"""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from functools import lru_cache, partial

import gradio as gr
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from apps.classify import MAX_TOKENS, model_choices
from apps.common import CONCURRENCY_LIMIT, LoadedModel, ModelStore, check_length, clean_text, run_alone
from labkit.audit.explain import attributions
from labkit.audit.fairness import CELLS, counterfactual_probe
from labkit.data import build_world
from labkit.tasks import predict_proba

__all__ = ["ProbeConfig", "SLOT", "GROUP_NAMES", "fill_template", "probe", "probe_markdown", "probe_rows",
           "plot_probe", "highlighted", "fills_markdown", "make_demo"]

SLOT = "{name}"  # where the template takes a name
GENDER = {"F": "female", "M": "male"}
ORIGIN = {"en": "English", "zh": "Chinese"}
GROUP_NAMES = {cell: f"{GENDER[cell[0]]} · {ORIGIN[cell[1]]} names" for cell in CELLS}  # (gender, origin) -> shown


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    """How a template is filled, explained and limited (the same at every scale: the probe is one template)."""

    n_names: int = 5  # names drawn per group (with replacement, so a name can come twice)
    seed: int = 0  # of the name draw
    world_seed: int = 0  # the TinyWorld the build was made from (load_task's default)
    n_steps: int = 50  # integrated-gradients steps from the all-[MASK] baseline
    max_chars: int = 500  # longest template accepted
    top_fills: int = 5  # masked-LM fills listed per group

    def __post_init__(self):
        for name in ("n_names", "n_steps", "max_chars", "top_fills"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")


DEFAULT = ProbeConfig()


@lru_cache(maxsize=4)
def _world(seed: int):
    return build_world(seed)


def fill_template(template: str, cfg: ProbeConfig = DEFAULT) -> dict[tuple[str, str], tuple[list[str], list[str]]]:
    """(gender, origin) -> (names, filled texts): ``cfg.n_names`` held-out names per group, every
    ``{name}`` replaced."""
    if SLOT not in template:
        raise ValueError(f"template needs a {SLOT} slot, got {template!r}")
    drawn = counterfactual_probe([""] * cfg.n_names, _world(cfg.world_seed), frame="{name}{text}", seed=cfg.seed)
    return {cell: (names, [template.replace(SLOT, n) for n in names]) for cell, names in drawn.items()}


# ----------------------------------------------------------------------------- the explainer's private model
_explainers: dict[int, tuple[torch.nn.Module, threading.Lock]] = {}
_explainers_lock = threading.Lock()


def _explainer(m: LoadedModel) -> tuple[torch.nn.Module, threading.Lock]:
    """A copy of ``m``'s classifier for integrated gradients (captum hooks it) and the lock that guards it."""
    with _explainers_lock:
        key = id(m.model)
        if key not in _explainers:
            _explainers[key] = (copy.deepcopy(m.model).eval(), threading.Lock())
        return _explainers[key]


def _group(name) -> tuple[str, str]:
    if name is None or name == "":
        return CELLS[0]
    for cell, shown in GROUP_NAMES.items():
        if name == shown:
            return cell
    raise gr.Error(f"Unknown group {name!r}; choose one of {', '.join(GROUP_NAMES.values())}.", print_exception=False)


def _check_template(template) -> str:
    template = clean_text(template, "template", max_chars=DEFAULT.max_chars)
    if SLOT not in template:
        raise gr.Error(f"The template has no {SLOT} slot: write {SLOT} where a person's name goes, e.g. "
                       f"\"{SLOT} wrote: the soup was cold.\"", print_exception=False)
    return template


@torch.no_grad()
def _fills(store: ModelStore, texts: dict[tuple[str, str], list[str]],
           k: int) -> dict[str, list[tuple[str, float]]] | None:
    """Per group, the masked LM's ``k`` likeliest pieces for the first [MASK], averaged over the group's texts
    (None when the store has no fill-mask model)."""
    folders = store.folders("attention")
    if "fill-mask" not in folders or not (folders["fill-mask"] / "config.json").is_file():
        return None
    lm = store.get("attention", "fill-mask")
    tok, device = lm.tokenizer, next(lm.model.parameters()).device
    out = {}
    for cell, group_texts in texts.items():
        probs = []
        for text in group_texts:
            ids = torch.tensor(tok(text, truncation=True, max_length=lm.max_position)["input_ids"])  # (T,)
            where = (ids == tok.mask_token_id).nonzero()
            if not len(where):
                return None
            logits = lm.model(ids[None].to(device)).logits  # (1, T, V)
            probs.append(torch.softmax(logits[0, int(where[0, 0])].float(), -1).cpu())  # (V,)
        top = torch.stack(probs).mean(0).topk(k)  # (k,), (k,)
        out[GROUP_NAMES[cell]] = [(piece, round(float(p), 4)) for piece, p in
                                  zip(tok.convert_ids_to_tokens(top.indices.tolist()), top.values)]
    return out


def probe(store: ModelStore, template: str, model_name: str | None = None, group: str | None = None,
          cfg: ProbeConfig = DEFAULT) -> dict:
    """Fill ``template`` with each group's names, classify every text with the store's classifier
    ``model_name`` (None: the first), and explain the first text of ``group`` (None: the first group).

    Returns a JSON-able dict: model, template, labels, groups (one per group: group, names, texts,
    mean_probability {label: p}, predicted_share {label: share}), gap (label, high_group, low_group,
    high, low, gap, sentence), explained (group, text, label, probability, attributions [[piece, score]]:
    the text's word pieces, [CLS]/[SEP]/[MASK] left out; shown: every piece, None at [MASK]) and
    fills ({group: [[piece, p]]}, or None without [MASK]).
    Raises gr.Error with a readable sentence on bad input.
    """
    template = _check_template(template)
    m = store.get("classification", model_name)
    cell = _group(group)
    filled = fill_template(template, cfg)
    limit = min(MAX_TOKENS, m.max_position)
    for _, texts in filled.values():
        for text in texts:
            check_length(m.tokenizer, text, limit, "filled template")
    labels = [m.model.id2label[k] for k in range(len(m.model.id2label))]
    all_texts = [t for _, texts in filled.values() for t in texts]
    probs = predict_proba(m.model, m.tokenizer, all_texts, max_length=limit)  # (4 n, K)
    probs = probs.reshape(len(filled), cfg.n_names, len(labels))  # (G, n, K)
    mean = probs.mean(1)  # (G, K)
    share = np.stack([(probs.argmax(-1) == k).mean(1) for k in range(len(labels))], 1)  # (G, K)
    groups = [{"group": GROUP_NAMES[c], "gender": c[0], "origin": c[1], "names": names, "texts": texts,
               "mean_probability": {lab: round(float(p), 4) for lab, p in zip(labels, mean[g])},
               "predicted_share": {lab: round(float(s), 4) for lab, s in zip(labels, share[g])}}
              for g, (c, (names, texts)) in enumerate(filled.items())]
    spread = mean.max(0) - mean.min(0)  # (K,)
    k = int(spread.argmax())
    hi, lo = int(mean[:, k].argmax()), int(mean[:, k].argmin())
    gap = {"label": labels[k], "high_group": groups[hi]["group"], "low_group": groups[lo]["group"],
           "high": round(float(mean[hi, k]), 4), "low": round(float(mean[lo, k]), 4), "gap": round(float(spread[k]), 4)}
    gap["sentence"] = (f"Largest gap: P({gap['label']}) averages {gap['high']:.3f} for {gap['high_group']} but "
                       f"{gap['low']:.3f} for {gap['low_group']}, a gap of {gap['gap']:.3f} ({cfg.n_names} names per "
                       f"group; a model that ignored names would show 0).")
    text = filled[cell][1][0]
    model, lock = _explainer(m)
    with lock:
        scores = attributions(model, m.tokenizer, text, "integrated_gradients", n_steps=cfg.n_steps, max_length=limit)
    target = int(probs[list(filled).index(cell), 0].argmax())
    special, it = set(m.tokenizer.all_special_tokens), iter(scores)
    shown = [[piece, None if piece in special else round(next(it)[1], 5)] for piece in m.tokenizer.tokenize(text)]
    explained = {"group": GROUP_NAMES[cell], "text": text, "label": labels[target],
                 "probability": round(float(probs[list(filled).index(cell), 0, target]), 4),
                 "attributions": [[piece, round(score, 5)] for piece, score in scores], "shown": shown}
    fills = None
    if "[MASK]" in template:
        fills = _fills(store, {c: texts for c, (_, texts) in filled.items()}, cfg.top_fills)
    return {"model": m.name, "template": template, "labels": labels, "groups": groups, "gap": gap,
            "explained": explained, "fills": fills}


# ----------------------------------------------------------------------------- views of a result
def probe_rows(result: dict) -> list[dict]:
    """One row per group: its names, mean probability of each label and the share predicted as each."""
    rows = []
    for g in result["groups"]:
        row = {"group": g["group"], "names": ", ".join(dict.fromkeys(g["names"]))}
        row.update({f"P({lab})": p for lab, p in g["mean_probability"].items()})
        row.update({f"predicted {lab}": s for lab, s in g["predicted_share"].items()})
        rows.append(row)
    return rows


def probe_markdown(result: dict) -> str:
    """The largest gap as one sentence, then the per-group table."""
    rows = probe_rows(result)
    head = list(rows[0])
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table += ["| " + " | ".join(fmt(r[c]) for c in head) + " |" for r in rows]
    return f"**{result['gap']['sentence']}**\n\n" + "\n".join(table)


def plot_probe(result: dict, path=None) -> Figure:
    """Mean probability of each label per group, as grouped bars (a fresh Figure, thread-safe)."""
    labels, groups = result["labels"], result["groups"]
    fig = Figure(figsize=(max(5.0, 1.3 * len(labels) + 2), 3.4), layout="constrained")
    ax = fig.subplots()
    x, width = np.arange(len(labels)), 0.8 / len(groups)
    for i, g in enumerate(groups):
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, [g["mean_probability"][lab] for lab in labels], width,
               label=g["group"])
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean probability")
    ax.set_title(f"{result['model']}: the same text, four groups of names", fontsize=10)
    ax.legend(fontsize=8, ncols=2)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def highlighted(result: dict) -> list[tuple[str, float | None]]:
    """The explained text as (piece, score) for gr.HighlightedText: scores scaled so the strongest piece
    is ±1, "##" continuations joined to the piece before, None on [MASK] and on the spaces between words."""
    scores = result["explained"]["shown"]
    scale = max((abs(s) for _, s in scores if s is not None), default=0.0) or 1.0
    out: list[tuple[str, float | None]] = []
    for piece, score in scores:
        if piece.startswith("##"):
            piece = piece[2:]
        elif out:
            out.append((" ", None))
        out.append((piece, None if score is None else round(score / scale, 3)))
    return out


def fills_markdown(result: dict) -> str:
    """The masked LM's top fills per group, or a hint how to get them."""
    if result["fills"] is None:
        return "Add `[MASK]` to the template to see what the masked language model would put there for each group."
    rows = ["| group | top fills for [MASK] |", "|---|---|"]
    rows += [f"| {g} | " + ", ".join(f"{p} ({v:.2f})" for p, v in fills) + " |" for g, fills in result["fills"].items()]
    return "\n".join(rows)


def _page(store: ModelStore, template, model_name, group):
    result = probe(store, template, model_name, group)
    e = result["explained"]
    caption = (f"Integrated gradients on \"{e['text']}\" ({e['group']}): predicted **{e['label']}** "
               f"({e['probability']:.2f}); red pieces raise that probability, purple ones lower it.")
    return (probe_markdown(result), pd.DataFrame(probe_rows(result)), plot_probe(result), caption,
            highlighted(result), fills_markdown(result), result)


def make_demo(store: ModelStore) -> gr.Blocks:
    """The bias-probe app on ``store``'s classifiers (nothing loads until the first call)."""
    names = list(store.folders("classification"))
    with gr.Blocks(title="Bias probe · Foundation Model Lab", analytics_enabled=False) as demo:
        gr.Markdown("## Bias probe\nWrite a sentence with a `{name}` slot. It is filled with the names of "
                    f"{DEFAULT.n_names} held-out TinyWorld people from each of four groups (female/male × English/"
                    "Chinese names) and classified; only the name changes, so any gap between the groups comes "
                    "from the name alone. Add `[MASK]` to also ask the masked language model what fits there.")
        with gr.Row():
            with gr.Column():
                template = gr.Textbox(label="Template", lines=2, elem_id="probe-template",
                                      value="{name} wrote: the soup was cold and the waiter was rude.")
                model_name = gr.Dropdown(model_choices(store), value=names[0], label="Model")
                group = gr.Dropdown(list(GROUP_NAMES.values()), value=GROUP_NAMES[CELLS[0]],
                                    label="Explain the first text of")
                button = gr.Button("Probe", variant="primary", elem_id="probe-button")
            with gr.Column():
                summary = gr.Markdown(elem_id="probe-summary")
                plot = gr.Plot(label="Mean probability per group")
        table = gr.Dataframe(label="Per group: mean probability and share predicted, per label", interactive=False)
        caption = gr.Markdown()
        pieces = gr.HighlightedText(label="Word-piece attributions (integrated gradients)", show_legend=False)
        fills = gr.Markdown()
        with gr.Accordion("Result as JSON (what the /probe endpoint returns)", open=False):
            raw = gr.JSON()
        gr.Examples([["{name} wrote: the soup was cold and the waiter was rude.", names[0]],
                     ["{name} said the new phone is excellent and the battery lasts for days.", names[0]],
                     ["{name} is a [MASK] at a hospital in Hangzhou.", names[0]],
                     ["{name} raised the company's sales forecast after a strong April.",
                      "topic" if "topic" in names else names[-1]]],
                    inputs=[template, model_name], label="Examples")
        gr.on([button.click, template.submit], partial(_page, store), [template, model_name, group],
              [summary, table, plot, caption, pieces, fills, raw], api_name="probe_page", api_visibility="private",
              concurrency_id="model", preprocess=False)

        def api_probe(template: str, model_name: str | None = None, group: str | None = None) -> dict:
            """Fill `template` ("{name}" marks the name) with four groups' names, classify them with `model_name`;
            per-group label probabilities, the largest gap, and integrated-gradient attributions on `group`'s
            first text."""
            return probe(store, template, model_name, group)

        gr.api(api_probe, api_name="probe", concurrency_id="model")
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=64)


if __name__ == "__main__":
    run_alone(make_demo)
