"""What every demo shares: the model store, the device, input checks, plots.

The models come from one ``labkit build`` folder (``fill-mask``, ``sentiment``, ``topic``,
``qa``, ``translation``, ``text-generation``, ...), given to a :class:`ModelStore` when it is made:
``ModelStore(build_dir)``. Each app builds its UI from a store passed in
(``make_demo(store)``), so importing an app loads nothing; run alone
(``python -m apps.classify``), an app uses :func:`default_build_dir`.

``labkit demo --model DIR`` points one tab at any Hugging Face-format folder instead
(:meth:`ModelStore.point`); the tab is chosen from the folder's ``config.json``.

A store loads each model on first use, once, on CUDA when there is a GPU and on the CPU
otherwise. Handlers check their inputs with :func:`clean_text`, :func:`check_length` and
:func:`check_int` (:func:`check_float`) and raise ``gr.Error`` with a sentence a user can act on. The apps wire
their events with ``preprocess=False``, so an API call with a wrong type (a list for a
text, "two" for a layer) reaches these checks too instead of failing inside gradio; and
with ``concurrency_id="model"``, so all model calls share one bounded queue
(:data:`CONCURRENCY_LIMIT`).
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import gradio as gr
import torch
from matplotlib import font_manager
from matplotlib.figure import Figure
from torch import nn
from transformers import PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from labkit.build import default_output_dir
from labkit.folders import ModelFolderError, load_model
from labkit.viz import attention_heatmap

__all__ = ["DEVICE", "DEVICE_NAME", "CONCURRENCY_LIMIT", "TABS", "OPTIONAL_TABS", "ARCHITECTURE_TAB", "LoadedModel", "ModelStore",
           "default_build_dir", "run_alone", "architecture", "clean_text", "check_length", "check_int", "check_float",
           "device_markdown", "heatmap"]

# CUDA when present, else the CPU (MPS is skipped on purpose: the models are tiny, and the
# CPU path is the one the lab tests).
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DEVICE_NAME = (f"CUDA GPU ({torch.cuda.get_device_name(0)})" if DEVICE.type == "cuda"
               else f"CPU ({torch.get_num_threads()} threads)")
# Model calls running at once: one on a GPU (serialised), two on a CPU (a laptop has few cores).
CONCURRENCY_LIMIT = 1 if DEVICE.type == "cuda" else 2

# tab -> the build's model folders it uses by default (name -> sub-folder of the build)
TABS: dict[str, tuple[str, ...]] = {
    "classification": ("sentiment", "topic"),
    "translation": ("translation",),
    "qa": ("qa",),
    "attention": ("fill-mask",),
    "text-generation": ("text-generation",),  # the mini-GPT; a build made before it joined the build lacks it
    "chat": (),  # the instruction-tuned mini-GPT, an optional stage (labkit build --assistant): see OPTIONAL_TABS
}
# tab -> folders a build may also hold (`labkit build --real`), offered beside the defaults when present
OPTIONAL_TABS: dict[str, tuple[str, ...]] = {
    "classification": ("real-sentiment", "real-topic"),
    "chat": ("assistant",),  # labkit build --assistant (or --assistant-only)
}
# config.json "architectures"[0] -> the tab that can show such a model
ARCHITECTURE_TAB = {
    "BertForSequenceClassification": "classification",
    "EncoderDecoderModel": "translation",
    "BertForQuestionAnswering": "qa",
    "BertForMaskedLM": "attention",
    "BertForPreTraining": "attention",
    "BertModel": "attention",
    "GPT2LMHeadModel": "text-generation",
}


@dataclass
class LoadedModel:
    """A labkit model (eval mode, on DEVICE) with its tokenizer and where it came from.

    Each serving thread gets its own copy of the tokenizer. A fast tokenizer keeps its
    padding and truncation settings in state that every call rewrites, so two handlers
    encoding at once could each run with the other's settings (an unpadded batch fails).
    """

    name: str
    folder: Path
    model: nn.Module
    max_position: int  # longest input (tokens) the position table covers
    shared_tokenizer: PreTrainedTokenizerBase = field(repr=False)  # only ever copied, never called
    _local: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """This thread's copy of the tokenizer."""
        if not hasattr(self._local, "tokenizer"):
            self._local.tokenizer = copy.deepcopy(self.shared_tokenizer)
        return self._local.tokenizer


