"""The console-script entry point: click's usage errors become one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fsanet_cli.main", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("detect", "/nonexistent/scene.tif", "-o", "out.gpkg"), "scene /nonexistent/scene.tif does not exist"),
        (("detect", "--bogus"), "No such option: --bogus"),
        (("no-such-command",), "No such command 'no-such-command'"),
        (("eval", "--json-file"), "'--json-file' requires an argument"),
    ],
)
def test_usage_errors_are_one_line(args: tuple[str, ...], expected: str, tmp_path: Path) -> None:
    result = run(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_debug_keeps_clicks_full_report() -> None:
    result = run("--debug", "detect", "scene.tif", "--tile-size", "abc")
    assert result.returncode == 2
    assert "Usage:" in result.stderr


def test_version_and_bare_command() -> None:
    assert run("--version").stdout.startswith("fsanet-geo ")
    bare = run("detect")
    assert bare.returncode == 2 and "Usage" in bare.stdout + bare.stderr
