"""`fsanet train --scene/--labels` and `fsanet data` on inputs a user gets wrong: one line,
exit code 2, nothing started or lost (found by probing the feature as a new user)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fsanet_cli.main import app
from fsanet_geo.synth.labelled_scene import LabelledScene, make_labelled_scene

runner = CliRunner()
TINY = ("--model", "fsanet_r18_tiny", "--input-size", "128", "--batch-size", "2", "--workers", "0",
        "--device", "cpu", "--epochs", "1", "--max-iters", "1")


def invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def error_line(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return " ".join(lines[0].split())


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> LabelledScene:
    return make_labelled_scene(tmp_path_factory.mktemp("scene"), size=384, holdout=128, density=4.0,
                               classes=("vehicle",), seed=15)


def test_bands_of_another_count_than_the_model_takes_are_refused_before_training(
        scene: LabelledScene, tmp_path: Path) -> None:
    work = tmp_path / "run"
    result = invoke("train", "--scene", scene.image, "--labels", scene.labels, "--bands", "1,2",
                    *TINY, "--work-dir", work)
    assert result.exit_code == 2
    assert error_line(result) == "error: 2 band(s) selected but the model takes 3 channel(s)"
    assert not work.exists()


def test_resume_after_the_labels_moved_names_them_and_takes_their_new_place(
        scene: LabelledScene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("old.gpkg").write_bytes(Path(scene.labels).read_bytes())
    first = invoke("train", "--scene", scene.image, "--labels", "old.gpkg", "--class-field", "class", *TINY,
                   "--work-dir", "run")
    assert first.exit_code == 0, first.output
    saved = json.loads(Path("run/config.json").read_text())["scene_data"]["sources"][0]
    assert saved["labels"] == str(tmp_path / "old.gpkg")  # absolute: --resume works from any folder
    Path("old.gpkg").rename("new.gpkg")
    kept = sorted(p.name for p in Path("run").iterdir())

    result = invoke("train", "--resume", "--work-dir", "run", "--max-iters", "2")
    assert result.exit_code == 2
    assert error_line(result) == (f"error: cannot resume run: its labels {tmp_path / 'old.gpkg'} does not exist; if it "
                                  "moved, give every scene's new place with --scene/--labels or --scenes")
    result = invoke("train", "--resume", "--work-dir", "run", "--scene", scene.image, "--labels", "new.gpkg",
                    "--class-field", "kind", "--max-iters", "2")
    assert result.exit_code == 2
    assert error_line(result) == "error: cannot resume run with different settings: class_field 'class' -> 'kind'"
    assert sorted(p.name for p in Path("run").iterdir()) == kept  # nothing of the run lost

    monkeypatch.chdir(tmp_path.parent)  # another folder; the saved --class-field is kept
    result = invoke("train", "--resume", "--work-dir", tmp_path / "run", "--scene", scene.image,
                    "--labels", tmp_path / "new.gpkg", "--max-iters", "2")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["scene_data"]["sources"][0]["labels"] == str(tmp_path / "new.gpkg")
    assert config["scene_data"]["class_field"] == "class"


def test_scene_options_on_resume_of_a_run_not_on_scenes_are_refused(tmp_path: Path) -> None:
    work = tmp_path / "run"
    work.mkdir()
    saved = {"dataset": "aitod", "data_root": str(tmp_path), "work_dir": str(work)}
    (work / "config.json").write_text(json.dumps(saved))
    result = invoke("train", "--resume", "--work-dir", work, "--class-field", "class")
    assert result.exit_code == 2
    assert error_line(result) == (f"error: --scene, --labels, --scenes and their options do not apply to --resume "
                                  f"of {work}: it trains on aitod, not on scenes")


def test_a_file_of_several_layers_without_layername_is_refused(scene: LabelledScene, tmp_path: Path) -> None:
    import geopandas as gpd

    frame = gpd.read_file(scene.labels)
    multi = tmp_path / "multi.gpkg"
    frame.to_file(multi, layer="cars")
    frame.iloc[:3].to_file(multi, layer="other", mode="a")
    message = (f"error: labels {multi} hold 2 layers (cars, other): pick one as {multi}|layername=NAME "
               "(in --scenes: the layer column)")
    for command in (["data", "check"], ["train", *TINY, "--work-dir", tmp_path / "run"]):
        result = invoke(*command, "--scene", scene.image, "--labels", multi)
        assert result.exit_code == 2
        assert error_line(result) == message
    assert not (tmp_path / "run").exists()
    result = invoke("data", "check", "--scene", scene.image, "--labels", f"{multi}|layername=cars")
    assert result.exit_code == 0, result.output


def test_export_chips_of_labels_that_hold_no_object_is_refused_and_writes_nothing(
        scene: LabelledScene, tmp_path: Path) -> None:
    import geopandas as gpd

    far = gpd.read_file(scene.labels)
    far["geometry"] = far.translate(10, 10)  # degrees: nowhere near the raster
    far.to_file(tmp_path / "far.gpkg")
    out = tmp_path / "chips"
    result = invoke("data", "export-chips", out, "--scene", scene.image, "--labels", tmp_path / "far.gpkg",
                    "--chip-size", "128")
    assert result.exit_code == 2
    assert error_line(result) == ("error: the labels hold no object inside their scenes: nothing to export "
                                  "(fsanet data check --scene ... --labels ... shows why)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["far.gpkg"]


@pytest.fixture(scope="module")
def areas(scene: LabelledScene, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``empty.gpkg`` (no polygon), ``away.gpkg`` (a polygon nowhere near the scene), ``all_val.csv``."""
    import geopandas as gpd
    from shapely.geometry import box

    folder = tmp_path_factory.mktemp("areas")
    gpd.GeoDataFrame(geometry=[], crs="EPSG:4326").to_file(folder / "empty.gpkg")
    gpd.GeoDataFrame(geometry=[box(30, 10, 31, 11)], crs="EPSG:4326").to_file(folder / "away.gpkg")
    (folder / "all_val.csv").write_text(f"scene,labels,split\n{scene.image},{scene.labels},val\n")
    return folder


