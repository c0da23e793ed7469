"""Points 13, 14 and 5 of issue 17: a full disk, two runs on one output, unwritable folders.

Disk full is simulated by making the writers raise what a full disk makes them raise
(``OSError(ENOSPC)`` from the journal, SQLite's "database or disk is full" from GDAL)."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pyogrio
import pytest
from scene_helpers import PaintedPredictor, PaintedScene

from fsanet_geo.errors import FileOverwriteError, OutputError, StaleLockWarning
from fsanet_geo.geo.outputs.journal import DetectJournal, journal_dir
from fsanet_geo.geo.outputs.output_lock import lock_path, output_lock
from fsanet_geo.geo.detect.pipeline import detect_to_file
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.io_utils import check_output_path

TILE, OVERLAP = 64, 16
SETTINGS = DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=2, sink_rows=5)


def leftovers(folder: Path, out: Path) -> list[str]:
    """Hidden temporaries and lock files of ``out`` left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{out.name}.") or p.name.endswith(".lock"))


# -- 13: disk full ---------------------------------------------------------------------------

def test_disk_full_in_the_journal_keeps_the_finished_tiles_for_resume(
    utm_scene: PaintedScene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.gpkg"
    record = DetectJournal.record
    calls = []

    def record_until_full(self: DetectJournal, chunk) -> None:  # noqa: ANN001
        calls.append(chunk)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        record(self, chunk)

    monkeypatch.setattr(DetectJournal, "record", record_until_full)
    with pytest.raises(OutputError) as err:
        detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=SETTINGS)
    assert str(err.value) == (
        f"no space left on device writing {out}: the finished tiles are kept in {journal_dir(out)} "
        "for --resume once there is space (the partial output was removed)"
    )
    assert not out.exists() and leftovers(tmp_path, out) == []
    assert len(list(journal_dir(out).glob("*.npz"))) == 2
    monkeypatch.setattr(DetectJournal, "record", record)
    resumed = DetectSettings(**{**SETTINGS.__dict__, "resume": True})
    summary = detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=resumed)
    assert summary.resumed_tiles == 4 and summary.progress.detections == len(utm_scene.boxes)


def test_disk_full_in_the_geopackage_writer_keeps_the_replaced_output_intact(
    utm_scene: PaintedScene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.gpkg"
    detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=SETTINGS)
    before = out.read_bytes()
    write = pyogrio.write_dataframe

    def full(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        raise pyogrio.errors.FeatureError(
            "Could not add feature to layer at index 0: sqlite3_exec(COMMIT) failed: database or disk is full")

    monkeypatch.setattr(pyogrio, "write_dataframe", full)
    with pytest.raises(OutputError) as err:
        detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=SETTINGS, overwrite=True)
    assert str(err.value).startswith(f"no space left on device writing {out}: the finished tiles are kept in ")
    assert out.read_bytes() == before  # --overwrite replaces only on success
    assert leftovers(tmp_path, out) == []
    monkeypatch.setattr(pyogrio, "write_dataframe", write)


def test_disk_full_before_any_finished_tile_keeps_nothing(
    utm_scene: PaintedScene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.gpkg"

    def full(self: DetectJournal, chunk) -> None:  # noqa: ANN001
        raise OSError(errno.ENOSPC, "No space left on device", str(self.folder / ".s0000.npz.tmp"))

    monkeypatch.setattr(DetectJournal, "record", full)
    with pytest.raises(OutputError) as err:
        detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=SETTINGS)
    assert str(err.value) == (f"no space left on device writing {out}: nothing was kept "
                              "(the partial output was removed)")
    assert not journal_dir(out).exists() and not out.exists() and leftovers(tmp_path, out) == []


# -- 14: one writer per output -----------------------------------------------------------------

def test_a_second_writer_is_refused_and_the_first_ones_files_are_untouched(
    utm_scene: PaintedScene, tmp_path: Path
) -> None:
    out = tmp_path / "both.gpkg"
    with output_lock(out):
        journal_dir(out).mkdir()
        (journal_dir(out) / "s0000-t000000000-000000002.npz").write_bytes(b"the first run's")
        with pytest.raises(OutputError) as err:
            detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=SETTINGS)
        assert str(err.value) == f"another fsanet run is writing {out} (pid {os.getpid()})"
        assert (journal_dir(out) / "s0000-t000000000-000000002.npz").read_bytes() == b"the first run's"
    assert not lock_path(out).exists()


