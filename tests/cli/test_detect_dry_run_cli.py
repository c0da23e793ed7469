"""`fsanet detect --dry-run`: the table at 80 columns, --json, notes, refusals, no model loaded,
scene lists (issue 24, point 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "geo"))
from test_dry_run import block_sizes, no_model_load, write_scene  # noqa: E402, F401 - autouse: every loader fails

from fsanet_cli.main import app  # noqa: E402

runner = CliRunner()
TILING = ("--tile-size", "512", "--overlap", "0")


@pytest.fixture
def scenes(tmp_path: Path) -> tuple[Path, Path]:
    return write_scene(tmp_path / "full.tif"), write_scene(tmp_path / "sparse.tif", sparse=True)


def test_json_is_one_document_with_per_scene_and_total_figures(scenes: tuple[Path, Path], tmp_path: Path) -> None:
    full, sparse = scenes
    listing = tmp_path / "scenes.txt"
    listing.write_text("# two scenes\nfull.tif\n\nsparse.tif\n")
    result = runner.invoke(app, ["detect", *TILING, "--scenes", str(listing), "-o", str(tmp_path / "o.gpkg"),
                                 "--dry-run", "--json", "--rate", "4"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [(s["scene"], s["tiles"], s["read"], s["skipped_nodata"]) for s in doc["scenes"]] == [
        ("full.tif", 8, 8, 0), ("sparse.tif", 8, 4, 4)]
    total = doc["total"]
    assert (total["tiles"], total["read"], total["skipped_nodata"], total["blocks"]) == (16, 12, 4, 36)
    assert total["bytes"] == sum(block_sizes(full).values()) + sum(block_sizes(sparse).values())
    assert doc["estimated_seconds"] == 3.0 and doc["rate"] == {
        "tiles_per_s": 4.0, "source": "stated", "detail": "the rate stated with --rate"}
    assert not (tmp_path / "o.gpkg").exists()


def test_the_table_fits_80_columns_and_an_existing_output_is_a_note(scenes: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "o.gpkg"
    out.write_bytes(b"x")
    result = runner.invoke(app, ["detect", *TILING, *map(str, scenes), "-o", str(out), "--dry-run", "--rate", "0.5"],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert [line.split()[:4] for line in lines if line.startswith(("full", "sparse", "total"))] == [
        ["full.tif", "│", "8", "│"], ["sparse.tif", "│", "8", "│"], ["total", "│", "16", "│"]]
    assert "12 tiles to read" in result.stdout
    assert "estimated 0:00:24 of model time on cpu at 0.5 tiles/s" in result.stdout
    assert f"note: {out} exists: the run would refuse it without --overwrite" in " ".join(result.output.split())
    assert out.read_bytes() == b"x"


@pytest.mark.parametrize("flag", [["--json"], ["--rate", "2"]])
def test_json_and_rate_without_dry_run_are_one_line_errors(scenes: tuple[Path, Path], tmp_path: Path,
                                                           flag: list[str]) -> None:
    result = runner.invoke(app, ["detect", str(scenes[0]), "-o", str(tmp_path / "o.gpkg"), *flag])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {flag[0]} goes with --dry-run"


def test_a_missing_scene_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["detect", str(tmp_path / "nope.tif"), "-o", str(tmp_path / "o.gpkg"), "--dry-run",
                                 "--rate", "1"])
    assert result.exit_code == 2 and result.output.strip() == f"error: scene {tmp_path / 'nope.tif'} does not exist"
