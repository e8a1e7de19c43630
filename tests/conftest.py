"""Shared set-up: one ci-scale `labkit build` per test session, reused by every test that needs models.

The build goes to $LABKIT_ARTIFACTS/ci. Unless LABKIT_ARTIFACTS is already set, it points to
a fresh temporary folder, so each test session builds from scratch — through the command
line, exactly as a user would. Notebooks executed later in the same session (nbval) inherit
the variable and reuse those models. Set LABKIT_ARTIFACTS to a folder with a finished ci
build to skip the build while iterating.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("LAB_SCALE", "ci")
os.environ.setdefault("LABKIT_ARTIFACTS", tempfile.mkdtemp(prefix="labkit-test-artifacts-"))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def ci_build() -> Path:
    """The folder of a finished ci-scale build (fill-mask, sentiment, topic, ner, qa, translation), with
    the real-model stage (real-sentiment, real-topic and the real-vs-mini comparison) and the
    mini-GPT (text-generation)."""
    from labkit.build import default_output_dir

    out = default_output_dir("ci")
    if not (out / "report.json").is_file() or not all((out / name / "model.safetensors").is_file()
                                                      for name in ("real-topic", "text-generation")):
        cmd = [sys.executable, "-m", "labkit", "build", "--scale", "ci", "--real", "--out", str(out), "--quiet"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return out
