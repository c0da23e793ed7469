"""Self-describing outputs (issue 17 point 6): the CSV's column types and CRS, the COCO image ->
scene mapping, the GeoPackage version."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pyogrio
import pyproj
import pytest
from affine import Affine

from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.outputs.export import open_sink, write_detections
from fsanet_geo.geo.outputs.georef import COLUMNS, to_geodataframe
from fsanet_geo.geo.outputs.sidecars import csvt_types

UTM = Affine(0.5, 0.0, 500_000.0, 0.0, -0.5, 4_000_000.0)
BOXES = np.array([[10.0, 20.0, 14.0, 30.0], [100.0, 50.0, 103.5, 52.0]])


def frame(scene: str = "a.tif", crs: str | None = "EPSG:32631", boxes: np.ndarray = BOXES):  # noqa: ANN201
    dets = Detections(boxes, np.linspace(0.9, 0.5, len(boxes)), np.arange(len(boxes)) % 2)
    return to_geodataframe(dets, class_names=["vehicle", "ship"], transform=UTM, crs=crs, scene=scene)


def test_csv_numbers_read_as_numbers_and_the_crs_is_stated(tmp_path: Path) -> None:
    path = write_detections(frame(), tmp_path / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.csvt", "out.prj"]
    types = (tmp_path / "out.csvt").read_text().strip().split(",")
    assert len(types) == len(COLUMNS) + 1 and types[-1] == '"WKT"'
    info = pyogrio.read_info(path)
    kinds = dict(zip(info["fields"], info["ogr_types"]))
    assert kinds["class_id"] == "OFTInteger64" and kinds["score"] == "OFTReal" and kinds["x_min"] == "OFTReal"
    assert kinds["class_name"] == "OFTString" and kinds["scene"] == "OFTString"
    assert pyproj.CRS(info["crs"]).to_epsg() == 32631  # GDAL reads the .prj
    back = pyogrio.read_dataframe(path)
    np.testing.assert_allclose(back[["x_min", "y_min", "x_max", "y_max"]].to_numpy(), BOXES)  # numbers already


def test_a_pixel_csv_has_no_prj_and_overwrite_drops_a_stale_one(tmp_path: Path) -> None:
    write_detections(frame(), tmp_path / "out.csv")
    write_detections(frame(crs=None), tmp_path / "out.csv", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.csvt"]
    assert pyogrio.read_info(tmp_path / "out.csv")["crs"] is None


def test_csvt_types() -> None:
    import pandas as pd

    table = pd.DataFrame({"a": [1], "b": [0.5], "c": ["x"], "WKT": ["POINT (0 0)"]})
    assert csvt_types(dict(table.dtypes)) == ["Integer64", "Real", "String", "WKT"]


def test_coco_json_maps_image_ids_to_scenes(tmp_path: Path) -> None:
    with open_sink(tmp_path / "out.json", crs="EPSG:32631") as sink:
        sink.write(frame("a.tif"))
        sink.write(frame("b.tif", boxes=BOXES[:1]))
    results = json.loads((tmp_path / "out.json").read_text())
    images = json.loads((tmp_path / "out.images.json").read_text())["images"]
    assert images == [{"id": 1, "file_name": "a.tif"}, {"id": 2, "file_name": "b.tif"}]
    assert [r["image_id"] for r in results] == [1, 1, 2]


def test_geopackage_is_version_1_2(tmp_path: Path) -> None:
    path = write_detections(frame(), tmp_path / "out.gpkg")
    with sqlite3.connect(path) as db:
        assert db.execute("pragma application_id").fetchone()[0] == 0x47504B47  # 'GPKG'
        assert db.execute("pragma user_version").fetchone()[0] == 10200


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_sidecars_exist_refuses_without_overwrite(tmp_path: Path, suffix: str) -> None:
    from fsanet_geo.errors import FileOverwriteError

    side = tmp_path / ("out.csvt" if suffix == ".csv" else "out.images.json")
    side.write_text("someone else's")
    with pytest.raises(FileOverwriteError, match=side.name):
        write_detections(frame(), tmp_path / f"out{suffix}")
    assert side.read_text() == "someone else's"
