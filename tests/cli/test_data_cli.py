"""`fsanet data synth`: writes the AI-TOD tree, summarises it, refuses to overwrite."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fsanet_cli.main import app

runner = CliRunner()


def test_synth_writes_a_toolkit_tree_and_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    result = runner.invoke(app, ["data", "synth", str(out), "--images", "3", "--seed", "4", "--size", "96"])
    assert result.exit_code == 0, result.output
    ann = out / "aitod" / "annotations"
    assert sorted(p.name for p in ann.iterdir()) == [
        "small_test_v2_2.0.json", "small_train_v2_1.0.json", "small_trainval_v2_2.0.json", "small_val_v2_1.0.json"]
    trainval = json.loads((ann / "small_trainval_v2_2.0.json").read_text())
    test = json.loads((ann / "small_test_v2_2.0.json").read_text())
    n_objects = len(trainval["annotations"]) + len(test["annotations"])
    assert f"wrote 3 images (trainval 2, test 1), {n_objects} objects" in result.output
    assert "vehicle" in result.output and "wind-mill" in result.output


def test_synth_fsanet_layout_v1(tmp_path: Path) -> None:
    out = tmp_path / "f"
    result = runner.invoke(app, ["data", "synth", str(out), "-n", "2", "--seed", "0", "--size", "64",
                                 "--layout", "fsanet", "--version", "v1", "--density", "3"])
    assert result.exit_code == 0, result.output
    assert (out / "trainval" / "aitod_trainval_v1.json").is_file()
    assert (out / "test" / "Images").is_dir()


def test_synth_refuses_a_non_empty_folder_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "x"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["data", "synth", str(out), "--images", "2", "--seed", "0", "--size", "64"])
    assert result.exit_code == 2
    assert "exists and is not empty" in result.output and "--overwrite" in result.output
    assert "Traceback" not in result.output
    assert (out / "keep.txt").read_text() == "mine"
    synth = ["data", "synth", str(out), "--images", "2", "--seed", "0", "--size", "64", "--overwrite"]
    result = runner.invoke(app, synth)  # --overwrite replaces an earlier set only, never other files
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {out} holds files a synthetic AI-TOD set does not write (keep.txt): "
                                     "--overwrite replaces only an earlier output of this command; give a new or "
                                     "empty folder")
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    assert runner.invoke(app, synth).exit_code == 0
    first = sorted(p.relative_to(out) for p in out.rglob("*"))
    result = runner.invoke(app, synth)  # an earlier set is replaced
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == first


def test_synth_validates_options(tmp_path: Path) -> None:
    for args in (["--images", "0", "--seed", "0"], ["--images", "2", "--seed", "0", "--layout", "mmdet"],
                 ["--images", "2", "--seed", "0", "--size", "8"]):
        result = runner.invoke(app, ["data", "synth", str(tmp_path / "y"), *args])
        assert result.exit_code == 2
    assert not (tmp_path / "y").exists()


def test_check_reports_counts_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert runner.invoke(app, ["data", "synth", str(out), "-n", "3", "--seed", "1", "--size", "96"]).exit_code == 0
    result = runner.invoke(app, ["data", "check", "--data-root", str(out), "--split", "test"])
    assert result.exit_code == 0, result.output
    test = json.loads((out / "aitod/annotations/small_test_v2_2.0.json").read_text())
    n = len(test["annotations"])
    assert f"1 images (0 without boxes, skipped in training), {n} annotations: {n} kept" in result.output
    assert "training boxes per class: airplane" in result.output
    result = runner.invoke(app, ["data", "check", "--data-root", str(tmp_path), "--split", "test"])
    assert result.exit_code == 2
    assert "no AI-TOD 'test' split found" in result.output and "Traceback" not in result.output
