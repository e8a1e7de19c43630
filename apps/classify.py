"""Text classification demo: sentiment (negative / positive) and topic, with word importance.

The build's mini classifiers (``sentiment``, ``topic``: the lab's mini-BERT, pretrained on
TinyWorld alone) come first; where the build has the real-model stage (``labkit build --real``),
``real-sentiment`` and ``real-topic`` (all-MiniLM-L6-v2, pretrained on large English corpora, then
fine-tuned on the same TinyWorld labels) sit beside them, and a table says which is which.

Word importance is measured by *occlusion*: drop one word, classify again, and see how much
the probability of the predicted label falls,

    importance(w) = P(label | text) - P(label | text without w),

so a positive score means the word supports the prediction and a negative one that it
argues against it. All the occluded texts go through the model as one batch.

For programs there are two lighter endpoints, labels only: ``/predict`` (one model call per request) and
``/predict_batch`` (Gradio's queue hands up to ``BATCH`` waiting requests to one model call).
"""
from __future__ import annotations

import re
from functools import partial

import gradio as gr

from apps.common import CONCURRENCY_LIMIT, ModelStore, check_length, clean_text, device_markdown, run_alone
from labkit.finetune import predict_proba

__all__ = ["MAX_TOKENS", "BATCH", "classify", "predict", "predict_many", "word_importance", "model_choices", "models_markdown", "make_demo"]

MAX_TOKENS = 128  # the length the classifiers were fine-tuned with ([CLS] and [SEP] included)
BATCH = 16  # queued /predict_batch requests answered by one model call

# a "word": one CJK character, a run of letters/digits, or one other symbol (punctuation, emoji)
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")


def word_importance(model, tokenizer, text: str) -> tuple[list[float], str, list[tuple[int, int, float]]]:
    """Label probabilities of ``text`` and each word's occlusion importance.

    Returns (probabilities (K,), predicted label, [(start_char, end_char, importance), ...]).
    """
    spans = [m.span() for m in _WORD.finditer(text)]
    occluded = [text[:a] + text[b:] for a, b in spans]  # the text without each word
    probs = predict_proba(model, tokenizer, [text] + occluded, max_length=MAX_TOKENS)  # (1 + N, K)
    predicted = int(probs[0].argmax())
    drops = probs[0, predicted] - probs[1:, predicted]  # (N,)
    return probs[0].tolist(), model.id2label[predicted], [(a, b, float(d)) for (a, b), d in zip(spans, drops)]


def classify(store: ModelStore, text: str,
             model_name: str | None = None) -> tuple[dict[str, float], list[tuple[str, float | None]]]:
    """Classify ``text`` with the store's model called ``model_name`` ("sentiment", "topic", and where the
    build has them "real-sentiment", "real-topic"; None: the first).

    Returns the label probabilities (for gr.Label) and the text as (piece, importance)
    pairs (for gr.HighlightedText), importance scaled so the strongest word is ±1 and
    None between words.
    """
    text = clean_text(text)
    m = store.get("classification", model_name)
    check_length(m.tokenizer, text, min(MAX_TOKENS, m.max_position))
    probs, _, importance = word_importance(m.model, m.tokenizer, text)
    labels = {m.model.id2label[k]: round(p, 4) for k, p in enumerate(probs)}
    scale = max((abs(d) for *_, d in importance), default=0.0) or 1.0
    pieces, cursor = [], 0
    for a, b, d in importance:
        if a > cursor:
            pieces.append((text[cursor:a], None))
        pieces.append((text[a:b], round(d / scale, 3)))
        cursor = b
    return labels, pieces


def predict_many(store: ModelStore, texts: list[str], model_names: list[str]) -> list[list[dict[str, float] | str]]:
    """Label probabilities for many texts at once, without word importance: the ``/predict_batch`` endpoint,
    which Gradio calls with up to ``BATCH`` queued requests together (``batch=True``). Texts for the same model
    go through it as one padded batch. Returns ``[answer for each text]`` (one list per output, as Gradio's
    batched functions do).

    One client's bad request must not fail the others that share its batch, so a bad text (or model name)
    gets the string "error: <what was wrong>" as its answer; only when every request in the batch is bad
    (a lone bad request, for one) is the answer a gr.Error."""
    if len(texts) != len(model_names):
        raise gr.Error(f"got {len(texts)} texts and {len(model_names)} model names; send one model name per text")
    texts, out = list(texts), [None] * len(texts)  # out: each text's probabilities, or what was wrong with it
    for name in dict.fromkeys(model_names):  # one forward pass per model
        rows = [i for i, n in enumerate(model_names) if n == name]
        try:
            m = store.get("classification", name)
        except gr.Error as err:
            for i in rows:
                out[i] = f"error: {err.message}"
            continue
        good = []
        for i in rows:
            try:
                texts[i] = clean_text(texts[i])
                check_length(m.tokenizer, texts[i], min(MAX_TOKENS, m.max_position))
                good.append(i)
            except gr.Error as err:
                out[i] = f"error: {err.message}"
        if good:
            probs = predict_proba(m.model, m.tokenizer, [texts[i] for i in good], max_length=MAX_TOKENS)  # (n, K)
            for i, p in zip(good, probs):
                out[i] = {m.model.id2label[k]: round(float(v), 4) for k, v in enumerate(p)}
    if all(isinstance(o, str) for o in out):
        raise gr.Error(out[0].removeprefix("error: "))
    return [out]


def predict(store: ModelStore, text: str, model_name: str | None = None) -> dict[str, float]:
    """Label probabilities of one text, without word importance: the ``/predict`` endpoint, one request per
    model call (the unbatched twin of ``/predict_batch``)."""
    names = list(store.folders("classification"))
    return predict_many(store, [text], [model_name or names[0]])[0][0]


