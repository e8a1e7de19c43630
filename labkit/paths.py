"""Where the lab's builds live, and the checks on a build folder that need no model.

Light on purpose (no torch, no transformers): the command line runs these checks before it imports the
heavy modules, so a mistyped folder is answered in a fraction of a second rather than after ten seconds
of imports. The modules that do the work call the same checks, so each message has one home.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

__all__ = ["SCALE_NAMES", "NEEDS", "artifacts_root", "default_output_dir", "check_writable", "require_build"]

SCALE_NAMES = ("ci", "cpu", "gpu")  # the keys of labkit.scales.SCALES (a test checks that they agree)


def artifacts_root() -> Path:
    """The repository's artifacts/ when labkit runs from a checkout (an editable install, as make
    and Colab do), so a notebook in notebooks/ finds what `make demo` built; else ./artifacts."""
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file() and (repo / "notebooks").is_dir():
        return repo / "artifacts"
    return Path("artifacts")


def default_output_dir(scale: str) -> Path:
    """$LABKIT_ARTIFACTS/<scale>, else the checkout's artifacts/<scale> (ignored by git)."""
    root = os.environ.get("LABKIT_ARTIFACTS")
    return (Path(root) if root else artifacts_root()) / scale


def check_writable(out: Path) -> None:
    """Create ``out`` and write a probe file into it; PermissionError saying what to do if that fails."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"cannot write to {out} ({err.strerror}); choose another folder with --out") from None


# what each step that adds to (or reads) a build needs in its folder: (paths, purpose, build flags, kind of build)
NEEDS = {
    "gpt": (("report.json", "tokenizer"), "to add the mini-GPT to", "", ""),
    "assistant": (("report.json",), "to add the assistant to", " --assistant", ""),
    "prompting": (("report.json", "fill-mask/model.safetensors"), "to measure prompting on", "", " with a masked LM"),
    "real": (("report.json", "fill-mask/model.safetensors"), "to add the real model to", " --real", ""),
    "audit": (("report.json", "tokenizer"), "to audit", "", ""),
    "bench": (("report.json",), "to bench", "", ""),
}


def require_build(out: str | Path, scale: str, step: str) -> None:
    """ValueError unless the build in ``out`` has what ``step`` (a key of NEEDS) needs. The message names the
    scale, the folder and the command that makes the build, e.g. "no ci-scale build in X to add the
    assistant to; run labkit build --scale ci --assistant --out X"."""
    if step not in NEEDS:
        raise ValueError(f"unknown step {step!r}; choose among {list(NEEDS)}")
    needs, purpose, flags, kind = NEEDS[step]
    out = Path(out)
    if all((out / need).exists() for need in needs):
        return
    where = "" if out == default_output_dir(scale) else f" --out {out}"
    raise ValueError(f"no {scale}-scale build{kind} in {out} {purpose}; run labkit build --scale {scale}{flags}{where}")
