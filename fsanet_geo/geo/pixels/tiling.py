"""Tile windows over a scene: pure integer arithmetic, no I/O.

Windows step by ``stride = tile_size - overlap``; the last window along each axis is
shifted inward so that it stays full size and ends exactly on the scene edge. An object
no larger than ``overlap`` pixels along both axes therefore lies wholly inside at least
one window. A scene axis shorter than a tile gets one window of the scene's length; the
reader pads that tile to ``tile_size``.
"""

from __future__ import annotations

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.windows import TileWindow


def axis_starts(length: int, tile_size: int, overlap: int) -> list[int]:
    """Window start offsets (pixels) along one axis of ``length`` pixels, increasing."""
    if length <= tile_size:
        return [0]
    stride = tile_size - overlap
    last = length - tile_size
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def tile_windows(height: int, width: int, tile_size: int, overlap: int) -> list[TileWindow]:
    """All tile windows of a ``height`` x ``width`` pixel scene, in row-major order.

    Args:
        height, width: scene size in pixels (rows, columns).
        tile_size: tile side in pixels.
        overlap: pixels shared by neighbouring windows (at least; edge windows share more).

    Returns:
        Windows of ``min(tile_size, height)`` x ``min(tile_size, width)`` pixels covering the
        scene, without duplicates; window ``i`` is tile index ``i``.

    Raises:
        ConfigError: non-positive sizes, negative overlap, or ``overlap >= tile_size``.
    """
    if height < 1 or width < 1:
        raise ConfigError(f"scene size must be positive, got {height} x {width} pixels")
    if tile_size < 1:
        raise ConfigError(f"tile size must be positive, got {tile_size}")
    if overlap < 0:
        raise ConfigError(f"overlap must be >= 0, got {overlap}")
    if overlap >= tile_size:
        raise ConfigError(f"overlap ({overlap}) must be smaller than the tile size ({tile_size})")
    tile_h = min(tile_size, height)
    tile_w = min(tile_size, width)
    rows = axis_starts(height, tile_size, overlap)
    cols = axis_starts(width, tile_size, overlap)
    return [TileWindow(r, c, tile_h, tile_w) for r in rows for c in cols]
