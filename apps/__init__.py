"""Gradio demos of the lab's models: classification, translation, question answering, attention.

Each module is a standalone app (``python -m apps.classify``) with pure handler functions
and a module-level ``demo``; ``apps.dashboard`` shows them all as tabs (``labkit demo``).
"""
