"""A model trained on explicit bands (``fsanet train --bands``) is read in them by detect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from fsanet_geo.errors import CheckpointError
from fsanet_geo.geo.detect.job_model import checkpoint_stand_in
from fsanet_geo.geo.detect.run import SceneRun
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.model.files.checkpoint import load_model, save_checkpoint
from fsanet_geo.model.files.imagery import ImageryProfile, imagery_from_metadata
from fsanet_geo.model.presets import build_model


def _raster(path: Path, count: int) -> Path:
    data = np.random.default_rng(0).integers(0, 255, (count, 64, 64), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=count, dtype="uint8",
                       crs="EPSG:32631", transform=Affine(1, 0, 500000, 0, -1, 4000000)) as ds:
        ds.write(data)
    return path


@pytest.fixture(scope="module")
def banded_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = build_model("fsanet_r18_tiny", num_classes=1, class_names=["car"])
    path = tmp_path_factory.mktemp("ckpt") / "bands.safetensors"
    return save_checkpoint(model, path, extra_metadata=ImageryProfile(bands=(4, 3, 2)).to_metadata())


def test_detect_reads_the_training_bands_where_the_scene_has_them(tmp_path: Path, banded_checkpoint: Path) -> None:
    model = load_model(banded_checkpoint)
    assert model.imagery.bands == (4, 3, 2)
    five = _raster(tmp_path / "five.tif", 5)
    three = _raster(tmp_path / "three.tif", 3)
    run = SceneRun.prepare([five, three], model, DetectSettings(), warn=False)
    assert [s.info.bands for s in run.scenes] == [(4, 3, 2), (1, 2, 3)]
    given = SceneRun.prepare([five], model, DetectSettings(bands=[1, 2, 3]), warn=False)
    assert given.scenes[0].info.bands == (1, 2, 3)  # the user's --bands win
    stand_in = checkpoint_stand_in(banded_checkpoint)
    assert stand_in is not None and stand_in.imagery.bands == (4, 3, 2)  # checks before the load agree
    assert SceneRun.prepare([five], stand_in, DetectSettings(), warn=False).scenes[0].info.bands == (4, 3, 2)


def test_bad_bands_metadata_names_the_checkpoint() -> None:
    with pytest.raises(CheckpointError, match="x.safetensors: metadata bands"):
        imagery_from_metadata({"bands": "[0, 1]"}, "x.safetensors")
    assert imagery_from_metadata({"bands": "[2]"}).bands == (2,)
