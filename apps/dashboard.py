"""The lab's dashboard: every demo as a tab of one app (what ``labkit demo`` serves).

One queue serves all tabs; every model call shares the concurrency group "model", so at
most CONCURRENCY_LIMIT run at once (one on a GPU, two on a CPU) and the rest wait their turn.
"""
from __future__ import annotations

import gradio as gr

from apps import attention, chat, classify, generate, probe, qa, translate
from apps.common import CONCURRENCY_LIMIT, DEVICE_NAME, ModelStore, run_alone

__all__ = ["make_demo"]

APPS = {"Classification": classify, "Translation EN→ZH": translate, "Question answering": qa,
        "Attention explorer": attention, "Text generation": generate,
        "Assistant chat": chat, "Bias probe": probe}  # tab title -> the app shown in it


def make_demo(store: ModelStore) -> gr.Blocks:
    """Every app on ``store``'s models, one tab each (a model loads when a tab first calls it)."""
    tabs = {title: app.make_demo(store) for title, app in APPS.items()}
    with gr.Blocks(title="Foundation Model Lab", analytics_enabled=False) as demo:
        gr.Markdown(f"# Foundation Model Lab\nThe lab's own mini foundation model, pretrained and fine-tuned offline. "
                    f"Running on **{DEVICE_NAME}** · models from `{store.build_dir}`")
        for title, app in tabs.items():
            with gr.Tab(title):
                app.render()
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=64)


if __name__ == "__main__":
    run_alone(make_demo)
