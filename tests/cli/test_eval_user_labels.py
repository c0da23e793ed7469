"""`fsanet eval --truth`: a user's labels (--class-field), classes in one layer only, detections of a
crop against a whole scene's truth, --aoi, the scene footprint from detect's run record, and the
report on stdout (80 columns, or --json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box
from typer.testing import CliRunner

from fsanet_cli.main import app
from fsanet_geo.evaluate.mapspace import evaluate_vectors

runner = CliRunner()
X0, Y0, PIXEL = 500_000.0, 5_000_000.0, 0.5  # EPSG:32633, metres per pixel
# a 10 x 10 grid of 6 px objects, 20 px apart (col, row in pixels of a 200 x 200 px scene)
GRID = [(5 + 20 * i, 5 + 20 * j) for j in range(10) for i in range(10)]
CROP = [(c, r) for c, r in GRID if c < 100 and r < 100]  # the top-left quarter: 25 objects


def frame(cells: list[tuple[int, int]], size: int = 6, **columns: Any) -> gpd.GeoDataFrame:
    geoms = [box(X0 + c * PIXEL, Y0 - (r + size) * PIXEL, X0 + (c + size) * PIXEL, Y0 - r * PIXEL) for c, r in cells]
    return gpd.GeoDataFrame(columns, geometry=geoms, crs="EPSG:32633")


def write(df: gpd.GeoDataFrame, path: Path) -> Path:
    df.to_file(path, driver="GPKG", engine="pyogrio")
    return path


def crop_detections(tmp_path: Path) -> Path:
    """The crop's objects found except two inside it (not at its edge), plus one false detection."""
    found = [cell for cell in CROP if cell not in ((45, 45), (65, 25))] + [(55, 55)]
    scores = np.linspace(0.95, 0.2, len(found))
    return write(frame(found, class_name=["vehicle"] * len(found), score=scores), tmp_path / "crop.gpkg")


def invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def test_a_truth_with_its_own_class_attribute_is_scored_with_class_field(tmp_path: Path) -> None:
    kinds = ["vehicle" if i % 4 else "tree" for i in range(len(CROP))]
    truth = write(frame(CROP, kind=kinds), tmp_path / "truth.gpkg")
    found = [cell for cell, kind in zip(CROP, kinds) if kind == "vehicle"] + [(150, 150)]
    classes = ["vehicle"] * (len(found) - 1) + ["ship"]
    dets = write(frame(found, class_name=classes, score=[0.9] * len(found)), tmp_path / "dets.gpkg")
    res = invoke("eval", "--truth", truth, "--detections", dets, "--pixel-size", PIXEL)
    assert res.exit_code == 2
    assert res.stderr.strip() == ("error: the truth layer has no 'class_name' column (columns: kind): name the "
                                  "truth's class attribute with --class-field")
    res = invoke("eval", "--truth", truth, "--detections", dets, "--pixel-size", PIXEL, "--class-field", "kind",
                 "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["per_class"]["vehicle"] == {"tp": 18, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert (data["per_class"]["tree"]["fn"], data["per_class"]["ship"]["fp"]) == (7, 1)
    assert data["aitod"]["per_class_ap"]["vehicle"] == pytest.approx(1.0)
    assert data["only_in_truth"] == ["tree"] and data["only_in_detections"] == ["ship"]
    assert ("note: classes only in the truth: tree; only in the detections: ship (names must match exactly; "
            "--class-field names the truth's attribute)") in " ".join(res.stderr.split())


def test_a_crop_against_a_whole_scene_is_scored_on_the_common_area(tmp_path: Path) -> None:
    truth = write(frame(GRID, class_name=["vehicle"] * len(GRID)), tmp_path / "truth.gpkg")
    dets = crop_detections(tmp_path)
    clipped = write(frame(CROP, class_name=["vehicle"] * len(CROP)), tmp_path / "clipped.gpkg")
    whole = evaluate_vectors(truth, dets, pixel_size=PIXEL)
    reference = evaluate_vectors(clipped, dets, pixel_size=PIXEL)
    assert reference.area is None  # same extents: nothing left out
    assert whole.area is not None and whole.area.source == "common extent"
    assert (whole.area.truth_outside, whole.area.detections_outside) == (75, 0)
    assert whole.coco.stats["AP"] == pytest.approx(reference.coco.stats["AP"])
    assert whole.coco.stats["AP50"] == pytest.approx(reference.coco.stats["AP50"]) and 0.8 < whole.coco.stats["AP50"] < 1
    assert (whole.overall.tp, whole.overall.fp, whole.overall.fn) == (23, 1, 2)
    res = invoke("eval", "--truth", truth, "--detections", dets, "--pixel-size", PIXEL)
    assert res.exit_code == 0, res.output
    note = " ".join(res.stderr.split())
    assert ("note: scored the common area of the two layers only, [500002.5, 4999954.5, 500045.5, 4999997.5] "
            "(EPSG:32633): truth extent [500002.5, 4999904.5, 500095.5, 4999997.5], detections extent "
            "[500002.5, 4999954.5, 500045.5, 4999997.5]; left out 75 truth and 0 detections centred outside") in note


def test_aoi_scores_only_inside_and_needs_no_crop(tmp_path: Path) -> None:
    truth = write(frame(GRID, class_name=["vehicle"] * len(GRID)), tmp_path / "truth.gpkg")
    dets = write(frame(GRID, class_name=["vehicle"] * len(GRID), score=[0.5] * len(GRID)), tmp_path / "all.gpkg")
    # the left half in WGS 84: 50 objects centred inside
    half = gpd.GeoDataFrame(geometry=[box(X0 - 5, Y0 - 105, X0 + 50, Y0 + 5)], crs="EPSG:32633").to_crs("EPSG:4326")
    aoi = write(half, tmp_path / "aoi.gpkg")
    res = invoke("eval", "--truth", truth, "--detections", dets, "--pixel-size", PIXEL, "--aoi", aoi, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["overall"]["tp"] == 50 and data["overall"]["fn"] == 0 and data["overall"]["fp"] == 0
    assert data["area"]["source"] == "aoi" and data["area"]["truth_outside"] == 50
    bad = invoke("eval", "--ann", truth, "--detections", dets, "--aoi", aoi)
    assert bad.exit_code == 2 and "--aoi only applies to map space" in bad.stderr


def test_the_scene_footprint_from_detects_run_record_is_the_scored_area(tmp_path: Path) -> None:
    import rasterio
    from affine import Affine

    scene = tmp_path / "crop.tif"  # the crop's raster: 100 x 100 px at the grid's origin
    with rasterio.open(scene, "w", driver="GTiff", width=100, height=100, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=Affine(PIXEL, 0, X0, 0, -PIXEL, Y0)) as dst:
        dst.write(np.zeros((1, 100, 100), np.uint8))
    truth = write(frame(GRID, class_name=["vehicle"] * len(GRID)), tmp_path / "truth.gpkg")
    dets = crop_detections(tmp_path)
    Path(f"{dets}.run.json").write_text(json.dumps({"scenes": [{"scene": "crop", "path": str(scene)}]}))
    result = evaluate_vectors(truth, dets, pixel_size=PIXEL)
    assert result.area is not None and result.area.source == "footprint"
    assert result.area.extent == (X0, Y0 - 50, X0 + 50, Y0)
    assert (result.overall.tp, result.overall.fp, result.overall.fn) == (23, 1, 2)


def test_the_report_fits_80_columns_on_stdout(tmp_path: Path) -> None:
    names = ["storage-tank", "swimming-pool", "vehicle", "wind-mill"]
    truth = write(frame(GRID, class_name=[names[i % 4] for i in range(len(GRID))]), tmp_path / "truth.gpkg")
    dets = write(frame(GRID[:60], class_name=[names[i % 4] for i in range(60)], score=[0.5] * 60),
                 tmp_path / "d.gpkg")
    env = {**os.environ, "COLUMNS": "80"}
    cmd = [sys.executable, "-m", "fsanet_cli.main", "eval", "--truth", str(truth), "--detections", str(dets),
           "--pixel-size", str(PIXEL)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, out.stdout
    assert any(line.split()[:1] == ["swimming-pool"] for line in lines)
    sizes = next(line for line in lines if line.strip().startswith("tiny (8-16 px)"))
    assert [cell.strip() for cell in sizes.split("│")[1:]] == ["0", "0", "0", "0", "0", "-", "-"]
    js = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, timeout=120)
    data = json.loads(js.stdout)
    assert data["overall"]["tp"] == 60 and data["aitod"]["stats"]["AP50"] == pytest.approx(0.6, abs=0.01)
