"""Windows a run could not read (corrupt blocks), and GDAL's error text made one clean line.

GDAL stops at the first unreadable block, and so does a run by default. With
``DetectSettings.skip_unreadable`` (``--skip-unreadable``) such a tile is skipped like a tile
without data; each one is recorded as an :class:`UnreadableWindow` in the run's summary and
in the output's layer metadata (key :data:`METADATA_KEY`, JSON; GeoPackage and FlatGeobuf,
the formats GDAL keeps layer metadata in).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fsanet_geo.errors import first_line

METADATA_KEY = "fsanet_unreadable_windows"
_GDAL_TAIL = "See previous exception for details."


def gdal_error_text(exc: BaseException, path: Path | None = None) -> str:
    """One line for a rasterio/GDAL error: its first line without GDAL's "See previous exception
    for details." tail, with that previous exception (the actual cause) in brackets."""
    text = first_line(exc)
    if text.endswith(_GDAL_TAIL):
        text = text[: -len(_GDAL_TAIL)].strip().rstrip(".")
        cause = exc.__cause__ or exc.__context__
        if cause is not None and str(cause).strip():
            detail = first_line(cause).rstrip(".")
            name = Path(str(path)).name if path is not None else None  # a local path or a URL
            if name and detail.startswith(f"{name}, "):
                detail = detail[len(name) + 2:]
            text = f"{text} ({detail})" if text else detail
    return text or type(exc).__name__


@dataclass(frozen=True)
class UnreadableWindow:
    """A tile skipped because its pixels could not be read: scene file name, tile index, window
    ``(row_off, col_off, height, width)`` in scene pixels, and GDAL's reason."""

    scene: str
    tile: int
    window: tuple[int, int, int, int]
    reason: str

    def describe(self) -> str:
        return f"{self.scene} window {self.window}"


def metadata_value(windows: list[UnreadableWindow]) -> str:
    """The layer-metadata value recording ``windows`` (a JSON list of objects)."""
    return json.dumps([{"scene": w.scene, "tile": w.tile, "window": list(w.window), "reason": w.reason}
                       for w in windows])
