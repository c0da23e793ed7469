"""Area of interest: exactly the tiles touching it are read, detections centred outside it are
dropped, scenes it misses are skipped; AOIs in another CRS, several polygons, rotated scenes."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import geopandas
import numpy as np
import pytest
import shapely
import shapely.affinity
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st
from http_helpers import serve_folder, write_painted_cog
from scene_helpers import UTM_TRANSFORM, PaintedPredictor, paint, random_objects, sort_boxes, write_raster

from fsanet_geo.errors import ConfigError, RasterError
from fsanet_geo.geo.pixels import reader
from fsanet_geo.geo.pixels.aoi import PixelArea, SceneSkippedWarning
from fsanet_geo.geo.detect.pipeline import detect_scene, detect_scenes
from fsanet_geo.geo.detect.run import DetectProgress
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.geo.pixels.tiling import tile_windows
from fsanet_geo.geo.windows import TileWindow

TILE, OVERLAP = 128, 16
SIZE = 512


def pixel_box_in_crs(transform: Affine, cols: tuple[float, float], rows: tuple[float, float]):  # noqa: ANN201
    """The pixel rectangle cols x rows as a polygon in the scene's CRS (through the full affine)."""
    box = shapely.box(cols[0], rows[0], cols[1], rows[1])
    return shapely.affinity.affine_transform(box, [transform.a, transform.b, transform.d, transform.e,
                                                   transform.c, transform.f])


def write_aoi(path: Path, polygons: list, crs: str, to_crs: str | None = None) -> Path:
    frame = geopandas.GeoDataFrame({"name": [f"p{i}" for i in range(len(polygons))]}, geometry=polygons, crs=crs)
    (frame.to_crs(to_crs) if to_crs else frame).to_file(path)
    return path


def expected_windows(boxes_px: list[tuple[tuple[int, int], tuple[int, int]]]) -> list[TileWindow]:
    """Windows of the scene sharing area with any of the pixel rectangles ((c0, c1), (r0, r1))."""
    out = []
    for w in tile_windows(SIZE, SIZE, TILE, OVERLAP):
        for (c0, c1), (r0, r1) in boxes_px:
            if w.col_off < c1 and c0 < w.col_end and w.row_off < r1 and r0 < w.row_end:
                out.append(w)
                break
    return out


def truth_inside(boxes: np.ndarray, labels: np.ndarray, boxes_px) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    inside = np.zeros(len(boxes), bool)
    for (c0, c1), (r0, r1) in boxes_px:
        inside |= (cx >= c0) & (cx <= c1) & (cy >= r0) & (cy <= r1)
    return sort_boxes(boxes[inside], labels[inside])


@pytest.fixture
def windows_read(monkeypatch: pytest.MonkeyPatch) -> list[TileWindow]:
    """Every tile window the reader reads, in order."""
    seen: list[TileWindow] = []
    original = reader.TileReader.read

    def read(self, index: int, window: TileWindow):  # noqa: ANN001, ANN202
        seen.append(window)
        return original(self, index, window)

    monkeypatch.setattr(reader.TileReader, "read", read)
    return seen


def scene_with(tmp_path: Path, name: str, transform: Affine, crs: str = "EPSG:32633", seed: int = 3):  # noqa: ANN201
    boxes, labels = random_objects(SIZE, SIZE, 200, seed=seed)
    path = write_raster(tmp_path / name, paint(SIZE, SIZE, boxes, labels), crs=crs, transform=transform)
    return path, boxes, labels


@pytest.mark.parametrize("transform", [UTM_TRANSFORM, UTM_TRANSFORM @ Affine.rotation(25.0)],
                         ids=["north-up", "rotated"])
def test_only_tiles_touching_the_aoi_are_read_and_detections_inside_kept(
    tmp_path: Path, transform: Affine, windows_read: list[TileWindow]
) -> None:
    path, boxes, labels = scene_with(tmp_path, "scene.tif", transform)
    boxes_px = [((150, 260), (40, 120)), ((400, 470), (420, 500))]  # two polygons; edges away from tile edges
    polygons = [pixel_box_in_crs(transform, c, r) for c, r in boxes_px]
    aoi = write_aoi(tmp_path / "aoi.gpkg", polygons, "EPSG:32633", to_crs="EPSG:4326")  # AOI in another CRS
    events: list[DetectProgress] = []
    gdf = detect_scene(path, PaintedPredictor(), tile_size=TILE, overlap=OVERLAP,
                       settings=DetectSettings(aoi=str(aoi)), progress=events.append)
    want = expected_windows(boxes_px)
    assert len(want) == 8  # 2 x 2 windows around each rectangle
    assert sorted(windows_read) == sorted(want)
    assert events[-1].tiles_total == events[-1].tiles_done == len(want)
    got_boxes, got_labels = sort_boxes(gdf[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64),
                                       gdf["class_id"].to_numpy())
    want_boxes, want_labels = truth_inside(boxes, labels, boxes_px)
    assert len(want_boxes) >= 3
    np.testing.assert_array_equal(got_boxes, want_boxes)
    np.testing.assert_array_equal(got_labels, want_labels)


