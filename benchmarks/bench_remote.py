"""Remote COG reading: bytes and requests that travel for the whole scene and for areas of interest.

Writes a painted RGB COG (128 px blocks, uncompressed so that its size is known), serves it
from a local Range-capable HTTP server in a thread (tests/geo/http_helpers.py), and runs the
detection pipeline over it with a predictor that finds nothing (so the numbers are reading
only): the local file, the URL without AOI, and square AOIs in the scene's centre. Reports
tiles read, bytes the server sent (and the share of the file), GET requests, seconds.

Reproduce (about a minute on 2 CPU cores):

    PYTHONPATH=.:tests/geo .venv/bin/python benchmarks/bench_remote.py --size 2048
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "geo"))
from http_helpers import serve_folder, write_painted_cog  # noqa: E402

from fsanet_geo.geo.detect.pipeline import detect_scene  # noqa: E402
from fsanet_geo.geo.detect.run import DetectProgress  # noqa: E402
from fsanet_geo.geo.settings import DetectSettings  # noqa: E402


def nothing(images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """A predictor that finds nothing: the run measures reading."""
    return [{"boxes": torch.zeros((0, 4)), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
            for _ in images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="scene side, pixels")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--aois", default="1024,256,64", help="AOI sides, pixels")
    args = parser.parse_args()
    os.environ.setdefault("GDAL_HTTP_RETRY_DELAY", "0.1")
    import geopandas
    import shapely
    from scene_helpers import UTM_TRANSFORM

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        www = Path(tmp) / "www"
        www.mkdir()
        cog = write_painted_cog(www / "scene.tif", height=args.size, width=args.size, n_objects=50)
        size = cog.path.stat().st_size
        settings = DetectSettings(tile_size=args.tile, overlap=64)

        def run(scene: str, aoi: str | None) -> tuple[int, float]:
            events: list[DetectProgress] = []
            start = time.perf_counter()
            detect_scene(scene, nothing, settings=DetectSettings(**{**settings.__dict__, "aoi": aoi}),
                         progress=events.append)
            return events[-1].tiles_total, time.perf_counter() - start

        tiles, seconds = run(str(cog.path), None)
        rows.append(("local file", "-", tiles, "-", "-", "-", seconds))
        with serve_folder(www) as (url, server):
            for side in [None, *(int(s) for s in args.aois.split(","))]:
                aoi = None
                if side is not None:
                    c0 = (args.size - side) / 2
                    box = shapely.box(UTM_TRANSFORM.c + c0 * UTM_TRANSFORM.a, UTM_TRANSFORM.f - (c0 + side) * 0.5,
                                      UTM_TRANSFORM.c + (c0 + side) * UTM_TRANSFORM.a, UTM_TRANSFORM.f - c0 * 0.5)
                    aoi = str(Path(tmp) / f"aoi_{side}.gpkg")
                    geopandas.GeoDataFrame(geometry=[box], crs=32633).to_file(aoi)
                server.reset_counts()
                tiles, seconds = run(f"{url}/scene.tif?run={side}", aoi)  # a fresh URL: no GDAL cache reuse
                gets = sum(1 for r in server.requests if r[0] == "GET")
                rows.append(("URL", side or "whole", tiles, server.bytes_sent, f"{100 * server.bytes_sent / size:.1f}",
                             gets, seconds))
    print(f"COG {args.size} x {args.size} px RGB uint8, 128 px blocks, {size / 2**20:.1f} MiB; tiles {args.tile} px\n")
    print("| source | AOI side (px) | tiles read | bytes sent | % of file | GET requests | s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for source, side, tiles, sent, pct, gets, seconds in rows:
        print(f"| {source} | {side} | {tiles} | {sent} | {pct} | {gets} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
