"""Remote scenes: URL and GDAL-path handling, and COGs read over HTTP range requests from a
local server (results equal to the local file's, transient errors retried, permanent ones
named with the URL and tile, and resumed)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from http_helpers import serve_folder, write_painted_cog
from hypothesis import given
from hypothesis import strategies as st
from scene_helpers import PaintedPredictor, PaintedScene

from fsanet_geo.errors import RasterError
from fsanet_geo.geo.outputs.journal import journal_dir
from fsanet_geo.geo.detect.pipeline import detect_scene, detect_to_file
from fsanet_geo.geo.pixels.remote import (
    REMOTE_GDAL_DEFAULTS,
    NamedLocation,
    as_location,
    classify_remote_error,
    display_location,
    gdal_path,
    is_remote,
    location_name,
    location_stem,
    remote_gdal_options,
)
from fsanet_geo.geo.detect.run import DetectProgress
from fsanet_geo.geo.settings import DetectSettings

TILE, OVERLAP = 128, 16


# -- locations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_", "vsi", "name"),
    [
        ("https://example.com/a/scene.tif", "/vsicurl/https://example.com/a/scene.tif", "scene.tif"),
        ("http://h:8080/s.tif?token=abc", "/vsicurl/http://h:8080/s.tif?token=abc", "s.tif"),
        ("s3://bucket/dir/scene.tif", "/vsis3/bucket/dir/scene.tif", "scene.tif"),
        ("gs://bucket/scene.tif", "/vsigs/bucket/scene.tif", "scene.tif"),
        ("/vsis3/bucket/k.tif", "/vsis3/bucket/k.tif", "k.tif"),
        ("/vsicurl/https://h/x.tif?X-Amz-Signature=1", "/vsicurl/https://h/x.tif?X-Amz-Signature=1", "x.tif"),
    ],
)
def test_remote_locations_stay_strings_and_map_to_gdal_paths(given_: str, vsi: str, name: str) -> None:
    loc = as_location(given_)
    assert loc == given_ and isinstance(loc, str) and is_remote(loc)
    assert gdal_path(loc) == vsi
    assert location_name(loc) == name and location_stem(loc) == name.rsplit(".", 1)[0]


def test_local_paths_and_file_urls_become_paths(tmp_path: Path) -> None:
    assert as_location(str(tmp_path / "a.tif")) == tmp_path / "a.tif"
    assert as_location(f"file://{tmp_path}/b.tif") == tmp_path / "b.tif"
    assert not is_remote(tmp_path / "a.tif") and not is_remote("relative/c.tif")
    named = NamedLocation("s3://b/k/visual.tif", "item-7")
    assert is_remote(named) and location_name(named) == "item-7" and as_location(named) == "s3://b/k/visual.tif"
    assert location_stem(NamedLocation("a.tif", "S2A_MSIL2A_20240101.SAFE")) == "S2A_MSIL2A_20240101.SAFE"


def test_unknown_url_scheme_is_one_clear_error() -> None:
    with pytest.raises(RasterError, match="unsupported URL scheme 'ftp'"):
        as_location("ftp://host/scene.tif")


@given(user=st.text("abcdefXYZ019", min_size=1, max_size=8), secret=st.text("abcdefXYZ019", min_size=4, max_size=12))
def test_displayed_locations_never_carry_credentials(user: str, secret: str) -> None:
    for url in (f"https://{user}:{secret}@host.org/p/s.tif?X-Amz-Signature={secret}",
                f"/vsicurl/https://host.org/s.tif?sig={secret}"):
        shown = display_location(url)
        assert secret not in shown and "host.org" in shown and shown.endswith("s.tif?...")


def test_gdal_options_are_the_cog_settings_and_the_environment_wins() -> None:
    opts = remote_gdal_options({})
    assert opts["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert opts["GDAL_HTTP_MERGE_CONSECUTIVE_RANGES"] == "YES"
    assert int(opts["GDAL_HTTP_MAX_RETRY"]) > 0 and float(opts["GDAL_HTTP_RETRY_DELAY"]) > 0
    assert opts["VSI_CACHE"] == "TRUE" and int(opts["VSI_CACHE_SIZE"]) <= 64 * 2**20
    mine = remote_gdal_options({"GDAL_HTTP_MAX_RETRY": "9"})
    assert "GDAL_HTTP_MAX_RETRY" not in mine and len(mine) == len(REMOTE_GDAL_DEFAULTS) - 1


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short backoff (the environment wins over the defaults)."""
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "3")


