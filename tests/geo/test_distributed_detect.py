"""Detection over 2 gloo processes (127.0.0.1) gives the single-process output, feature for feature.

The processes are spawned once for the module (:func:`distributed_helpers.run_jobs`) and
run every job in turn; each test checks one job against a single-process run in this
process. The CLI test runs ``torchrun`` itself with a tiny random-init checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import torch.multiprocessing as mp
from distributed_helpers import FailingPredictor, Job, free_port, read_outcomes, run_jobs
from hypothesis import given
from hypothesis import strategies as st
from scene_helpers import CLASS_NAMES, PaintedPredictor, paint, random_objects, write_painted_scene, write_raster
from test_unreadable import corrupt_block

from fsanet_geo.geo.detect.distributed_detect import plan_blocks, round_share
from fsanet_geo.geo.detect.pipeline import detect_scenes, detect_to_file
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.geo.pixels.tiling import tile_windows

TILE, OVERLAP = 64, 16
SETTINGS = DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=3, device="cpu")
SKIP_UNREADABLE = dataclasses.replace(SETTINGS, skip_unreadable=True)
SOFT = DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=2, device="cpu", merge_method="gaussian",
                      merge_metric="iou", nms_iou=0.3)


# -- the plan (no processes) ------------------------------------------------------------------


@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=5),
    block=st.integers(1, 7),
    world=st.integers(1, 5),
    per_round=st.integers(1, 3),
    data=st.data(),
)
def test_every_tile_goes_to_exactly_one_rank_in_single_process_order(
    counts: list[int], block: int, world: int, per_round: int, data: st.DataObject
) -> None:
    starts = [data.draw(st.integers(0, c)) for c in counts]
    plan = plan_blocks(counts, starts, block)
    # blocks in scene then tile order, each within one scene, at most `block` tiles
    tiles = [(b.scene, t) for b in plan for t in range(b.start, b.end)]
    assert tiles == [(s, t) for s, (c, st0) in enumerate(zip(counts, starts)) for t in range(st0, c)]
    assert all(0 < b.end - b.start <= block for b in plan)
    # every block to exactly one rank, one round after the other, shares within one block
    rounds = -(-len(plan) // (world * per_round)) if plan else 0
    seen = []
    for r in range(rounds):
        shares = [round_share(len(plan), r, rank, world, per_round) for rank in range(world)]
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
        for rank, share in enumerate(shares):
            assert all(j % world == rank for j in share)
        seen.extend(sorted(j for share in shares for j in share))
    assert seen == list(range(len(plan)))


def test_plan_by_hand() -> None:
    plan = plan_blocks([5, 2], [1, 0], 2)
    assert [(b.scene, b.start, b.end) for b in plan] == [(0, 1, 3), (0, 3, 5), (1, 0, 2)]
    assert round_share(3, 0, 0, 2, 1) == [0] and round_share(3, 0, 1, 2, 1) == [1]
    assert round_share(3, 1, 0, 2, 1) == [2] and round_share(3, 1, 1, 2, 1) == []
    with pytest.raises(ValueError, match="block_tiles"):
        plan_blocks([3], [0], 0)


# -- two processes ----------------------------------------------------------------------------


def objects_on_seams(boxes: np.ndarray, height: int, width: int) -> int:
    """How many objects some tile cuts."""
    windows = tile_windows(height, width, TILE, OVERLAP)
    cut = 0
    for x0, y0, x1, y1 in boxes:
        for w in windows:
            meets = x0 < w.col_end and w.col_off < x1 and y0 < w.row_end and w.row_off < y1
            inside = w.col_off <= x0 and x1 <= w.col_end and w.row_off <= y0 and y1 <= w.row_end
            if meets and not inside:
                cut += 1
                break
    return cut


class Spawned:
    """The scenes, the single-process references and the results of the spawned jobs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.results = root / "results"
        self.results.mkdir()
        self.a = write_painted_scene(root / "a.tif", height=200, width=260, n_objects=40, seed=1)
        boxes, labels = random_objects(150, 170, 16, seed=2)
        mask = np.ones((150, 170), bool)
        mask[:, :70] = False  # the tiles of the first column hold no data: skipped
        self.b = write_raster(root / "b.tif", paint(150, 170, boxes, labels), mask=mask)
        self.bad = root / "notes.tif"
        self.bad.write_text("not a raster")
        self.corrupt = write_painted_scene(root / "c.tif", height=200, width=260, n_objects=30, seed=4).path
        corrupt_block(self.corrupt, col=2, row=1)  # issue 17: skipped with skip_unreadable
        self.scenes = [self.a.path, self.b]

    def out(self, name: str) -> Path:
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        return folder / "out.gpkg"

    def run(self, jobs: list[Job], world_size: int = 2, timeout: float = 120.0) -> None:
        ctx = mp.start_processes(run_jobs, args=(world_size, free_port(), jobs, self.results), nprocs=world_size,
                                 join=False, start_method="spawn")
        deadline = time.monotonic() + timeout
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                for p in ctx.processes:
                    p.kill()
                pytest.fail(f"the processes did not finish in {timeout} s")


