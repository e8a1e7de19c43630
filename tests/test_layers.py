"""The layers keep to their side: labkit never imports apps, the models never import transformers,
importing an app loads no model, and the command line takes its choices from the library."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def _run(code: str, **env) -> None:
    """Run ``code`` in a fresh interpreter (nothing imported yet); fail with its stderr if it fails."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=300, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr[-3000:]


def test_labkit_imports_no_app():
    _run("""
        import importlib, pkgutil, sys
        import labkit

        for module in pkgutil.walk_packages(labkit.__path__, "labkit."):
            importlib.import_module(module.name)
        apps = sorted(m for m in sys.modules if m == "apps" or m.startswith("apps."))
        assert not apps, f"labkit imported {apps}"
    """)


@pytest.mark.parametrize("module", ["labkit.transformer", "labkit.heads"])
def test_models_are_plain_torch(module):
    _run(f"""
        import sys
        import {module}

        assert "labkit.hf" not in sys.modules and "transformers" not in sys.modules
    """)


def test_importing_the_apps_loads_no_model(tmp_path):
    """Importing every app makes no model store and opens no folder: the UI is built from a store passed in."""
    _run("""
        import labkit.folders

        def refuse(*args, **kwargs):
            raise AssertionError("a model was loaded at import")

        labkit.folders.load_model = labkit.folders.load_hf_model = refuse
        import apps.common

        made = []
        init = apps.common.ModelStore.__init__
        apps.common.ModelStore.__init__ = lambda self, *a, **kw: (made.append(a), init(self, *a, **kw))[1]
        import apps.attention, apps.classify, apps.dashboard, apps.generate, apps.qa, apps.serve, apps.translate

        assert made == [], f"stores made at import: {made}"
    """, LABKIT_MODELS=str(tmp_path / "missing"))


def test_demo_without_the_apps_extra_says_how_to_install_it(monkeypatch, capsys):
    from labkit.__main__ import main

    monkeypatch.setitem(sys.modules, "apps.serve", None)  # as if gradio (or apps/) were not installed
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install -e ".[apps]"' in err


def test_scale_choices_are_the_build_scales(monkeypatch, capsys, tmp_path):
    """The command line names the scales without importing them (labkit.paths.SCALE_NAMES, so that bad input
    is answered before torch loads); they must be exactly the scales the build knows."""
    import labkit.build
    from labkit.__main__ import main
    from labkit.paths import SCALE_NAMES

    assert SCALE_NAMES == tuple(labkit.build.SCALES)
    built = []

    def fake_build(scale, out, **kw):
        built.append(scale)
        return {"models": [], "seconds": {"total": 0}}

    monkeypatch.setattr(labkit.build, "build", fake_build)
    assert main(["build", "--scale", "ci", "--out", str(tmp_path)]) == 0 and built == ["ci"]
    with pytest.raises(SystemExit):
        main(["build", "--scale", "huge"])
    err = capsys.readouterr().err
    assert all(name in err for name in labkit.build.SCALES)


def test_the_command_line_answers_bad_folders_before_loading_torch(tmp_path):
    _run(f"""
        import sys
        from labkit.__main__ import main

        missing = {str(tmp_path / "missing")!r}
        for argv in (["build", "--scale", "ci", "--gpt-only", "--out", missing],
                     ["build", "--scale", "ci", "--assistant-only", "--out", missing],
                     ["build", "--scale", "ci", "--prompting-only", "--out", missing],
                     ["audit", "--scale", "ci", "--build", missing], ["bench", "--scale", "ci", "--build", missing],
                     ["audit", "--only", "bias,telepathy"]):
            assert main(argv) == 2, argv
        assert "torch" not in sys.modules
    """)