def test_a_lock_held_by_another_process_then_left_by_its_kill(utm_scene: PaintedScene, tmp_path: Path) -> None:
    out = tmp_path / "both.gpkg"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from fsanet_geo.geo.outputs.output_lock import OutputLock
            OutputLock({str(out)!r}).acquire()
            print("locked", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match=rf"^another fsanet run is writing .*both\.gpkg \(pid {holder.pid}\)$"):
            detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=SETTINGS)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert json.loads(lock_path(out).read_text())["pid"] == holder.pid  # a killed run leaves its lock file
    with pytest.warns(StaleLockWarning, match=rf"the run that held it \(pid {holder.pid}\) is gone; taking it over"):
        summary = detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=SETTINGS)
    assert summary.progress.detections == len(utm_scene.boxes) and not lock_path(out).exists()


def test_without_flock_a_dead_pid_of_this_host_is_stale_and_a_live_one_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    def no_flock(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    out = tmp_path / "x.gpkg"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock_path(out).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    with pytest.warns(StaleLockWarning), output_lock(out):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
        with pytest.raises(OutputError, match=rf"another fsanet run is writing .*x\.gpkg \(pid {os.getpid()}\)"):
            output_lock(out).__enter__()
    lock_path(out).write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(OutputError, match=r"\(pid 1 on elsewhere\)$"):
        output_lock(out).__enter__()


# -- 5: unwritable folders found before any work ---------------------------------------------------

def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (a chmod 555 folder, or /sys/kernel for root)."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o555)
        return folder
    folder = Path("/sys/kernel")
    if not folder.is_dir():
        pytest.skip("running as root without /sys/kernel: no unwritable folder to test with")
    return folder


def test_an_unwritable_folder_is_named_before_any_work(tmp_path: Path) -> None:
    folder = unwritable_folder(tmp_path)
    with pytest.raises(OutputError) as err:
        check_output_path(folder / "out.gpkg", overwrite=False)
    assert str(err.value) == f"output folder {folder} is not writable (Permission denied): cannot write {folder / 'out.gpkg'}"
    with pytest.raises(FileOverwriteError):  # an existing output is still reported as such first
        check_output_path(tmp_path, overwrite=False)


def test_an_unwritable_preview_folder_fails_the_plan_naming_the_users_path(tmp_path: Path) -> None:
    from fsanet_geo.geo.detect.detect_job import plan_detect_job

    folder = unwritable_folder(tmp_path)
    with pytest.raises(OutputError, match=rf"^output folder {folder} is not writable .*cannot write {folder}/q\.png$"):
        plan_detect_job([tmp_path / "a.tif"], DetectSettings(), output=tmp_path / "out.gpkg", preview=folder / "q.png")
    assert list(tmp_path.iterdir()) == ([folder] if folder.parent == tmp_path else [])


def test_an_os_error_on_a_hidden_temporary_names_the_users_path(
    utm_scene: PaintedScene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.gpkg"

    def denied(df, path, **kwargs) -> None:  # noqa: ANN001, ANN003
        raise PermissionError(errno.EACCES, "Permission denied", str(path))  # path: .out.gpkg.XXXX.tmp/...

    monkeypatch.setattr(pyogrio, "write_dataframe", denied)
    with pytest.raises(OutputError) as err:
        detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=SETTINGS)
    assert str(err.value) == f"cannot write {out}: Permission denied"
    assert leftovers(tmp_path, out) == []


def test_a_killed_runs_temporaries_are_removed_by_the_next_run_with_or_without_resume(
    utm_scene: PaintedScene, tmp_path: Path
) -> None:
    out = tmp_path / "out.gpkg"
    stale = tmp_path / ".out.gpkg.k1ll3d00.tmp"
    stale.mkdir()
    (stale / "out.gpkg").write_bytes(b"half a GeoPackage")
    other = tmp_path / ".other.gpkg.k1ll3d00.tmp"  # another output's: not ours to remove
    other.mkdir()
    detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=SETTINGS)
    assert not stale.exists() and other.is_dir()