class ModelStore:
    """The folders each tab uses and the models loaded from them (each at most once per store).

    Making a store reads nothing: folders are checked when pointed at, models open on first use.
    """

    def __init__(self, build_dir: str | Path) -> None:
        self.build_dir = Path(build_dir)  # the `labkit build` folder the tabs use unless pointed elsewhere
        self._pointed: dict[str, dict[str, Path]] = {}  # tab -> {name: folder}, from `labkit demo --model`
        self._loaded: dict[Path, LoadedModel] = {}
        self._lock = threading.Lock()

    def folders(self, tab: str) -> dict[str, Path]:
        """The models a tab offers, name -> folder (the first is the default)."""
        if tab not in TABS:
            raise ValueError(f"unknown tab {tab!r}; choose one of {sorted(TABS)}")
        if tab in self._pointed:
            return dict(self._pointed[tab])
        found = {name: self.build_dir / name for name in TABS[tab]}
        found.update({name: self.build_dir / name for name in OPTIONAL_TABS.get(tab, ())
                      if (self.build_dir / name / "config.json").is_file()})
        return found

    def report(self, tab: str | None = None) -> dict:
        """The build's report.json ({} when there is none, or when ``tab`` shows pointed folders instead)."""
        if tab in self._pointed:
            return {}
        try:
            return json.loads((self.build_dir / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def point(self, folder: str | Path) -> str:
        """Serve the model in ``folder`` in the tab its architecture fits; return that tab.

        The first folder pointed at a tab replaces the build's models there; further
        classifiers are added beside it. Raises ModelFolderError if the folder is not a model
        folder or holds an architecture no tab shows.
        """
        folder = Path(folder)
        tab = ARCHITECTURE_TAB.get(architecture(folder))
        if tab == "text-generation" and (folder / "chat_template.jinja").is_file():
            tab = "chat"  # a GPT whose tokenizer has a chat template: an instruction-tuned assistant
        if tab is None:
            raise ModelFolderError(f"{folder} holds a {architecture(folder)}; the demo shows "
                                   f"{', '.join(sorted(ARCHITECTURE_TAB))}")
        name = folder.resolve().name
        if tab == "classification":
            self._pointed.setdefault(tab, {})[name] = folder
        else:
            self._pointed[tab] = {name: folder}
        return tab

    def get(self, tab: str, name: str | None = None) -> LoadedModel:
        """The loaded model ``name`` of a tab (its first model if None); loads it on first use.

        Raises gr.Error if the name is unknown or the folder cannot be opened.
        """
        folders = self.folders(tab)
        if name is None:
            name = next(iter(folders))
        if not isinstance(name, str) or name not in folders:
            raise gr.Error(f"Unknown model {name!r}; choose one of {', '.join(folders)}.", print_exception=False)
        folder = folders[name]
        try:
            return self.load(folder, name)
        except ValueError as err:  # ModelFolderError, or a BERT variant labkit lacks
            raise gr.Error(str(err), print_exception=False) from None

    def load(self, folder: Path, name: str | None = None) -> LoadedModel:
        """Open ``folder`` once per store (thread-safe); ValueError/ModelFolderError if it cannot."""
        key = Path(folder).resolve()
        with self._lock:
            if key not in self._loaded:
                bars = hf_logging.is_progress_bar_enabled()
                hf_logging.disable_progress_bar()  # no "Loading weights" bars in the server's log
                try:
                    model, tokenizer = load_model(folder)
                finally:
                    if bars:
                        hf_logging.enable_progress_bar()
                model = model.to(DEVICE).eval()
                self._loaded[key] = LoadedModel(name or key.name, Path(folder), model, model.config.max_position,
                                                shared_tokenizer=tokenizer)
            return self._loaded[key]

    def load_all(self) -> None:
        """Open every tab's models now (so a broken folder fails at start, not in the UI)."""
        for tab in TABS:
            for name, folder in self.folders(tab).items():
                self.load(folder, name)

    def config(self, tab: str, name: str | None = None) -> dict:
        """A model's config.json without loading its weights ({} if it cannot be read)."""
        folders = self.folders(tab)
        folder = folders[name] if name else next(iter(folders.values()))
        try:
            return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}


def architecture(folder: Path) -> str:
    """The class named in a model folder's config.json; ModelFolderError if there is none."""
    cfg = Path(folder) / "config.json"
    hint = "pass a folder written by save_pretrained (config.json + model.safetensors + tokenizer)"
    if not Path(folder).is_dir():
        raise ModelFolderError(f"model folder {folder} does not exist; {hint}")
    try:
        return json.loads(cfg.read_text(encoding="utf-8"))["architectures"][0]
    except OSError:
        raise ModelFolderError(f"{folder} has no readable config.json, so it is not a model folder; {hint}") from None
    except (ValueError, KeyError, IndexError, TypeError):
        raise ModelFolderError(f"{cfg} is corrupt (no architectures entry); {hint}") from None


def default_build_dir() -> Path:
    """The build an app run alone uses: $LABKIT_MODELS, else artifacts/cpu if it exists, else artifacts/ci."""
    if os.environ.get("LABKIT_MODELS"):
        return Path(os.environ["LABKIT_MODELS"])
    cpu = default_output_dir("cpu")
    return cpu if cpu.is_dir() else default_output_dir("ci")


def run_alone(make_demo: Callable[[ModelStore], gr.Blocks]) -> None:
    """``python -m apps.<app>``: serve one app on the models of :func:`default_build_dir`."""
    make_demo(ModelStore(default_build_dir())).launch()


# C0/C1 control characters other than tab and newline (a pasted NUL, escape codes, ...)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text, what: str = "text", max_chars: int = 2000) -> str:
    """``text`` NFC-normalised, control characters replaced by spaces, stripped.

    Raises gr.Error if it is not a string, is empty or whitespace only, or is longer
    than ``max_chars`` characters.
    """
    if text is None:
        raise gr.Error(f"Please enter a {what}.", print_exception=False)
    if not isinstance(text, str):
        raise gr.Error(f"The {what} must be a string, got {type(text).__name__}.", print_exception=False)
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text)).strip()
    if not text:
        raise gr.Error(f"The {what} is empty: please type some words.", print_exception=False)
    if len(text) > max_chars:
        raise gr.Error(f"The {what} has {len(text):,} characters; the limit is {max_chars:,}. Please shorten it.",
                       print_exception=False)
    return text


