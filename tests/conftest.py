"""Shared fixtures: one ci-scale `labkit build` per test session, reused by every test that needs models."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("LAB_SCALE", "ci")


@pytest.fixture(scope="session")
def ci_build(tmp_path_factory) -> Path:
    """A folder holding the lab's ci-scale models (fill-mask, sentiment, topic, ner, qa, translation).

    Set LABKIT_TEST_ARTIFACTS to a finished ci build to reuse it instead of building (a few minutes).
    """
    reuse = os.environ.get("LABKIT_TEST_ARTIFACTS")
    if reuse and (Path(reuse) / "report.json").exists():
        return Path(reuse)
    from labkit.build import build

    out = tmp_path_factory.mktemp("ci-build")
    build("ci", out, transfer=True, progress=False, log=lambda *_: None)
    return out
