"""Point 2 of issue 24: ``fsanet detect --dry-run`` prices a job from headers only (exact tile
counts, bytes equal to the TIFF blocks under the tiles read, AOI and sparse skips, the same
figures over HTTP with no pixel block fetched), and never loads the model."""

from __future__ import annotations

from pathlib import Path

import geopandas
import numpy as np
import pytest
import rasterio
import shapely
from http_helpers import serve_folder
from rasterio.windows import Window
from scene_helpers import UTM_TRANSFORM

from fsanet_geo.errors import RasterError
from fsanet_geo.geo.detect import detect_job
from fsanet_geo.geo.detect.detect_request import DetectRequest
from fsanet_geo.geo.detect.dry_run import dry_run
from fsanet_geo.model.files import checkpoint

H, W, BLOCK, TILE = 1024, 2048, 256, 512  # 2 x 4 tiles of 512 px (no overlap) over 4 x 8 blocks
TILING = {"tile_size": TILE, "overlap": 0}


@pytest.fixture(autouse=True)
def no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run must never load weights: every loader fails."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dry run loaded the model")

    monkeypatch.setattr(detect_job, "load_detector", refuse)
    monkeypatch.setattr(checkpoint, "load_inference_model", refuse)
    monkeypatch.setattr(checkpoint, "load_model", refuse)


