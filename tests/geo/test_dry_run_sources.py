"""``fsanet detect --dry-run`` on S3 (moto's local server) and STAC scenes: the local file's
figures under the names the run would give (issue 24, point 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_dry_run import no_model_load, request, write_scene  # noqa: F401 - autouse: every loader fails
from test_s3 import s3_endpoint, s3_env  # noqa: F401 - the local S3 server and its environment
from test_stac import make_item, write_item

from fsanet_geo.geo.detect.detect_request import DetectRequest
from fsanet_geo.geo.detect.dry_run import dry_run

boto3 = pytest.importorskip("boto3")


def figures(report) -> list[tuple]:  # noqa: ANN001
    return [(s.scene, s.tiles, s.read, s.skipped_nodata, s.blocks, s.bytes) for s in report.scenes]


def test_an_s3_scene_costs_what_the_local_file_does(s3_env: str, tmp_path: Path) -> None:  # noqa: F811
    scene = write_scene(tmp_path / "sparse.tif", sparse=True)
    client = boto3.client("s3", endpoint_url=f"http://{s3_env}", region_name="us-east-1")
    client.create_bucket(Bucket="prices")
    client.put_object(Bucket="prices", Key="dir/sparse.tif", Body=scene.read_bytes())
    local = dry_run(request(scene, tmp_path / "o.gpkg"), rate=1.0)
    remote = dry_run(request("s3://prices/dir/sparse.tif", tmp_path / "o.gpkg"), rate=1.0)
    assert figures(remote) == figures(local) and figures(local)[0][1:4] == (8, 4, 4)
    assert remote.scenes[0].remote and not local.scenes[0].remote


def test_a_stac_item_is_priced_under_its_id(tmp_path: Path) -> None:
    write_scene(tmp_path / "visual.tif")
    item = write_item(make_item("S2A_20240101", {"visual": ("visual.tif", ["visual"], {})}), tmp_path / "item.json")
    report = dry_run(DetectRequest(scenes=[str(item)], output=tmp_path / "o.gpkg",
                                   settings={"tile_size": 512, "overlap": 0}), rate=1.0)
    assert [(s.scene, s.tiles, s.read) for s in report.scenes] == [("S2A_20240101", 8, 8)]
    assert report.notes == ["STAC: reading asset visual of each item (choose another with --asset)"]
