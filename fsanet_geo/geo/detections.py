"""A plain container of detections in scene pixels (numpy, no torch, no geometry)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Detections:
    """N detections.

    Attributes:
        boxes: float64 [N, 4] (x_min, y_min, x_max, y_max) in scene pixels; pixel edges,
            so a box covering exactly pixel column 0 has x_min = 0, x_max = 1.
        scores: float32 [N].
        labels: int64 [N], 0-based indices into the predictor's class names.
        tile: int64 [N], index of the tile each detection came from (-1 when unknown).
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    tile: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        n = len(self.boxes)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(n)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(n)
        if self.tile is None or len(np.asarray(self.tile)) == 0 and n:
            self.tile = np.full(n, -1, np.int64)
        self.tile = np.asarray(self.tile, dtype=np.int64).reshape(n)

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, index: np.ndarray) -> "Detections":
        """A subset (boolean mask or integer indices)."""
        return Detections(self.boxes[index], self.scores[index], self.labels[index], self.tile[index])

    @staticmethod
    def concat(parts: "list[Detections]") -> "Detections":
        """All detections of ``parts``, in order."""
        if not parts:
            return Detections()
        return Detections(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.tile for p in parts]),
        )
