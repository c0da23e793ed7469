"""The demo model on radiometric and resolution variants of the example scene (issue 13).

A window of ``examples/data/example_scene.tif`` (8-bit, 0.5 m) is written as: a uint16
4-band copy (values x40+200, nodata 0, 16 px nodata border), and rasterio resamples to
0.3 m (bilinear) and 1.0 m (average). Each is detected with the packaged demo model
(0.5 m) through ``fsanet detect`` options and scored in map space (IoU 0.5) against the
example truth inside the window. Prints a markdown table.

    PYTHONPATH=. python benchmarks/bench_radiometry_gsd.py [--window 1000] [--offset 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from fsanet_geo.evaluate.mapspace import evaluate_vectors
from fsanet_geo.geo.detect.detect_job import load_detector
from fsanet_geo.geo.detect.pipeline import detect_to_file
from fsanet_geo.geo.settings import DetectSettings

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "examples" / "data" / "example_scene.tif"
TRUTH = REPO / "examples" / "data" / "example_scene_truth.gpkg"


def write_variants(folder: Path, offset: int, size: int) -> dict[str, Path]:
    """The 8-bit window, its uint16 copy, and its 0.3 m and 1.0 m resamples."""
    with rasterio.open(SCENE) as src:
        window = Window(offset, offset, size, size)
        data = src.read(window=window)
        base = {"driver": "GTiff", "crs": src.crs, "tiled": True, "blockxsize": 256, "blockysize": 256,
                "compress": "deflate"}
        transform = src.window_transform(window)
    paths = {"8-bit": folder / "w8.tif", "uint16": folder / "w16.tif"}
    with rasterio.open(paths["8-bit"], "w", height=size, width=size, count=3, dtype="uint8",
                       transform=transform, **base) as dst:
        dst.write(data)
    u16 = data.astype(np.uint16) * 40 + 200
    u16 = np.concatenate([u16, u16[:1]])
    u16[:, :16, :] = 0  # a nodata border, as an orthorectified scene has
    with rasterio.open(paths["uint16"], "w", height=size, width=size, count=4, dtype="uint16", nodata=0,
                       transform=transform, **base) as dst:
        dst.write(u16)
    with rasterio.open(paths["8-bit"]) as src:
        for gsd in (0.3, 1.0):
            zoom = 0.5 / gsd
            side = round(size * zoom)
            method = Resampling.bilinear if zoom > 1 else Resampling.average
            resampled = src.read(out_shape=(3, side, side), resampling=method)
            path = paths[f"{gsd} m"] = folder / f"w{gsd}.tif"
            with rasterio.open(path, "w", height=side, width=side, count=3, dtype="uint8",
                               transform=transform * Affine.scale(size / side), **base) as dst:
                dst.write(resampled)
    return paths


def window_truth(folder: Path, offset: int, size: int) -> Path:
    truth = gpd.read_file(TRUTH)
    inside = truth[(truth.x_min >= offset) & (truth.y_min >= offset + 16)
                   & (truth.x_max <= offset + size) & (truth.y_max <= offset + size)]
    path = folder / "truth.gpkg"
    inside.to_file(path)
    return path


RUNS = [
    ("8-bit original", "8-bit", {}),
    ("uint16 copy, defaults", "uint16", {"bands": [1, 2, 3]}),
    ("uint16 copy, --stretch-to full (the old stretch)", "uint16", {"bands": [1, 2, 3], "stretch_to": "full"}),
    ("uint16 copy, --scale 200,10400", "uint16", {"bands": [1, 2, 3], "scale": (200.0, 10400.0)}),
    ("0.3 m resample, --gsd native", "0.3 m", {"gsd": "native"}),
    ("0.3 m resample, --gsd auto (default)", "0.3 m", {}),
    ("1.0 m resample, --gsd native", "1.0 m", {"gsd": "native"}),
    ("1.0 m resample, --gsd auto (default)", "1.0 m", {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=1000, help="window side, pixels of the 0.5 m scene")
    parser.add_argument("--offset", type=int, default=1000, help="window row and column offset, pixels")
    args = parser.parse_args()
    model = load_detector(None, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_variants(folder, args.offset, args.window)
        truth = window_truth(folder, args.offset, args.window)
        print(f"window {args.window} x {args.window} px at ({args.offset}, {args.offset}), "
              f"{len(gpd.read_file(truth))} truth objects inside")
        print("| run | objects | precision | recall | F1 | seconds |")
        print("|---|---:|---:|---:|---:|---:|")
        for i, (name, variant, options) in enumerate(RUNS):
            out = folder / f"out{i}.gpkg"
            start = time.perf_counter()
            summary = detect_to_file([paths[variant]], model, out, settings=DetectSettings(**options))
            seconds = time.perf_counter() - start
            result = evaluate_vectors(truth, out, pixel_size=0.5).overall
            print(f"| {name} | {summary.progress.detections} | {result.precision:.3f} | {result.recall:.3f} "
                  f"| {result.f1:.3f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