def write_scene(path: Path, *, sparse: bool = False) -> Path:
    """H x W uint8 3-band GeoTIFF in BLOCK px deflate blocks of noise (sizes differ per block);
    ``sparse``: nodata 0 and only the blocks of rows 1..2, cols 5..6 stored (SPARSE_OK)."""
    profile = dict(driver="GTiff", width=W, height=H, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=UTM_TRANSFORM, tiled=True, blockxsize=BLOCK, blockysize=BLOCK, compress="deflate")
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile, **({"nodata": 0, "sparse_ok": True} if sparse else {})) as dst:
        if sparse:
            dst.write(rng.integers(1, 255, (3, 2 * BLOCK, 2 * BLOCK), dtype=np.uint8),
                      window=Window(5 * BLOCK, BLOCK, 2 * BLOCK, 2 * BLOCK))
        else:  # noise of a per-row amplitude: every block row compresses differently
            amp = np.repeat(np.arange(1, H // BLOCK + 1) * 40, BLOCK)[:, None]
            dst.write((rng.integers(0, 256, (3, H, W)) % amp).astype(np.uint8))
    return path


def block_sizes(path: Path) -> dict[tuple[int, int], int]:
    """(block row, block col) -> stored bytes, read independently of the library."""
    with rasterio.open(path) as ds:
        return {(r, c): int(ds.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1) or 0)
                for r in range(H // BLOCK) for c in range(W // BLOCK)}


def request(scene: str | Path, out: Path, **settings: object) -> DetectRequest:
    return DetectRequest(scenes=[str(scene)], output=out, settings={**TILING, **settings})


def test_tiles_and_bytes_are_those_of_the_blocks_under_the_tiles(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif")
    report = dry_run(request(scene, tmp_path / "out.gpkg"), rate=2.0)
    (cost,) = report.scenes
    sizes = block_sizes(scene)
    assert len(set(sizes.values())) > 1 and min(sizes.values()) > 0
    assert (cost.tiles, cost.read, cost.skipped_aoi, cost.skipped_nodata) == (8, 8, 0, 0)
    assert (cost.blocks, cost.bytes) == (32, sum(sizes.values()))
    assert report.seconds == 4.0 and report.rate.source == "stated"
    assert (report.tile_size, report.overlap) == (TILE, 0) and not cost.remote
    assert not (tmp_path / "out.gpkg").exists()


def test_an_aoi_over_the_left_half_halves_the_tiles_and_counts_its_blocks(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif")
    x0, y0 = UTM_TRANSFORM @ (0, 0)
    x1, y1 = UTM_TRANSFORM @ (1000, H)  # columns 0..1000: the first two tile columns
    aoi = tmp_path / "aoi.geojson"
    geopandas.GeoDataFrame(geometry=[shapely.box(x0, y1, x1, y0)], crs="EPSG:32633").to_file(aoi)
    (cost,) = dry_run(request(scene, tmp_path / "out.gpkg", aoi=str(aoi)), rate=1.0).scenes
    assert (cost.tiles, cost.read, cost.skipped_aoi, cost.skipped_nodata) == (8, 4, 4, 0)
    assert cost.bytes == sum(n for (r, c), n in block_sizes(scene).items() if c < 4) and cost.blocks == 16


def test_a_sparse_scene_skips_its_empty_tiles_and_costs_its_stored_blocks(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "sparse.tif", sparse=True)
    sizes = block_sizes(scene)
    assert sorted(k for k, n in sizes.items() if n) == [(1, 5), (1, 6), (2, 5), (2, 6)]
    (cost,) = dry_run(request(scene, tmp_path / "out.gpkg"), rate=1.0).scenes
    # blocks cols 5..6 lie in tile columns 2 and 3 (px 1024..2047), rows 1..2 in both tile rows
    assert (cost.tiles, cost.read, cost.skipped_nodata) == (8, 4, 4)
    assert (cost.blocks, cost.bytes) == (4, sum(sizes.values()))


def test_over_http_the_same_figures_and_only_header_bytes_fetched(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")
    (tmp_path / "www").mkdir()
    scene = write_scene(tmp_path / "www" / "scene.tif")
    local = dry_run(request(scene, tmp_path / "out.gpkg"), rate=1.0).scenes[0]
    with serve_folder(scene.parent) as (url, server):
        server.reset_counts()
        remote = dry_run(request(f"{url}/scene.tif", tmp_path / "out.gpkg"), rate=1.0).scenes[0]
        served, ranges = server.bytes_sent, [r[2] for r in server.requests if r[0] == "GET"]
    assert remote.remote and remote.scene == "scene.tif"
    assert (remote.tiles, remote.read, remote.blocks, remote.bytes) == (local.tiles, local.read, local.blocks,
                                                                        local.bytes)
    with rasterio.open(scene) as ds:  # the first block in the file, and where it ends
        offset, size = min((int(ds.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1)),
                            int(ds.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1)))
                           for r in range(H // BLOCK) for c in range(W // BLOCK))
    ends = [int(r.split("-")[1]) for r in ranges if r]
    assert ends and max(ends) < offset + size  # only the header chunk: no pixel block fetched whole
    assert served <= 64 * 2**10 < 0.05 * local.bytes


def test_an_existing_output_is_a_note_and_a_scene_that_does_not_open_an_error(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif")
    out = tmp_path / "out.gpkg"
    out.write_bytes(b"x")
    report = dry_run(request(scene, out), rate=1.0)
    assert report.notes == [f"{out} exists: the run would refuse it without --overwrite (or --resume)"]
    forced = DetectRequest(scenes=[str(scene)], output=out, overwrite=True, settings=TILING)
    assert dry_run(forced, rate=1.0).notes == []
    assert out.read_bytes() == b"x"
    with pytest.raises(RasterError, match="missing.tif does not exist"):
        dry_run(request(tmp_path / "missing.tif", tmp_path / "o.gpkg"), rate=1.0)
    skipped = dry_run(DetectRequest(scenes=[str(tmp_path / "missing.tif"), str(scene)], output=tmp_path / "o.gpkg",
                                    skip_bad=True, settings=TILING), rate=1.0)
    assert [s.read for s in skipped.scenes] == [0, 8] and "does not exist" in (skipped.scenes[0].set_aside or "")


def test_calibration_times_one_tile_of_a_random_init_network(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif")
    report = dry_run(DetectRequest(scenes=[str(scene)], output=tmp_path / "o.gpkg",
                                   settings={"tile_size": 64, "overlap": 0}))
    assert report.rate.source == "calibrated" and report.rate.tiles_per_s > 0
    assert "random init, 1 tile of 64 px" in report.rate.detail
    assert report.scenes[0].read == 512 and report.seconds == pytest.approx(512 / report.rate.tiles_per_s)


def test_tiles_all_nodata_in_an_overview_are_read_but_cost_no_model_time(tmp_path: Path) -> None:
    scene = tmp_path / "half.tif"
    profile = dict(driver="GTiff", width=W, height=H, count=3, dtype="uint8", crs="EPSG:32633", nodata=0,
                   transform=UTM_TRANSFORM, tiled=True, blockxsize=BLOCK, blockysize=BLOCK, compress="deflate")
    data = np.zeros((3, H, W), np.uint8)
    data[:, :, :1000] = np.random.default_rng(1).integers(1, 255, (3, H, 1000), dtype=np.uint8)
    with rasterio.open(scene, "w", **profile) as dst:  # data in tile columns 0 and 1 only, every block stored
        dst.write(data)
    with rasterio.open(scene, "r+") as dst:
        dst.build_overviews([2, 4, 8, 16, 64], rasterio.enums.Resampling.nearest)
    report = dry_run(request(scene, tmp_path / "out.gpkg"), rate=2.0)
    (cost,) = report.scenes
    assert (cost.tiles, cost.read, cost.skipped_nodata, cost.empty) == (8, 8, 0, 4)
    assert cost.bytes == sum(block_sizes(scene).values()) and report.seconds == 2.0
