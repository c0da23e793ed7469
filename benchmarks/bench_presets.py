"""Which from-scratch preset fits objects of 20-80 px? Same data, same budget, same recipe.

Trains each preset from random weights with ``fsanet train --scene --labels`` on defaults
(the split, chips and schedule fitted to the area; ``--max-iters`` sets the budget), and
reads the validation record of each: AI-TOD AP / AP50 on the held-out blocks and the
calibrated F1-best precision / recall at IoU 0.5. Prints a markdown table and the command.

The case the presets were questioned on is a real one: the NEON aerial tile OSBS_029 (10 cm,
EPSG:32617, 400 x 400 px, 61 tree crowns of median 36 px) that ships inside the ``deepforest``
wheel on PyPI with its boxes as Pascal VOC XML:

    pip download --no-deps deepforest -d /tmp/df && cd /tmp/df && unzip -o -j deepforest-*.whl \\
        'deepforest/data/OSBS_029.tif' 'deepforest/data/OSBS_029.xml'
    PYTHONPATH=. python benchmarks/bench_presets.py --scene /tmp/df/OSBS_029.tif \\
        --voc /tmp/df/OSBS_029.xml [--iters 150] [--presets fsanet_r18_tiny,fsanet_r18_medium]

``--labels FILE --class-field NAME`` takes any vector layer instead of ``--voc``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scene_training import fsanet  # noqa: E402 - the same runner of this checkout's CLI


def voc_to_gpkg(scene: Path, voc: Path, out: Path) -> Path:
    """Pascal VOC pixel boxes of ``scene`` as map polygons in its CRS (a ``kind`` column)."""
    import geopandas as gpd
    import rasterio
    import shapely

    with rasterio.open(scene) as src:
        transform, crs = src.transform, src.crs
    rows = []
    for obj in ET.parse(voc).getroot().iter("object"):
        box = obj.find("bndbox")
        x1, y1, x2, y2 = (float(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[union-attr]
        (a, b), (c, d) = transform * (x1, y1), transform * (x2, y2)
        rows.append({"kind": obj.findtext("name", "object").lower(),
                     "geometry": shapely.box(min(a, c), min(b, d), max(a, c), max(b, d))})
    gpd.GeoDataFrame(rows, crs=crs).to_file(out)
    return out


def run(preset: str, scene: Path, labels: Path, field: str, iters: int, work: Path, seed: int) -> dict[str, object]:
    """Train ``preset`` from scratch; its best and last validation figures and the time."""
    started = time.perf_counter()
    fsanet("train", "--scene", str(scene), "--labels", str(labels), "--class-field", field, "--model", preset,
           "--max-iters", str(iters), "--seed", str(seed), "--device", "cpu", "--work-dir", str(work))
    seconds = time.perf_counter() - started
    vals = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    vals = [v for v in vals if v.get("type") == "val"]
    best = max(vals, key=lambda v: v.get("AP", -1.0))
    cal = vals[-1].get("calibration") or {}
    return {"preset": preset, "best AP": 100 * best["AP"], "best AP50": 100 * best["AP50"],
            "last AP50": 100 * vals[-1]["AP50"], "P": 100 * cal.get("precision", 0.0),
            "R": 100 * cal.get("recall", 0.0), "minutes": seconds / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", type=Path, required=True)
    parser.add_argument("--voc", type=Path, help="Pascal VOC XML boxes of the scene")
    parser.add_argument("--labels", type=Path, help="a vector layer instead of --voc")
    parser.add_argument("--class-field", default="kind")
    parser.add_argument("--iters", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--presets", default="fsanet_r18_tiny,fsanet_r18_medium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        labels = args.labels or voc_to_gpkg(args.scene, args.voc, Path(tmp) / "labels.gpkg")
        rows = [run(p, args.scene, labels, args.class_field, args.iters, Path(tmp) / p, args.seed)
                for p in args.presets.split(",")]
    print(f"\n{args.scene.name}, {args.iters} iterations from scratch, seed {args.seed} (AP on the validation blocks)\n")
    print("| preset | best AP | best AP50 | last AP50 | calibrated P | calibrated R | minutes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['preset']} | {r['best AP']:.1f} | {r['best AP50']:.1f} | {r['last AP50']:.1f} | {r['P']:.1f} | "
              f"{r['R']:.1f} | {r['minutes']:.1f} |")
    print("\ncommand: PYTHONPATH=. python benchmarks/bench_presets.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
