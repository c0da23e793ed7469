"""`fsanet export` and `fsanet detect --weights model.onnx` against the safetensors checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from fsanet_cli.main import app  # noqa: E402
from fsanet_geo.geo.detect.detect_job import demo_weights_path  # noqa: E402

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "example_scene.tif"


def one_error_line(result) -> str:  # noqa: ANN001
    text = result.output.strip()
    assert result.exit_code == 2, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), text
    return lines[0]


def crop_scene(path: Path, row: int, col: int, size: int) -> Path:
    """A georeferenced size x size crop of the example scene."""
    import rasterio
    from rasterio.windows import Window

    window = Window(col, row, size, size)
    with rasterio.open(EXAMPLE) as src:
        profile = src.profile | {"height": size, "width": size, "transform": src.window_transform(window),
                                 "tiled": False, "compress": "deflate"}
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read(window=window))
    return path


def coco(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    records = json.loads(path.read_text())
    boxes = np.array([r["bbox"] for r in records], np.float64).reshape(-1, 4)
    return boxes, np.array([r["score"] for r in records]), np.array([r["category_id"] for r in records])


@pytest.fixture(scope="module")
def demo_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not demo_weights_path().is_file():
        pytest.skip("no packaged demo model")
    out = tmp_path_factory.mktemp("export") / "demo.onnx"
    result = runner.invoke(app, ["export", str(demo_weights_path()), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "largest output difference" in result.output and out.is_file()
    return out


def test_detect_with_onnx_equals_the_checkpoint(demo_onnx: Path, tmp_path: Path) -> None:
    """A 288 px crop of the example scene (4 tiles of 160 px with their seams): same count,
    boxes within 0.01 px, scores within 1e-4, same classes."""
    scene = crop_scene(tmp_path / "crop.tif", 1200, 1300, 288)
    found = {}
    for name, weights in (("torch", demo_weights_path()), ("onnx", demo_onnx)):
        out = tmp_path / f"{name}.json"
        result = runner.invoke(app, ["detect", str(scene), "--weights", str(weights), "-o", str(out),
                                     "--tile-size", "160", "--threads", "2"])
        assert result.exit_code == 0, result.output
        found[name] = coco(out)
    (tb, ts, tc), (ob, os_, oc) = found["torch"], found["onnx"]
    assert len(ts) == len(os_) > 5
    # Pair each torch detection with the nearest ONNX one of its class: a bijection within 0.01 px.
    distance = np.abs(tb[:, None, :] - ob[None, :, :]).max(-1) + 1e6 * (tc[:, None] != oc[None, :])
    nearest = distance.argmin(1)
    assert len(set(nearest.tolist())) == len(nearest)
    assert distance[np.arange(len(nearest)), nearest].max() <= 0.01
    assert np.abs(ts - os_[nearest]).max() <= 1e-4


def test_export_errors_are_one_line(demo_onnx: Path, tmp_path: Path) -> None:
    assert "already exists" in one_error_line(runner.invoke(app, ["export", str(demo_weights_path()), "-o", str(demo_onnx)]))
    assert ".onnx" in one_error_line(runner.invoke(app, ["export", str(demo_weights_path()), "-o", str(tmp_path / "m.pt")]))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"no")
    assert "not a readable safetensors" in one_error_line(runner.invoke(app, ["export", str(bad), "-o", str(tmp_path / "m.onnx")]))
    assert not (tmp_path / "m.onnx").exists()
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"no")
    scene = crop_scene(tmp_path / "crop.tif", 0, 0, 64)
    line = one_error_line(runner.invoke(app, ["detect", str(scene), "--weights", str(garbage), "-o", str(tmp_path / "o.json")]))
    assert "does not load in ONNX Runtime" in line
