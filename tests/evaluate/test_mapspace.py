"""Map-space evaluation: reprojection, matching per class, counts, AP with the scene as one image."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Transformer
from shapely.geometry import Polygon, box

from fsanet_geo.errors import ConfigError, DatasetError
from fsanet_geo.evaluate.mapspace import evaluate_vectors

X0, Y0 = 500_000.0, 5_000_000.0  # EPSG:32633, metres
PIXEL = 0.5  # metres per pixel
# (column, row, size in pixels, class): sizes 4, 12, 20 and 40 px span the four AI-TOD ranges
OBJECTS = [
    (10 + 60 * i, 20 + 45 * (i % 3), (4, 12, 20, 40)[i % 4], ("vehicle", "ship")[i % 2]) for i in range(10)
]


def truth_frame(objects=OBJECTS, crs="EPSG:32633") -> gpd.GeoDataFrame:
    geoms = [
        box(X0 + c * PIXEL, Y0 - (r + s) * PIXEL, X0 + (c + s) * PIXEL, Y0 - r * PIXEL) for c, r, s, _ in objects
    ]
    return gpd.GeoDataFrame({"class_name": [o[3] for o in objects]}, geometry=geoms, crs=crs)


def to_wgs84(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Reproject polygons vertex by vertex with pyproj (independent of geopandas.to_crs)."""
    tr = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    geoms = [Polygon(list(zip(*tr.transform(*g.exterior.xy)))) for g in frame.geometry]
    return gpd.GeoDataFrame(frame.drop(columns="geometry"), geometry=geoms, crs="EPSG:4326")


def write(frame: gpd.GeoDataFrame, path: Path, **kwargs) -> Path:
    frame.to_file(path, driver="GPKG", engine="pyogrio", **kwargs)
    return path


def test_identical_layers_in_different_crs(tmp_path: Path) -> None:
    truth = write(truth_frame(), tmp_path / "truth.gpkg")
    dets = to_wgs84(truth_frame()).assign(score=np.linspace(0.9, 0.5, len(OBJECTS)))
    det_path = write(dets, tmp_path / "dets.gpkg")
    result = evaluate_vectors(truth, det_path, pixel_size=PIXEL)
    assert result.crs == "EPSG:32633"
    assert (result.overall.tp, result.overall.fp, result.overall.fn) == (10, 0, 0)
    assert result.precision == 1.0 and result.recall == 1.0 and result.f1 == 1.0
    for key in ("AP", "AP50", "AP75", "APvt", "APt", "APs", "APm"):
        assert result.coco.stats[key] == pytest.approx(1.0), key
    assert result.per_class["vehicle"].tp == 5 and result.per_class["ship"].tp == 5


def test_missing_extra_and_wrong_class_counts(tmp_path: Path) -> None:
    truth = write(truth_frame(), tmp_path / "truth.gpkg")
    kept = OBJECTS[2:]  # two objects missed
    extra = [(900, 300, 10, "vehicle"), (950, 300, 10, "ship"), (1000, 300, 10, "ship")]
    relabelled = [(c, r, s, "ship" if k == "vehicle" else "vehicle") for c, r, s, k in kept[:1]]
    dets = truth_frame(relabelled + kept[1:] + extra)
    dets["score"] = np.linspace(0.95, 0.3, len(dets))
    result = evaluate_vectors(truth, write(to_wgs84(dets), tmp_path / "d.gpkg"))
    # 7 right, 1 wrong class (a FP and the object still missed), 3 extra
    assert (result.overall.tp, result.overall.fp, result.overall.fn) == (7, 4, 3)
    assert result.precision == pytest.approx(7 / 11)
    assert result.recall == pytest.approx(7 / 10)
    assert result.f1 == pytest.approx(2 * (7 / 11) * 0.7 / (7 / 11 + 0.7))
    assert sum(c.tp + c.fn for c in result.per_class.values()) == 10
    # no pixel size anywhere: AP without the area split
    assert "APvt" not in result.coco.stats and 0 < result.coco.stats["AP"] < 1
    assert result.pixel_size is None


def test_score_threshold_only_affects_precision_recall(tmp_path: Path) -> None:
    truth = write(truth_frame(), tmp_path / "truth.gpkg")
    dets = truth_frame().assign(score=[0.9] * 6 + [0.2] * 4)
    det_path = write(dets, tmp_path / "d.gpkg")
    all_ = evaluate_vectors(truth, det_path)
    cut = evaluate_vectors(truth, det_path, score_threshold=0.5)
    assert (cut.overall.tp, cut.overall.fp, cut.overall.fn) == (6, 0, 4)
    assert all_.overall.tp == 10
    assert cut.coco.stats["AP"] == all_.coco.stats["AP"] == pytest.approx(1.0)


