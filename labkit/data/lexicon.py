"""Finding and reading TinyWorld's lexicons and templates.

The files live in ``data/tinyworld/`` at the repository root (next to the ``labkit``
package in an editable install); the environment variable ``LABKIT_DATA_DIR`` points
elsewhere. TSV files hold word lists (one entry a line, with a header), JSON files hold
templates and small vocabularies.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import labkit

DATA_DIR_ENV = "LABKIT_DATA_DIR"


def data_dir() -> Path:
    """Directory holding TinyWorld's lexicon files (``$LABKIT_DATA_DIR`` if set)."""
    return _data_dir(os.environ.get(DATA_DIR_ENV))


@functools.lru_cache(maxsize=8)
def _data_dir(override: str | None) -> Path:
    path = Path(override) if override else Path(labkit.__file__).resolve().parents[1] / "data" / "tinyworld"
    if not (path / "cities.tsv").is_file():
        raise FileNotFoundError(
            f"TinyWorld data files not found in {path}; set {DATA_DIR_ENV} to the folder "
            "holding cities.tsv, people_en_given.tsv, templates/, ..."
        )
    return path


@functools.lru_cache(maxsize=64)
def _read_tsv(path: Path) -> tuple[dict[str, str], ...]:
    with path.open(encoding="utf-8", newline="") as f:
        return tuple(dict(row) for row in csv.DictReader(f, delimiter="\t"))


@functools.lru_cache(maxsize=64)
def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_tsv(name: str) -> tuple[dict[str, str], ...]:
    """Rows of ``data_dir()/name`` as dicts keyed by the header line."""
    return _read_tsv(data_dir() / name)


def read_json(name: str) -> Any:
    """Parsed content of ``data_dir()/name`` (treat as read-only: it is cached)."""
    return _read_json(data_dir() / name)


def data_fingerprint() -> str:
    """SHA-256 over every data file's path and bytes, in sorted order (for cache keys)."""
    root = data_dir()
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
