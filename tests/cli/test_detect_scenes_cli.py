"""`fsanet detect` with scenes from anywhere: URLs, list files, --skip-bad, --aoi, mixed CRSs
(the painted-objects predictor stands in for the model)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import geopandas
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "geo"))
from http_helpers import serve_folder, write_painted_cog  # noqa: E402
from scene_helpers import PaintedPredictor, write_painted_scene  # noqa: E402

from fsanet_cli.main import app  # noqa: E402
from fsanet_geo.geo.detect import detect_job  # noqa: E402

runner = CliRunner()
TILING = ("--tile-size", "64", "--overlap", "16")


@pytest.fixture(autouse=True)
def painted_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect_job, "load_detector", lambda weights, device, events=None: PaintedPredictor())
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, ["detect", *TILING, *args])


def lines_of(result) -> list[str]:  # noqa: ANN001
    return [line for line in result.output.strip().splitlines() if line.strip()]


def rows(path: Path) -> list[tuple]:
    gdf = geopandas.read_file(path)
    return sorted(zip(gdf["scene"], gdf["class_id"], gdf["x_min"], gdf["y_min"], gdf["x_max"], gdf["y_max"]))


def test_a_url_scene_gives_the_local_file_s_detections(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    cog = write_painted_cog(tmp_path / "www" / "cog.tif", height=256, width=256, n_objects=12)
    assert invoke(str(cog.path), "-o", str(tmp_path / "local.gpkg")).exit_code == 0
    with serve_folder(cog.path.parent) as (url, _):
        result = invoke(f"{url}/cog.tif", "-o", str(tmp_path / "remote.gpkg"))
    assert result.exit_code == 0, result.output
    assert re.search(r"tiles/s, fetched \d+\.\d MiB -> ", lines_of(result)[-1]), result.output
    assert rows(tmp_path / "remote.gpkg") == rows(tmp_path / "local.gpkg") and len(rows(tmp_path / "local.gpkg")) == 12


def test_a_tile_that_cannot_be_fetched_stops_with_url_and_tile_and_resume_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "1")
    (tmp_path / "www").mkdir()
    cog = write_painted_cog(tmp_path / "www" / "cog.tif", height=512, width=512, n_objects=30)
    out = tmp_path / "out.gpkg"
    with serve_folder(cog.path.parent) as (url, server):
        server.fail_after_bytes["/cog.tif"] = cog.path.stat().st_size // 3
        failed = invoke(f"{url}/cog.tif", "-o", str(out), "--batch-size", "2")
        assert failed.exit_code == 2 and len(lines_of(failed)) == 1, failed.output
        assert re.fullmatch(rf"error: cannot read tile \d+ \(window .*\) of {url}/cog.tif: .* \(finished tiles "
                            r"kept: run the same command with --resume\)", lines_of(failed)[0])
        server.fail_after_bytes.clear()
        resumed = invoke(f"{url}/cog.tif", "-o", str(out), "--batch-size", "2", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert re.search(r", \d+ resumed\)", lines_of(resumed)[-1]) and len(rows(out)) == len(cog.boxes)


def test_a_missing_url_is_one_line_naming_it(tmp_path: Path) -> None:
    with serve_folder(tmp_path) as (url, _):
        result = invoke(f"{url}/nothing.tif", "-o", str(tmp_path / "out.gpkg"))
    assert result.exit_code == 2
    assert lines_of(result) == [f"error: scene {url}/nothing.tif was not found (HTTP 404)"]
    assert not (tmp_path / "out.gpkg").exists()


def test_a_scene_list_with_comments_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "scenes").mkdir()
    a = write_painted_scene(tmp_path / "scenes" / "a.tif", height=96, width=96, n_objects=5, seed=1)
    b = write_painted_scene(tmp_path / "scenes" / "b.tif", height=96, width=96, n_objects=6, seed=2)
    listing = tmp_path / "scenes" / "list.txt"
    listing.write_text(f"# two scenes\n\na.tif\n   # indented comment\n{b.path}\n")
    result = invoke("--scenes", str(listing), "-o", str(tmp_path / "out.gpkg"))
    assert result.exit_code == 0, result.output
    found = rows(tmp_path / "out.gpkg")
    assert [r[0] for r in found].count("a.tif") == len(a.boxes) and [r[0] for r in found].count("b.tif") == len(b.boxes)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert lines_of(invoke("--scenes", str(empty), "-o", str(tmp_path / "x.gpkg"))) == [
        f"error: scene list {empty} names no scenes"]
    assert invoke("-o", str(tmp_path / "x.gpkg")).exit_code == 2  # usage error: test_cli_polish checks its lines


def test_skip_bad_names_each_skipped_scene_and_without_it_nothing_is_done(tmp_path: Path) -> None:
    good = write_painted_scene(tmp_path / "good.tif", height=96, width=96, n_objects=5, seed=1)
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    missing = tmp_path / "missing.tif"
    out = tmp_path / "out.gpkg"
    stopped = invoke(str(good.path), str(junk), str(missing), "-o", str(out))
    assert stopped.exit_code == 2 and len(lines_of(stopped)) == 1 and "junk.tif" in lines_of(stopped)[0]
    assert not out.exists() and not (tmp_path / "out.gpkg.partial").exists()
    result = invoke(str(good.path), str(junk), str(missing), "-o", str(out), "--skip-bad")
    assert result.exit_code == 0, result.output
    text = lines_of(result)
    assert f"skipped: {junk}: {junk} is not a raster GDAL can read (format not recognized)" in text
    assert f"skipped: {missing}: scene {missing} does not exist" in text
    assert text[-1] == f"2 scene(s) skipped: {junk}, {missing}"
    assert len(rows(out)) == len(good.boxes)


def test_output_dir_takes_scenes_in_different_crss(tmp_path: Path) -> None:
    utm = write_painted_scene(tmp_path / "utm.tif", height=96, width=96, n_objects=4, seed=1)
    from affine import Affine

    geo = write_painted_scene(tmp_path / "geo.tif", height=96, width=96, n_objects=3, seed=2, crs="EPSG:4326",
                              transform=Affine(1e-5, 0, 15.0, 0, -1e-5, 42.0))
    (tmp_path / "out").mkdir()
    result = invoke(str(utm.path), str(geo.path), "--output-dir", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert geopandas.read_file(tmp_path / "out" / "utm.gpkg").crs.to_epsg() == 32633
    assert geopandas.read_file(tmp_path / "out" / "geo.gpkg").crs.to_epsg() == 4326
    both = invoke(str(utm.path), str(geo.path), "-o", str(tmp_path / "all.geojson"))
    assert both.exit_code == 0, both.output
    assert len(geopandas.read_file(tmp_path / "all.geojson")) == 7


def test_aoi_skips_a_scene_it_misses_and_says_so_at_the_end(tmp_path: Path) -> None:
    import shapely

    inside = write_painted_scene(tmp_path / "in.tif", height=96, width=96, n_objects=5, seed=1)
    from affine import Affine
    from scene_helpers import UTM_TRANSFORM

    outside = write_painted_scene(tmp_path / "out.tif", height=96, width=96, n_objects=5, seed=2,
                                  transform=UTM_TRANSFORM @ Affine.translation(10_000, 0))
    aoi = tmp_path / "aoi.gpkg"
    geopandas.GeoDataFrame(geometry=[shapely.box(500_000, 4_649_952, 500_048, 4_650_000)], crs=32633).to_file(aoi)
    result = invoke(str(inside.path), str(outside.path), "--aoi", str(aoi), "-o", str(tmp_path / "r.gpkg"))
    assert result.exit_code == 0, result.output
    assert f"skipped: {outside.path}: outside the area of interest" in lines_of(result)
    assert lines_of(result)[-1] == f"1 scene(s) skipped: {outside.path}"
    found = rows(tmp_path / "r.gpkg")
    assert {r[0] for r in found} == {"in.tif"} and len(found) == len(inside.boxes)  # the AOI covers all of in.tif


def test_a_stac_item_with_the_default_asset_said_once(tmp_path: Path) -> None:
    import json

    scene = write_painted_scene(tmp_path / "visual.tif", height=96, width=96, n_objects=4, seed=3)
    items = tmp_path / "items"
    items.mkdir()
    for name in ("one", "two"):
        item = {"type": "Feature", "stac_version": "1.0.0", "id": f"item-{name}", "properties": {
            "datetime": "2024-01-01T00:00:00Z"}, "geometry": None, "links": [],
            "assets": {"visual": {"href": str(scene.path), "roles": ["visual"]}}}
        (items / f"{name}.json").write_text(json.dumps(item))
    (tmp_path / "out").mkdir()
    result = invoke(str(items), "--output-dir", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    notes = [line for line in lines_of(result) if line.startswith("note: STAC")]
    assert notes == ["note: STAC: reading asset visual of each item (choose another with --asset)"]
    assert {r[0] for r in rows(tmp_path / "out" / "item-one.gpkg")} == {"item-one"}
    assert len(rows(tmp_path / "out" / "item-two.gpkg")) == len(scene.boxes)
    bad = invoke(str(items / "one.json"), "--asset", "nir", "-o", str(tmp_path / "x.gpkg"))
    assert lines_of(bad) == ["error: STAC item item-one has no asset 'nir' (it has: visual)"]
