"""Gradio demos of the lab's models: classification, translation, question answering, attention, text generation,
and a chat with the instruction-tuned assistant.

Each module is a standalone app (``python -m apps.classify``) with pure handler functions
that take a :class:`apps.common.ModelStore`, and ``make_demo(store)``, which builds the app's
page on that store; ``apps.dashboard`` shows them all as tabs, and ``apps.serve`` is what
``labkit demo`` runs. Importing an app loads no model.
"""
