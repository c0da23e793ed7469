"""`fsanet detect` and the faults of issue 17 (points 5, 13, 14, 16): one line each, no traceback.

The model is the painted-objects predictor (patched in for the checkpoint loader), so these
runs cost no network."""

from __future__ import annotations

import errno
import os
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "geo"))
from scene_helpers import PaintedPredictor, SignallingPredictor, write_painted_scene  # noqa: E402
from test_unreadable import corrupt_block  # noqa: E402

from fsanet_cli.main import app  # noqa: E402
from fsanet_geo.geo.detect import detect_job  # noqa: E402
from fsanet_geo.geo.outputs.journal import DetectJournal, journal_dir  # noqa: E402
from fsanet_geo.geo.outputs.output_lock import output_lock  # noqa: E402

runner = CliRunner()
OPTS = ("--tile-size", "64", "--overlap", "16", "--batch-size", "2", "--device", "cpu")


def lines(result) -> list[str]:  # noqa: ANN001
    return [line for line in result.output.strip().splitlines() if line.strip()]


@pytest.fixture
def painted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The painted predictor stands in for any checkpoint; counts the loads."""
    loads: list[int] = []

    def load(weights, device, events=None):  # noqa: ANN001, ANN202
        loads.append(1)
        return PaintedPredictor()

    monkeypatch.setattr(detect_job, "load_detector", load)
    return loads


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return write_painted_scene(tmp_path / "corrupt.tif", height=200, width=260, n_objects=30, seed=4).path


# In one CI run (2 cores under heavy load) rasterio's "Dataset has no geotransform" pair from
# another test's no-CRS scene surfaced inside this command's output; this scene has a CRS.
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_corrupt_block_is_one_line_and_skip_unreadable_lists_it(scene: Path, tmp_path: Path, painted) -> None:  # noqa: ANN001
    corrupt_block(scene, col=2, row=1)
    out = tmp_path / "out.gpkg"
    stopped = runner.invoke(app, ["detect", str(scene), "-o", str(out), *OPTS])
    assert stopped.exit_code == 2 and len(lines(stopped)) == 1, stopped.output
    assert re.match(rf"error: cannot read tile \d+ \(window \(48, 96, 64, 64\)\) of {re.escape(str(scene))}: Read failed \(band",
                    lines(stopped)[0]), lines(stopped)[0]
    assert "See previous" not in stopped.output
    skipped = runner.invoke(app, ["detect", str(scene), "-o", str(out), "--skip-unreadable", *OPTS])
    assert skipped.exit_code == 0, skipped.output
    text = lines(skipped)
    assert text[0].startswith(f"warning: {journal_dir(out)} holds the finished tiles of an interrupted run")
    assert " ".join(text[-1].split()) == (
        "warning: skipped 4 unreadable window(s): corrupt.tif window (48, 96, 64, 64), corrupt.tif window "
        "(48, 144, 64, 64), corrupt.tif window (96, 96, 64, 64), corrupt.tif window (96, 144, 64, 64) "
        "(each with GDAL's reason in the output's metadata)")


def test_a_second_writer_is_one_line_naming_the_pid(scene: Path, tmp_path: Path, painted) -> None:  # noqa: ANN001
    out = tmp_path / "out.gpkg"
    with output_lock(out):
        result = runner.invoke(app, ["detect", str(scene), "-o", str(out), *OPTS])
    assert result.exit_code == 2 and lines(result) == [f"error: another fsanet run is writing {out} (pid {os.getpid()})"]


def test_a_run_over_an_old_journal_says_it_starts_fresh(scene: Path, tmp_path: Path, painted) -> None:  # noqa: ANN001
    out = tmp_path / "out.gpkg"
    journal_dir(out).mkdir()
    (journal_dir(out) / "s0000-t000000000-000000002.npz").write_bytes(b"")
    result = runner.invoke(app, ["detect", str(scene), "-o", str(out), *OPTS])
    assert result.exit_code == 0, result.output
    assert lines(result)[0] == (f"warning: {journal_dir(out)} holds the finished tiles of an interrupted run: "
                                "starting fresh (they are discarded; --resume continues them)")


def test_an_unwritable_preview_folder_is_refused_before_the_model_loads(
    scene: Path, tmp_path: Path, painted  # noqa: ANN001
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    if os.geteuid() == 0:
        folder = Path("/sys/kernel")
    result = runner.invoke(app, ["detect", str(scene), "-o", str(tmp_path / "out.gpkg"), "--preview",
                                 str(folder / "q.png"), *OPTS])
    assert result.exit_code == 2 and len(lines(result)) == 1
    assert lines(result)[0] == (f"error: output folder {folder} is not writable (Permission denied): "
                                f"cannot write {folder / 'q.png'}")
    assert painted == [] and not (tmp_path / "out.gpkg").exists()


def test_a_full_disk_is_one_line_saying_what_was_kept(
    scene: Path, tmp_path: Path, painted, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    record = DetectJournal.record

    def full_after_two(self: DetectJournal, chunk) -> None:  # noqa: ANN001
        if chunk.start >= 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        record(self, chunk)

    monkeypatch.setattr(DetectJournal, "record", full_after_two)
    out = tmp_path / "out.gpkg"
    result = runner.invoke(app, ["detect", str(scene), "-o", str(out), *OPTS])
    assert result.exit_code == 2 and lines(result) == [
        f"error: no space left on device writing {out}: the finished tiles are kept in {journal_dir(out)} "
        "for --resume once there is space (the partial output was removed)"]


def test_a_full_disk_while_writing_the_preview_names_the_png(
    scene: Path, tmp_path: Path, painted, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    from PIL import Image

    def full(self, fp, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        raise OSError(errno.ENOSPC, "No space left on device", str(fp))

    monkeypatch.setattr(Image.Image, "save", full)
    out, preview = tmp_path / "out.gpkg", tmp_path / "q.png"
    result = runner.invoke(app, ["detect", str(scene), "-o", str(out), "--preview", str(preview), *OPTS])
    assert result.exit_code == 2
    assert lines(result)[-1] == (f"error: no space left on device writing {preview}: nothing was kept "
                                 "(the partial output was removed)")
    assert out.exists() and not preview.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_sigterm_cleans_up_like_ctrl_c_and_says_how_to_resume(
    scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    monkeypatch.setattr(detect_job, "load_detector", lambda *a, **k: SignallingPredictor(signal.SIGTERM))
    out = tmp_path / "out.gpkg"
    before = signal.getsignal(signal.SIGTERM)
    result = runner.invoke(app, ["detect", str(scene), "-o", str(out), *OPTS])
    assert result.exit_code == 143, result.output
    assert lines(result) == [f"finished tiles kept in {journal_dir(out)}: run the same command with --resume "
                             "to continue", "terminated (SIGTERM)"]
    assert signal.getsignal(signal.SIGTERM) is before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.tif", "out.gpkg.partial"]  # no lock, no temp
