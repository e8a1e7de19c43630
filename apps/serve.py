"""``labkit demo``: make sure the models exist (building them if not), then serve the dashboard.

The dashboard (``apps/dashboard.py``) shows every model as a tab. Its models come from one
build folder, ``$LABKIT_MODELS`` or ``default_output_dir(scale)``, handed to the dashboard
in a :class:`~apps.common.ModelStore`; ``models`` points single tabs at other Hugging
Face-format folders instead (the tab is chosen from the folder's ``config.json``: a
sequence classifier, an encoder–decoder, a QA model, a (masked-LM) BERT or a GPT-2 language model).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from apps import dashboard
from apps.common import TABS, ModelStore
from labkit.build import default_output_dir, ensure_build

__all__ = ["serve"]


def serve(*, host: str = "127.0.0.1", port: int = 7860, share: bool = False, scale: str = "cpu",
          models: Sequence[str | Path] = (), real: bool = False, log: Callable[[str], None] = print,
          block: bool = True):
    """Build the models if they are missing, load them all, then launch the dashboard.

    Args:
        host, port: where to listen (127.0.0.1: this computer only).
        share: also open a temporary public gradio.live link (only when asked).
        scale: which build to use, or make if missing (ci, cpu, gpu); $LABKIT_MODELS overrides the folder.
        models: model folders to show instead of the build's, one tab each.
        real: also the real pretrained encoder's classifiers (``labkit build --real-only``, run first
            if the build lacks them); without it they are shown when the build already has them.
        block: wait until interrupted (False returns the running gradio app, for tests).

    Raises ModelFolderError (a ValueError) for a missing or corrupt model folder, and
    ValueError if the port cannot be used.
    """
    store = ModelStore(os.environ.get("LABKIT_MODELS") or default_output_dir(scale))
    pointed = {store.point(folder) for folder in models}  # the tabs they go to; checks each config.json
    if pointed != set(TABS):  # some tab shows the build's models: build them if missing (once)
        ensure_build(scale, store.build_dir, real=real, progress=True, log=log)
    store.load_all()  # a broken folder fails here, with one line, not later in the browser
    demo = dashboard.make_demo(store)

    log(f"Starting the dashboard on http://{host}:{port} (Ctrl+C stops it).")
    try:  # quiet unless sharing: then gradio prints the public link
        return demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                           show_error=False, quiet=not share)
    except OSError as err:  # the port is taken, or the address is not this computer's
        raise ValueError(f"cannot serve on {host}:{port} ({str(err).split('.')[0]}); "
                         f"choose another port with --port") from None