def test_pixel_size_from_column_or_metadata(tmp_path: Path) -> None:
    truth = write(truth_frame(), tmp_path / "truth.gpkg")
    # only the very tiny objects (4 px) found
    small = [o for o in OBJECTS if o[2] == 4]
    dets = truth_frame(small).assign(score=0.9)
    with_column = write(dets.assign(pixel_size=PIXEL), tmp_path / "col.gpkg")
    with_meta = write(dets, tmp_path / "meta.gpkg", layer_metadata={"pixel_size": str(PIXEL)})
    for path in (with_column, with_meta):
        result = evaluate_vectors(truth, path)
        assert result.pixel_size == PIXEL
        assert result.coco.stats["APvt"] == pytest.approx(1.0)
        assert result.coco.stats["APt"] == 0.0 and result.coco.stats["APm"] == 0.0
    # a wrong pixel size moves objects to other ranges: 4 px at 0.5 m = 2 m = 1 px at 2 m
    wrong = evaluate_vectors(truth, with_column, pixel_size=0.05)
    assert wrong.coco.stats["APvt"] == -1.0  # nothing under 8 px at 0.05 m per pixel


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_pixel_layers_and_crs_errors(tmp_path: Path) -> None:
    objects = [(10, 10, 6, "vehicle"), (40, 40, 20, "ship")]
    geoms = [box(c, r, c + s, r + s) for c, r, s, _ in objects]
    frame = gpd.GeoDataFrame({"class_name": [o[3] for o in objects]}, geometry=geoms)
    truth = write(frame, tmp_path / "t.gpkg")
    dets = write(frame.assign(score=[0.8, 0.7]), tmp_path / "d.gpkg")
    result = evaluate_vectors(truth, dets)
    assert result.crs is None and result.pixel_size == 1.0
    assert result.coco.stats["APvt"] == pytest.approx(1.0) and result.coco.stats["APs"] == pytest.approx(1.0)
    geo = write(truth_frame(), tmp_path / "geo.gpkg")
    with pytest.raises(DatasetError, match="no CRS"):
        evaluate_vectors(geo, dets)
    with pytest.raises(DatasetError, match="no 'label' column"):
        evaluate_vectors(truth, dets, class_column="label")
    with pytest.raises(DatasetError, match="does not exist"):
        evaluate_vectors(tmp_path / "none.gpkg", dets)
    with pytest.raises(ConfigError):
        evaluate_vectors(truth, dets, iou=0.0)


def test_geographic_truth_is_evaluated_in_utm(tmp_path: Path) -> None:
    truth = write(to_wgs84(truth_frame()), tmp_path / "t.gpkg")
    dets = write(to_wgs84(truth_frame()).assign(score=0.5), tmp_path / "d.gpkg")
    result = evaluate_vectors(truth, dets, pixel_size=PIXEL)
    assert result.crs == "EPSG:32633"
    assert result.recall == 1.0
    assert result.coco.stats["APt"] == pytest.approx(1.0)


def test_pixel_size_from_the_detect_pipeline_pixel_columns(tmp_path: Path) -> None:
    truth = write(truth_frame(), tmp_path / "truth.gpkg")
    dets = truth_frame().assign(
        score=0.8,
        x_min=[float(c) for c, _, _, _ in OBJECTS],
        x_max=[float(c + s) for c, _, s, _ in OBJECTS],
    )
    result = evaluate_vectors(truth, write(dets, tmp_path / "d.gpkg"))
    assert result.pixel_size == pytest.approx(PIXEL)
    assert result.coco.stats["APvt"] == pytest.approx(1.0)
    # in another CRS the pixel columns say nothing about working-CRS units
    reprojected = evaluate_vectors(truth, write(to_wgs84(dets), tmp_path / "w.gpkg"))
    assert reprojected.pixel_size is None


def test_counts_per_size_range(tmp_path: Path) -> None:
    # OBJECTS: sizes 4, 12, 20, 40, 4, 12, ... -> 3 very tiny, 3 tiny, 2 small, 2 medium
    truth = write(truth_frame(), tmp_path / "truth.gpkg")
    kept = [o for i, o in enumerate(OBJECTS) if i not in (0, 1)]  # miss a 4 px and a 12 px object
    extra = [(900, 300, 5, "vehicle"), (950, 300, 25, "ship")]  # FPs: one very tiny, one small
    dets = truth_frame(kept + extra).assign(score=0.9)
    result = evaluate_vectors(truth, write(dets, tmp_path / "d.gpkg"), pixel_size=PIXEL)
    got = {k: (c.tp, c.fp, c.fn) for k, c in result.per_size.items()}
    assert got == {"verytiny": (2, 1, 1), "tiny": (2, 0, 1), "small": (2, 1, 0), "medium": (2, 0, 0)}
    total = (result.overall.tp, result.overall.fp, result.overall.fn)
    assert tuple(sum(v[i] for v in got.values()) for i in range(3)) == total == (8, 2, 2)
    assert result.to_dict()["per_size"]["verytiny"]["recall"] == pytest.approx(2 / 3)
    # a detection matched to a truth box counts in the truth's range, whatever its own size:
    # 16 px boxes (small) over the 12 px (tiny) objects, IoU 144 / 256 = 0.56
    grown = truth_frame([(c - 2, r - 2, s + 4, k) if s == 12 else (c, r, s, k) for c, r, s, k in OBJECTS])
    result = evaluate_vectors(truth, write(grown.assign(score=0.9), tmp_path / "g.gpkg"), pixel_size=PIXEL)
    assert result.per_size["tiny"].tp == 3 and sum(c.fp for c in result.per_size.values()) == 0


def test_no_size_ranges_without_a_pixel_size(tmp_path: Path) -> None:
    truth = write(truth_frame(), tmp_path / "truth.gpkg")
    dets = write(truth_frame().assign(score=0.9), tmp_path / "d.gpkg")
    assert evaluate_vectors(truth, dets).per_size == {}
