"""The CJK font: matplotlib's bundled DejaVu has no Chinese glyphs (labels would be empty boxes),
so the project installs one (``make install``: Debian's fonts-wqy-microhei) and every renderer is
pointed at the file itself, never at whatever the font cache happens to hold."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from services.errors import ServiceError

# First found wins; SHUXIANG_CJK_FONT overrides (a .ttf, .otf or .ttc file).
CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)


@cache
def cjk_font() -> Path:
    override = os.environ.get("SHUXIANG_CJK_FONT")
    for candidate in ((override,) if override else ()) + CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path
    raise ServiceError("stats.no_font")


@cache
def matplotlib_family(font: Path) -> str:
    """Register ``font`` with matplotlib by file and return its family name."""
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(font))
    return str(font_manager.FontProperties(fname=str(font)).get_name())
