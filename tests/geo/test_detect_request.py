"""prepare_detect: what ``fsanet detect`` was asked, checked and planned before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.detect.detect_request import DetectRequest, prepare_detect


def test_a_request_becomes_settings_and_a_planned_output(tmp_path: Path) -> None:
    out = tmp_path / "out.geojson"
    prepared = prepare_detect(DetectRequest(
        scenes=[str(tmp_path / "a.tif")], output=out, bands="3,2,1", classes="ship", scale="0,255",
        soft_nms=True, settings={"tile_size": 64, "device": "cpu"},
    ))
    settings = prepared.job.settings
    assert (settings.bands, settings.classes, settings.scale) == ([3, 2, 1], ["ship"], (0.0, 255.0))
    assert (settings.merge_method, settings.score_thr, settings.tile_size) == ("gaussian", 0.0, 64)
    assert list(prepared.job.outputs.values()) == [out] and prepared.job.model_score_thr is None
    assert prepared.notes == []


def test_output_dir_defaults_to_gpkg(tmp_path: Path) -> None:
    prepared = prepare_detect(DetectRequest(scenes=[str(tmp_path / "a.tif")], output_dir=tmp_path, score_thr=0.4))
    assert list(prepared.job.outputs.values()) == [tmp_path / "a.gpkg"]
    assert prepared.job.settings.score_thr == 0.4 and prepared.job.model_score_thr == 0.4


@pytest.mark.parametrize(("changes", "message"), [
    ({"output": Path("o.gpkg"), "output_format": "csv"},
     "-o o.gpkg and --format csv disagree: -o writes the format of its extension; drop --format or name the "
     "file o.csv"),
    ({"scale": "0,10,20"}, "--scale takes MIN,MAX or one MIN,MAX pair per band, got '0,10,20'"),
    ({"scale": "0,255", "scale_from": Path("o.run.json")}, "give --scale or --scale-from, not both"),
    ({"scale": "0,x"}, "--scale: cannot read 'x'"),
    ({"skip_bad": True, "nproc": 2}, "--skip-bad works in one process only: drop it or --nproc"),
])
def test_bad_requests_name_the_problem(tmp_path: Path, changes: dict, message: str) -> None:
    request = DetectRequest(**{"scenes": ["a.tif"], "output": tmp_path / "o.gpkg", **changes})
    with pytest.raises(ConfigError) as info:
        prepare_detect(request)
    assert str(info.value) == message
