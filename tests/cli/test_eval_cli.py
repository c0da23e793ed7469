"""`fsanet eval`: the three modes, the outputs, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fsanet_cli.main import app

runner = CliRunner()

BOXES = [[10, 10, 4, 4], [30, 30, 12, 12], [60, 60, 20, 20], [100, 100, 40, 40]]


def write_case(tmp_path: Path, found: int = 2) -> tuple[Path, Path]:
    gt = {
        "images": [{"id": 1, "width": 200, "height": 200, "file_name": "a.png"}],
        "categories": [{"id": 1, "name": "vehicle"}, {"id": 2, "name": "ship"}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
            for i, b in enumerate(BOXES)
        ],
    }
    dets = [{"image_id": 1, "category_id": 1, "bbox": b, "score": 0.9 - 0.1 * i} for i, b in enumerate(BOXES[:found])]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    return tmp_path / "gt.json", tmp_path / "dets.json"


def invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def test_results_file_mode_prints_table_and_writes_json(tmp_path: Path) -> None:
    gt, dets = write_case(tmp_path)
    out = tmp_path / "metrics.json"
    res = invoke("eval", "--ann", gt, "--detections", dets, "--json-file", out, "--plot", tmp_path / "pr.png")
    assert res.exit_code == 0, res.output
    assert "APvt" in res.stdout and "vehicle" in res.stdout  # the report is on stdout
    assert "APvt" not in res.stderr and f"metrics written to {out}" in res.stderr
    data = json.loads(out.read_text())
    assert data["mode"] == "file"
    assert data["stats"]["AP"] == pytest.approx(51 / 101)
    assert data["stats"]["APvt"] == pytest.approx(1.0)
    assert data["stats"]["APs"] == 0.0
    assert data["per_class_ap"] == {"vehicle": pytest.approx(51 / 101), "ship": -1.0}
    assert (tmp_path / "pr.png").stat().st_size > 1000
    # existing outputs are refused without --overwrite, before any work
    again = invoke("eval", "--ann", gt, "--detections", dets, "--json-file", out)
    assert again.exit_code == 2
    assert "already exists" in again.stderr
    assert invoke("eval", "--ann", gt, "--detections", dets, "--json-file", out, "--overwrite").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--detections", "{dets}"], "--detections needs --ann"),
        (["--ann", "{gt}"], "nothing to evaluate"),
        (["--truth", "{gt}"], "--truth needs --detections"),
        (["--weights", "{gt}", "--detections", "{dets}"], "not both"),
        # --dataset defaults to aitod, as in train and data check
        (["--weights", "{gt}"], "--dataset aitod needs --data-root DIR"),
        (["--weights", "{gt}", "--dataset", "coco"], "--dataset coco needs --ann"),
        (["--ann", "{gt}", "--detections", "{dets}", "--images", "{dir}"], "does not use --images"),
        (["--ann", "{gt}", "--detections", "{dets}", "--save-detections", "{dir}/x.json"], "--save-detections"),
        (["--ann", "{dets}", "--detections", "{dets}"], "ground truth must be a COCO JSON object"),
        (["--ann", "{gt}", "--detections", "{gt}"], "must be a JSON list"),
        (["--ann", "{gt}", "--detections", "{bad}"], "unknown"),
        # options another mode reads are refused, not silently ignored
        (["--ann", "{gt}", "--detections", "{dets}", "--iou", "0.3"],
         "--iou only applies to map space (--truth), not to a results file"),
        (["--ann", "{gt}", "--detections", "{dets}", "--device", "cpu", "--split", "val"],
         "--split, --device only apply to a model run (--weights)"),
        (["--weights", "{gt}", "--dataset", "coco", "--ann", "{gt}", "--images", "{dir}", "--score-thr", "0.5"],
         "--score-thr only applies to map space"),
        # --score-threshold is the hidden alias of --score-thr (the name detect uses)
        (["--weights", "{gt}", "--dataset", "coco", "--ann", "{gt}", "--images", "{dir}", "--score-threshold", "0.5"],
         "--score-thr only applies to map space"),
        # the default --dataset aitod is no conflict in the other modes; a given one is
        (["--ann", "{gt}", "--detections", "{dets}", "--dataset", "aitod"], "does not use --dataset"),
        (["--truth", "{gt}", "--detections", "{dets}", "--max-dets", "10"], "--max-dets does not apply to map space"),
        # a plot suffix is checked before any work
        (["--ann", "{gt}", "--detections", "{dets}", "--plot", "{dir}/pr.xyz"], "cannot write a plot as .xyz"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    gt, dets = write_case(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1], "score": 0.1}]))
    fmt = {"gt": gt, "dets": dets, "bad": bad, "dir": tmp_path}
    res = invoke("eval", *(a.format(**fmt) for a in args))
    assert res.exit_code == 2, res.output
    assert message.replace("unknown", "category ids not in the ground truth") in " ".join(res.stderr.split())
    assert len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.output


def test_a_folder_is_refused_as_a_json_output(tmp_path: Path) -> None:
    gt, dets = write_case(tmp_path)
    res = invoke("eval", "--ann", gt, "--detections", dets, "--json-file", tmp_path, "--overwrite")
    assert res.exit_code == 2 and "is a directory" in " ".join(res.stderr.replace("│", " ").split())
    assert tmp_path.is_dir()


def test_model_mode_runs_a_tiny_model(tmp_path: Path) -> None:
    presets = pytest.importorskip("fsanet_geo.model.presets")
    checkpoint = pytest.importorskip("fsanet_geo.model.files.checkpoint")
    synthetic = pytest.importorskip("fsanet_geo.synth.aitod_layout")
    pytest.importorskip("fsanet_geo.data.dataset")

    name = "fsanet_r18_lite" if "fsanet_r18_lite" in presets.list_presets() else presets.list_presets()[0]
    model = presets.build_model(name, input_size=128, score_thr=0.3)  # few boxes: fast
    ckpt = tmp_path / "model.safetensors"
    checkpoint.save_checkpoint(model, ckpt)
    root = tmp_path / "data"
    synthetic.generate_synthetic_aitod(root, 2, seed=0, size=128, test_fraction=0.5)
    out = tmp_path / "m.json"
    res = invoke(
        "eval", "--weights", ckpt, "--dataset", "aitod", "--data-root", root, "--split", "test",
        "--device", "cpu", "--json-file", out, "--save-detections", tmp_path / "dets.json",
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["mode"] == "model"
    assert data["counts"]["images"] == 1
    assert data["counts"]["ground_truth"] > 0
    assert -1.0 <= data["stats"]["AP"] <= 1.0
    assert set(data["per_class_ap"]) >= {"vehicle", "ship"}
    dets = json.loads((tmp_path / "dets.json").read_text())
    from fsanet_geo.data.aitod import find_aitod_split

    test_ann, _ = find_aitod_split(root, "test")
    test_ids = {im["id"] for im in json.loads(test_ann.read_text())["images"]}
    assert all(d["image_id"] in test_ids and len(d["bbox"]) == 4 for d in dets)


def test_map_mode_reports_precision_recall(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    x0, y0 = 500_000.0, 5_000_000.0
    geoms = [box(x0 + 10 * i, y0, x0 + 10 * i + 3, y0 + 3) for i in range(5)]  # 6 px boxes
    truth = gpd.GeoDataFrame({"class_name": ["vehicle"] * 5}, geometry=geoms, crs="EPSG:32633")
    truth.to_file(tmp_path / "truth.gpkg", engine="pyogrio")
    dets = truth.iloc[:4].assign(score=[0.9, 0.8, 0.7, 0.6]).to_crs("EPSG:4326")
    dets.to_file(tmp_path / "dets.gpkg", engine="pyogrio")
    out = tmp_path / "map.json"
    res = invoke(
        "eval", "--truth", tmp_path / "truth.gpkg", "--detections", tmp_path / "dets.gpkg",
        "--pixel-size", "0.5", "--json-file", out,
    )
    assert res.exit_code == 0, res.output
    assert "recall" in res.stdout
    data = json.loads(out.read_text())
    assert data["overall"] == {"tp": 4, "fp": 0, "fn": 1, "precision": 1.0, "recall": 0.8,
                               "f1": pytest.approx(2 * 0.8 / 1.8)}
    assert data["aitod"]["stats"]["AP50"] == pytest.approx(81 / 101)
    assert data["aitod"]["stats"]["APvt"] == pytest.approx(81 / 101)
    assert data["aitod"]["stats"]["APt"] == -1.0
    assert data["per_size"]["verytiny"] == data["overall"]  # 6 px boxes: all very tiny
    assert data["per_size"]["tiny"]["tp"] + data["per_size"]["tiny"]["fn"] == 0
    assert "verytiny (0-8 px)" in res.stdout
    bad = invoke("eval", "--truth", tmp_path / "truth.gpkg", "--detections", tmp_path / "dets.gpkg",
                 "--class-column", "nope")
    assert bad.exit_code == 2 and "no 'nope' column" in bad.stderr
