"""Detection pipeline: overhead against the model alone, and peak memory against scene size.

1. Overhead. A painted 3-band uint8 scene (tiled, deflate) is cut into tiles; the same
   tiles go (a) straight from memory through the model, batch by batch, and (b) through
   ``detect_to_file`` end to end (reading in background threads, merging, georeferencing,
   writing a GeoPackage). Overhead = (b - a) / a on wall time. The model is a random-init
   ``fsanet_r18_lite`` with its score threshold at 0 and 100 boxes per tile, so the merge
   and the writer have real work.
2. Peak memory. Synthetic tiled, deflate-compressed 3-band scenes of 2k x 2k, 10k x 10k and
   40k x 40k pixels (a repeated 512 px pattern written block by block) are run through
   ``detect_to_file`` with a cheap predictor (8 fixed boxes per tile, no pixel work), each
   in a fresh subprocess; peak RSS is VmHWM from /proc/self/status. The baseline is VmHWM
   after the imports, before the run.
3. Sparse scenes. A 100,000 x 100,000 px scene that is almost all nodata (one 2048 px data
   square, the rest absent blocks of a ``SPARSE_OK`` GeoTIFF: under 1 MB on disk) through
   the same cheap run: peak RSS, seconds to the first finished batch, and tiles skipped;
   then through the packaged demo model as ``fsanet detect`` runs it (BatchNorm folded, on
   the CPU) at the batch sizes of ``--sparse-batches``, with the baseline taken after the
   model loads, so that the growth is the run's and the model's forward passes.

Reproduce::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_detect.py                 # both parts
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_detect.py --sizes 2000,10000 --skip-overhead
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_detect.py --skip-overhead --skip-memory --sparse 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BLOCK = 512


def vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def write_pattern_scene(path: Path, side: int) -> Path:
    """A side x side 3-band uint8 GeoTIFF (EPSG:32633, 0.5 m), tiled 512, deflate, block by block."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    if path.exists():
        return path
    rng = np.random.default_rng(0)
    block = np.full((3, BLOCK, BLOCK), 30, np.uint8)
    for _ in range(40):
        r, c = rng.integers(0, BLOCK - 24, 2)
        h, w = rng.integers(4, 24, 2)
        block[:, r : r + h, c : c + w] = 200
    profile = dict(
        driver="GTiff", width=side, height=side, count=3, dtype="uint8", crs="EPSG:32633",
        transform=Affine(0.5, 0, 500000, 0, -0.5, 4_650_000), tiled=True, blockxsize=BLOCK, blockysize=BLOCK,
        compress="deflate", num_threads="all_cpus", bigtiff="if_safer",
    )
    tmp = path.with_suffix(".part.tif")
    with rasterio.Env(GDAL_CACHEMAX=64 * 2**20), rasterio.open(tmp, "w", **profile) as dst:
        for row in range(0, side, BLOCK):
            for col in range(0, side, BLOCK):
                h, w = min(BLOCK, side - row), min(BLOCK, side - col)
                dst.write(block[:, :h, :w], window=Window(col, row, w, h))
    os.replace(tmp, path)
    return path


