"""The FSANet Processing provider in a real QGIS, headless (issue 25, point 3).

Each ``qgis_process.bin`` call starts QGIS (about 2 s); detection runs on a small area of
interest of the example scene, training 2 iterations on a 256 px synthetic scene."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import geopandas
import pytest
import rasterio
import shapely

from qgis_helpers import (FSANET, PLUGIN_PARENT, REPO, SYSTEM_PYTHON, log_text, needs_qgis, qgis_env,
                          qgis_process, run_algorithm)

pytestmark = needs_qgis
SCENE = REPO / "examples" / "data" / "example_scene.tif"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The plugin installed from its zip (make_zip.py) into a fresh profile, and enabled."""
    root = tmp_path_factory.mktemp("qgis")
    made = subprocess.run([SYSTEM_PYTHON, str(PLUGIN_PARENT / "make_zip.py"), "-o", str(root / "dist")],
                          capture_output=True, text=True, check=True)
    with zipfile.ZipFile(made.stdout.strip()) as archive:
        archive.extractall(root / "plugins")
    env = qgis_env(root / "home", plugin_parent=root / "plugins")
    enabled = qgis_process(env, "plugins", "enable", "fsanet_processing")
    assert enabled.returncode == 0, enabled.stderr
    return env


def test_enable_and_list_show_the_three_algorithms(installed: dict[str, str]) -> None:
    listed = qgis_process(installed, "list").stdout
    block = listed[listed.index("FSANet\n"):].split("\n\n")[0].splitlines()
    assert block == ["FSANet", "\tfsanet:detect\tDetect objects", "\tfsanet:modelinfo\tModel info",
                     "\tfsanet:train\tTrain on a labelled layer"]
    help_text = qgis_process(installed, "help", "fsanet:detect").stdout
    for name in ("INPUT", "MODEL", "AOI", "EXTENT", "SCORE_THR", "TILE_SIZE", "GSD", "RESUME", "OUTPUT"):
        assert f"{name}:" in help_text, name


def test_detect_gives_the_features_of_fsanet_detect(installed: dict[str, str], tmp_path: Path) -> None:
    scene = tmp_path / SCENE.name  # a copy: QGIS writes a .aux.xml beside the rasters it opens
    shutil.copy(SCENE, scene)
    with rasterio.open(scene) as src:  # a 560 px square inside the first tile
        west, north = src.transform @ (40, 40)
        east, south = src.transform @ (600, 600)
        crs = src.crs
    aoi = tmp_path / "aoi.gpkg"
    geopandas.GeoDataFrame(geometry=[shapely.box(west, south, east, north)], crs=crs).to_file(aoi)
    cli = tmp_path / "cli.gpkg"
    subprocess.run([str(FSANET), "detect", str(scene), "-o", str(cli), "--aoi", str(aoi)], check=True,
                   capture_output=True)
    report = run_algorithm(installed, "fsanet:detect", INPUT=scene, AOI=aoi, OUTPUT=tmp_path / "qgis.gpkg")
    assert report["exit_code"] == 0, report["stderr"]
    assert report["results"] == {"OUTPUT": str(tmp_path / "qgis.gpkg")}
    assert "--score-thr" not in log_text(report)  # the checkpoint's own threshold
    ours, theirs = geopandas.read_file(tmp_path / "qgis.gpkg"), geopandas.read_file(cli)
    assert ours.crs == theirs.crs == crs
    assert len(ours) == len(theirs) > 20
    columns = ["class_name", "score"]
    assert ours[columns].equals(theirs[columns])
    assert ours.geometry.geom_equals_exact(theirs.geometry, tolerance=1e-6).all()
    assert f"{len(ours)} objects (" in log_text(report)


def test_cancel_stops_the_run_and_resume_finishes_it(tmp_path: Path) -> None:
    from fsanet_geo.synth.labelled_scene import make_labelled_scene

    scene = make_labelled_scene(tmp_path, size=256, holdout=64).image
    out = tmp_path / "out.gpkg"
    done = subprocess.run([SYSTEM_PYTHON, str(Path(__file__).with_name("drive_cancel.py")), str(PLUGIN_PARENT),
                           str(scene), str(out), "64"], env=qgis_env(tmp_path / "home"), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["cancelled"] and not report["first_ok"]
    assert "terminated (SIGTERM)" in report["first_log"]
    assert (f"the finished tiles are kept in {out}.partial; to continue, run Detect objects again with the same "
            f"parameters, the output file {out} and 'Resume an interrupted run' ticked") in report["first_log"]
    assert report["journal_kept"] and not report["output_after_cancel"]
    assert report["resumed_ok"] and not report["journal_after_resume"]
    assert " in 25 tiles, 4 resumed," in report["resumed_log"]  # 5 x 5 tiles of 64 px; the first batch kept
    assert len(geopandas.read_file(out)) > 0


def test_train_on_a_labelled_layer_runs_two_iterations(installed: dict[str, str], tmp_path: Path) -> None:
    from fsanet_geo.synth.labelled_scene import make_labelled_scene

    made = make_labelled_scene(tmp_path, size=256, holdout=64)
    work = tmp_path / "work"
    report = run_algorithm(installed, "fsanet:train", INPUT=made.image, LABELS=made.labels, CLASS_FIELD="class",
                           MAX_ITERS=2, OUTPUT=work)
    assert report["exit_code"] == 0, report["stderr"]
    assert report["results"] == {"OUTPUT": str(work), "CHECKPOINT": str(work / "best.safetensors")}
    assert (work / "best.safetensors").is_file() and (work / "last.safetensors").is_file()
    assert "2 iterations; checkpoint " in log_text(report)
    info = run_algorithm(installed, "fsanet:modelinfo", MODEL=work / "best.safetensors")
    assert info["results"]["CLASSES"] == ", ".join(sorted(made.class_names))  # the label layer's, sorted


def test_model_info_and_a_missing_fsanet(installed: dict[str, str]) -> None:
    demo = REPO / "fsanet_geo" / "weights" / "demo.safetensors"
    info = run_algorithm(installed, "fsanet:modelinfo", MODEL=demo)
    assert info["results"]["SCORE_THR"] == 0.35
    assert info["results"]["CLASSES"].startswith("airplane, bridge, storage-tank")
    missing = run_algorithm({**installed, "FSANET_EXECUTABLE": "/nowhere/fsanet"}, "fsanet:modelinfo", MODEL=demo)
    assert "results" not in missing
    assert "fsanet not found: FSANET_EXECUTABLE names /nowhere/fsanet, which does not exist" in missing["stderr"]