def _about(store: ModelStore, name: str) -> dict:
    """What one classifier is: encoder, pretraining, parameters, and its scores where the report has them."""
    report = store.report("classification")
    real = report.get("real", {})
    task = name.removeprefix("real-")
    if name.startswith("real-") and task in real.get("classifiers", {}):
        c = real["classifiers"][task]
        return {"short": f"{real['model']['name']}, real English pretraining",
                "encoder": f"{real['model']['name']} ({real['model']['parameters']:,} parameters)",
                "pretrained": "English Wikipedia and books, then a billion English sentence pairs",
                "labels": c["labels"], "test": c["test"], "probe": c["probe"]}
    if name in report.get("models", {}) and report.get("pretraining"):
        m = report["models"][name]
        return {"short": "mini-BERT, TinyWorld only",
                "encoder": f"the lab's mini-BERT ({report['pretraining']['encoder_parameters']:,} parameters)",
                "pretrained": "TinyWorld's synthetic corpus only",
                "labels": real.get("classifiers", {}).get(name, {}).get("labels"),  # the same training split
                "test": m["metrics"].get("accuracy"), "probe": real.get("classifiers", {}).get(name, {}).get("mini_probe")}
    return {"short": "", "encoder": "", "pretrained": "", "labels": None, "test": None, "probe": None}


def model_choices(store: ModelStore) -> list[tuple[str, str]]:
    """(label shown, model name) for the model radio: the name, and what it is where the build says."""
    return [(f"{name} · {about}" if (about := _about(store, name)["short"]) else name, name)
            for name in store.folders("classification")]


def models_markdown(store: ModelStore) -> str:
    """A table of the offered classifiers: encoder, pretraining data, and accuracy on TinyWorld's test
    split and on the out-of-world probes (everyday English), from the build's report."""
    names = list(store.folders("classification"))
    if not any(n.startswith("real-") for n in names):
        return ("Models: the lab's mini-BERT, pretrained on TinyWorld only. Start the demo with `labkit demo --real` "
                "(or run `labkit build --real-only` on this build) to add a real pretrained encoder (all-MiniLM-L6-v2) "
                "fine-tuned on the same labels beside it.")
    fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    rows = ["| model | encoder | pretrained on | fine-tuned on | TinyWorld test | everyday-English probes |",
            "|---|---|---|---|---|---|"]
    for name in names:
        a = _about(store, name)
        tuned = f"{a['labels']:,} labelled TinyWorld examples" if a["labels"] else "TinyWorld's labelled examples"
        rows.append(f"| `{name}` | {a['encoder']} | {a['pretrained']} | {tuned} | {fmt(a['test'])} | {fmt(a['probe'])} |")
    return ("**Which model is which.** Each pair was fine-tuned on the same TinyWorld labels; only the pretrained "
            "encoder (and its learning rate) differs. Try a sentence from everyday life (a hotel, a blender, a marathon): TinyWorld never "
            "wrote one.\n\n" + "\n".join(rows))


def make_demo(store: ModelStore) -> gr.Blocks:
    """The classification app on ``store``'s classifiers (nothing loads until the first call)."""
    names = list(store.folders("classification"))
    with gr.Blocks(title="Classification · Foundation Model Lab", analytics_enabled=False) as demo:
        gr.Markdown("## Text classification\nSentiment of a product review, or the topic of a news sentence. "
                    "Word colours show **occlusion importance**: how much the predicted label's probability "
                    "drops when that word is removed, scaled so the strongest word is ±1 (red: the word supports "
                    "the prediction; purple: it argues against it).")
        gr.Markdown(device_markdown(store, "classification"))
        gr.Markdown(models_markdown(store))
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Text", lines=3, placeholder="Type a review or a news sentence",
                                  elem_id="classify-text")
                model_name = gr.Radio(model_choices(store), value=names[0], label="Model")
                button = gr.Button("Classify", variant="primary", elem_id="classify-button")
            with gr.Column():
                labels = gr.Label(label="Predicted label", num_top_classes=5, elem_id="classify-label")
                importance = gr.HighlightedText(label="Word importance (occlusion)", show_legend=False)
        gr.Examples([["The staff are outstanding and the price is perfect. I would recommend it to anyone.", names[0]],
                     ["I disliked the price and the noise level is not fantastic.", names[0]],
                     ["Iron Horse Pharma raised its sales forecast after a strong April.",
                      "topic" if "topic" in names else names[-1]],
                     ["这款手机非常好 and the screen is bright 😀", names[0]],
                     ["The blender broke after two weeks and nobody answered my emails.",
                      next((n for n in names if n.startswith("real-")), names[0])]],
                    inputs=[text, model_name], label="Examples")
        gr.on([button.click, text.submit], partial(classify, store), [text, model_name], [labels, importance],
              api_name="classify", concurrency_id="model", preprocess=False)
        # for programs rather than people: labels only, one request at a time or batched by the queue
        def api_predict(text: str, model_name: str = names[0]) -> dict[str, float]:
            """The label probabilities of `text` under the classifier `model_name`."""
            return predict(store, text, model_name)

        gr.api(api_predict, api_name="predict", concurrency_id="model")
        batched = gr.Button(visible=False)
        batched.click(partial(predict_many, store), [text, model_name], [labels], api_name="predict_batch",
                      batch=True, max_batch_size=BATCH, concurrency_id="model", preprocess=False)
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=64)


if __name__ == "__main__":
    run_alone(make_demo)
