"""Hugging Face-format model folders: save a labkit model, open one back, with clear errors.

A folder holds ``config.json``, ``model.safetensors`` (never a pickle), the tokenizer files
and a model card ``README.md``. ``transformers.pipeline(task, model=folder)`` opens it, and
so does :func:`load_model`, which returns the labkit twin.
"""
from __future__ import annotations

import json
from pathlib import Path

import transformers
from torch import nn

from .hf import from_hf, to_hf

__all__ = ["ModelFolderError", "save_model", "load_model", "load_hf_model"]


class ModelFolderError(ValueError):
    """A model folder is missing, incomplete or unreadable; the message says what to do."""


def save_model(model: nn.Module, tokenizer, folder: str | Path, *, card: str = "", **config_kwargs) -> Path:
    """Write ``model`` (as its transformers twin) and ``tokenizer`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hf_model = to_hf(model, **config_kwargs)
    hf_model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    if card:
        (folder / "README.md").write_text(card, encoding="utf-8")
    return folder


def load_hf_model(folder: str | Path, **kwargs) -> transformers.PreTrainedModel:
    """Open a model folder with transformers (safetensors only), raising ModelFolderError if it cannot."""
    folder = Path(folder)
    hint = "run `labkit build` to create the lab's models, or pass --model a folder written by save_pretrained"
    if not folder.is_dir():
        raise ModelFolderError(f"model folder {folder} does not exist; {hint}")
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise ModelFolderError(f"{folder} has no config.json, so it is not a model folder; {hint}")
    if not (folder / "model.safetensors").is_file():
        raise ModelFolderError(f"{folder} has no model.safetensors (the lab never loads pickled weights); {hint}")
    try:
        arch = json.loads(cfg_file.read_text(encoding="utf-8"))["architectures"][0]
        cls = getattr(transformers, arch)
        return cls.from_pretrained(folder, use_safetensors=True, **kwargs)
    except Exception as err:  # corrupt JSON, truncated weights, unknown class...
        raise ModelFolderError(f"cannot open the model in {folder} ({type(err).__name__}: {str(err)[:160]}); "
                               f"the folder may be corrupt — rebuild it with `labkit build`") from None


def load_model(folder: str | Path) -> tuple[nn.Module, transformers.PreTrainedTokenizerBase]:
    """Open a model folder as a labkit model (eval mode) and its tokenizer."""
    hf_model = load_hf_model(folder)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    except Exception as err:
        raise ModelFolderError(f"cannot open the tokenizer in {folder} ({type(err).__name__}); rebuild it with "
                               f"`labkit build`") from None
    return from_hf(hf_model).eval(), tokenizer
