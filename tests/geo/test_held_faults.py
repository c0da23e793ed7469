"""Behaviours issue 17's fault probe found holding, kept under test: a kill (SIGKILL, or the
default SIGTERM of a library caller) and a SIGINT mid-run, then --resume (the CLI's own SIGTERM
handling is in tests/cli/test_detect_faults_cli.py), odd paths (symlink, unicode, glob characters, a folder), EPSG:4326 across the
antimeridian, and a missing output folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from affine import Affine
from scene_helpers import PaintedPredictor, PaintedScene, SignallingPredictor, write_painted_scene

from fsanet_geo.errors import OutputError, RasterError, StaleLockWarning
from fsanet_geo.geo.outputs.journal import journal_dir
from fsanet_geo.geo.detect.pipeline import detect_scene, detect_to_file
from fsanet_geo.geo.settings import DetectSettings

TILE, OVERLAP = 64, 16
SETTINGS = DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=2)

_SLOW_RUN = """
import sys, time
sys.path.insert(0, {helpers!r})
from scene_helpers import PaintedPredictor
from fsanet_geo.geo.detect.pipeline import detect_to_file
from fsanet_geo.geo.settings import DetectSettings

class Slow(PaintedPredictor):
    weights_sha256 = "5" * 64  # the same model as the resumed run's

    def __call__(self, images):
        time.sleep(0.3)
        return super().__call__(images)

detect_to_file([{scene!r}], Slow(), {out!r}, settings=DetectSettings(tile_size=64, overlap=16, batch_size=2))
"""


class Same(PaintedPredictor):
    weights_sha256 = "5" * 64


def rows(path: Path):  # noqa: ANN201
    gdf = pyogrio.read_dataframe(path)
    return gdf.sort_values(["y_min", "x_min"]).reset_index(drop=True)


def reference_and_output(scene: PaintedScene, tmp_path: Path) -> tuple[Path, Path]:
    """An uninterrupted run's output, and the path the interrupted run writes."""
    reference = tmp_path / "reference.gpkg"
    detect_to_file([scene.path], PaintedPredictor(), reference, settings=SETTINGS)
    return reference, tmp_path / "out.gpkg"


@pytest.fixture
def terminal_sigint() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt, as in a terminal, even when the test runner inherited
    SIGINT ignored (started as a background job of a non-interactive shell, as CI may be)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_sigint_mid_run_keeps_the_finished_tiles_and_resume_completes_exactly(
    utm_scene: PaintedScene, tmp_path: Path, terminal_sigint: None
) -> None:
    """A real SIGINT (from another thread, landing wherever the main thread is) then --resume."""
    reference, out = reference_and_output(utm_scene, tmp_path)
    signalled = SignallingPredictor(signal.SIGINT)
    signalled.weights_sha256 = Same.weights_sha256
    with pytest.raises(KeyboardInterrupt):
        detect_to_file([utm_scene.path], signalled, out, settings=SETTINGS)
    assert not out.exists() and list(journal_dir(out).glob("*.npz"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleLockWarning)  # the interrupted run released its lock
        summary = detect_to_file([utm_scene.path], Same(), out,
                                 settings=DetectSettings(**{**SETTINGS.__dict__, "resume": True}))
    assert summary.resumed_tiles >= 4
    a, b = rows(reference), rows(out)
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))


def test_a_kill_mid_run_keeps_the_finished_tiles_and_resume_completes_exactly(
    utm_scene: PaintedScene, tmp_path: Path
) -> None:
    reference, out = reference_and_output(utm_scene, tmp_path)
    code = _SLOW_RUN.format(helpers=str(Path(__file__).parent), scene=str(utm_scene.path), out=str(out))
    run = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.monotonic() + 60
    while not list(journal_dir(out).glob("*.npz")) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)  # as the default SIGTERM of a library caller: no clean-up at all
    _, err = run.communicate(timeout=60)
    assert run.returncode != 0 and not out.exists(), err
    done = len(list(journal_dir(out).glob("*.npz")))
    assert done >= 1
    resume = DetectSettings(**{**SETTINGS.__dict__, "resume": True})
    # killed without clean-up: its lock file is left, and taken over
    with pytest.warns(StaleLockWarning, match=rf"\(pid {run.pid}\) is gone; taking it over"):
        summary = detect_to_file([utm_scene.path], Same(), out, settings=resume)
    assert summary.resumed_tiles >= 2 * done - 1 and not journal_dir(out).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.gpkg.") or p.name.endswith(".lock")]
    a, b = rows(reference), rows(out)
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))


