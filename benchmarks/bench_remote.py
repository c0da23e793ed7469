"""Remote scene reading: bytes fetched against the file and against the blocks the tiles need.

Serves a GeoTIFF (default the example scene, 3000 x 3000 px RGB, 512 px JPEG blocks) from a
local Range-capable HTTP/1.1 server in a thread that counts the body bytes it sends
(tests/geo/http_helpers.py), and runs the detection pipeline over its URL with a predictor that
finds nothing (the numbers are reading only), for the whole scene and for a square AOI in its
centre, with 1, 2 and 4 reading threads. "needed" is the bytes of the full-resolution TIFF blocks
under the tiles read (each block once, from the file's block index); fetched/needed includes
the header and IFD reads. Also times the local file with the same threads (the reader is shared
with local reading: it must stay as fast).

Reproduce (about half a minute on 2 CPU cores):

    PYTHONPATH=.:tests/geo .venv/bin/python benchmarks/bench_remote.py
    PYTHONPATH=.:tests/geo .venv/bin/python benchmarks/bench_remote.py --delay-ms 50   # a distant server
    PYTHONPATH=.:tests/geo .venv/bin/python benchmarks/bench_remote.py --handle-per-thread  # as before
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "geo"))
from http_helpers import block_bytes, serve_folder  # noqa: E402

from fsanet_geo.geo.detect.pipeline import detect_scene  # noqa: E402
from fsanet_geo.geo.detect.run import DetectProgress  # noqa: E402
from fsanet_geo.geo.pixels.tiled_scene import open_tiled_scenes  # noqa: E402
from fsanet_geo.geo.settings import DetectSettings  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "data" / "example_scene.tif"


def nothing(images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """A predictor that finds nothing: the run measures reading."""
    return [{"boxes": torch.zeros((0, 4)), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
            for _ in images]


def centre_aoi(scene: Path, side_m: float, folder: Path) -> str:
    """A GeoPackage holding a ``side_m`` metre square in the centre of ``scene`` (its CRS units)."""
    import geopandas
    import rasterio
    import shapely

    with rasterio.open(scene) as ds:
        cx, cy = (ds.bounds.left + ds.bounds.right) / 2, (ds.bounds.bottom + ds.bounds.top) / 2
        crs = ds.crs
    path = folder / f"aoi_{side_m:g}m.gpkg"
    half = side_m / 2
    geopandas.GeoDataFrame(geometry=[shapely.box(cx - half, cy - half, cx + half, cy + half)], crs=crs).to_file(path)
    return str(path)


def needed_bytes(scene: Path, settings: DetectSettings) -> tuple[int, int]:
    """(tiles, bytes of the blocks under them) of a run of ``settings`` over ``scene``."""
    tiled = open_tiled_scenes([scene], settings, settings.tile_size or 800, settings.overlap or 0, None, warn=False)
    windows = [tuple(w) for s in tiled for w in s.windows]
    return len(windows), block_bytes(scene, windows)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", type=Path, default=EXAMPLE, help="a GeoTIFF (tiled)")
    parser.add_argument("--tile", type=int, default=800, help="tile side, pixels")
    parser.add_argument("--overlap", type=int, default=64, help="pixels")
    parser.add_argument("--aoi-m", type=float, default=600.0, help="side of the centred square AOI, CRS units")
    parser.add_argument("--threads", default="1,2,4", help="reading threads to compare")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="latency the server adds to each request")
    parser.add_argument("--handle-per-thread", action="store_true",
                        help="read remote scenes as before issue 24 (one GDAL handle per thread), to compare")
    args = parser.parse_args()
    if args.handle_per_thread:
        import fsanet_geo.geo.pixels.reader as reader
        from fsanet_geo.geo.pixels.handles import SceneHandles

        class PerThread(SceneHandles):
            def __init__(self, *a: object, shared: bool, **k: object) -> None:
                super().__init__(*a, shared=False, **k)  # type: ignore[arg-type]

        reader.SceneHandles = PerThread  # type: ignore[misc]
    os.environ.setdefault("GDAL_HTTP_RETRY_DELAY", "0.1")
    size = args.scene.stat().st_size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        www = Path(tmp) / "www"
        www.mkdir()
        shutil.copy(args.scene, www / "scene.tif")
        aoi = centre_aoi(args.scene, args.aoi_m, Path(tmp))
        base = DetectSettings(tile_size=args.tile, overlap=args.overlap)
        cases = [("whole scene", None), (f"AOI {args.aoi_m:g} m", aoi)]
        with serve_folder(www) as (url, server):
            server.delay_s = args.delay_ms / 1000
            for threads in (int(t) for t in args.threads.split(",")):
                for name, area in cases:
                    settings = DetectSettings(**{**base.__dict__, "aoi": area, "read_threads": threads})
                    tiles, needed = needed_bytes(args.scene, settings)
                    start = time.perf_counter()
                    detect_scene(args.scene, nothing, settings=settings)
                    local_s = time.perf_counter() - start
                    server.reset_counts()
                    events: list[DetectProgress] = []
                    start = time.perf_counter()
                    detect_scene(f"{url}/scene.tif?run={threads}{name[0]}", nothing, settings=settings,
                                 progress=events.append)  # a fresh URL: no reuse of GDAL's cache
                    seconds = time.perf_counter() - start
                    gets = sum(1 for r in server.requests if r[0] == "GET")
                    rows.append((threads, name, tiles, server.bytes_sent, needed, gets, seconds, local_s))
    print(f"{args.scene.name}: {size / 1e6:.2f} MB; tiles {args.tile} px, overlap {args.overlap} px; "
          f"server latency {args.delay_ms:g} ms\n")
    print("| threads | area | tiles | fetched MB | needed MB | fetched/file | fetched/needed | GETs | s | local s |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for threads, name, tiles, sent, needed, gets, seconds, local_s in rows:
        print(f"| {threads} | {name} | {tiles} | {sent / 1e6:.2f} | {needed / 1e6:.2f} | {sent / size:.3f} | "
              f"{sent / needed:.3f} | {gets} | {seconds:.2f} | {local_s:.2f} |")


if __name__ == "__main__":
    main()