@pytest.fixture(scope="module")
def spawned(tmp_path_factory: pytest.TempPathFactory) -> Spawned:
    sp = Spawned(tmp_path_factory.mktemp("dist"))
    # an interrupted single-process run leaves a journal for the distributed run to resume
    with pytest.raises(KeyboardInterrupt):
        detect_to_file(sp.scenes, PaintedPredictor(interrupt_on_call=4), sp.out("resume"), settings=SETTINGS)
    resume = dataclasses.replace(SETTINGS, resume=True)
    sp.run([
        Job("file", "file", sp.scenes, SETTINGS, sp.out("two")),
        Job("soft", "file", sp.scenes, SOFT, sp.out("soft_two"), blocks_per_round=3),
        Job("frame", "frame", sp.scenes, SETTINGS),
        Job("resume", "file", sp.scenes, resume, sp.out("resume")),
        Job("predict_fails", "file", sp.scenes, SETTINGS, sp.out("fails"), predictor=FailingPredictor(1, 2)),
        Job("check_fails", "file", sp.scenes, SETTINGS, sp.out("check"), scenes_by_rank={0: sp.scenes, 1: [sp.bad]}),
        Job("after", "frame", [sp.a.path], SETTINGS),
        Job("unreadable", "file", [sp.corrupt], SKIP_UNREADABLE, sp.out("unreadable_two")),
    ])
    return sp


def read(path: Path) -> pd.DataFrame:
    """Every column of a vector file, geometry as WKB, in file order."""
    gdf = pyogrio.read_dataframe(path)
    frame = pd.DataFrame(gdf.drop(columns="geometry"))
    frame["wkb"] = gdf.geometry.to_wkb()
    return frame


def frame_of(gdf) -> pd.DataFrame:  # noqa: ANN001
    frame = pd.DataFrame(gdf.drop(columns="geometry"))
    frame["wkb"] = gdf.geometry.to_wkb()
    return frame


@pytest.mark.slow
def test_two_processes_write_the_single_process_file(spawned: Spawned) -> None:
    sp = spawned
    assert objects_on_seams(sp.a.boxes, 200, 260) >= 5  # the merge has work to do
    one = detect_to_file(sp.scenes, PaintedPredictor(), sp.out("one"), settings=SETTINGS)
    rank0, rank1 = read_outcomes(sp.results, "file")
    assert rank0["error"] is None and rank1["error"] is None
    assert rank0["returned"]["detections"] == one.progress.detections
    assert rank1["returned"] is None  # only rank 0 reports and writes
    pd.testing.assert_frame_equal(read(sp.out("two")), read(sp.out("one")))  # same rows, same order
    a_rows = read(sp.out("one")).query("scene == 'a.tif'")
    assert len(a_rows) == len(sp.a.boxes)  # each painted object once
    # progress on rank 0 only, ending with every tile done (the skipped nodata ones included)
    assert rank1["events"] == []
    done, total, finished = rank0["events"][-1]
    assert done == total == sum(len(tile_windows(h, w, TILE, OVERLAP)) for h, w in [(200, 260), (150, 170)])
    assert finished
    assert not (sp.out("two").parent / "out.gpkg.partial").exists()


@pytest.mark.slow
def test_soft_nms_scores_and_several_blocks_per_round_match(spawned: Spawned) -> None:
    sp = spawned
    detect_to_file(sp.scenes, PaintedPredictor(), sp.out("soft_one"), settings=SOFT)
    assert [o["error"] for o in read_outcomes(sp.results, "soft")] == [None, None]
    pd.testing.assert_frame_equal(read(sp.out("soft_two")), read(sp.out("soft_one")))


@pytest.mark.slow
def test_two_processes_return_the_single_process_frame(spawned: Spawned) -> None:
    sp = spawned
    one = detect_scenes(sp.scenes, PaintedPredictor(), settings=SETTINGS)
    rank0, rank1 = read_outcomes(sp.results, "frame")
    assert rank0["returned"] == len(one) and rank1["returned"] is None
    two = pd.read_pickle(sp.results / "frame.pkl")
    pd.testing.assert_frame_equal(frame_of(two), frame_of(one))
    assert two.crs == one.crs and set(two["class_name"]) <= set(CLASS_NAMES)


@pytest.mark.slow
def test_resume_a_single_process_journal_on_two_processes(spawned: Spawned) -> None:
    sp = spawned
    rank0, _ = read_outcomes(sp.results, "resume")
    assert rank0["error"] is None and rank0["returned"]["resumed"] == 3 * 3  # 3 batches of 3 tiles done
    one = detect_to_file(sp.scenes, PaintedPredictor(), sp.out("resume_ref"), settings=SETTINGS)
    assert rank0["returned"]["detections"] == one.progress.detections
    pd.testing.assert_frame_equal(read(sp.out("resume")), read(sp.out("resume_ref")))
    assert not (sp.out("resume").parent / "out.gpkg.partial").exists()


