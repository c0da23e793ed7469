"""GeoTIFFs with painted objects, written in tmp_path, and a predictor that finds them.

Objects are solid rectangles painted on a plain background, one brightness per class; the
"painted objects" predictor thresholds a tile and returns one box per connected bright
region (pixel edges, tile pixels). It is fully deterministic, so a scene's ground truth is
exactly what a correct pipeline must output: every object once, boxes exact.
"""

from __future__ import annotations

import os
import threading
import time

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
import torch
from affine import Affine

CLASS_NAMES = ["vehicle", "ship", "airplane"]
BACKGROUND = 20
CLASS_VALUES = (150, 200, 250)  # uint8 brightness of class 0, 1, 2
UTM_TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4_650_000.0)  # 0.5 m pixels, EPSG:32633


@dataclass
class PaintedScene:
    """A scene written to disk and its ground truth.

    Attributes:
        path: the raster file.
        boxes: float64 [N, 4] xyxy scene pixel edges of every object.
        labels: int64 [N], 0-based class index.
        transform: pixel-edge -> CRS affine.
        crs: CRS string, or None.
    """

    path: Path
    boxes: np.ndarray
    labels: np.ndarray
    transform: Affine
    crs: str | None


def random_objects(
    height: int, width: int, n: int, *, seed: int, min_size: int = 3, max_size: int = 12, margin: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` non-touching rectangles (>= 2 px apart), xyxy pixel edges, with random classes."""
    rng = np.random.default_rng(seed)
    taken = np.zeros((height, width), bool)
    boxes, labels = [], []
    tries = 0
    while len(boxes) < n and tries < 100 * n:
        tries += 1
        h, w = rng.integers(min_size, max_size + 1, size=2)
        top = int(rng.integers(margin, height - h - margin + 1))
        left = int(rng.integers(margin, width - w - margin + 1))
        region = taken[max(top - 2, 0) : top + h + 2, max(left - 2, 0) : left + w + 2]
        if region.any():
            continue
        taken[top : top + h, left : left + w] = True
        boxes.append([left, top, left + w, top + h])
        labels.append(int(rng.integers(0, len(CLASS_NAMES))))
    return np.array(boxes, np.float64).reshape(-1, 4), np.array(labels, np.int64)


def paint(height: int, width: int, boxes: np.ndarray, labels: np.ndarray, count: int = 3) -> np.ndarray:
    """uint8 [count, H, W] image: background plus one brightness per class."""
    image = np.full((count, height, width), BACKGROUND, np.uint8)
    for (x0, y0, x1, y1), label in zip(boxes.astype(int), labels):
        image[:, y0:y1, x0:x1] = CLASS_VALUES[label]
    return image


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32633",
    transform: Affine | None = UTM_TRANSFORM,
    nodata: float | None = None,
    blocksize: int = 64,
    mask: np.ndarray | None = None,
    overviews: bool = False,
) -> Path:
    """Write ``data`` [C, H, W] as a tiled, deflate-compressed GeoTIFF."""
    count, height, width = data.shape
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": count,
        "dtype": data.dtype.name,
        "compress": "deflate",
    }
    if height >= blocksize and width >= blocksize:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if mask is not None:
            dst.write_mask(mask.astype(np.uint8) * 255)
        if overviews:
            dst.build_overviews([2, 4], rasterio.enums.Resampling.nearest)
    return path


def write_painted_scene(
    path: Path,
    *,
    height: int,
    width: int,
    n_objects: int,
    seed: int = 0,
    count: int = 3,
    crs: str | None = "EPSG:32633",
    transform: Affine = UTM_TRANSFORM,
    max_size: int = 12,
) -> PaintedScene:
    """A uint8 scene of painted objects (see :func:`random_objects`)."""
    boxes, labels = random_objects(height, width, n_objects, seed=seed, max_size=max_size)
    write_raster(path, paint(height, width, boxes, labels, count), crs=crs, transform=transform)
    return PaintedScene(path, boxes, labels, transform, crs)


def find_painted_objects(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (float [N, 4] xyxy pixel edges) and labels of the bright regions of ``image`` [C, H, W] uint8."""
    band = image[0]
    classes = np.zeros(band.shape, np.uint8)
    classes[band > 125] = 1
    classes[band > 175] = 2
    classes[band > 225] = 3
    boxes, labels = [], []
    for geom, value in rasterio.features.shapes(classes, mask=classes > 0, connectivity=4):
        xy = np.array(geom["coordinates"][0])
        boxes.append([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()])
        labels.append(int(value) - 1)
    return np.array(boxes, np.float64).reshape(-1, 4), np.array(labels, np.int64)


class PaintedPredictor:
    """A deterministic predictor: the painted objects of each tile, score 0.9.

    Counts calls and tiles; ``interrupt_on_call`` raises KeyboardInterrupt on that (1-based) call.
    """

    class_names = CLASS_NAMES

    def __init__(self, interrupt_on_call: int | None = None) -> None:
        self.calls = 0
        self.tiles_seen = 0
        self.interrupt_on_call = interrupt_on_call

    def __call__(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        assert images.dtype == torch.uint8 and images.ndim == 4
        self.calls += 1
        if self.interrupt_on_call is not None and self.calls >= self.interrupt_on_call:
            raise KeyboardInterrupt
        self.tiles_seen += images.shape[0]
        out = []
        for image in images.cpu().numpy():
            boxes, labels = find_painted_objects(image)
            out.append(
                {
                    "boxes": torch.as_tensor(boxes, dtype=torch.float32),
                    "scores": torch.full((len(boxes),), 0.9),
                    "labels": torch.as_tensor(labels),
                }
            )
        return out


class SignallingPredictor(PaintedPredictor):
    """The painted predictor that sends this process ``sig`` from another thread on call ``on_call``
    (1-based), so that the signal lands wherever the main thread is, as a real one would.

    The next call waits until the signal was sent (up to 30 s): on a loaded machine the thread
    could otherwise start after the run ended, and the signal land in another test."""

    def __init__(self, sig: int, on_call: int = 3) -> None:
        super().__init__()
        self.sig, self.on_call = sig, on_call
        self.sent = threading.Event()

    def _send(self) -> None:
        os.kill(os.getpid(), self.sig)
        self.sent.set()

    def __call__(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        if self.calls == self.on_call - 1:
            threading.Thread(target=self._send).start()
        elif self.calls >= self.on_call:
            self.sent.wait(30)
        time.sleep(0.02)
        return super().__call__(images)


def sort_boxes(boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and labels in a canonical (y_min, x_min) order, for comparison."""
    order = np.lexsort((boxes[:, 0], boxes[:, 1]))
    return boxes[order], labels[order]


def write_mosaic_vrt(path: Path, parts: list[Path], offsets: list[tuple[int, int]], height: int, width: int) -> Path:
    """A VRT mosaic of uint8 GeoTIFFs ``parts`` placed at (row, col) pixel ``offsets``."""
    with rasterio.open(parts[0]) as first:
        crs_wkt = first.crs.to_wkt()
        transform = first.transform
        count = first.count
    row0, col0 = offsets[0]
    origin = transform @ (-col0, -row0)
    gt = ", ".join(str(v) for v in (origin[0], transform.a, transform.b, origin[1], transform.d, transform.e))
    bands = []
    for b in range(1, count + 1):
        sources = []
        for part, (row, col) in zip(parts, offsets):
            with rasterio.open(part) as src:
                h, w = src.height, src.width
            sources.append(
                f"""    <SimpleSource>
      <SourceFilename relativeToVRT="0">{part}</SourceFilename>
      <SourceBand>{b}</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>
      <DstRect xOff="{col}" yOff="{row}" xSize="{w}" ySize="{h}"/>
    </SimpleSource>"""
            )
        bands.append(
            f'  <VRTRasterBand dataType="Byte" band="{b}">\n' + "\n".join(sources) + "\n  </VRTRasterBand>"
        )
    xml = (
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">\n'
        f"  <SRS>{crs_wkt.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace(chr(34), '&quot;')}</SRS>\n"
        f"  <GeoTransform>{gt}</GeoTransform>\n" + "\n".join(bands) + "\n</VRTDataset>\n"
    )
    path.write_text(xml)
    return path
