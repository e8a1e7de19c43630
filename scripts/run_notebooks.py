"""Re-execute the chapters and store their outputs, timing each one: `make notebooks`.

    python scripts/run_notebooks.py                 # every chapter, at LAB_SCALE=cpu
    python scripts/run_notebooks.py 05 05b --scale ci

For each chapter it syncs the .py into the .ipynb (jupytext), executes the notebook in place
with nbclient (what nbconvert --execute runs) from the notebooks/ folder, syncs back, and
measures the wall time. Now and then the kernel finishes a cell and the reply never reaches
the client, which then waits for the whole cell timeout; a cell that times out is therefore
tried once more from a fresh kernel, and only the run that finished is timed. The times
go to notebooks/run_times.json (chapter → seconds, with the scale and the machine), which the
chapters' "the code runs in about ..." lines and notebooks/README.md quote.

The chapters read their models from the build of the same scale (`labkit build --scale cpu`,
which `make demo` runs); without one, chapters 04–07 pretrain or build what they need first,
which takes longer. Run this with no other heavy job on the machine: the times are the point.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TIMES = NOTEBOOKS / "run_times.json"


def chapters(selected: list[str]) -> list[Path]:
    every = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]*_*.py"))
    if not selected:
        return every
    chosen = [p for p in every if p.name.split("_")[0] in selected]
    unknown = set(selected) - {p.name.split("_")[0] for p in chosen}
    if unknown:
        raise SystemExit(f"no chapter {sorted(unknown)}; chapters are {[p.name.split('_')[0] for p in every]}")
    return chosen


def run(cmd: list[str], env: dict) -> None:
    subprocess.run(cmd, cwd=NOTEBOOKS, env=env, check=True)


def execute(ipynb: Path, timeout: int, env: dict, tries: int = 2) -> float:
    """Execute ``ipynb`` in place; the wall time of the run that finished, in seconds."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    os.environ.update(env)  # the kernel inherits LAB_SCALE
    for attempt in range(1, tries + 1):
        nb = nbformat.read(ipynb, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOKS)}})
        start = time.perf_counter()
        try:
            client.execute()
        except CellTimeoutError:
            if attempt == tries:
                raise
            print(f"{ipynb.stem}: a cell passed {timeout} s; running the chapter again", flush=True)
            continue
        seconds = time.perf_counter() - start
        nbformat.write(nb, ipynb)
        return seconds
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="chapter numbers (00, 05b, ...); default: all")
    parser.add_argument("--scale", default="cpu", choices=("ci", "cpu", "gpu"))
    parser.add_argument("--timeout", type=int, default=240, help="seconds per cell before the run is retried")
    args = parser.parse_args(argv)
    env = {**os.environ, "LAB_SCALE": args.scale}
    bin_dir = Path(sys.executable).parent
    times = json.loads(TIMES.read_text(encoding="utf-8")) if TIMES.exists() else {}
    for py in chapters(args.chapters):
        ipynb = py.with_suffix(".ipynb")
        run([str(bin_dir / "jupytext"), "--sync", py.name], env)
        seconds = execute(ipynb, args.timeout, env)
        run([str(bin_dir / "jupytext"), "--sync", ipynb.name], env)
        print(f"{py.stem}: {seconds:.0f} s at LAB_SCALE={args.scale}", flush=True)
        times.setdefault(args.scale, {})[py.stem] = round(seconds)
        times["machine"] = f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}"
        TIMES.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
