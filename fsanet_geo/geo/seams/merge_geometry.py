"""Tile geometry of the seam merge and the clipping of detections to their tiles.

Letters: K = tiles, N = detections. All coordinates are scene pixels (pixel edges).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.windows import TileWindow


@dataclass
class PreparedDetections:
    """N detections of one or more tiles after clipping to their tiles.

    Attributes:
        boxes: float64 [N, 4] xyxy scene pixels, inside the detection's tile window.
        scores: float64 [N]. labels, tiles: int64 [N].
        seq: int64 [N] position of each detection among those of its tile, in input order.
        whole: bool [N], False for a box truncated by an interior tile edge.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    tiles: np.ndarray
    seq: np.ndarray
    whole: np.ndarray

    def select(self, index: np.ndarray) -> "PreparedDetections":
        """A subset (boolean mask or integer indices)."""
        return PreparedDetections(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    def to_detections(self, scores: np.ndarray | None = None) -> Detections:
        """As :class:`Detections` (``tile`` = source tile), with ``scores`` if given."""
        return Detections(self.boxes, self.scores if scores is None else scores, self.labels, self.tiles)


class TileGeometry:
    """The K tile windows as float64 [K] edges clipped to the scene, plus which of their
    edges are interior (the scene goes on beyond them)."""

    def __init__(self, windows: Sequence[TileWindow], height: int, width: int) -> None:
        if height <= 0 or width <= 0:
            raise ConfigError(f"scene size must be positive, got {height} x {width}")
        w = np.asarray([tuple(win) for win in windows], np.int64).reshape(-1, 4)
        if len(w) == 0:
            raise ConfigError("no tile windows given")
        row, col, h, wd = w.T
        self.x0 = np.clip(col, 0, width).astype(np.float64)
        self.y0 = np.clip(row, 0, height).astype(np.float64)
        self.x1 = np.clip(col + wd, 0, width).astype(np.float64)
        self.y1 = np.clip(row + h, 0, height).astype(np.float64)
        if np.any((self.x1 <= self.x0) | (self.y1 <= self.y0)):
            raise ConfigError("every tile window must overlap the scene")
        # An edge is interior when the scene goes on beyond it.
        self.left_in = col > 0
        self.top_in = row > 0
        self.right_in = col + wd < width
        self.bottom_in = row + h < height
        self._neighbours: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.x0)

    def neighbours(self, t: int) -> np.ndarray:
        """Tiles (other than ``t``) whose windows overlap tile ``t``'s with positive area."""
        cached = self._neighbours.get(t)
        if cached is None:
            hit = (np.minimum(self.x1, self.x1[t]) > np.maximum(self.x0, self.x0[t])) & (
                np.minimum(self.y1, self.y1[t]) > np.maximum(self.y0, self.y0[t])
            )
            hit[t] = False
            cached = self._neighbours[t] = np.flatnonzero(hit)
        return cached

    def touches(self, boxes: np.ndarray, tiles: np.ndarray) -> np.ndarray:
        """bool [N, len(tiles)]: box i meets window tiles[k] with positive area."""
        b = boxes[:, None, :]
        return (np.minimum(b[..., 2], self.x1[tiles]) > np.maximum(b[..., 0], self.x0[tiles])) & (
            np.minimum(b[..., 3], self.y1[tiles]) > np.maximum(b[..., 1], self.y0[tiles])
        )


def prepare_detections(
    geom: TileGeometry,
    dets: Detections,
    tiles: np.ndarray,
    *,
    edge_margin: float,
    min_score: float | None,
) -> PreparedDetections:
    """Clip to each detection's tile window, drop empty (and too-low soft-NMS) boxes, flag truncation.

    Args:
        dets: N detections in scene pixels; ``tiles`` int64 [N] their tile indices.
        edge_margin: pixels; a box this close to an interior tile edge is truncated.
        min_score: drop scores below it (soft-NMS), or None to keep every score.
    """
    n = len(dets)
    order = np.argsort(tiles, kind="stable")
    seq = np.empty(n, np.int64)
    if n:
        starts = np.r_[0, np.flatnonzero(np.diff(tiles[order])) + 1]
        counts = np.diff(np.r_[starts, n])
        seq[order] = np.arange(n) - np.repeat(starts, counts)
    x0, y0, x1, y1 = geom.x0[tiles], geom.y0[tiles], geom.x1[tiles], geom.y1[tiles]
    boxes = np.stack(
        [
            np.clip(dets.boxes[:, 0], x0, x1),
            np.clip(dets.boxes[:, 1], y0, y1),
            np.clip(dets.boxes[:, 2], x0, x1),
            np.clip(dets.boxes[:, 3], y0, y1),
        ],
        axis=1,
    ).reshape(n, 4)
    truncated = (
        (geom.left_in[tiles] & (boxes[:, 0] < x0 + edge_margin))
        | (geom.top_in[tiles] & (boxes[:, 1] < y0 + edge_margin))
        | (geom.right_in[tiles] & (boxes[:, 2] > x1 - edge_margin))
        | (geom.bottom_in[tiles] & (boxes[:, 3] > y1 - edge_margin))
    )
    scores = dets.scores.astype(np.float64)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if min_score is not None:
        keep &= scores >= min_score
    return PreparedDetections(boxes, scores, dets.labels, tiles, seq, ~truncated).select(keep)