@pytest.mark.slow
def test_a_failing_predictor_on_one_process_stops_both(spawned: Spawned) -> None:
    rank0, rank1 = read_outcomes(spawned.results, "predict_fails")
    assert rank1["error"] == ["RuntimeError", "the predictor broke on purpose"]
    assert rank0["error"][0] == "DistributedError"
    assert rank0["error"][1] == "process 1 of 2 failed: RuntimeError: the predictor broke on purpose"
    assert rank0["seconds"] < 30 and rank1["seconds"] < 30  # nobody waited for a timeout
    assert not spawned.out("fails").exists()


@pytest.mark.slow
def test_a_bad_scene_on_one_process_stops_both_before_any_tile(spawned: Spawned) -> None:
    rank0, rank1 = read_outcomes(spawned.results, "check_fails")
    assert rank1["error"][0] == "RasterError" and "notes.tif" in rank1["error"][1]
    assert rank0["error"][0] == "DistributedError" and rank0["error"][1].startswith("process 1 of 2 failed: ")
    assert rank0["events"] == []
    assert not spawned.out("check").exists() and not (spawned.out("check").parent / "out.gpkg.partial").exists()
    # the group is still in step after the failures
    after0, after1 = read_outcomes(spawned.results, "after")
    assert after0["error"] is None and after1["error"] is None
    assert after0["returned"] == len(spawned.a.boxes)


# -- the CLI under torchrun ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from fsanet_geo.model.files.checkpoint import save_checkpoint
    from fsanet_geo.model.presets import build_model

    torch.manual_seed(0)
    model = build_model("fsanet_r18_lite", num_classes=3, class_names=list(CLASS_NAMES), input_size=64,
                        score_thr=0.0, max_per_img=10)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_checkpoint(model, path)
    return path


@pytest.mark.slow
def test_cli_under_torchrun_writes_the_single_process_file(tmp_path: Path, tiny_weights: Path) -> None:
    scene = write_painted_scene(tmp_path / "scene.tif", height=150, width=200, n_objects=20, seed=3).path
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    args = ["detect", str(scene), "--weights", str(tiny_weights), "--device", "cpu", "--tile-size", "64",
            "--overlap", "16", "--batch-size", "2"]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = subprocess.run([sys.executable, "-m", "fsanet_cli.main", *args, "-o", str(tmp_path / "one" / "out.geojson")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
                "--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    two = subprocess.run([*torchrun, "-m", "fsanet_cli.main", *args, "-o", str(tmp_path / "two" / "out.geojson")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    first = (tmp_path / "one" / "out.geojson").read_bytes()
    assert first.count(b'"Feature"') > 20  # the random model finds plenty
    assert (tmp_path / "two" / "out.geojson").read_bytes() == first  # byte for byte
    # rank 0 alone reports: one summary line
    assert two.stderr.count("objects (") == 1, two.stderr[-3000:]


def test_cli_nproc_checks_inputs_then_relaunches_under_torchrun(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import fsanet_cli._common
    from fsanet_cli.main import app

    launched: list[list[str]] = []
    monkeypatch.setattr(fsanet_cli._common.subprocess, "call", lambda command: launched.append(command) or 0)
    scene = write_painted_scene(tmp_path / "scene.tif", height=64, width=64, n_objects=2, seed=3).path
    out = tmp_path / "out.gpkg"
    args = ["detect", str(scene), "-o", str(out), "--weights", str(tiny_weights), "--device", "cpu"]
    monkeypatch.setattr(sys, "argv", ["fsanet", *args, "--nproc", "2"])
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    result = CliRunner().invoke(app, [*args, "--nproc", "2"])
    assert result.exit_code == 0, result.output
    assert launched == [[sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                         "-m", "fsanet_cli.main", *args]]
    # user errors are found before torchrun starts: one line, exit 2, nothing launched
    launched.clear()
    notes = tmp_path / "notes.tif"
    notes.write_text("not a raster")
    bad = CliRunner().invoke(app, ["detect", str(notes), "-o", str(out), "--weights", str(tiny_weights), "--nproc", "2"])
    assert bad.exit_code == 2 and "not a raster" in bad.output and launched == []
    out.write_text("previous")
    bad = CliRunner().invoke(app, [*args, "--nproc", "2"])
    assert bad.exit_code == 2 and "already exists" in bad.output and launched == []


@pytest.mark.slow
def test_two_processes_record_the_unreadable_windows_as_one_does(spawned: Spawned) -> None:
    sp = spawned
    one = detect_to_file([sp.corrupt], PaintedPredictor(), sp.out("unreadable_one"), settings=SKIP_UNREADABLE)
    assert [o["error"] for o in read_outcomes(sp.results, "unreadable")] == [None, None]
    assert len(one.unreadable) == 4
    pd.testing.assert_frame_equal(read(sp.out("unreadable_two")), read(sp.out("unreadable_one")))
    meta = [pyogrio.read_info(sp.out(f"unreadable_{n}"))["layer_metadata"] for n in ("one", "two")]
    assert meta[0] == meta[1] and "fsanet_unreadable_windows" in meta[0]
