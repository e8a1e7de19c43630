"""EN→ZH translation demo: greedy or beam-search decoding, and the cross-attention alignment.

The alignment is the last decoder layer's cross-attention, averaged over heads: row t is
the distribution over source tokens the decoder looked at while predicting output token t.
It is computed by running the decoder once more over its own output (teacher forcing on
the translation): the decoder is causal, so row t gets the weights it had when decoding step t.
"""
from __future__ import annotations

from functools import partial

import gradio as gr
import torch
from matplotlib.figure import Figure

from apps.common import CONCURRENCY_LIMIT, ModelStore, check_length, clean_text, device_markdown, heatmap, run_alone
from labkit.generate import beam_search, greedy_decode
from labkit.translate import join_cjk

__all__ = ["MAX_TOKENS", "DECODINGS", "translate", "make_demo"]

MAX_TOKENS = 64  # source length the translator was fine-tuned with; also the longest output
DECODINGS = {"greedy": 1, "beam search (4 beams)": 4}  # choice -> num_beams


@torch.no_grad()
def translate(store: ModelStore, text: str, decoding: str = "greedy") -> tuple[str, Figure]:
    """Translate English ``text`` to Chinese with the store's translator; return the translation and its alignment."""
    text = clean_text(text)
    if not isinstance(decoding, str) or decoding not in DECODINGS:
        raise gr.Error(f"Unknown decoding {decoding!r}; choose one of {', '.join(DECODINGS)}.", print_exception=False)
    m = store.get("translation")
    tok, model = m.tokenizer, m.model
    limit = min(MAX_TOKENS, m.max_position)
    source = torch.tensor([check_length(tok, text, limit)], device=next(model.parameters()).device)  # (1, S)
    kw = dict(bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id,
              max_new_tokens=min(MAX_TOKENS, m.max_position - 1))
    num_beams = DECODINGS[decoding]
    ids = (greedy_decode(model, source, **kw) if num_beams == 1
           else beam_search(model, source, num_beams=num_beams, **kw))[0].tolist()  # [CLS] y1 … yn [SEP] (pad …)
    if tok.sep_token_id in ids[1:]:
        ids = ids[:ids.index(tok.sep_token_id, 1) + 1]
    translation = join_cjk(tok.decode(ids, skip_special_tokens=True))

    decoder_input = torch.tensor([ids[:-1]], device=source.device)  # (1, T): [CLS] y1 … yn
    out = model(source, decoder_input_ids=decoder_input, output_attentions=True)
    weights = out.decoder.cross_attentions[-1][0].mean(0).float().cpu().numpy()  # (nh, T, S) -> (T, S)
    figure = heatmap(weights, tok.convert_ids_to_tokens(source[0].tolist()), tok.convert_ids_to_tokens(ids[1:]),
                     title="Cross-attention, last decoder layer (mean over heads)",
                     xlabel="source tokens (English)", ylabel="output tokens (Chinese)")
    return translation or "(the model produced an empty translation)", figure


def make_demo(store: ModelStore) -> gr.Blocks:
    """The translation app on ``store``'s translator (nothing loads until the first call)."""
    with gr.Blocks(title="Translation · Foundation Model Lab", analytics_enabled=False) as demo:
        gr.Markdown("## English → Chinese translation\nAn encoder–decoder whose encoder is the lab's pretrained "
                    "mini-BERT. The heatmap shows, for each output token (row), which English tokens (columns) "
                    "the decoder attended to.")
        gr.Markdown(device_markdown(store, "translation"))
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="English text", lines=3, placeholder="Type an English sentence")
                decoding = gr.Radio(list(DECODINGS), value="greedy", label="Decoding")
                button = gr.Button("Translate", variant="primary")
            with gr.Column():
                translation = gr.Textbox(label="Chinese translation", interactive=False)
        alignment = gr.Plot(label="Alignment (cross-attention)")
        gr.Examples([["I am from France.", "greedy"],
                     ["Excuse me, where is the library?", "beam search (4 beams)"],
                     ["Adam Phillips was born on 3 July 1990.", "greedy"]],
                    inputs=[text, decoding], label="Examples")
        gr.on([button.click, text.submit], partial(translate, store), [text, decoding], [translation, alignment],
              api_name="translate", concurrency_id="model", preprocess=False)
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=64)


if __name__ == "__main__":
    run_alone(make_demo)
