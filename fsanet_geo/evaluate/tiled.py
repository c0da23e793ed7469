"""Images larger than a tile, predicted exactly as ``fsanet detect`` predicts a scene.

C = bands, H x W = image pixels, T = tile side (pixels), N = detections. An image is cut
into the windows of :func:`fsanet_geo.geo.pixels.tiling.tile_windows` (cut as the scene reader
cuts them), predicted by :class:`fsanet_geo.geo.detect.predict.TilePredictor`
and merged across tile borders by the run's :class:`fsanet_geo.geo.seams.merge.SeamMerger`
(:func:`fsanet_geo.geo.seams.merge.merger_for`): the same code, settings and tiling as detect,
so a large test image is scored exactly as ``fsanet detect`` would find its objects.
"""

from __future__ import annotations

import numpy as np
import torch

from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.seams.merge import merger_for
from fsanet_geo.geo.detect.predict import TilePredictor
from fsanet_geo.geo.pixels.reader import TileData
from fsanet_geo.geo.settings import DetectSettings, Predictor, resolve_tiling
from fsanet_geo.geo.pixels.tiling import tile_windows
from fsanet_geo.geo.windows import TileWindow


class TiledImagePredictor:
    """``image Tensor[C, H, W] (0..255) -> {"boxes": Tensor[N, 4] xyxy image pixels,
    "scores": Tensor[N], "labels": Tensor[N]}`` through detect's tiling and seam merge.

    ``settings`` are detect's (:class:`DetectSettings`; its defaults when None): tile size
    (None: the model's ``config.input_size``), overlap, merge rules, tiles per batch.
    """

    def __init__(self, model: Predictor, device: torch.device, settings: DetectSettings | None = None) -> None:
        self.settings = settings or DetectSettings()
        self.settings.validate()
        self.tile_size, self.overlap = resolve_tiling(self.settings, model)
        self.predict = TilePredictor(model, device, self.settings, keep_labels=None)

    def needs_tiles(self, image: torch.Tensor) -> bool:
        """Whether ``image`` [C, H, W] is larger than one tile along either axis."""
        return max(image.shape[-2:]) > self.tile_size

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        _, height, width = image.shape
        pixels = image.detach().to("cpu").round().clamp(0, 255).to(torch.uint8).numpy()
        windows = tile_windows(height, width, self.tile_size, self.overlap)
        merger = merger_for(windows, height, width, self.settings)
        final: list[Detections] = []
        step = self.settings.batch_size
        for first in range(0, len(windows), step):
            tiles = [self._tile(pixels, i, windows[i]) for i in range(first, min(first + step, len(windows)))]
            dets = self.predict(tiles)
            for tile in tiles:
                final.append(merger.add(tile.index, dets.select(dets.tile == tile.index)))
        final.append(merger.finish())
        found = Detections.concat(final)
        return {
            "boxes": torch.from_numpy(found.boxes),
            "scores": torch.from_numpy(found.scores),
            "labels": torch.from_numpy(found.labels),
        }

    def _tile(self, pixels: np.ndarray, index: int, window: TileWindow) -> TileData:
        """Window ``index`` of ``pixels`` (uint8 [C, H, W]); every window has the reader's tile
        shape, ``min(T, H) x min(T, W)``, so nothing is padded here either."""
        tile = pixels[:, window.row_off : window.row_end, window.col_off : window.col_end]
        return TileData(index, window, np.ascontiguousarray(tile), None, False)
