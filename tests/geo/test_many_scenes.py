"""Scenes in several CRSs: one file per scene, one GeoJSON (WGS84), one GeoPackage reprojected to
the first scene's CRS (one warning) or to a chosen CRS; coordinates checked against pyproj."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas
import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer
from scene_helpers import UTM_TRANSFORM, PaintedPredictor, paint, write_raster

from fsanet_geo.errors import ConfigError, RasterError
from fsanet_geo.geo.detect.detect_job import plan_detect_job, run_detect_job
from fsanet_geo.geo.detect.pipeline import detect_scenes, detect_to_file
from fsanet_geo.geo.scene_crs import MixedCrsWarning
from fsanet_geo.geo.settings import DetectSettings

SIZE = 128
SETTINGS = DetectSettings(tile_size=64, overlap=16)
OBJECT_PX = np.array([[40.0, 50.0, 52.0, 60.0]])  # the painted object, scene pixel edges


@pytest.fixture(scope="module")
def two_crs_scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Affine, str]]:
    """The same ground, once in UTM 33N (0.5 m pixels) and once in EPSG:4326 (about 0.5 m pixels),
    each with the object painted at OBJECT_PX."""
    folder = tmp_path_factory.mktemp("crs")
    lon, lat = Transformer.from_crs(32633, 4326, always_xy=True).transform(UTM_TRANSFORM.c, UTM_TRANSFORM.f)
    dlat = 0.5 / 111_320
    geo_transform = Affine(dlat / np.cos(np.radians(lat)), 0, lon, 0, -dlat, lat)
    image = paint(SIZE, SIZE, OBJECT_PX, np.array([1]))
    return {
        "utm": (write_raster(folder / "utm.tif", image, crs="EPSG:32633", transform=UTM_TRANSFORM),
                UTM_TRANSFORM, "EPSG:32633"),
        "geo": (write_raster(folder / "geo.tif", image, crs="EPSG:4326", transform=geo_transform),
                geo_transform, "EPSG:4326"),
    }


def corners(transform: Affine) -> np.ndarray:
    """float [4, 2] CRS coordinates of the object's pixel-edge corners."""
    x0, y0, x1, y1 = OBJECT_PX[0]
    return np.array([transform @ xy for xy in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))])


def assert_ring(geometry, expected: np.ndarray, tol: float) -> None:  # noqa: ANN001
    ring = np.array(geometry.exterior.coords)[:-1]
    for corner in expected:
        assert np.abs(ring - corner).max(axis=1).min() < tol, (ring, corner)


def in_crs(points: np.ndarray, source: str, target: str) -> np.ndarray:
    x, y = Transformer.from_crs(source, target, always_xy=True).transform(points[:, 0], points[:, 1])
    return np.column_stack([x, y])


def test_one_geojson_for_two_crss_is_wgs84_without_a_warning(two_crs_scenes, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "all.geojson"
    with warnings.catch_warnings():
        warnings.simplefilter("error", MixedCrsWarning)
        detect_to_file([two_crs_scenes["utm"][0], two_crs_scenes["geo"][0]], PaintedPredictor(), out,
                       settings=SETTINGS)
    gdf = geopandas.read_file(out)
    assert gdf.crs.to_epsg() == 4326 and sorted(gdf["scene"]) == ["geo.tif", "utm.tif"]
    for _, row in gdf.iterrows():
        path, transform, crs = two_crs_scenes[Path(row["scene"]).stem]
        assert_ring(row.geometry, in_crs(corners(transform), crs, "EPSG:4326"), 1e-9)
    a, b = gdf.geometry.to_crs(32633).centroid  # the same painted object: within a few metres
    assert a.distance(b) < 3.0


@pytest.mark.parametrize("chosen", [None, "EPSG:3857"])
def test_one_gpkg_for_two_crss_reprojects_to_the_first_or_the_chosen_crs(
    two_crs_scenes, tmp_path: Path, chosen: str | None  # noqa: ANN001
) -> None:
    out = tmp_path / "all.gpkg"
    settings = DetectSettings(**{**SETTINGS.__dict__, "crs": chosen})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        detect_to_file([two_crs_scenes["utm"][0], two_crs_scenes["geo"][0]], PaintedPredictor(), out,
                       settings=settings)
    mixed = [str(w.message) for w in caught if issubclass(w.category, MixedCrsWarning)]
    target = chosen or "EPSG:32633"
    if chosen is None:
        assert mixed == ["the scenes are in 2 CRSs: all.gpkg is reprojected to the first scene's (EPSG:32633); "
                         "choose another with --crs"]
    else:
        assert mixed == []
    gdf = geopandas.read_file(out)
    assert gdf.crs.to_string() == target and len(gdf) == 2
    for _, row in gdf.iterrows():
        path, transform, crs = two_crs_scenes[Path(row["scene"]).stem]
        assert_ring(row.geometry, in_crs(corners(transform), crs, target), 1e-6)


def test_output_dir_writes_each_scene_in_its_own_crs(two_crs_scenes, tmp_path: Path) -> None:  # noqa: ANN001
    scenes = [two_crs_scenes["utm"][0], two_crs_scenes["geo"][0]]
    job = plan_detect_job(scenes, SETTINGS, output_dir=tmp_path, file_format="gpkg")
    import fsanet_geo.geo.detect.detect_job as detect_job

    original = detect_job.load_detector
    detect_job.load_detector = lambda *a, **k: PaintedPredictor()  # type: ignore[assignment]
    try:
        summaries = run_detect_job(job)
    finally:
        detect_job.load_detector = original
    assert [s.output.name for s in summaries] == ["utm.gpkg", "geo.gpkg"]
    for name in ("utm", "geo"):
        gdf = geopandas.read_file(tmp_path / f"{name}.gpkg")
        path, transform, crs = two_crs_scenes[name]
        assert gdf.crs.to_string() == crs and len(gdf) == 1
        assert_ring(gdf.geometry.iloc[0], corners(transform), 1e-9)


def test_collected_frame_of_two_crss_is_in_one_crs(two_crs_scenes) -> None:  # noqa: ANN001
    gdf = detect_scenes([two_crs_scenes["utm"][0], two_crs_scenes["geo"][0]], PaintedPredictor(), settings=SETTINGS)
    assert gdf.crs.to_epsg() == 32633
    row = gdf[gdf["scene"] == "geo.tif"].iloc[0]
    assert_ring(row.geometry, in_crs(corners(two_crs_scenes["geo"][1]), "EPSG:4326", "EPSG:32633"), 1e-6)


def test_scenes_with_and_without_crs_do_not_share_a_layer(two_crs_scenes, tmp_path: Path) -> None:  # noqa: ANN001
    plain = write_raster(tmp_path / "plain.tif", paint(SIZE, SIZE, OBJECT_PX, np.array([0])), crs=None,
                         transform=None)
    settings = DetectSettings(**{**SETTINGS.__dict__, "allow_no_crs": True})
    with pytest.raises(RasterError, match="1 of 2 scenes have no CRS"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detect_scenes([two_crs_scenes["utm"][0], plain], PaintedPredictor(), settings=settings)


def test_an_unknown_crs_is_refused() -> None:
    with pytest.raises(ConfigError, match="--crs: cannot read 'EPSG:99999999'"):
        DetectSettings(crs="EPSG:99999999").validate()
