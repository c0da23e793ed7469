"""export_chips: a COCO set DetectionDataset reads back with the same boxes; the CLI command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from chip_helpers import (
    TRANSFORM,
    gradient,
    label_set,
    random_boxes,
    scene_labels,
    write_scene,
)

from fsanet_geo.data.dataset import DetectionDataset
from fsanet_geo.errors import FileOverwriteError
from fsanet_geo.geodata.chips import SceneChipDataset
from fsanet_geo.geodata.export_chips import export_chips
from fsanet_geo.geodata.spatial_split import spatial_split


@pytest.mark.parametrize("image_format", ["png", "tif"])
def test_export_reads_back_with_the_same_boxes(tmp_path: Path, image_format: str) -> None:
    path = write_scene(tmp_path / "a.tif", gradient(120, 160))
    labels = label_set(scene_labels(path, random_boxes(120, 160, 40, seed=2), np.arange(40) % 2),
                       class_names=("car", "boat"))
    splits = spatial_split(labels, val_fraction=0.2, block_size=40, chip_size=32, seed=1)
    done = export_chips(labels, splits, tmp_path / "out", chip_size=32, chips=6, seed=4, image_format=image_format)
    assert (done.train_images, done.val_images) == (6, 2)
    train = DetectionDataset(tmp_path / "out/train/annotations.json", tmp_path / "out/train/images", train=False)
    assert train.class_names == ["car", "boat"] and train.cat_ids == [1, 2]
    chips = SceneChipDataset(labels, splits, chip_size=32)
    for index, image_entry in enumerate(train.coco["images"]):
        window = tuple(image_entry["fsanet_window"])
        image8, boxes, labs = chips.chip(0, window)
        image, target = train[index]
        assert torch.equal(image, torch.from_numpy(image8).float())
        assert torch.equal(target["boxes"], boxes) and torch.equal(target["labels"], labs)
    val = DetectionDataset(tmp_path / "out/val/annotations.json", tmp_path / "out/val/images", train=False)
    assert len(val) == 2 and [tuple(i["fsanet_window"]) for i in val.coco["images"]] == splits[0].val_windows
    if image_format == "tif":
        with rasterio.open(tmp_path / "out/train/images/chip_000001.tif") as src:
            col, row = train.coco["images"][0]["fsanet_window"][:2]
            assert src.transform == TRANSFORM @ TRANSFORM.translation(col, row)
    record = json.loads((tmp_path / "out/export.json").read_text())
    assert record["chips"] == 6 and record["scenes"][0]["stretch"] is None
    # the same seed writes the same chips; a non-empty folder needs overwrite
    with pytest.raises(FileOverwriteError, match="use --overwrite"):
        export_chips(labels, splits, tmp_path / "out", chip_size=32, chips=6, seed=4, image_format=image_format)
    export_chips(labels, splits, tmp_path / "out", chip_size=32, chips=6, seed=4, image_format=image_format,
                 overwrite=True)
    again = DetectionDataset(tmp_path / "out/train/annotations.json", tmp_path / "out/train/images", train=False)
    assert again.coco["images"] == train.coco["images"]


def _fake_label_modules(monkeypatch: pytest.MonkeyPatch, labels: object) -> None:
    """Stand-ins for the vector loader, so that the command's wiring is tested on numpy boxes alone."""
    import sys
    import types

    from fsanet_geo.geodata.types import LabelSource

    loader = types.ModuleType("fsanet_geo.geodata.labels")
    loader.load_label_set = lambda sources, options, aoi=None: labels  # type: ignore[attr-defined]
    loader.check_scenes_once = lambda sources: None  # type: ignore[attr-defined]
    sources = types.ModuleType("fsanet_geo.geodata.sources")
    sources.pair_sources = lambda s, lab: [LabelSource(a, b) for a, b in zip(s, lab)]  # type: ignore[attr-defined]
    sources.read_scene_list = lambda path: []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fsanet_geo.geodata.labels", loader)
    monkeypatch.setitem(sys.modules, "fsanet_geo.geodata.sources", sources)


def test_cli_export_chips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fsanet_cli.main import app
    from typer.testing import CliRunner

    path = write_scene(tmp_path / "a.tif", gradient(120, 160))
    _fake_label_modules(monkeypatch, label_set(scene_labels(path, random_boxes(120, 160, 20, seed=1))))
    args = ["data", "export-chips", str(tmp_path / "out"), "--scene", str(path), "--labels", "a.gpkg",
            "--chip-size", "32", "--chips", "5", "--val-fraction", "0.2", "--val-block", "40"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 5 training chips with" in result.output and "val 2 blocks with" in result.output
    assert len(list((tmp_path / "out/train/images").glob("*.png"))) == 5
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "exists and is not empty (use --overwrite to replace it)" in again.output
    assert "Traceback" not in again.output
    none = CliRunner().invoke(app, ["data", "export-chips", str(tmp_path / "other"), "--chip-size", "32"])
    assert none.exit_code == 2 and "name the scenes with --scene A.tif --labels A.gpkg" in none.output


def test_cli_export_chips_from_a_vector_layer(tmp_path: Path) -> None:
    import geopandas
    import shapely
    from fsanet_cli.main import app
    from typer.testing import CliRunner

    path = write_scene(tmp_path / "a.tif", gradient(120, 160))
    polygons = [shapely.box(*(TRANSFORM @ (x, y)), *(TRANSFORM @ (x + 6, y + 4))) for x, y in [(10, 10), (90, 70)]]
    geopandas.GeoDataFrame({"kind": ["car", "boat"]}, geometry=polygons, crs="EPSG:32633").to_file(tmp_path / "a.gpkg")
    result = CliRunner().invoke(app, ["data", "export-chips", str(tmp_path / "out"), "--scene", str(path),
                                      "--labels", str(tmp_path / "a.gpkg"), "--class-field", "kind",
                                      "--chip-size", "32", "--chips", "4", "--object-share", "1"])
    assert result.exit_code == 0, result.output
    train = DetectionDataset(tmp_path / "out/train/annotations.json", tmp_path / "out/train/images", train=False)
    assert train.class_names == ["boat", "car"] and len(train) == 4
    assert all(len(r.boxes) >= 1 for r in train.records)