def write_sparse_scene(path: Path, side: int, patch: int = 2048) -> Path:
    """A side x side 3-band uint8 GeoTIFF, nodata 0, written sparse (``SPARSE_OK``): only a
    ``patch`` px square of data in the middle is stored; every other block is absent."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    if path.exists():
        return path
    profile = dict(
        driver="GTiff", width=side, height=side, count=3, dtype="uint8", crs="EPSG:32633", nodata=0,
        transform=Affine(0.5, 0, 500000, 0, -0.5, 4_650_000), tiled=True, blockxsize=BLOCK, blockysize=BLOCK,
        compress="deflate", sparse_ok=True, bigtiff="yes",
    )
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        mid = side // 2
        dst.write(np.full((3, patch, patch), 120, np.uint8), window=Window(mid, mid, patch, patch))
    os.replace(tmp, path)
    return path


class FixedBoxes:
    """A cheap predictor: the same 8 boxes in every tile (no pixel work)."""

    class_names = ["vehicle", "ship"]

    def __init__(self) -> None:
        import torch

        xy = np.linspace(40, 700, 8)
        self.boxes = torch.tensor(np.c_[xy, xy, xy + 12, xy + 9], dtype=torch.float32)
        self.scores = torch.linspace(0.3, 0.9, 8)
        self.labels = torch.tensor([0, 1] * 4)

    def __call__(self, images):  # noqa: ANN001, ANN204
        return [{"boxes": self.boxes, "scores": self.scores, "labels": self.labels} for _ in images]


def child_memory(scene: Path, out: Path, cache_mb: int, demo_batch: int = 0) -> None:
    """Run one scene (in a fresh process) and print JSON with peak memory; ``demo_batch`` > 0:
    through the packaged demo model (as ``fsanet detect`` loads it) at that batch size."""
    from fsanet_geo.geo.detect.pipeline import detect_to_file
    from fsanet_geo.geo.settings import DetectSettings

    predictor: object = FixedBoxes()
    if demo_batch:
        from fsanet_geo.geo.detect.detect_job import load_detector

        predictor = load_detector(None, "cpu")
    baseline = vm_kib("VmHWM")
    start = time.perf_counter()
    first: list[float] = []
    settings = DetectSettings(tile_size=800, overlap=64, gdal_cache_mb=cache_mb, batch_size=demo_batch or 4)
    summary = detect_to_file([scene], predictor, out, settings=settings, overwrite=True,
                             progress=lambda p: first or first.append(time.perf_counter() - start))
    seconds = time.perf_counter() - start
    p = summary.progress
    print(json.dumps({"baseline_mib": baseline / 1024, "peak_mib": vm_kib("VmHWM") / 1024, "tiles": p.tiles_total,
                      "detections": p.detections, "seconds": seconds, "skipped": p.tiles_skipped,
                      "first_progress_s": first[0] if first else seconds}))


def memory_table(sizes: list[int], workdir: Path, compare_cache: bool) -> None:
    print("\n## Peak memory (cheap predictor, 800 px tiles, 64 px overlap, batch 4, GeoPackage output)")
    print(f"{'scene':>14} {'cache MiB':>9} {'file MB':>8} {'tiles':>6} {'objects':>8} {'seconds':>8} {'tiles/s':>8} "
          f"{'baseline MiB':>13} {'peak MiB':>9} {'growth MiB':>10}")
    runs = [(side, 64) for side in sizes]
    if compare_cache:  # GDAL's own default: 5% of RAM
        ram_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        runs.append((max(sizes), ram_mib // 20))
    for side, cache_mb in runs:
        t0 = time.perf_counter()
        scene = write_pattern_scene(workdir / f"pattern_{side}.tif", side)
        made = time.perf_counter() - t0
        out = workdir / f"pattern_{side}.gpkg"
        res = subprocess.run([sys.executable, __file__, "--child-memory", str(scene), str(out), str(cache_mb), "0"],
                             check=True, capture_output=True, text=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"{side:>6} x {side:<6} {cache_mb:>9} {scene.stat().st_size / 1e6:>8.1f} {r['tiles']:>6} {r['detections']:>8} "
              f"{r['seconds']:>8.1f} {r['tiles'] / r['seconds']:>8.1f} {r['baseline_mib']:>13.0f} "
              f"{r['peak_mib']:>9.0f} {r['peak_mib'] - r['baseline_mib']:>10.0f}"
              + (f"   (scene written in {made:.0f} s)" if made > 1 else ""), flush=True)


def sparse_table(sides: list[int], workdir: Path, demo_batches: list[int]) -> None:
    """Peak memory and start-up of sparse scenes: almost all nodata, the absent blocks never read;
    with the cheap predictor, then with the demo model at each of ``demo_batches``."""
    print("\n## Sparse scenes (nodata 0, one 2048 px data square, SPARSE_OK; 800 px tiles; baseline after "
          "imports and model load)")
    print(f"{'scene':>16} {'predictor':>14} {'file MB':>8} {'tiles':>6} {'skipped':>8} {'first batch s':>13} "
          f"{'seconds':>8} {'baseline MiB':>13} {'peak MiB':>9} {'growth MiB':>10}")
    for side in sides:
        scene = write_sparse_scene(workdir / f"sparse_{side}.tif", side)
        out = workdir / f"sparse_{side}.gpkg"
        for batch in [0, *demo_batches]:
            res = subprocess.run([sys.executable, __file__, "--child-memory", str(scene), str(out), "64", str(batch)],
                                 check=True, capture_output=True, text=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            who = f"demo, batch {batch}" if batch else "cheap, batch 4"
            print(f"{side:>7} x {side:<7} {who:>14} {scene.stat().st_size / 1e6:>8.1f} {r['tiles']:>6} "
                  f"{r['skipped']:>8} {r['first_progress_s']:>13.1f} {r['seconds']:>8.1f} {r['baseline_mib']:>13.0f} "
                  f"{r['peak_mib']:>9.0f} {r['peak_mib'] - r['baseline_mib']:>10.0f}", flush=True)


def overhead(side: int, tile: int, batch: int, workdir: Path, rounds: int = 3) -> None:
    import sys as _sys

    import torch

    _sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "geo"))
    from scene_helpers import paint, random_objects, write_raster  # the test helpers

    from fsanet_geo.geo.detect.pipeline import detect_to_file
    from fsanet_geo.geo.settings import DetectSettings
    from fsanet_geo.geo.pixels.reader import TileReader, open_scene
    from fsanet_geo.geo.pixels.tiling import tile_windows
    from fsanet_geo.model.presets import build_model

    boxes, labels = random_objects(side, side, side * side // 4000, seed=0, max_size=24)
    scene = workdir / f"overhead_{side}.tif"
    if not scene.exists():
        write_raster(scene, paint(side, side, boxes, labels), blocksize=256)
    torch.manual_seed(0)
    model = build_model("fsanet_r18_lite", num_classes=3, class_names=["vehicle", "ship", "airplane"],
                        input_size=tile, score_thr=0.0, max_per_img=100).eval()
    overlap = 64
    windows = tile_windows(side, side, tile, overlap)
    with TileReader(open_scene(scene), None, tile) as reader:
        tiles = [reader.read(i, w).image for i, w in enumerate(windows)]
    with torch.inference_mode():
        model(torch.from_numpy(np.stack(tiles[:batch])))  # warm-up
    settings = DetectSettings(tile_size=tile, overlap=overlap, batch_size=batch, device="cpu")
    inside = [0.0]

    class TimedModel:
        """The model, timing its own calls (to split the pipeline's wall time)."""

        class_names = model.class_names
        config = model.config

        def __call__(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
            t = time.perf_counter()
            out = model(images)
            inside[0] += time.perf_counter() - t
            return out

    model_s, pipe_s, pipe_inside = [], [], []
    for _ in range(rounds):  # interleaved, so that load from other processes hits both alike
        t0 = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(tiles), batch):
                model(torch.from_numpy(np.stack(tiles[i : i + batch])))
        model_s.append(time.perf_counter() - t0)
        inside[0] = 0.0
        t0 = time.perf_counter()
        summary = detect_to_file([scene], TimedModel(), workdir / "overhead.gpkg", settings=settings, overwrite=True)
        pipe_s.append(time.perf_counter() - t0)
        pipe_inside.append(inside[0])
    best = int(np.argmin(pipe_s))
    m, p, pin = min(model_s), pipe_s[best], pipe_inside[best]
    n = len(tiles)
    print(f"\n## Overhead (fsanet_r18_lite random init, {side} x {side} px, {n} tiles of {tile} px, batch {batch}, "
          f"{summary.progress.detections} objects written; best of {rounds} interleaved rounds)")
    print(f"{'':>34} {'wall s':>8} {'tiles/s':>8}")
    print(f"{'model alone (tiles in memory)':>34} {m:>8.2f} {n / m:>8.2f}")
    print(f"{'detect_to_file end to end':>34} {p:>8.2f} {n / p:>8.2f}")
    print(f"{'  of which inside the model':>34} {pin:>8.2f}")
    print(f"overhead against the model alone: {100 * (p - m) / m:+.1f}%; "
          f"time outside the model within the run: {100 * (p - pin) / pin:+.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,10000,40000", help="scene sides for the memory table")
    parser.add_argument("--workdir", type=Path, default=None, help="where scenes are written (default: a temp dir)")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--overhead-side", type=int, default=1536)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved overhead rounds (best taken)")
    parser.add_argument("--no-cache-compare", action="store_true",
                        help="skip the extra run of the largest scene with GDAL's default cache (5%% of RAM)")
    parser.add_argument("--sparse", default="100000", help="sides of the sparse-scene table ('' to skip)")
    parser.add_argument("--sparse-batches", default="4,1",
                        help="batch sizes of the sparse runs through the demo model ('' for the cheap run only)")
    parser.add_argument("--child-memory", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        scene, out, cache_mb, demo_batch = args.child_memory
        child_memory(Path(scene), Path(out), int(cache_mb), int(demo_batch))
        return
    import torch

    print(f"# bench_detect: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("reproduce: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_detect.py " + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="bench_detect_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if not args.skip_overhead:
            overhead(args.overhead_side, args.tile, args.batch, workdir, args.rounds)
        if not args.skip_memory:
            memory_table([int(s) for s in args.sizes.split(",")], workdir, not args.no_cache_compare)
        if args.sparse:
            sparse_table([int(s) for s in args.sparse.split(",")], workdir,
                         [int(b) for b in args.sparse_batches.split(",") if b])


if __name__ == "__main__":
    main()