def check_length(tokenizer, text: str, limit: int | None, what: str = "text", *, known: bool = True) -> list[int]:
    """The token ids of ``text`` ([CLS] … [SEP]); gr.Error if there are more than ``limit`` (None: no limit).

    known: also refuse a text whose every word piece is [UNK] (nothing the model can read).
    """
    ids = tokenizer(text, verbose=False)["input_ids"]
    if limit is not None and len(ids) > limit:
        raise gr.Error(f"The {what} is {len(ids)} word pieces long; this model reads at most {limit}. "
                       f"Please shorten it.", print_exception=False)
    content = [i for i in ids if i not in (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)]
    if known and content and all(i == tokenizer.unk_token_id for i in content):
        raise gr.Error(f"The model knows none of the characters in this {what} (it was trained on English and "
                       f"Chinese TinyWorld text); try some words.", print_exception=False)
    return ids


def check_int(value, name: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high] (a whole float from a slider is fine); gr.Error otherwise."""
    whole = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not whole or value != int(value):
        raise gr.Error(f"The {name} must be a whole number, got {value!r}.", print_exception=False)
    if not low <= int(value) <= high:
        raise gr.Error(f"The {name} must be between {low} and {high}, got {int(value)}.", print_exception=False)
    return int(value)


def check_float(value, name: str, low: float, high: float, *, low_inclusive: bool = False) -> float:
    """``value`` as a float in (low, high] ([low, high] with ``low_inclusive``); gr.Error otherwise."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number:
        raise gr.Error(f"The {name} must be a number, got {value!r}.", print_exception=False)
    if not ((value >= low if low_inclusive else value > low) and value <= high):
        bound = f"at least {low:g}" if low_inclusive else f"greater than {low:g}"
        raise gr.Error(f"The {name} must be {bound} and at most {high:g}, got {value:g}.", print_exception=False)
    return float(value)


def device_markdown(store: ModelStore, tab: str) -> str:
    """A one-line note: the device the models run on and the folders they come from."""
    folders = ", ".join(f"`{f}`" for f in store.folders(tab).values())
    return f"Running on **{DEVICE_NAME}** · model: {folders}"


# ----------------------------------------------------------------------------- plots
_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
              "Droid Sans Fallback", "AR PL UMing CN", "PingFang SC", "Heiti SC", "Microsoft YaHei", "SimHei",
              "Arial Unicode MS")
_installed = {f.name for f in font_manager.fontManager.ttflist}
CJK_FONT = next((name for name in _CJK_FONTS if name in _installed), None)  # None: Chinese shows as code points
_HAN = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")  # CJK + punctuation


def _tick(token: str) -> str:
    """A token as a tick label; without a CJK font, Chinese characters become code points (U+4ECA)."""
    return token if CJK_FONT else _HAN.sub(lambda m: f"U+{ord(m[0]):04X}", token)


def heatmap(weights, x_tokens: list[str], y_tokens: list[str], *, title: str, xlabel: str, ylabel: str) -> Figure:
    """A (len(y_tokens), len(x_tokens)) weight matrix as a labelled heatmap with a colour bar.

    Draws with labkit.viz.attention_heatmap on a fresh Figure (not pyplot, which is not
    thread-safe in a server) and uses a Chinese font when one is installed.
    """
    n_y, n_x = len(y_tokens), len(x_tokens)
    fig = Figure(figsize=(min(14, 3 + 0.36 * n_x), min(14, 2.4 + 0.36 * n_y)), layout="constrained")
    ax = fig.subplots()
    attention_heatmap(weights, [_tick(t) for t in y_tokens], [_tick(t) for t in x_tokens], ax=ax,
                      title=title if CJK_FONT or not any(_HAN.search(t) for t in x_tokens + y_tokens)
                      else f"{title}\n(no Chinese font installed: characters shown as code points)")
    for label in ax.get_xticklabels() + ax.get_yticklabels():
        label.set_fontfamily([CJK_FONT, "DejaVu Sans"] if CJK_FONT else ["DejaVu Sans"])
        label.set_fontsize(9)
    ax.title.set_fontsize(10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(ax.images[0], ax=ax, shrink=0.8, label="attention weight")
    return fig