@pytest.mark.parametrize(("args", "message"), [
    (["--aoi", "{areas}/away.gpkg"], "error: the labels hold no object inside their scenes and --aoi "
                                     "{areas}/away.gpkg: nothing to train on (fsanet data check --scene ... "
                                     "--labels ... --aoi ... shows why)"),
    (["--val-aoi", "{areas}/empty.gpkg"], "error: --val-aoi: area of interest {areas}/empty.gpkg holds no polygon"),
    (["--scenes", "{areas}/all_val.csv"], "error: no training area: every scene's split is 'val' (give one scene "
                                          "the split train or an empty one)"),
])
def test_areas_and_splits_that_leave_nothing_name_the_option(
        scene: LabelledScene, areas: Path, tmp_path: Path, args: list[str], message: str) -> None:
    pair = [] if "--scenes" in args else ["--scene", scene.image, "--labels", scene.labels]
    result = invoke("train", *pair, *[a.format(areas=areas) for a in args], *TINY, "--work-dir", tmp_path / "run")
    assert result.exit_code == 2
    assert error_line(result) == message.format(areas=areas)
    assert not (tmp_path / "run").exists()


def test_labels_without_geometry_are_named(scene: LabelledScene, tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    table.write_text("class,x\nvehicle,1\n")
    result = invoke("data", "check", "--scene", scene.image, "--labels", table)
    assert result.exit_code == 2
    assert error_line(result) == f"error: labels {table} have no geometry column: not a vector layer"


def test_scene_options_without_scenes_are_refused_not_ignored(tmp_path: Path) -> None:
    result = invoke("train", "--data-root", tmp_path, "--class-field", "class", "--val-fraction", "0.1",
                    "--work-dir", tmp_path / "run")
    assert result.exit_code == 2
    assert error_line(result) == ("error: --class-field, --val-fraction need scenes with labels (--scene/--labels "
                                  "or --scenes)")


def test_the_same_scene_twice_is_refused_for_training_and_export(scene: LabelledScene, tmp_path: Path) -> None:
    import geopandas as gpd

    frame = gpd.read_file(scene.labels)
    layers = tmp_path / "layers.gpkg"
    frame.iloc[:30].to_file(layers, layer="cars")
    frame.iloc[30:].to_file(layers, layer="trucks", mode="a")
    twice = ["--scene", scene.image, "--labels", f"{layers}|layername=cars",
             "--scene", scene.image, "--labels", f"{layers}|layername=trucks"]
    message = (f"error: scene {scene.image} is given twice (labels {layers}|layername=cars and "
               f"{layers}|layername=trucks): put all of its labels in one layer, with a class field "
               "(--class-field) when they are of several classes")
    for command in (["train", *TINY, "--work-dir", tmp_path / "run"], ["data", "export-chips", tmp_path / "chips"]):
        result = invoke(*command, *twice)
        assert result.exit_code == 2
        assert error_line(result) == message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers.gpkg"]


def test_export_chips_overwrite_replaces_an_earlier_export_only(scene: LabelledScene, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    args = ["data", "export-chips", out, "--scene", scene.image, "--labels", scene.labels, "--chip-size", "128",
            "--chips", "2", "--overwrite"]
    result = invoke(*args)
    assert result.exit_code == 2
    assert error_line(result) == (f"error: {out} holds files an export does not write (thesis.txt): --overwrite "
                                  "replaces only an earlier output of this command; give a new or empty folder")
    assert sorted(p.name for p in out.iterdir()) == ["thesis.txt"]
    (out / "thesis.txt").unlink()
    assert invoke(*args).exit_code == 0
    again = invoke(*args)  # an earlier export is replaced
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "train"]
