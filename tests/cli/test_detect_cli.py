"""`fsanet detect`: error paths (one line, exit 2) and the end-to-end run with a tiny model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "geo"))
from scene_helpers import CLASS_NAMES, write_painted_scene  # noqa: E402

from fsanet_cli.main import app  # noqa: E402
from fsanet_geo.geo.detect import detect_job  # noqa: E402

runner = CliRunner()


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, ["detect", *args])


def one_error_line(result) -> str:  # noqa: ANN001
    text = result.output.strip()
    assert result.exit_code == 2, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), text
    return lines[0]


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return write_painted_scene(tmp_path / "scene.tif", height=96, width=120, n_objects=8, seed=1).path


@pytest.fixture
def no_demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(detect_job, "demo_weights_path", lambda: tmp_path / "missing" / "demo.safetensors")


def test_output_exists_without_overwrite_is_refused_before_any_work(scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.gpkg"
    out.write_text("previous result")
    line = one_error_line(invoke(str(scene), "-o", str(out)))
    assert "already exists" in line and "--overwrite" in line
    assert out.read_text() == "previous result"


def test_output_folder_missing(scene: Path, tmp_path: Path) -> None:
    line = one_error_line(invoke(str(scene), "-o", str(tmp_path / "nowhere" / "out.gpkg")))
    assert "does not exist" in line
    line = one_error_line(invoke(str(scene), "--output-dir", str(tmp_path / "nowhere")))
    assert "does not exist" in line


def test_exactly_one_output_kind(scene: Path, tmp_path: Path) -> None:
    assert "exactly one of" in one_error_line(invoke(str(scene)))
    both = invoke(str(scene), "-o", str(tmp_path / "a.gpkg"), "--output-dir", str(tmp_path))
    assert "exactly one of" in one_error_line(both)


def test_no_weights_and_no_demo_model(scene: Path, tmp_path: Path, no_demo: None) -> None:
    line = one_error_line(invoke(str(scene), "-o", str(tmp_path / "out.gpkg")))
    assert "--weights" in line


def test_weights_that_do_not_load(scene: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    line = one_error_line(invoke(str(scene), "-o", str(tmp_path / "out.gpkg"), "--weights", str(bad)))
    assert "bad.safetensors" in line


def test_bad_scale_and_bands_options(scene: Path, tmp_path: Path) -> None:
    result = invoke(str(scene), "-o", str(tmp_path / "out.gpkg"), "--scale", "1,2,3")
    assert "--scale takes MIN,MAX" in one_error_line(result)
    result = invoke(str(scene), "-o", str(tmp_path / "out.gpkg"), "--bands", "1,x")
    assert result.exit_code == 2 and "--bands" in result.output


def test_help_states_the_defaults_as_applied() -> None:
    result = runner.invoke(app, ["detect", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    assert "[default: min(64, tile size // 4)]" in text  # what resolve_tiling applies
    assert "default: 64" not in text
    assert "[default: the packaged demo model]" in text


def test_missing_scene_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(str(tmp_path / "none.tif"), "-o", str(tmp_path / "out.gpkg"))
    assert result.exit_code == 2 and "does not exist" in result.output


# -- with a tiny real checkpoint --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    checkpoint = pytest.importorskip("fsanet_geo.model.files.checkpoint")
    from fsanet_geo.model.presets import build_model

    import torch

    torch.manual_seed(0)
    model = build_model("fcos_r18_lite", num_classes=3, class_names=list(CLASS_NAMES), input_size=64, score_thr=0.0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    checkpoint.save_checkpoint(model, path, extra_metadata={"score_threshold_from": "0: every detection, for the tests"})
    return path


def test_end_to_end_with_a_tiny_model(scene: Path, tmp_path: Path, tiny_weights: Path) -> None:
    import pyogrio

    out = tmp_path / "out.gpkg"
    preview = tmp_path / "quick.png"
    result = invoke(
        str(scene), "-o", str(out), "--weights", str(tiny_weights), "--overlap", "16", "--batch-size", "2",
        "--device", "cpu", "--preview", str(preview),
    )
    assert result.exit_code == 0, result.output
    assert "objects" in result.output and "tiles/s" in result.output and str(out) in result.output
    gdf = pyogrio.read_dataframe(out)
    assert gdf.crs.to_epsg() == 32633
    assert set(gdf.columns) >= {"class_id", "class_name", "score", "x_min", "y_min", "x_max", "y_max", "scene"}
    assert set(gdf["class_name"]) <= set(CLASS_NAMES)
    if len(gdf):
        assert (gdf["x_min"] >= 0).all() and (gdf["x_max"] <= 120).all() and (gdf["y_max"] <= 96).all()
    from PIL import Image

    with Image.open(preview) as img:
        assert img.size[1] == 96 and img.size[0] >= 120 and img.mode == "RGB"  # the legend panel is to the right
    again = invoke(str(scene), "-o", str(out), "--weights", str(tiny_weights))
    assert "already exists" in one_error_line(again)


def test_scene_errors_with_a_model(tmp_path: Path, tiny_weights: Path) -> None:
    text = tmp_path / "notes.tif"
    text.write_text("hello")
    out = str(tmp_path / "out.gpkg")
    assert "not a raster" in one_error_line(invoke(str(text), "-o", out, "--weights", str(tiny_weights)))
    no_crs = write_painted_scene(tmp_path / "nocrs.tif", height=40, width=40, n_objects=2, seed=2, crs=None).path
    line = one_error_line(invoke(str(no_crs), "-o", out, "--weights", str(tiny_weights)))
    assert "no CRS" in line and "--allow-no-crs" in line
    one_band = write_painted_scene(tmp_path / "one.tif", height=40, width=40, n_objects=2, seed=3, count=1).path
    line = one_error_line(invoke(str(one_band), "-o", out, "--weights", str(tiny_weights)))
    assert "model takes 3" in line and "--bands" in line
    line = one_error_line(invoke(str(one_band), "-o", out, "--weights", str(tiny_weights), "--bands", "1,2,1"))
    assert "out of range" in line
    line = one_error_line(invoke(str(one_band), "-o", out, "--weights", str(tiny_weights), "--classes", "tank"))
    assert "unknown class" in line
    if not __import__("torch").cuda.is_available():
        line = one_error_line(invoke(str(one_band), "-o", out, "--weights", str(tiny_weights), "--half"))
        assert "CUDA" in line
    assert not Path(out).exists()


def test_output_dir_one_file_per_scene_and_csv(tmp_path: Path, tiny_weights: Path) -> None:
    a = write_painted_scene(tmp_path / "a.tif", height=40, width=50, n_objects=3, seed=4).path
    b = write_painted_scene(tmp_path / "b.tif", height=40, width=50, n_objects=3, seed=5).path
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = invoke(str(a), str(b), "--output-dir", str(out_dir), "--format", "csv", "--weights", str(tiny_weights))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.csv", "a.csvt", "a.prj", "b.csv", "b.csvt", "b.prj"]
    header = (out_dir / "a.csv").read_text().splitlines()[0]
    assert "class_name" in header and "x_min" in header


def test_preview_draws_boxes_in_class_colours(tmp_path: Path) -> None:
    from fsanet_geo.geo.detections import Detections
    from fsanet_geo.geo.outputs.preview import class_colour, render_preview
    from fsanet_geo.geo.pixels.reader import open_scene

    scene_path = write_painted_scene(tmp_path / "s.tif", height=64, width=80, n_objects=0, seed=0).path
    dets = Detections(np.array([[40, 30, 50, 40], [60, 50, 70, 60]]), np.array([0.9, 0.8]), np.array([0, 1]))
    image = np.asarray(render_preview(open_scene(scene_path), dets, CLASS_NAMES))
    assert image.shape[0] == 64 and image.shape[1] > 80  # the legend is a panel right of the scene
    assert tuple(image[30, 45]) == class_colour(0)  # top edge of box 0
    assert tuple(image[55, 69]) == class_colour(1)  # right edge of box 1
    assert tuple(image[35, 45]) == (20, 20, 20)  # inside box 0: the background
    corner = Detections(np.array([[0, 0, 8, 8]]), np.array([0.9]), np.array([1]))  # where a legend used to sit
    image = np.asarray(render_preview(open_scene(scene_path), corner, CLASS_NAMES))
    assert tuple(image[0, 4]) == tuple(image[7, 4]) == class_colour(1)  # top and bottom edge, not hidden
    assert (image[:, 80:] == class_colour(1)).all(axis=2).any()  # the legend's swatch, right of the scene


def test_every_scene_is_checked_before_any_output(tmp_path: Path, tiny_weights: Path) -> None:
    good = write_painted_scene(tmp_path / "good.tif", height=40, width=50, n_objects=2, seed=6).path
    no_crs = write_painted_scene(tmp_path / "nocrs.tif", height=40, width=50, n_objects=2, seed=7, crs=None).path
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = invoke(str(good), str(no_crs), "--output-dir", str(out_dir), "--weights", str(tiny_weights))
    assert "no CRS" in one_error_line(result)
    assert list(out_dir.iterdir()) == []


# -- a failed start, progress off a terminal, warnings (QA findings) --------------------------


def test_a_refused_start_is_one_line_and_leaves_no_journal(scene: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    common = ["--weights", str(tiny_weights), "--device", "cpu"]
    result = invoke(str(scene), "-o", str(out_dir / "s.gpkg"), *common, "--scale", "10,5")
    assert result.output == "error: scale range needs MAX > MIN (both finite), got 10,5\n"
    assert result.exit_code == 2
    result = invoke(str(scene), "-o", str(out_dir / "y.xyz"), *common)
    assert result.output.startswith("error: unsupported output format '.xyz'")
    assert ".geojson, .gpkg, .shp, .fgb, .csv, .json" in one_error_line(result)
    (out_dir / "b.dbf").write_text("older table")  # refused by the sink, inside the run
    result = invoke(str(scene), "-o", str(out_dir / "b.shp"), *common)
    assert result.output.startswith("error: ") and "b.dbf already exists" in one_error_line(result)
    assert sorted(p.name for p in out_dir.iterdir()) == ["b.dbf"]  # no *.partial journal
    # the QA scenario: --resume after the failed start runs from scratch
    result = invoke(str(scene), "-o", str(out_dir / "s.gpkg"), *common, "--scale", "5,10", "--resume")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out_dir.iterdir()) == ["b.dbf", "s.gpkg", "s.gpkg.run.json"]  # --scale is recorded


def test_off_a_terminal_only_the_summary_line(scene: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "out.csv"
    result = invoke(str(scene), "-o", str(out), "--weights", str(tiny_weights), "--device", "cpu",
                    "--tile-size", "64", "--overlap", "16")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output  # no finished progress bar in a log file
    assert lines[0].endswith(f"tiles/s -> {out}") and " objects (" in lines[0]


def test_no_crs_scene_warns_once_and_rasterio_stays_quiet(tmp_path: Path, tiny_weights: Path) -> None:
    from PIL import Image

    png = tmp_path / "nocrs.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(png)
    result = invoke(str(png), "--allow-no-crs", "-o", str(tmp_path / "out.csv"), "--weights", str(tiny_weights),
                    "--device", "cpu", "--preview", str(tmp_path / "quick.png"))
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warned == [f"warning: {png} has no CRS: detections are in pixel coordinates"]
    assert "geotransform" not in result.output
