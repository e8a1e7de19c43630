"""On-disk cache of generated DatasetDicts.

Each dataset is saved with ``save_to_disk`` under ``$LABKIT_CACHE`` (default
``~/.cache/labkit``) in a folder named after the task, size and seed plus a SHA-256 of
every argument, the generator version and the data files' fingerprint. A folder is
written under a temporary name and renamed when complete, and carries a marker file;
one that is incomplete or fails to load is deleted and generated again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import datasets
from datasets import DatasetDict, load_from_disk

CACHE_ENV = "LABKIT_CACHE"
MARKER = "tinyworld.json"
logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Root of the cache: ``$LABKIT_CACHE`` or ``~/.cache/labkit``."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path.home() / ".cache" / "labkit"


def cache_key(params: dict[str, Any]) -> str:
    """SHA-256 of ``params`` written as sorted JSON."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def cached(name: str, params: dict[str, Any], build: Callable[[], DatasetDict]) -> DatasetDict:
    """Load the dataset cached for ``params``, or ``build`` and cache it.

    ``name`` is a readable prefix for the folder (e.g. ``"sentiment-cpu-seed0"``).
    """
    path = cache_dir() / "tinyworld" / f"{name}-{cache_key(params)[:16]}"
    if (path / MARKER).is_file():
        try:
            return _checked(load_from_disk(str(path)))
        except Exception as error:  # a damaged cache is not fatal: rebuild it
            logger.warning("regenerating damaged cache %s (%s)", path, error)
    if path.exists():
        shutil.rmtree(path)
    dataset = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    if partial.exists():
        shutil.rmtree(partial)
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # library code: no progress output the caller did not ask for
    try:
        dataset.save_to_disk(str(partial))
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    (partial / MARKER).write_text(json.dumps(params, sort_keys=True, indent=1))
    try:
        os.replace(partial, path)
    except OSError:  # another process finished the same dataset first
        shutil.rmtree(partial, ignore_errors=True)
    return load_from_disk(str(path))


def _checked(dataset: DatasetDict) -> DatasetDict:
    """``dataset`` after reading its first and last rows (fails on damaged files)."""
    for split in dataset.values():
        if len(split):
            split[0], split[len(split) - 1]
    return dataset
