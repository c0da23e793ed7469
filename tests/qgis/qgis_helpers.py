"""Running a real QGIS (Debian's 3.22) headless for the plugin tests.

QGIS embeds the system Python, so it runs with the system PATH and without this project's
virtualenv (a venv python first on PATH breaks its ``qgis`` import); ``FSANET_EXECUTABLE``
points at the venv's ``fsanet``. Debian's ``/usr/bin/qgis_process`` wrapper passes
``--noversioncheck``, which the binary refuses: the tests call ``qgis_process.bin``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGIN_PARENT = REPO / "qgis_plugin"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SYSTEM_PYTHON = "/usr/bin/python3"
FSANET = Path(sys.executable).parent / "fsanet"
QGIS_PROCESS = shutil.which("qgis_process.bin", path=SYSTEM_PATH)


def _qgis_python() -> bool:
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], env={"PATH": SYSTEM_PATH},
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_qgis = pytest.mark.skipif(
    QGIS_PROCESS is None or not _qgis_python(),
    reason="QGIS is not installed (apt-get install qgis python3-qgis qgis-providers; .ci/run does it where apt works)")


def qgis_env(home: Path, plugin_parent: Path = PLUGIN_PARENT, **extra: str) -> dict[str, str]:
    """A clean environment for QGIS: system PATH, a fresh profile under ``home``, the plugin's folder."""
    env = {"HOME": str(home), "PATH": SYSTEM_PATH, "QT_QPA_PLATFORM": "offscreen", "LANG": "C.UTF-8",
           "QGIS_PLUGINPATH": str(plugin_parent), "FSANET_EXECUTABLE": str(FSANET)}
    env.update(extra)
    return env


def qgis_process(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``qgis_process.bin ARGS`` in ``env``."""
    assert QGIS_PROCESS is not None
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout)


def run_algorithm(env: dict[str, str], algorithm: str, **params: Any) -> dict[str, Any]:
    """``qgis_process.bin run ALGORITHM --json --NAME=VALUE ...``: its JSON report (``results``,
    ``log``) when it succeeded, plus ``exit_code`` and ``stderr`` (where a failure's message goes)."""
    done = qgis_process(env, "run", algorithm, "--json", *(f"--{k}={v}" for k, v in params.items()))
    start = done.stdout.find("{")
    report = json.loads(done.stdout[start:]) if start >= 0 else {}
    report.update(exit_code=done.returncode, stderr=done.stderr)
    return report


def log_text(report: dict[str, Any]) -> str:
    """The algorithm's log lines (info and errors) as one text."""
    log = report.get("log", {})
    return "\n".join(line for part in log.values() for line in part) if isinstance(log, dict) else str(log)
