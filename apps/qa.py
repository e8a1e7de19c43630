"""Extractive question answering demo: the answer highlighted in its context, and the runners-up.

The model scores every token as a possible start and end of the answer; a span (i, j)
scores start_i + end_j, and "no answer" is the span on [CLS] (see labkit.qa). Long
contexts are read in overlapping windows. The "share" column turns the n-best scores into
a distribution over those candidates (a softmax), a rough confidence.

A model trained SQuAD v1.1-style always points at *some* span, so the demo also says "no
answer" when the context shares no word with the question (ignoring words like "the").
"""
from __future__ import annotations

import math
import re
from functools import partial

import gradio as gr
import torch

from apps.common import CONCURRENCY_LIMIT, ModelStore, check_length, clean_text, device_markdown, run_alone
from labkit.qa import Span, postprocess, prepare_train_features

__all__ = ["MAX_QUESTION_TOKENS", "N_BEST", "answer", "find_spans", "content_words", "describe", "make_demo"]

MAX_QUESTION_TOKENS = 48  # question word pieces; the rest of each window is context
MAX_CONTEXT_CHARS = 5000  # long contexts are split into windows; this bounds the work
N_BEST = 5
STRIDE = 64  # context tokens shared by neighbouring windows
TABLE_HEADERS = ["rank", "answer", "score", "share", "characters"]
_STOP_WORDS = frozenset("a an and are as at be by did do does for from had has have he her his how in is it its of on "
                        "or she that the their them they this to was were what when where which who whom whose why "
                        "with".split())
_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]|[^\W_]+")  # a Chinese character or a run of letters/digits


def content_words(text: str) -> set[str]:
    """The lowercased words of ``text`` minus question and function words."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS}


@torch.no_grad()
def find_spans(model, tokenizer, question: str, context: str, *, max_length: int) -> list[Span]:
    """The N_BEST candidate answers (best first); a Span with text "" means "no answer" ranks first."""
    features = prepare_train_features(tokenizer, [question], [context], max_length=max_length, stride=STRIDE)
    device = next(model.parameters()).device
    x, m, tt = (torch.tensor(features[k], device=device) for k in ("input_ids", "attention_mask", "token_type_ids"))
    out = model(x, m, tt)  # start/end logits (F, T)
    return postprocess(features, out.start_logits.cpu(), out.end_logits.cpu(), [context], n_best=N_BEST,
                       allow_no_answer=True)[0]


def describe(spans: list[Span], context: str, *,
             related: bool = True) -> tuple[list[tuple[str, str | None]], str, list[list]]:
    """The context with the best answer highlighted, a one-line summary, and the candidates as table rows.

    related: False when the context shares no word with the question, which is then reported as unanswerable.
    """
    top = max(s.score for s in spans)
    weights = [math.exp(s.score - top) for s in spans]  # softmax over the candidates shown
    shares = [w / sum(weights) for w in weights]
    found = [(s, p) for s, p in zip(spans, shares) if s.text]
    rows = [[rank, s.text, round(s.score, 2), round(p, 3), f"{s.start_char}–{s.end_char}"]
            for rank, (s, p) in enumerate(found, 1)]
    best = spans[0]
    guess = f"its best guess was “{found[0][0].text}” ({found[0][0].score:.2f})." if found else "it found no span."
    if not best.text:
        return [(context, None)], (f"**No answer found in this context.** The model's no-answer score "
                                   f"({best.score:.2f}) beats every span; {guess}"), rows
    if not related:
        return [(context, None)], ("**No answer found in this context:** it shares no word with the question. "
                                   f"An extractive model always points at some span; {guess}"), rows
    highlighted = [(context[:best.start_char], None), (best.text, "answer"), (context[best.end_char:], None)]
    summary = f"**Answer:** {best.text} · score {best.score:.2f} (start + end logit) · share {shares[0]:.0%}"
    return [piece for piece in highlighted if piece[0]], summary, rows


def answer(store: ModelStore, question: str, context: str) -> tuple[list[tuple[str, str | None]], str, list[list]]:
    """Answer ``question`` from ``context`` with the store's QA model.

    Returns (highlighted context, summary, next-best spans table rows).
    """
    question = clean_text(question, "question", max_chars=300)
    context = clean_text(context, "context", max_chars=MAX_CONTEXT_CHARS)
    m = store.get("qa")
    check_length(m.tokenizer, question, MAX_QUESTION_TOKENS, "question")
    check_length(m.tokenizer, context, None, "context")  # any length: read in windows
    spans = find_spans(m.model, m.tokenizer, question, context, max_length=min(192, m.max_position))
    return describe(spans, context, related=bool(content_words(question) & content_words(context)))


_EXAMPLE = ("Helen Smith was born in Qingdao, China. She was born on 5 January 1959. She joined New Era Insurance "
            "as a receptionist. Helen Smith studied at Qingdao University. She moved to Seattle a few years ago.")


def make_demo(store: ModelStore) -> gr.Blocks:
    """The question-answering app on ``store``'s QA model (nothing loads until the first call)."""
    with gr.Blocks(title="Question answering · Foundation Model Lab", analytics_enabled=False) as demo:
        gr.Markdown("## Extractive question answering\nThe answer is a span copied from the context. "
                    "The table lists the next-best spans the model considered.")
        gr.Markdown(device_markdown(store, "qa"))
        with gr.Row():
            with gr.Column():
                question = gr.Textbox(label="Question", placeholder="Ask about the context")
                context = gr.Textbox(label="Context", lines=6, placeholder="Paste a paragraph")
                button = gr.Button("Answer", variant="primary")
            with gr.Column():
                highlighted = gr.HighlightedText(label="Answer in context", color_map={"answer": "green"},
                                                 show_legend=False)
                summary = gr.Markdown(label="Score")
                table = gr.Dataframe(headers=TABLE_HEADERS, label="Next-best spans", interactive=False, wrap=True,
                                     column_widths=["12%", "46%", "14%", "13%", "15%"])
        gr.Examples([["Which city is Helen Smith living in?", _EXAMPLE],
                     ["What is the occupation of Helen Smith?", _EXAMPLE],
                     ["Who founded Orchid Bank?", "In 2008, Guo Jianhua started Orchid Bank. Orchid Bank is based in "
                                                  "Istanbul."]],
                    inputs=[question, context], label="Examples")
        gr.on([button.click, question.submit], partial(answer, store), [question, context],
              [highlighted, summary, table], api_name="answer", concurrency_id="model", preprocess=False)
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=64)


if __name__ == "__main__":
    run_alone(make_demo)
