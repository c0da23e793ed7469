"""A detection run that fails to start leaves nothing on disk; a scene without CRS warns once."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scene_helpers import PaintedPredictor, PaintedScene, write_painted_scene

from fsanet_geo.errors import ConfigError, FileOverwriteError, NotGeoreferencedWarning, OutputError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.outputs.journal import DetectJournal, JournalChunk, journal_dir
from fsanet_geo.geo.detect.pipeline import check_scenes, detect_to_file
from fsanet_geo.geo.settings import DetectSettings

pytest.importorskip("fsanet_geo.geo.outputs.georef")

TILE, OVERLAP = 32, 8


@pytest.fixture
def small_scene(tmp_path: Path) -> PaintedScene:
    (tmp_path / "in").mkdir()
    return write_painted_scene(tmp_path / "in" / "small.tif", height=48, width=56, n_objects=4, seed=5)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        ((10.0, 5.0), "scale range needs MAX > MIN (both finite), got 10,5"),
        ((7.0, 7.0), "scale range needs MAX > MIN (both finite), got 7,7"),
        ((0.0, float("inf")), "scale range needs MAX > MIN (both finite), got 0,inf"),
        ((1.0, 2.0, 3.0), "scale range is MIN,MAX or one MIN,MAX pair per band, got [1.0, 2.0, 3.0]"),
        ((0.0, 1.0, 3.0, 2.0), "scale range needs MAX > MIN (both finite), got 3,2"),
    ],
)
def test_scale_range_is_checked_with_the_settings(scale: tuple[float, ...], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        DetectSettings(scale=scale).validate()  # type: ignore[arg-type]
    assert str(info.value) == message
    DetectSettings(scale=(5.0, 10.0)).validate()
    DetectSettings(scale=(5.0, 10.0, 0.0, 1.0, 2.0, 3.0)).validate()  # one pair per band


def test_percentiles_are_checked_with_the_settings() -> None:
    with pytest.raises(ConfigError, match=r"0 <= low < high <= 100, got \[98.0, 2.0\]"):
        DetectSettings(percentiles=(98.0, 2.0)).validate()
    DetectSettings(percentiles=(0.0, 100.0)).validate()


@pytest.mark.parametrize(
    ("name", "settings", "error", "match"),
    [
        ("s.gpkg", DetectSettings(tile_size=TILE, overlap=OVERLAP, scale=(10.0, 5.0)), ConfigError, "MAX > MIN"),
        ("y.xyz", DetectSettings(tile_size=TILE, overlap=OVERLAP), OutputError,
         r"unsupported output format '.xyz' .*\.geojson, \.gpkg, \.shp, \.fgb, \.csv, \.json"),
        ("c.gpkg", DetectSettings(tile_size=TILE, overlap=OVERLAP, classes=["tank"]), ConfigError, "unknown class"),
    ],
)
def test_a_refused_start_creates_nothing(
    small_scene: PaintedScene, tmp_path: Path, name: str, settings: DetectSettings, error: type, match: str
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(error, match=match):
        detect_to_file([small_scene.path], PaintedPredictor(), out_dir / name, settings=settings)
    assert listing(out_dir) == []  # no <name>.partial/ journal, no temporary folder


def test_an_existing_shapefile_part_is_refused_before_the_journal(small_scene: PaintedScene, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "boxes.dbf").write_text("an older table")
    with pytest.raises(FileOverwriteError, match="boxes.dbf already exists"):
        detect_to_file([small_scene.path], PaintedPredictor(), out_dir / "boxes.shp",
                       settings=DetectSettings(tile_size=TILE, overlap=OVERLAP))
    assert listing(out_dir) == ["boxes.dbf"]


def test_a_failure_before_any_finished_tile_removes_the_new_journal(
    small_scene: PaintedScene, tmp_path: Path
) -> None:
    out = tmp_path / "out.gpkg"
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=1)
    with pytest.raises(KeyboardInterrupt):
        detect_to_file([small_scene.path], PaintedPredictor(interrupt_on_call=1), out, settings=settings)
    assert listing(tmp_path) == ["in"]
    # the QA scenario: a later --resume must not trip over a journal of the failed start
    resumed = DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=1, resume=True)
    summary = detect_to_file([small_scene.path], PaintedPredictor(), out, settings=resumed)
    assert summary.resumed_tiles == 0 and summary.progress.detections == len(small_scene.boxes)
    assert listing(tmp_path) == ["in", "out.gpkg"]


def test_a_failure_after_finished_tiles_keeps_the_journal(small_scene: PaintedScene, tmp_path: Path) -> None:
    out = tmp_path / "out.gpkg"
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=1)
    with pytest.raises(KeyboardInterrupt):
        detect_to_file([small_scene.path], PaintedPredictor(interrupt_on_call=3), out, settings=settings)
    assert len(list(journal_dir(out).glob("*.npz"))) == 2


def test_journal_created_and_empty(tmp_path: Path) -> None:
    folder = tmp_path / "x.gpkg.partial"
    fresh = DetectJournal(folder, {"a": 1}, resume=False)
    assert fresh.created and fresh.is_empty()
    fresh.record(JournalChunk(0, 0, 2, 1, Detections()))
    assert not fresh.is_empty()
    reopened = DetectJournal(folder, {"a": 1}, resume=True)
    assert not reopened.created and not reopened.is_empty()
    fresh.remove()
    assert fresh.is_empty()
    assert DetectJournal(folder, {"a": 1}, resume=True).created  # resume without a journal starts one


def write_plain_png(path: Path, height: int = 40, width: int = 48) -> Path:
    """An RGB PNG: no CRS and no geotransform (rasterio warns NotGeoreferencedWarning on opening it)."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 40, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def test_a_scene_without_crs_warns_exactly_once(tmp_path: Path) -> None:
    png = write_plain_png(tmp_path / "plain.png")
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, allow_no_crs=True, read_threads=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_scenes([png], PaintedPredictor(), settings)
        detect_to_file([png], PaintedPredictor(), tmp_path / "out.csv", settings=settings)
    assert [(w.category, str(w.message)) for w in caught] == [
        (NotGeoreferencedWarning, f"{png} has no CRS: detections are in pixel coordinates")
    ]