@pytest.fixture
def cog(tmp_path: Path) -> PaintedScene:
    (tmp_path / "www").mkdir()
    return write_painted_cog(tmp_path / "www" / "cog.tif")


def frame_rows(gdf) -> list[tuple]:  # noqa: ANN001
    """Rows (class, pixel box, geometry WKT) in a canonical order."""
    cols = ["class_id", "x_min", "y_min", "x_max", "y_max"]
    return sorted((*(float(v) for v in row[:-1]), row[-1].wkt) for row in gdf[[*cols, "geometry"]].itertuples(False))


def test_cog_over_http_equals_the_local_file(cog: PaintedScene, fast_retries: None) -> None:
    local_events: list[DetectProgress] = []
    local = detect_scene(cog.path, PaintedPredictor(), tile_size=TILE, overlap=OVERLAP, progress=local_events.append)
    events: list[DetectProgress] = []
    with serve_folder(cog.path.parent) as (url, server):
        server.reset_counts()
        remote = detect_scene(f"{url}/cog.tif", PaintedPredictor(), tile_size=TILE, overlap=OVERLAP,
                              progress=events.append)
        ranged = [r for r in server.requests if r[0] == "GET"]
        served = server.bytes_sent
    assert local_events[-1].bytes_fetched is None
    if events[-1].bytes_fetched is not None:  # GDAL's network statistics reachable (Linux, GDAL >= 3.2)
        fetched = [e.bytes_fetched for e in events]
        assert fetched == sorted(fetched) and fetched[-1] > 0  # the first event comes before any tile
        assert 0 <= served - fetched[-1] <= 64 * 2**10  # all but the header chunk read when the scene was checked
    assert len(local) == len(cog.boxes) == 40
    assert frame_rows(remote) == frame_rows(local)
    assert set(remote["scene"]) == {"cog.tif"} and remote.crs == local.crs
    assert ranged and all(r[2] is not None and r[2].startswith("bytes=") for r in ranged)  # only range requests


def test_transient_503s_are_retried(cog: PaintedScene, fast_retries: None) -> None:
    with serve_folder(cog.path.parent) as (url, server):
        server.fail_next = 2
        gdf = detect_scene(f"{url}/cog.tif", PaintedPredictor(), tile_size=TILE, overlap=OVERLAP)
        assert server.failures_sent == 2
    assert len(gdf) == len(cog.boxes)


def test_404_is_one_line_naming_the_url(cog: PaintedScene, fast_retries: None) -> None:
    with serve_folder(cog.path.parent) as (url, _), pytest.raises(RasterError) as info:
        detect_scene(f"{url}/missing.tif?sig=secret", PaintedPredictor())
    assert str(info.value) == f"scene {url}/missing.tif?... was not found (HTTP 404)"


def test_permanent_error_mid_scene_names_url_and_tile_and_resume_continues(
    cog: PaintedScene, tmp_path: Path, fast_retries: None
) -> None:
    out = tmp_path / "out.gpkg"
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=2, read_threads=1, prefetch=1)
    with serve_folder(cog.path.parent) as (url, server):
        server.fail_after_bytes["/cog.tif"] = os.path.getsize(cog.path) // 3
        with pytest.raises(RasterError, match=rf"cannot read tile (\d+) \(window .*\) of {url}/cog.tif: ") as info:
            detect_to_file([f"{url}/cog.tif"], PaintedPredictor(), out, settings=settings)
        assert not out.exists() and journal_dir(out).is_dir()
        failed_tile = int(re.search(r"tile (\d+)", str(info.value)).group(1))  # type: ignore[union-attr]
        server.fail_after_bytes.clear()
        predictor = PaintedPredictor()
        summary = detect_to_file([f"{url}/cog.tif"], predictor, out,
                                 settings=DetectSettings(**{**settings.__dict__, "resume": True}))
    assert 0 < summary.resumed_tiles <= failed_tile
    assert predictor.tiles_seen == summary.progress.tiles_total - summary.resumed_tiles
    import geopandas

    assert len(geopandas.read_file(out)) == len(cog.boxes)


