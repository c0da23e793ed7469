"""benchmarks/gpu_check.py in its CPU smoke form: every check runs and passes, one table, JSON written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_cpu_quick(tmp_path: Path) -> None:
    if not (ROOT / "fsanet_geo" / "weights" / "demo.safetensors").is_file():
        pytest.skip("no packaged demo model")
    out = tmp_path / "check.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    checks = [row["check"] for row in report["rows"]]
    assert checks.count("deform") == 2 and checks.count("detect") == 1 and checks.count("train") == 1
    assert checks.count("throughput") == 4  # two tiny presets x batch 1, 2 (fp32 only on CPU)
    assert all(row["ok"] is not False for row in report["rows"])
    detect = next(row for row in report["rows"] if row["check"] == "detect")
    assert detect["data"]["matched"] == 1.0 and detect["data"]["objects"] == detect["data"]["cpu_objects"]
    deform_rows = [row for row in report["rows"] if row["check"] == "deform"]
    assert all(max(row["data"]["diffs"]) <= 1e-4 for row in deform_rows)
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert table[0] == "| check | setting | value | pass |" and len(table) == 2 + len(report["rows"])
