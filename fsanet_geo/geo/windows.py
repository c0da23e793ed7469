"""The tile window type shared by tiling, reading and merging.

All values are integer scene pixels; rows before columns, as in rasterio.
"""

from __future__ import annotations

from typing import NamedTuple


class TileWindow(NamedTuple):
    """A rectangle of scene pixels: rows [row_off, row_off + height), cols [col_off, col_off + width)."""

    row_off: int
    col_off: int
    height: int
    width: int

    @property
    def row_end(self) -> int:
        return self.row_off + self.height

    @property
    def col_end(self) -> int:
        return self.col_off + self.width

    def to_rasterio(self) -> "rasterio.windows.Window":  # type: ignore[name-defined]  # noqa: F821
        """The same rectangle as a :class:`rasterio.windows.Window`."""
        from rasterio.windows import Window

        return Window(self.col_off, self.row_off, self.width, self.height)
