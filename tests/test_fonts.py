"""Chinese renders in plots: labkit registers a CJK font with matplotlib, and a drawn label has every glyph."""
from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from labkit.fonts import cjk_font_path, use_cjk_font  # noqa: E402


def _draw(text: str) -> None:
    """Draw ``text`` as a title and tick labels; matplotlib warns "Glyph ... missing" for each box it draws."""
    fig, ax = plt.subplots()
    try:
        ax.set_title(text)
        ax.set_xticks([0, 1], [text, "[CLS]"])
        fig.canvas.draw()
    finally:
        plt.close(fig)


def test_the_project_install_brings_a_cjk_font():
    path = cjk_font_path()
    assert path is not None and path.is_file(), "no CJK font: make install should bring cvttf-notosanscjk-regular"


def test_a_chinese_label_renders_with_no_missing_glyph():
    assert use_cjk_font(required=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font")
        _draw("今天天气怎么样？ What is the weather like today? 自注意力 −1")


def test_without_the_font_matplotlib_draws_boxes_and_says_so():
    """The check above can fail: with the default font alone, the same label warns about missing glyphs."""
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        with pytest.warns(UserWarning, match="missing from font"):
            _draw("天气")


def test_importing_viz_registers_the_font():
    import labkit.viz  # noqa: F401

    assert use_cjk_font() in matplotlib.rcParams["font.family"]
