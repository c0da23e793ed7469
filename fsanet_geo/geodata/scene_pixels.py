"""Windows of labelled scenes read exactly as ``fsanet detect`` reads them.

One :class:`ScenePixels` serves the training chips and the validation blocks: each scene is
read through :class:`fsanet_geo.geo.pixels.reader.TileReader` with the scaling detect would use
(uint8 passes through; other types get :func:`fsanet_geo.geo.pixels.stretch.measure_stretch`,
measured once per scene), nodata pixels are zero as in detect, and pixels outside the
labelled area are zero too (unlabelled ground must not teach "background"). Parts of a
window outside the raster are zero. Handles are opened lazily per process (DataLoader
workers fork: a handle opened before the fork is never used after it).

C = bands, h x w = window pixels, N = boxes of a scene. Windows are
``(col_off, row_off, width, height)`` in scene pixels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
import shapely.affinity
from affine import Affine

from fsanet_geo.geo.pixels.reader import TileReader, gdal_env
from fsanet_geo.geo.pixels.stretch import SceneStretch, measure_stretch
from fsanet_geo.geo.windows import TileWindow
from fsanet_geo.geodata.spatial_split import Window, labelled_area
from fsanet_geo.geodata.types import LabelSet


class ScenePixels:
    """Reads uint8 [C, h, w] windows of every scene of ``label_set`` (see the module docstring).

    Attributes:
        stretches: per scene the measured :class:`SceneStretch` (None for uint8 scenes).
        inside: per scene bool [N], True for the boxes whose centre lies in the labelled area.
    """

    def __init__(self, label_set: LabelSet, *, levels: Sequence[Sequence[float]] | None = None,
                 percentiles: Sequence[float] = (2.0, 98.0)) -> None:
        self.label_set = label_set
        self.stretches: list[SceneStretch | None] = [measure_stretch(s.info, percentiles, levels)
                                                      for s in label_set.scenes]
        self._areas = [None if s.labelled_area is None else labelled_area(s) for s in label_set.scenes]
        self.inside: list[np.ndarray] = []
        for scene, area in zip(label_set.scenes, self._areas):
            boxes = np.asarray(scene.boxes, np.float64).reshape(-1, 4)
            if area is None:
                self.inside.append(np.ones(len(boxes), bool))
            else:
                cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
                self.inside.append(shapely.intersects_xy(area, cx, cy))
        self._pid: int | None = None
        self._readers: dict[tuple[int, int], TileReader] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pid"], state["_readers"] = None, {}  # handles never travel to another process
        return state

    def _reader(self, scene_index: int, side: int) -> TileReader:
        """This process's reader of a scene for windows of at most ``side`` px (TileReader pads
        every read to its tile shape, so the tile is the window, never the scene)."""
        if self._pid != os.getpid():  # a fresh process (or a forked worker): new handles
            self._pid, self._readers = os.getpid(), {}
        reader = self._readers.get((scene_index, side))
        if reader is None:
            info = self.label_set.scenes[scene_index].info
            stretch = self.stretches[scene_index]
            reader = TileReader(info, None if stretch is None else stretch.scaling(), side)
            self._readers[(scene_index, side)] = reader
        return reader

    def read(self, scene_index: int, window: Window) -> np.ndarray:
        """uint8 [C, h, w] of ``window`` (h, w: the window's height and width)."""
        info = self.label_set.scenes[scene_index].info
        col, row, width, height = window
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + width, info.width), min(row + height, info.height)
        tile = None
        if c1 > c0 and r1 > r0:
            with gdal_env():
                tile = self._reader(scene_index, max(width, height)).read(0, TileWindow(r0, c0, r1 - r0, c1 - c0))
        inside = (c0, r0, c1, r1) == (col, row, col + width, row + height)
        if inside and tile is not None and not tile.empty and tile.image.shape[1:] == (height, width):
            out = tile.image  # the window lies in the raster: the reader's own array, nothing to paste
        else:
            out = np.zeros((len(info.bands), height, width), np.uint8)
            if tile is not None and not tile.empty:
                out[:, r0 - row : r1 - row, c0 - col : c1 - col] = tile.image[:, : r1 - r0, : c1 - c0]
        area = self._areas[scene_index]
        if area is not None:
            out *= self.area_mask(scene_index, window)[None]
        return out

    def area_mask(self, scene_index: int, window: Window) -> np.ndarray:
        """bool [h, w]: True where the pixel centre lies in the labelled area (all True without one)."""
        col, row, width, height = window
        area = self._areas[scene_index]
        if area is None:
            return np.ones((height, width), bool)
        from rasterio.features import geometry_mask

        local = shapely.affinity.translate(area, -col, -row)
        return geometry_mask([local], out_shape=(height, width), transform=Affine.identity(), invert=True)

    def close(self) -> None:
        """Close this process's handles."""
        if self._pid == os.getpid():
            for reader in self._readers.values():
                reader.close()
        self._readers = {}
