"""The plugin's runner without QGIS: where fsanet is found, the messages when it is missing
or broken, JSON events versus text lines, and cancel (SIGTERM, then the process's own exit)."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

from qgis_helpers import PLUGIN_PARENT

sys.path.insert(0, str(PLUGIN_PARENT / "fsanet_processing"))
from runner import FsanetMissing, find_fsanet, run_fsanet  # noqa: E402


def script(path: Path, body: str) -> Path:
    """An executable Python script standing in for fsanet."""
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_setting_wins_then_the_variable_then_path(tmp_path: Path) -> None:
    a, b = script(tmp_path / "a", ""), script(tmp_path / "fsanet", "")
    env = {"FSANET_EXECUTABLE": str(a), "PATH": str(tmp_path)}
    assert find_fsanet(str(b), env) == b
    assert find_fsanet(None, env) == a
    assert find_fsanet("  ", {"PATH": str(tmp_path)}) == b


def test_each_missing_case_is_one_message(tmp_path: Path) -> None:
    with pytest.raises(FsanetMissing, match=r"^fsanet not found: the provider setting 'fsanet executable' names "
                                            r"/no/fsanet, which does not exist$"):
        find_fsanet("/no/fsanet", {})
    (tmp_path / "plain").write_text("")
    with pytest.raises(FsanetMissing, match=r"is not executable"):
        find_fsanet(None, {"FSANET_EXECUTABLE": str(tmp_path / "plain")})
    with pytest.raises(FsanetMissing, match=r"^fsanet not found \(no provider setting, no FSANET_EXECUTABLE, "
                                            r"not on PATH\): install fsanet-geo"):
        find_fsanet(None, {"PATH": str(tmp_path / "empty")})


def test_events_text_and_the_failure_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/qgis/python")  # QGIS's own: not handed to fsanet
    exe = script(tmp_path / "fsanet", "import os, sys\n"
                 "print('{\"event\": \"progress\", \"done\": 1, \"total\": 2}', file=sys.stderr)\n"
                 "print('note: ' + os.environ.get('PYTHONPATH', 'no PYTHONPATH'), file=sys.stderr)\n"
                 "print('{not json', file=sys.stderr)\nprint('data on stdout')\n"
                 "print('error: scene.tif: no such file', file=sys.stderr)\nsys.exit(2)\n")
    events: list[dict] = []
    result = run_fsanet(exe, ["detect"], on_event=events.append)
    assert events == [{"event": "progress", "done": 1, "total": 2}]
    assert result.text == ["note: no PYTHONPATH", "{not json", "error: scene.tif: no such file"]
    assert (result.exit_code, result.cancelled, result.stdout) == (2, False, "data on stdout")
    assert result.failure(exe) == "scene.tif: no such file"
    broken = run_fsanet(script(tmp_path / "broken", "import torch_that_is_missing\n"), [])
    assert broken.failure(Path("/env/bin/fsanet")).startswith(
        "fsanet at /env/bin/fsanet is broken or not an fsanet-geo install (exit code 1): ModuleNotFoundError: ")


def test_cancel_sends_sigterm_and_waits_for_the_cleanup(tmp_path: Path) -> None:
    exe = script(tmp_path / "fsanet", "import signal, sys, time\n"
                 "def stop(*a):\n    print('{\"event\": \"interrupted\"}', file=sys.stderr); sys.exit(143)\n"
                 "signal.signal(signal.SIGTERM, stop)\n"
                 "print('{\"event\": \"progress\", \"done\": 0, \"total\": 9}', file=sys.stderr)\ntime.sleep(60)\n")
    seen: list[dict] = []
    started = time.monotonic()
    result = run_fsanet(exe, [], on_event=seen.append, is_cancelled=lambda: bool(seen))
    assert time.monotonic() - started < 10
    assert (result.cancelled, result.exit_code) == (True, 143)
    assert [e["event"] for e in result.events] == ["progress", "interrupted"]
    assert os.name != "posix" or result.last("interrupted") == {"event": "interrupted"}
