"""The lab's dashboard: every demo as a tab of one app (what ``labkit demo`` serves).

One queue serves all tabs; every model call shares the concurrency group "model", so at
most CONCURRENCY_LIMIT run at once (one on a GPU, two on a CPU) and the rest wait their turn.
"""
from __future__ import annotations

import gradio as gr

from apps import attention, classify, qa, translate
from apps.common import CONCURRENCY_LIMIT, DEVICE_NAME, MODELS

__all__ = ["demo"]

with gr.Blocks(title="Foundation Model Lab", analytics_enabled=False) as demo:
    gr.Markdown(f"# Foundation Model Lab\nThe lab's own mini foundation model, pretrained and fine-tuned offline. "
                f"Running on **{DEVICE_NAME}** · models from `{MODELS.build_dir()}`")
    with gr.Tab("Classification"):
        classify.demo.render()
    with gr.Tab("Translation EN→ZH"):
        translate.demo.render()
    with gr.Tab("Question answering"):
        qa.demo.render()
    with gr.Tab("Attention explorer"):
        attention.demo.render()

demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=64)

if __name__ == "__main__":
    demo.launch()
