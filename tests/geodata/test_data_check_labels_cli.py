"""`fsanet data check --scene/--labels`: the per-scene and per-class tables, exit codes, one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from label_scenes import ROTATED, pixel_polygon, write_labels, write_scene
from typer.testing import CliRunner

from fsanet_cli.main import app

runner = CliRunner()


def row(output: str, first: str) -> list[str]:
    """The cells of the table row starting with ``first``."""
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{output}")


@pytest.fixture
def scene_and_labels(tmp_path: Path) -> tuple[Path, Path]:
    scene = write_scene(tmp_path / "a.tif")
    rects = [(2, 3, 6, 7), (10, 3, 22, 15), (-2, 20, 3, 24), (50, 2, 54, 6), (31, 5, 35, 9), (12, 20, 28, 36),
             (3, 12, 5, 14)]
    labels = write_labels(tmp_path / "a.gpkg", [pixel_polygon(ROTATED, *r) for r in rects], "EPSG:32633",
                          to_crs="EPSG:4326", cls=["car", "car", "car", "car", "car", "ship", "plane"])
    return scene, labels


def test_check_prints_counts_per_scene_and_sizes_per_class(scene_and_labels: tuple[Path, Path]) -> None:
    scene, labels = scene_and_labels
    result = runner.invoke(app, ["data", "check", "--scene", str(scene), "--labels", str(labels),
                                 "--class-field", "cls", "--classes", "car,ship"])
    assert result.exit_code == 0, result.output
    # read, kept, clipped, outside, on nodata, empty, other class, points refused
    assert row(result.output, "a.tif") == ["a.tif", "a.gpkg", "7", "4", "2", "1", "1", "0", "1", "0"]
    # very tiny, tiny, small, medium, total: car 4x4, 12x12 and 3x4 (clipped) px; ship 16x10 (clipped) px
    assert row(result.output, "car") == ["car", "2", "1", "0", "0", "3"]
    assert row(result.output, "ship") == ["ship", "0", "1", "0", "0", "1"]
    assert "Traceback" not in result.output


def test_check_reads_a_scene_list_and_sums_scenes(scene_and_labels: tuple[Path, Path], tmp_path: Path) -> None:
    scene, labels = scene_and_labels
    csv = tmp_path / "list.csv"
    csv.write_text(f"scene,labels,split\n{scene.name},{labels.name},train\n{scene.name},{labels.name},val\n")
    result = runner.invoke(app, ["data", "check", "--scenes", str(csv), "--class-field", "cls"])
    assert result.exit_code == 0, result.output
    assert row(result.output, "all") == ["all", "14", "10", "4", "2", "2", "0", "0", "0"]
    assert [line.split("│")[2].strip() for line in result.output.splitlines() if line.startswith("a.tif ")] == [
        "train", "val"]
    assert row(result.output, "plane")[-1] == "2"


@pytest.mark.parametrize(("args", "message"), [
    (["--class-field", "kind"], "error: labels {labels} have no field 'kind' for --class-field (fields: cls)"),
    (["--class-field", "cls", "--classes", "truck"],
     "error: --classes: 'truck' found in no label layer (classes found: car, plane, ship)"),
    (["--labels", "{labels}"], "error: 1 --scene and 2 --labels given"),
    (["--ann", "{labels}"], "error: --scene/--labels/--scenes check scene labels"),
])
def test_bad_input_is_one_line_and_exit_2(scene_and_labels: tuple[Path, Path], args: list[str], message: str) -> None:
    scene, labels = scene_and_labels
    args = [a.format(labels=labels) for a in args]
    result = runner.invoke(app, ["data", "check", "--scene", str(scene), "--labels", str(labels), *args])
    assert result.exit_code == 2
    assert message.format(labels=labels) in result.output
    assert "Traceback" not in result.output


def test_label_options_need_scenes_and_nothing_kept_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "check", "--point-box", "3"])
    assert result.exit_code == 2
    assert "error: --point-box needs scenes with labels (--scene/--labels or --scenes)" in result.output
    scene = write_scene(tmp_path / "b.tif")
    far = write_labels(tmp_path / "far.gpkg", [pixel_polygon(ROTATED, 100, 100, 104, 104)], "EPSG:32633")
    result = runner.invoke(app, ["data", "check", "--scene", str(scene), "--labels", str(far)])
    assert result.exit_code == 1
    assert row(result.output, "b.tif")[2:6] == ["1", "0", "0", "1"]
    assert "error: no object kept in 1 scene(s)" in result.output