def test_a_scene_the_aoi_misses_is_skipped_with_one_warning(tmp_path: Path) -> None:
    inside, boxes, labels = scene_with(tmp_path, "inside.tif", UTM_TRANSFORM)
    far = UTM_TRANSFORM @ Affine.translation(100_000, 0)  # 50 km east
    outside, _, _ = scene_with(tmp_path, "outside.tif", far, seed=4)
    aoi = write_aoi(tmp_path / "aoi.geojson", [pixel_box_in_crs(UTM_TRANSFORM, (0, SIZE), (0, SIZE))], "EPSG:32633")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gdf = detect_scenes([inside, outside], PaintedPredictor(),
                            settings=DetectSettings(tile_size=TILE, overlap=OVERLAP, aoi=str(aoi)))
    skipped = [str(w.message) for w in caught if issubclass(w.category, SceneSkippedWarning)]
    assert skipped == [f"skipped {outside}: outside the area of interest"]
    assert set(gdf["scene"]) == {"inside.tif"} and len(gdf) == len(boxes)
    with pytest.raises(RasterError, match="misses every scene"), pytest.warns(SceneSkippedWarning):
        detect_scenes([outside], PaintedPredictor(), settings=DetectSettings(aoi=str(aoi)))


def test_bad_aoi_files_are_one_line(tmp_path: Path) -> None:
    path, _, _ = scene_with(tmp_path, "scene.tif", UTM_TRANSFORM)
    points = write_aoi(tmp_path / "points.gpkg", [shapely.Point(500_010, 4_649_990)], "EPSG:32633")
    layers = tmp_path / "layers.gpkg"
    square = shapely.box(500_000, 4_649_900, 500_100, 4_650_000)
    for layer in ("area", "roads"):
        geopandas.GeoDataFrame({"name": [layer]}, geometry=[square], crs="EPSG:32633").to_file(layers, layer=layer)
    cases = {
        str(tmp_path / "none.gpkg"): "area of interest .*none.gpkg does not exist",
        str(points): "holds no polygon",
        str(layers): r"layers.gpkg holds 2 layers \(area, roads\): give a file holding the area's layer only",
    }
    for aoi, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            detect_scene(path, PaintedPredictor(), settings=DetectSettings(aoi=aoi))


def test_a_small_aoi_fetches_a_fraction_of_a_remote_cog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")
    (tmp_path / "www").mkdir()
    cog = write_painted_cog(tmp_path / "www" / "big.tif", height=1024, width=1024, n_objects=80)
    size = os.path.getsize(cog.path)
    aoi = write_aoi(tmp_path / "aoi.gpkg", [pixel_box_in_crs(UTM_TRANSFORM, (300, 360), (300, 360))], "EPSG:32633")
    with serve_folder(cog.path.parent) as (url, server):
        gdf = detect_scene(f"{url}/big.tif", PaintedPredictor(), tile_size=TILE, overlap=OVERLAP,
                           settings=DetectSettings(aoi=str(aoi)))
        fetched = server.bytes_sent
    assert size > 3_000_000
    # The 4 tiles touching the AOI cover 9 of the 64 blocks of 128 px (14 %), fetched in 64 KiB-rounded ranges.
    assert fetched < size / 5, (fetched, size)
    want_boxes, _ = truth_inside(cog.boxes, cog.labels, [((300, 360), (300, 360))])
    assert len(gdf) == len(want_boxes)


@given(
    height=st.integers(20, 400), width=st.integers(20, 400), tile=st.integers(16, 96), frac=st.floats(0.0, 0.5),
    box=st.tuples(st.floats(-50, 450), st.floats(-50, 450), st.floats(1, 200), st.floats(1, 200)),
)
def test_windows_touching_a_rectangle_are_those_sharing_area_with_it(
    height: int, width: int, tile: int, frac: float, box: tuple[float, float, float, float]
) -> None:
    x0, y0, w, h = box
    windows = tile_windows(height, width, tile, int(tile * frac))
    area = PixelArea(shapely.box(x0, y0, x0 + w, y0 + h))
    want = [win for win in windows
            if win.col_off < x0 + w and x0 < win.col_end and win.row_off < y0 + h and y0 < win.row_end]
    assert area.windows(windows) == want
