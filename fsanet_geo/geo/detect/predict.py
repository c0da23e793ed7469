"""Tiles -> detections in scene pixels: the predictor call, filtering, nodata rejection.

B = tiles in a predictor batch, C = bands, T = tile side (pixels), N = detections.
A tile's boxes come back in tile pixels; they are clipped to the tile's window, filtered
(score, classes, empty boxes, mostly-nodata boxes) and shifted to scene pixels.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.detect.nonfinite import NonFiniteWatch
from fsanet_geo.geo.detect.predictor_output import CONTRACT, output_array, warn_unknown_labels
from fsanet_geo.geo.pixels.reader import TileData
from fsanet_geo.geo.settings import DetectSettings, Predictor


def class_filter(classes: Sequence[str] | None, class_names: Sequence[str]) -> np.ndarray | None:
    """Label indexes (int64, sorted) to keep for the class names ``classes``; None keeps all.

    Raises :class:`ConfigError` for a name the predictor does not know.
    """
    if not classes:
        return None
    unknown = [c for c in classes if c not in class_names]
    if unknown:
        known = ", ".join(class_names) if class_names else "none (the predictor has no class_names)"
        raise ConfigError(f"unknown class name(s) {unknown}; known: {known}")
    return np.array(sorted(list(class_names).index(c) for c in classes), np.int64)


MAX_GROUP_TILES = 256
"""A batch closes after this many tiles even with fewer than ``batch_size`` non-empty ones, so
that a run over mostly empty tiles reports progress and journals its work as it goes."""


def batches(tiles: Iterator[TileData], batch_size: int, max_tiles: int = MAX_GROUP_TILES) -> Iterator[list[TileData]]:
    """Consecutive tiles holding ``batch_size`` non-empty ones (empty tiles ride along), or
    ``max_tiles`` tiles in all, whichever comes first."""
    group: list[TileData] = []
    full = 0
    for tile in tiles:
        group.append(tile)
        full += not tile.empty
        if full == batch_size or len(group) >= max(max_tiles, batch_size):
            yield group
            group, full = [], 0
    if group:
        yield group


class TilePredictor:
    """A predictor on one device with a run's filters: ``tiles -> Detections`` in scene pixels.

    A ``torch.nn.Module`` predictor is put in eval mode and moved to ``device`` on creation.
    """

    def __init__(
        self, predictor: Predictor, device: torch.device, settings: DetectSettings, keep_labels: np.ndarray | None
    ) -> None:
        self.predictor = predictor
        self.device = device
        self.half = settings.half
        self.score_thr = settings.score_thr
        self.nodata_max_fraction = settings.nodata_max_fraction
        self.keep_labels = keep_labels
        self.watch = NonFiniteWatch(predictor)
        self.class_names = [str(c) for c in (getattr(predictor, "class_names", None) or [])]
        self.warned_labels: set[int] = set()
        postprocess = getattr(predictor, "postprocessor", None)
        self.max_per_img: int | None = getattr(postprocess, "max_per_img", None)
        self.warned_cap = False
        if isinstance(predictor, torch.nn.Module):
            predictor.eval()
            param = next(predictor.parameters(), None)
            if param is not None and param.device != device:
                predictor.to(device)

    def __call__(self, tiles: Sequence[TileData]) -> Detections:
        """Run the predictor on the non-empty ``tiles`` (one batch); detections in scene pixels."""
        full = [t for t in tiles if not t.empty]
        if not full:
            return Detections()
        batch = torch.from_numpy(np.stack([t.image for t in full]))
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        autocast = (
            torch.autocast(device_type="cuda", dtype=torch.float16) if self.half else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            outputs = self.predictor(batch)
        if not isinstance(outputs, (list, tuple)):
            raise TypeError(f"{CONTRACT}; got {type(outputs).__name__} for a batch of {len(full)} tiles")
        self.watch.check(outputs)
        if len(outputs) != len(full):
            raise ValueError(f"the predictor returned {len(outputs)} results for a batch of {len(full)} tiles")
        return Detections.concat([self.tile_detections(t, out) for t, out in zip(full, outputs)])

    def tile_detections(self, tile: TileData, out: dict[str, torch.Tensor]) -> Detections:
        """Filter one tile's raw output and move it to scene pixels (float64 [N, 4] xyxy), undoing
        the tile's zoom (a resampled read)."""
        boxes = output_array(out, "boxes", np.float64)
        scores = output_array(out, "scores", np.float32)
        labels = output_array(out, "labels", np.int64)
        warn_unknown_labels(labels, self.class_names, self.warned_labels)
        self.check_cap(tile, len(scores))
        keep = scores >= self.score_thr
        if self.keep_labels is not None:
            keep &= np.isin(labels, self.keep_labels)
        w, (zx, zy) = tile.window, tile.zoom
        boxes = boxes.copy()
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0.0, w.width * zx)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0.0, w.height * zy)
        keep &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        if tile.valid is not None and self.nodata_max_fraction < 1.0 and keep.any():
            keep &= nodata_fraction(tile.valid, boxes) <= self.nodata_max_fraction
        boxes = boxes[keep] / np.array([zx, zy, zx, zy]) + np.array([w.col_off, w.row_off, w.col_off, w.row_off])
        return Detections(boxes, scores[keep], labels[keep], np.full(int(keep.sum()), tile.index, np.int64))

    def check_cap(self, tile: TileData, count: int) -> None:
        """Warn once when a tile's detections reach the model's per-image cap (``max_per_img``,
        scaled with the tile area): more objects may lie in it than the model returned."""
        if self.max_per_img is None or self.warned_cap:
            return
        from fsanet_geo.model.postprocess import scaled_cap

        cap = scaled_cap(self.max_per_img, (int(tile.image.shape[-2]), int(tile.image.shape[-1])))
        if count >= cap:
            self.warned_cap = True
            w = tile.window
            warnings.warn(f"tile {tile.index} (col {w.col_off}, row {w.row_off}) reached the model's cap of {cap} "
                          f"detections (max_per_img {self.max_per_img} for 800 px, scaled to the tile): objects "
                          "beyond it are lost; use a smaller --tile-size or a higher --score-thr", stacklevel=2)


def nodata_fraction(valid: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Fraction (0..1) of the pixels under each box that hold no data.

    Args:
        valid: bool [H, W] tile mask, True where the tile holds data.
        boxes: float [N, 4] xyxy in tile pixels.

    Returns:
        float [N]; a box narrower than a pixel counts the pixel it touches.
    """
    invalid = np.zeros((valid.shape[0] + 1, valid.shape[1] + 1), np.int64)
    invalid[1:, 1:] = np.cumsum(np.cumsum(~valid, axis=0, dtype=np.int64), axis=1)
    x0 = np.floor(boxes[:, 0]).astype(np.int64)
    y0 = np.floor(boxes[:, 1]).astype(np.int64)
    x1 = np.maximum(np.ceil(boxes[:, 2]).astype(np.int64), x0 + 1)
    y1 = np.maximum(np.ceil(boxes[:, 3]).astype(np.int64), y0 + 1)
    x1 = np.minimum(x1, valid.shape[1])
    y1 = np.minimum(y1, valid.shape[0])
    count = invalid[y1, x1] - invalid[y0, x1] - invalid[y1, x0] + invalid[y0, x0]
    area = (x1 - x0) * (y1 - y0)
    return count / np.maximum(area, 1)
