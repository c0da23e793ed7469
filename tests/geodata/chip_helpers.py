"""Scenes and label sets for the chip, split and validation-block tests (built directly, not
through the vector loader)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from fsanet_geo.geo.pixels.reader import open_scene
from fsanet_geo.geodata.types import LabelSet, LabelSource, SceneLabels

TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4500000.0)


def write_scene(path: Path, data: np.ndarray, *, nodata: float | None = None, blocksize: int = 32) -> Path:
    """Write ``data`` [C, H, W] as a tiled GeoTIFF in EPSG:32633 with 0.5 m pixels."""
    count, height, width = data.shape
    profile: dict[str, Any] = {"driver": "GTiff", "height": height, "width": width, "count": count,
                               "dtype": data.dtype.name, "crs": "EPSG:32633", "transform": TRANSFORM}
    if height >= blocksize and width >= blocksize:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def gradient(height: int, width: int, count: int = 3, dtype: str = "uint8") -> np.ndarray:
    """[C, H, W] pixels whose value encodes the position (so that windows can be told apart)."""
    rows, cols = np.mgrid[0:height, 0:width]
    band = (rows * 7 + cols * 3) % 250 + 1
    return np.stack([band + i for i in range(count)]).astype(dtype)


def scene_labels(path: Path, boxes: Any, labels: Any = None, *, split: str | None = None,
                 labelled_area: Any = None) -> SceneLabels:
    """The labels of one scene: ``boxes`` [N, 4] xyxy pixels, ``labels`` [N] (default all 0)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    lab = np.zeros(len(b), np.int64) if labels is None else np.asarray(labels, np.int64)
    return SceneLabels(LabelSource(str(path), "labels.gpkg", split=split), open_scene(path), b, lab,
                       labelled_area=labelled_area)


def label_set(*scenes: SceneLabels, class_names: tuple[str, ...] = ("vehicle",)) -> LabelSet:
    return LabelSet(class_names, list(scenes))


def random_boxes(height: int, width: int, n: int, seed: int = 0, max_size: int = 10) -> np.ndarray:
    """``n`` boxes [n, 4] inside a ``height`` x ``width`` raster."""
    rng = np.random.default_rng(seed)
    size = rng.integers(2, max_size + 1, (n, 2))
    x1 = rng.integers(0, width - size[:, 0] + 1)
    y1 = rng.integers(0, height - size[:, 1] + 1)
    return np.stack([x1, y1, x1 + size[:, 0], y1 + size[:, 1]], axis=1).astype(np.float64)
