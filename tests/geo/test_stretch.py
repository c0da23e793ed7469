"""One radiometric stretch per scene: hand-computed ranges, the run record, its reuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scene_helpers import PaintedPredictor, paint, random_objects, sort_boxes, write_raster

from fsanet_geo.errors import ConfigError, Notice
from fsanet_geo.geo.detect.pipeline import detect_to_file
from fsanet_geo.geo.pixels.reader import open_scene
from fsanet_geo.geo.outputs.run_record import record_path
from fsanet_geo.geo.pixels.scaling import range_scaling
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.geo.pixels.stretch import measure_stretch, scale_from_record, stretch_from_percentiles


def _ramp(dtype: str) -> np.ndarray:
    """[2, 12, 12]: band 1 holds 1..100 in its first 100 pixels, band 2 ten times that; the
    last 44 pixels are 0 (nodata)."""
    band = np.zeros(144, np.float64)
    band[:100] = np.arange(1, 101)
    return np.stack([band, band * 10]).reshape(2, 12, 12).astype(dtype)


def test_uint16_stretch_excludes_nodata_hand_computed(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "u16.tif", _ramp("uint16"), nodata=0)
    stretch = measure_stretch(open_scene(path))
    # 2nd / 98th percentile of 1..100 (linear interpolation): 1 + 0.02 * 99, 1 + 0.98 * 99.
    assert stretch.source_low == pytest.approx((2.98, 29.8))
    assert stretch.source_high == pytest.approx((98.02, 980.2))
    assert stretch.scale_values() == pytest.approx([2.98, 98.02, 29.8, 980.2])
    # Without nodata the 44 zeros count: the 2nd percentile is 0; the 98th sits at rank
    # 0.98 * 143 = 140.14 of the 144 sorted values (rank k >= 44 holds k - 43): 97.14.
    plain = measure_stretch(open_scene(write_raster(tmp_path / "plain.tif", _ramp("uint16"))))
    assert plain.source_low == pytest.approx((0.0, 0.0))
    assert plain.source_high == pytest.approx((97.14, 971.4))


def test_float_stretch_ignores_nan_and_maps_to_model_levels(tmp_path: Path) -> None:
    data = _ramp("float32")
    data[data == 0] = np.nan
    stretch = measure_stretch(open_scene(write_raster(tmp_path / "f.tif", data)), levels=((50, 60), (150, 160)))
    assert stretch.source_low == pytest.approx((2.98, 29.8), rel=1e-6)
    # Band 1: 95.04 raster units span 100 levels; 0 is 50 levels below 2.98.
    low, high = stretch.ranges()[0]
    assert low == pytest.approx(2.98 - 50 * 0.9504, rel=1e-6) and high == pytest.approx(low + 255 * 0.9504, rel=1e-6)
    out = stretch.scaling().apply(np.array([[[2.98, 98.02]], [[29.8, 980.2]]], np.float32))
    assert out[:, 0].tolist() == [[50, 150], [60, 160]]


def test_stretch_to_levels_inverts_an_affine_copy() -> None:
    # A copy v * 40 + 200 whose percentiles sit where the model's levels are comes back unchanged.
    stretch = stretch_from_percentiles([28 * 40 + 200], [175 * 40 + 200], (2, 98), levels=((28,), (175,)))
    assert stretch.scale_values() == pytest.approx([200.0, 255 * 40 + 200.0])
    values = (np.arange(256, dtype=np.float64) * 40 + 200).reshape(1, 1, 256)
    assert (stretch.scaling().apply(values)[0, 0] == np.arange(256)).all()


def test_per_band_scale_values() -> None:
    scaling = range_scaling([0, 10, 5, 25, 1, 2], 3)
    assert scaling.low.tolist() == [0, 5, 1] and scaling.high.tolist() == [10, 25, 2]
    assert range_scaling([0, 10], 2).high.tolist() == [10, 10]
    with pytest.raises(ConfigError, match=r"--scale gives 2 band range\(s\) but 3 band\(s\) are read"):
        range_scaling([0, 1, 2, 3], 3)
    with pytest.raises(ConfigError, match=r"not so for band\(s\) \[2\]"):
        range_scaling([0, 1, 5, 5], 2)
    with pytest.raises(ConfigError, match="MIN,MAX or one MIN,MAX pair per band"):
        DetectSettings(scale=(1.0, 2.0, 3.0)).validate()


def test_recorded_stretch_round_trips(tmp_path: Path) -> None:
    boxes, labels = random_objects(128, 160, 12, seed=4)
    data = paint(128, 160, boxes, labels).astype(np.uint16) * 40 + 200
    data[:, :4, :] = 0
    scene = write_raster(tmp_path / "u16.tif", data, nodata=0)
    settings = DetectSettings(tile_size=64, overlap=16)
    with pytest.warns(Notice, match=r"u16.tif is uint16, stretched to 8 bits by 2-98% per band"):
        first = detect_to_file([scene], PaintedPredictor(), tmp_path / "a.gpkg", settings=settings)
    record = json.loads(record_path(tmp_path / "a.gpkg").read_text())
    (entry,) = record["scenes"]
    assert entry["dtype"] == "uint16" and entry["bands"] == [1, 2, 3]
    assert entry["stretch"]["source"] == "percentiles" and entry["stretch"]["target_low"] == [0.0, 0.0, 0.0]
    assert entry["gsd"] == {"scene_m": 0.5, "model_m": None, "zoom": 1.0, "reason": "the model's GSD is unknown"}
    values = scale_from_record(record_path(tmp_path / "a.gpkg"))
    assert len(values) == 6 and list(values) == entry["stretch"]["scale"]
    again = detect_to_file([scene], PaintedPredictor(), tmp_path / "b.gpkg",
                           settings=DetectSettings(tile_size=64, overlap=16, scale=values))
    second = json.loads(record_path(tmp_path / "b.gpkg").read_text())["scenes"][0]["stretch"]
    assert second == {"source": "--scale", "scale": pytest.approx(list(values))}
    assert scale_from_record(record_path(tmp_path / "b.gpkg")) == pytest.approx(values)
    assert first.progress.detections == again.progress.detections == 12
    import geopandas as gpd

    a, b = gpd.read_file(tmp_path / "a.gpkg"), gpd.read_file(tmp_path / "b.gpkg")
    cols = ["x_min", "y_min", "x_max", "y_max"]
    np.testing.assert_array_equal(sort_boxes(a[cols].to_numpy(), a.class_id.to_numpy())[0],
                                  sort_boxes(b[cols].to_numpy(), b.class_id.to_numpy())[0])


def test_scale_from_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        scale_from_record(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": 1}')
    with pytest.raises(ConfigError, match="not a run record"):
        scale_from_record(bad)
    eight = tmp_path / "eight.json"
    eight.write_text('{"scenes": [{"scene": "a.tif", "stretch": null}]}')
    with pytest.raises(ConfigError, match="records no stretch"):
        scale_from_record(eight)