# -- network faults (issue 24, point 3) --------------------------------------------------------


@pytest.mark.parametrize("fault", ["drop", "truncate"])
def test_dropped_connections_and_truncated_replies_are_retried(cog: PaintedScene, fast_retries: None,
                                                               fault: str) -> None:
    with serve_folder(cog.path.parent) as (url, server):
        server.faults = [fault] * 3  # three GETs in a row fail: more than GDAL's own multi-range fallback
        gdf = detect_scene(f"{url}/cog.tif", PaintedPredictor(), tile_size=TILE, overlap=OVERLAP)
        assert server.faults == []
    assert len(gdf) == len(cog.boxes)


def test_a_server_failing_every_request_stops_within_the_bound(
    cog: PaintedScene, fast_retries: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setenv("FSANET_RETRY_SECONDS", "3")
    with serve_folder(cog.path.parent) as (url, server):
        server.status_for["/cog.tif"] = 500
        start = time.monotonic()
        with pytest.raises(RasterError) as info:
            detect_scene(f"{url}/cog.tif", PaintedPredictor(), tile_size=TILE, overlap=OVERLAP)
        spent = time.monotonic() - start
        sent = len(server.requests)
    assert 2.5 < spent < 6
    match = re.fullmatch(rf"scene {url}/cog.tif: the server kept failing for 3 s \(retry bound 3 s, "
                         r"FSANET_RETRY_SECONDS\): (\d+) requests failed, the last with HTTP 500", str(info.value))
    assert match, str(info.value)
    assert int(match.group(1)) == sent or int(match.group(1)) == 0 and sent  # GDAL's counts reachable or not


def test_the_retry_bound_is_a_detect_option(cog: PaintedScene, fast_retries: None, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fsanet_cli.main import app

    with serve_folder(cog.path.parent) as (url, server):
        server.status_for["/cog.tif"] = 500
        result = CliRunner().invoke(app, ["detect", f"{url}/cog.tif", "-o", str(tmp_path / "o.gpkg"),
                                          "--retry-seconds", "1", "--device", "cpu"])
    assert result.exit_code == 2
    assert re.search(r"the server kept failing for \d s \(retry bound 1 s, --retry-seconds\): \d+ requests "
                     r"failed, the last with HTTP 500", result.stderr), result.stderr


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_named_never_not_found(cog: PaintedScene, fast_retries: None, status: int) -> None:
    with serve_folder(cog.path.parent) as (url, server), pytest.raises(RasterError) as info:
        server.status_for["/cog.tif"] = status
        detect_scene(f"{url}/cog.tif", PaintedPredictor())
    assert str(info.value).startswith(f"scene {url}/cog.tif: the server refused the credentials (HTTP {status}); ")
    assert "not found" not in str(info.value)


@pytest.mark.parametrize(
    ("detail", "kind", "words"),
    [
        ("HTTP response code: 403 - <Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you "
         "provided does not exist in our records.</Message></Error>", "credentials",
         "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records."),
        ("<Code>SignatureDoesNotMatch</Code>", "credentials", "SignatureDoesNotMatch"),
        ("ExpiredToken: The provided token has expired.", "credentials", "ExpiredToken: The provided token has expired"),
        ("HTTP response code: 404", "not_found", None),
        ("'/vsis3/b/k.tif' does not exist in the file system", "not_found", None),
        ("HTTP response code: 503", "transient", None),
        ("Request for 0-100 failed with response_code=0", "transient", None),
        ("TIFFReadEncodedTile() failed", "unsure", None),
    ],
)
def test_remote_errors_are_classified_credentials_first(detail: str, kind: str, words: str | None) -> None:
    fault = classify_remote_error(detail)
    assert (fault.kind, fault.words) == (kind, words)
