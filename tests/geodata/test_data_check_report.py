"""`fsanet data check`'s report on stdout (80 columns), its object sizes and preset, --json;
`fsanet data --help` and `fsanet data synth` into a folder it cannot create."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from label_scenes import ROTATED, pixel_polygon, write_labels, write_scene
from typer.testing import CliRunner

from fsanet_cli.main import app
from fsanet_geo.geodata.label_stats import preset_for_side

runner = CliRunner()
SIZE_LINE = ("object size (square root of box area): median 8.0 px, 10th-90th percentile 3.6-12.5 px; "
             "preset: fsanet_r18_tiny (built for objects under 16 px)")


@pytest.fixture
def labelled(tmp_path: Path) -> list[str]:
    """The arguments of a check of one scene whose kept boxes are 4x4, 12x12, 3x4 and 16x10 px."""
    scene = write_scene(tmp_path / "a_scene_with_a_long_name.tif")
    rects = [(2, 3, 6, 7), (10, 3, 22, 15), (-2, 20, 3, 24), (50, 2, 54, 6), (31, 5, 35, 9), (12, 20, 28, 36)]
    labels = write_labels(tmp_path / "labels_with_a_long_name.gpkg", [pixel_polygon(ROTATED, *r) for r in rects],
                          "EPSG:32633", cls=["storage-tank"] * 5 + ["swimming-pool"])
    return ["data", "check", "--scene", str(scene), "--labels", str(labels), "--class-field", "cls"]


def test_the_report_is_on_stdout_and_fits_80_columns(labelled: list[str]) -> None:
    env = {**os.environ, "COLUMNS": "80"}
    out = subprocess.run([sys.executable, "-m", "fsanet_cli.main", *labelled], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines if line != SIZE_LINE) <= 80, out.stdout
    assert SIZE_LINE in lines  # one line, left to the terminal to wrap
    assert any(line.startswith("swimming-pool ") for line in lines)
    assert "kept" not in out.stderr and "swimming-pool" not in out.stderr


def test_json_holds_the_same_figures(labelled: list[str]) -> None:
    result = runner.invoke(app, [*labelled, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["total"]["read"] == 6 and data["total"]["kept"] == 4 and data["total"]["outside"] == 1
    assert data["classes"]["storage-tank"] == {"verytiny": 2, "tiny": 1, "small": 0, "medium": 0, "total": 3}
    assert data["object_size"] == {"count": 4, "p10_px": pytest.approx(3.6249, abs=1e-3), "median_px": pytest.approx(8.0),
                                   "p90_px": pytest.approx(12.4547, abs=1e-3)}
    assert data["preset"] == "fsanet_r18_tiny"


def test_the_preset_follows_the_median_side() -> None:
    assert [preset_for_side(v) for v in (2.0, 15.9, 16.0, 99.0, 100.0, 400.0)] == [
        "fsanet_r18_tiny", "fsanet_r18_tiny", "fsanet_r18_medium", "fsanet_r18_medium", "fsanet_r50", "fsanet_r50"]


def test_a_coco_check_reports_sizes_and_json(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert runner.invoke(app, ["data", "synth", str(out), "-n", "3", "--seed", "1", "--size", "96"]).exit_code == 0
    result = runner.invoke(app, ["data", "check", "--data-root", str(out), "--split", "test", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    ann = json.loads((out / "aitod/annotations/small_test_v2_2.0.json").read_text())
    assert data["stats"]["kept"] == len(ann["annotations"]) == sum(data["per_class"].values())
    assert data["object_size"]["count"] == len(ann["annotations"])
    assert data["preset"] == preset_for_side(data["object_size"]["median_px"])
    table = runner.invoke(app, ["data", "check", "--data-root", str(out), "--split", "test"])
    assert "object size (square root of box area): median" in table.stdout


def test_data_help_names_scenes_with_vector_labels() -> None:
    text = " ".join(runner.invoke(app, ["data", "--help"], terminal_width=80).output.split())
    assert "GeoTIFF scenes with vector labels" in text


def test_synth_names_the_folder_it_cannot_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    result = runner.invoke(app, ["data", "synth", str(blocker / "set"), "-n", "1", "--size", "64", "--seed", "0"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: cannot write {blocker / 'set'}: {blocker} is a file, not a folder"

    def read_only(prefix: str, suffix: str, dir: Path) -> str:  # what mkdtemp raises in a read-only folder
        raise PermissionError(13, "Permission denied", str(Path(dir) / f"{prefix}abc{suffix}"))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    out = tmp_path / "ro" / "set"
    result = runner.invoke(app, ["data", "synth", str(out), "-n", "1", "--size", "64", "--seed", "0"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: cannot write {out}: {out.parent} is not writable (Permission denied)"
