"""The environment the suite runs in is the one requirements.lock pins.

`make install` installs through requirements.lock (pip -c), so every package that labkit[all]
needs, torch included, comes at the version the suite last passed with. These tests fail when
the running environment drifts from the lock (a package upgraded, added or missing), e.g. when
transformers is not the pinned release. After `make lock`, run the whole suite again.
"""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)$")
# What a CUDA build of torch brings along. The lock pins the CPU build (the wheel the lab's build
# machines keep on disk); where pip takes PyPI's torch==2.13.0 instead, a CUDA build on Linux,
# these come unpinned, and the tests say so rather than fail.
CUDA_COMPANION = re.compile(r"^(nvidia-.+|cuda-.+|triton)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """{normalised name: pinned version} from a lock of `name==version` lines and # comments."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}:{number}: not a name==version pin: {raw!r}"
        name = _norm(match.group(1))
        assert name not in pins, f"{path.name}:{number}: {name} is pinned twice"
        pins[name] = match.group(2)
    return pins


def installed_labkit() -> metadata.Distribution | None:
    """labkit's installed metadata; not the labkit.egg-info that a build leaves in the source tree
    (found too when the tests run from the repository root, installed or not)."""
    for dist in metadata.distributions(name="labkit"):
        if Path(dist.locate_file("")).resolve() != ROOT:
            return dist
    return None


def dependency_closure(root: metadata.Distribution, extras: tuple[str, ...] = ("all",)):
    """Installed distributions that `root[extras]` needs, followed through every requirement
    (and the extras each one asks for) whose marker holds here: ({name: version}, [missing])."""
    installed: dict[str, str] = {}
    missing: list[str] = []
    todo = [(root.metadata["Name"], "")] + [(root.metadata["Name"], extra) for extra in extras]
    done: set[tuple[str, str]] = set()
    while todo:
        name, extra = todo.pop()
        if (_norm(name), extra) in done:
            continue
        done.add((_norm(name), extra))
        try:
            dist = root if _norm(name) == _norm(root.metadata["Name"]) else metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name if not extra else f"{name}[{extra}]")
            continue
        installed[_norm(name)] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            todo.append((req.name, ""))
            todo.extend((req.name, wanted) for wanted in req.extras)
    return installed, missing


def _same(installed: str, pinned: str) -> bool:
    # torch==2.13.0 is met by the installed 2.13.0+cpu: local labels (+cpu) do not count, as in pip.
    return Version(installed).public == Version(pinned).public


def unpinned(closure: dict[str, str], pins: dict[str, str]) -> list[str]:
    return sorted(
        f"{name}=={version}"
        for name, version in closure.items()
        if name not in pins and not CUDA_COMPANION.match(name)
    )


def drifted(closure: dict[str, str], pins: dict[str, str]) -> list[str]:
    return sorted(
        f"{name}: installed {version}, locked {pins[name]}"
        for name, version in closure.items()
        if name in pins and not _same(version, pins[name])
    )


def stale(closure: dict[str, str], pins: dict[str, str]) -> list[str]:
    return sorted(f"{name}=={version}" for name, version in pins.items() if name not in closure)


@pytest.fixture(scope="module")
def pins() -> dict[str, str]:
    assert LOCK.is_file(), f"{LOCK} is missing; make lock writes it"
    return read_lock()


@pytest.fixture(scope="module")
def closure() -> dict[str, str]:
    labkit = installed_labkit()
    if labkit is None:
        pytest.skip("labkit is not installed as a distribution (make install, or pip install -e .[all]), "
                    "so there are no dependencies to compare with requirements.lock")
    installed, missing = dependency_closure(labkit)
    assert not missing, f"labkit[all] needs these, and they are not installed: {sorted(missing)}"
    installed.pop("labkit")
    return installed


def test_every_dependency_of_labkit_all_is_pinned(pins, closure):
    assert not unpinned(closure, pins), (
        f"installed dependencies of labkit[all] that requirements.lock does not pin: {unpinned(closure, pins)}; "
        "run make lock, then the suite"
    )


def test_installed_versions_are_the_pinned_ones(pins, closure):
    assert not drifted(closure, pins), (
        f"the environment is not the locked one (make clean && make install): {drifted(closure, pins)}"
    )


def test_every_pin_is_a_dependency_installed_here(pins, closure):
    # A pin that labkit[all] no longer needs, or that this environment lacks, means a stale lock.
    assert not stale(closure, pins), f"requirements.lock pins what labkit[all] does not use here: {stale(closure, pins)}"


def test_torch_is_pinned_to_the_offline_cpu_release(pins, closure):
    # The Makefile names the torch release make lock installs; the lock pins that release.
    wanted = re.search(r"^TORCH\s*:?=\s*torch==(\S+)\s*$", (ROOT / "Makefile").read_text(), re.M)
    assert wanted, "the Makefile no longer names torch==<version> in TORCH"
    assert pins.get("torch") == wanted.group(1), f"lock: torch=={pins.get('torch')}, Makefile: {wanted.group(0)}"
    cuda = [name for name in pins if CUDA_COMPANION.match(name)]
    assert not cuda, f"CUDA packages in the lock: {cuda}"
    here = sorted(f"{name}=={version}" for name, version in closure.items() if CUDA_COMPANION.match(name))
    if here:
        pytest.skip(f"torch here is a CUDA build; the lock pins the CPU build, so these are unpinned: {here}")


def test_the_checks_catch_drift(pins, closure):
    # What the checks above would report if transformers moved one release, or lost its pin.
    assert "transformers" in closure and "transformers" in pins
    moved = {**closure, "transformers": "5.23.0" if pins["transformers"] != "5.23.0" else "5.24.0"}
    assert [line for line in drifted(moved, pins) if line.startswith("transformers:")]
    assert "transformers" in " ".join(unpinned(closure, {k: v for k, v in pins.items() if k != "transformers"}))
    assert stale(closure, {**pins, "nvidia-cublas": "13.0"}) == ["nvidia-cublas==13.0"]
    assert _same("2.13.0+cpu", "2.13.0") and not _same("5.24.1", "5.24.0")