@pytest.mark.parametrize("name", ["scène_東京.tif", "tile [1] *?.tif"])
def test_odd_scene_and_output_names_through_symlinks_and_resume(tmp_path: Path, name: str) -> None:
    scene = write_painted_scene(tmp_path / name, height=90, width=130, n_objects=10, seed=2)
    link = tmp_path / f"link to {name}"
    link.symlink_to(scene.path)
    out = tmp_path / f"{Path(name).stem}.gpkg"
    with pytest.raises(KeyboardInterrupt):
        detect_to_file([link], PaintedPredictor(interrupt_on_call=2), out, settings=SETTINGS)
    (tmp_path / f".{out.name}.k1ll3d00.tmp").mkdir()  # what a killed sink leaves
    summary = detect_to_file([link], PaintedPredictor(), out,
                             settings=DetectSettings(**{**SETTINGS.__dict__, "resume": True}))
    assert summary.resumed_tiles == 2 and summary.progress.detections == len(scene.boxes)
    assert rows(out)["scene"].unique().tolist() == [link.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, link.name, out.name])


def test_a_folder_as_scene_and_a_missing_output_folder_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(RasterError, match=rf"^scene {tmp_path} is a folder, not a raster file$"):
        detect_scene(tmp_path, PaintedPredictor())
    scene = write_painted_scene(tmp_path / "s.tif", height=64, width=64, n_objects=2)
    with pytest.raises(OutputError, match=rf"^output folder {tmp_path / 'missing'} does not exist$"):
        detect_to_file([scene.path], PaintedPredictor(), tmp_path / "missing" / "out.gpkg", settings=SETTINGS)


def test_epsg4326_across_the_antimeridian(tmp_path: Path) -> None:
    """GeoPackage: coordinates continuous past 180 as in the raster; GeoJSON (RFC 7946): longitudes
    within -180..180, a box across the line cut into a MultiPolygon of the same area."""
    transform = Affine(1e-4, 0.0, 179.99, 0.0, -1e-4, -16.5)  # 179.99 E .. 180.016 E (Fiji)
    scene = write_painted_scene(tmp_path / "fiji.tif", height=90, width=260, n_objects=20, seed=5,
                                crs="EPSG:4326", transform=transform)
    gpkg, geojson = tmp_path / "fiji.gpkg", tmp_path / "fiji.geojson"
    for out in (gpkg, geojson):
        detect_to_file([scene.path], PaintedPredictor(), out, settings=SETTINGS)
    flat = rows(gpkg)
    assert len(flat) == len(scene.boxes)
    bounds = flat.geometry.bounds.to_numpy()
    np.testing.assert_allclose(bounds[:, 0], 179.99 + flat["x_min"].to_numpy() * 1e-4, atol=1e-9)
    assert (bounds[:, 2] - bounds[:, 0]).max() < 0.01 and bounds[:, 2].max() > 180.0
    cut = rows(geojson)
    assert len(cut) == len(scene.boxes)
    crosses = (flat.geometry.bounds["minx"] < 180.0) & (flat.geometry.bounds["maxx"] > 180.0)
    assert crosses.any()
    b = cut.geometry.bounds.to_numpy()
    assert b[:, 0].min() >= -180.0 and b[:, 2].max() <= 180.0
    assert (cut.geometry.geom_type[crosses] == "MultiPolygon").all()
    assert (cut.geometry.geom_type[~crosses] == "Polygon").all()
    np.testing.assert_allclose(shapely.area(cut.geometry.values), shapely.area(flat.geometry.values), rtol=1e-6)
