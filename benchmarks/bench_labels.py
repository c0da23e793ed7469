"""Time to turn a vector label layer into pixel boxes on a large scene (``load_label_set``).

Writes a rotated UTM GeoTIFF (3 x uint8, 512 px tiles, deflate, nodata 0 over its left
quarter and in scattered holes) and a GeoPackage of square polygons (6-40 m) in EPSG:4326
scattered over it (so every one is reprojected and densified), then times the stages of
loading them: reading the layer (pyogrio), mapping to pixel boxes (reprojection + inverse
affine), the nodata test (block reads of the mask), and the whole ``load_label_set``.

Reproduce::

    .venv/bin/python benchmarks/bench_labels.py                          # 20,000 px, 50,000 labels
    .venv/bin/python benchmarks/bench_labels.py --size 4000 --labels 5000
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.windows import Window

from fsanet_geo.geo.pixels.reader import open_scene
from fsanet_geo.geodata import label_nodata
from fsanet_geo.geodata.label_boxes import pixel_boxes
from fsanet_geo.geodata.label_layer import read_label_layer
from fsanet_geo.geodata.labels import load_label_set
from fsanet_geo.geodata.types import LabelOptions, LabelSource

TRANSFORM = Affine.translation(400_000, 5_100_000) @ Affine.rotation(12) @ Affine.scale(0.5, -0.5)


def write_scene(path: Path, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8", "nodata": 0,
               "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate",
               "crs": "EPSG:32633", "transform": TRANSFORM}
    with rasterio.open(path, "w", **profile) as ds:
        for row in range(0, size, 512):
            h = min(512, size - row)
            band = rng.integers(1, 255, (h, size), dtype=np.uint8)
            band[:, : size // 4] = 0
            for _ in range(size // 512):  # nodata holes
                c = int(rng.integers(0, size - 64))
                band[:, c : c + 64] = 0
            ds.write(np.broadcast_to(band, (3, h, size)), window=Window(0, row, size, h))


def write_labels(path: Path, size: int, count: int, seed: int) -> None:
    import geopandas

    rng = np.random.default_rng(seed + 1)
    cols, rows = rng.uniform(-50, size + 50, count), rng.uniform(-50, size + 50, count)
    x, y = TRANSFORM.a * cols + TRANSFORM.b * rows + TRANSFORM.c, TRANSFORM.d * cols + TRANSFORM.e * rows + TRANSFORM.f
    half = rng.uniform(3, 20, count)
    boxes = shapely.box(x - half, y - half, x + half, y + half)
    classes = rng.choice(["car", "ship", "plane"], count)
    geopandas.GeoDataFrame({"cls": classes}, geometry=boxes, crs="EPSG:32633").to_crs("EPSG:4326").to_file(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20_000, help="scene side, pixels")
    parser.add_argument("--labels", type=int, default=50_000, help="number of label polygons")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scene, labels = Path(tmp) / "scene.tif", Path(tmp) / "labels.gpkg"
        t0 = time.perf_counter()
        write_scene(scene, args.size, args.seed)
        write_labels(labels, args.size, args.labels, args.seed)
        setup = time.perf_counter() - t0
        times = {}
        t0 = time.perf_counter()  # first, with GDAL's block cache cold (the OS file cache is warm)
        result = load_label_set([LabelSource(str(scene), str(labels))], LabelOptions(class_field="cls"))
        times["load_label_set (all of it, first)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        layer = read_label_layer(str(labels), class_field="cls")
        times["read layer (pyogrio)"] = time.perf_counter() - t0
        info = open_scene(scene)
        t0 = time.perf_counter()
        boxes, _ = pixel_boxes(layer.geometries, layer.crs, info.crs, info.transform)
        times["reproject + inverse affine"] = time.perf_counter() - t0
        inside = np.isfinite(boxes).all(1) & (boxes[:, 0] >= 0) & (boxes[:, 1] >= 0) & (boxes[:, 2] <= args.size) \
            & (boxes[:, 3] <= args.size)
        t0 = time.perf_counter()
        label_nodata.boxes_with_data(info, boxes[inside])
        times[f"nodata test ({int(inside.sum())} boxes, cells of {label_nodata.CELL} px)"] = time.perf_counter() - t0
    counts = result.scenes[0].counts
    print(f"scene {args.size} x {args.size} px, {args.labels} labels in EPSG:4326 (setup {setup:.1f} s); "
          f"{platform.machine()}, {platform.python_version()}")
    print(f"counts: {counts.to_dict()}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| stage | s |\n|---|---:|")
    for stage, seconds in times.items():
        print(f"| {stage} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