def test_a_scene_with_crs_and_no_geotransform_keeps_rasterio_warning(tmp_path: Path) -> None:
    """Only the condition we report ourselves (no CRS) silences rasterio's warning."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning as RioWarning

    from fsanet_geo.geo.pixels.reader import open_scene

    path = tmp_path / "crs_only.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RioWarning)
        with rasterio.open(path, "w", driver="GTiff", height=8, width=8, count=1, dtype="uint8",
                           crs="EPSG:32633") as ds:
            ds.write(np.zeros((1, 8, 8), np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = open_scene(path)
    assert info.crs is not None
    assert [w.category for w in caught] == [RioWarning]


# -- a detect job: outputs and previews planned and checked before any work --------------------


def test_a_job_plans_one_file_per_scene_and_a_preview_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fsanet_geo.geo.detect.detect_job import plan_detect_job

    monkeypatch.delenv("RANK", raising=False)
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    job = plan_detect_job([a, b], DetectSettings(), output_dir=tmp_path, file_format="csv",
                          preview=tmp_path / "quick.png")
    assert job.outputs == {(a,): tmp_path / "a.csv", (b,): tmp_path / "b.csv"}
    assert job.previews == {a: tmp_path / "quick_a.png", b: tmp_path / "quick_b.png"}
    one = plan_detect_job([a, b], DetectSettings(), output=tmp_path / "all.gpkg", preview=tmp_path / "q.png")
    assert one.outputs == {(a, b): tmp_path / "all.gpkg"}
    assert plan_detect_job([a], DetectSettings(), output=tmp_path / "x.gpkg", preview=tmp_path / "q.png").previews == {
        a: tmp_path / "q.png"
    }


def test_a_job_refuses_bad_plans_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fsanet_geo.geo.detect.detect_job import plan_detect_job

    monkeypatch.delenv("RANK", raising=False)
    a = tmp_path / "a.tif"
    with pytest.raises(ConfigError, match="exactly one of"):
        plan_detect_job([a], DetectSettings())
    with pytest.raises(ConfigError, match="give a .png path"):
        plan_detect_job([a], DetectSettings(), output=tmp_path / "o.gpkg", preview=tmp_path / "q.jpg")
    with pytest.raises(ConfigError, match="share a file name"):
        plan_detect_job([a, tmp_path / "x" / "a.tif"], DetectSettings(), output_dir=tmp_path)
    with pytest.raises(OutputError, match="does not exist"):
        plan_detect_job([a], DetectSettings(), output_dir=tmp_path / "none")
    (tmp_path / "o.gpkg").write_text("older")
    with pytest.raises(FileOverwriteError):
        plan_detect_job([a], DetectSettings(), output=tmp_path / "o.gpkg")
    with pytest.raises(ConfigError, match="merge metric"):
        plan_detect_job([a], DetectSettings(merge_metric="dice"), output=tmp_path / "p.gpkg")
    monkeypatch.setenv("RANK", "1")  # under torchrun only rank 0 writes, so only rank 0 checks the files
    assert plan_detect_job([a], DetectSettings(), output=tmp_path / "o.gpkg").outputs
    assert listing(tmp_path) == ["o.gpkg"]
