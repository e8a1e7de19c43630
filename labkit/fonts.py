"""Chinese that renders in plots: find an open-licensed CJK font and register it with matplotlib.

matplotlib's default font (DejaVu Sans) has no Chinese glyphs, so a label like 天气 draws as
empty boxes. ``use_cjk_font()`` finds a CJK font and puts it *behind* DejaVu Sans in
matplotlib's fallback list: Latin text keeps its usual look, and each Chinese glyph comes from
the CJK font.

Where the font comes from, first found wins:

1. the ``cvttf-notosanscjk-regular`` package from PyPI (Noto Sans CJK, SIL Open Font License),
   which ``pip install "labkit[lab]"`` brings — on a laptop, in Colab, and in ``make install``;
2. a CJK font the system already has (Debian's ``fonts-noto-cjk``, macOS's PingFang, Windows'
   Microsoft YaHei, ...), as matplotlib's font manager lists it.

``labkit.viz`` calls ``use_cjk_font()`` when it is imported; chapters that plot without it
call it themselves.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["cjk_font_path", "use_cjk_font", "SYSTEM_CJK_FAMILIES"]

# Families that cover the CJK Unified Ideographs, in order of preference, for fonts already installed.
SYSTEM_CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK JP", "Source Han Sans SC",
                       "Source Han Sans CN", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "PingFang SC",
                       "Heiti SC", "Microsoft YaHei", "SimHei")
_PACKAGE = "cvttf_NotoSansCJK_Regular"
_registered: str | None = None


def _package_font() -> Path | None:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        fonts = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".otf", ".ttf", ".ttc"))
        if fonts:
            return fonts[0]
    return None


def cjk_font_path() -> Path | None:
    """The file of the CJK font ``use_cjk_font`` would register, or None when there is none."""
    found = _package_font()
    if found is not None:
        return found
    from matplotlib import font_manager

    by_family = {f.name: Path(f.fname) for f in font_manager.fontManager.ttflist}
    for family in SYSTEM_CJK_FAMILIES:
        if family in by_family:
            return by_family[family]
    return None


def use_cjk_font(*, required: bool = False) -> str | None:
    """Register a CJK font with matplotlib as the fallback behind its default sans-serif font.

    Returns the family name registered (e.g. ``"Noto Sans CJK TC"``), or None when no CJK font
    exists here — then Chinese shows as boxes, and ``required=True`` raises instead, saying how
    to get one. Calling it again is cheap and changes nothing.
    """
    global _registered
    import matplotlib as mpl
    from matplotlib import font_manager

    if _registered is None:
        path = cjk_font_path()
        if path is None:
            if required:
                raise RuntimeError('no CJK font found for matplotlib: pip install "labkit[lab]" (it brings '
                                   "cvttf-notosanscjk-regular), or install Debian's fonts-noto-cjk")
            return None
        font_manager.fontManager.addfont(str(path))
        _registered = font_manager.FontProperties(fname=str(path)).get_name()
    # A list of families is matplotlib's per-glyph fallback: each character comes from the first
    # family that has it. DejaVu Sans (matplotlib's own font, always present) keeps Latin text's look.
    mpl.rcParams["font.family"] = ["DejaVu Sans", _registered]
    return _registered
