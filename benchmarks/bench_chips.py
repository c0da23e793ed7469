"""Training chips read on the fly from a large COG: chips/s and peak memory, against training.

1. Scene. A 20,000 x 20,000 px 3-band uint8 cloud-optimised GeoTIFF (deflate, 512 px blocks,
   internal overviews), written block by block to an uncompressed tiled GeoTIFF (a smooth
   background, field stripes, a little hashed texture and ~5,000 painted objects of 6..40 px
   in 3 classes), then converted by GDAL's COG driver; cached under ``benchmarks/.cache``
   (or ``--cache``).
2. Reading. For each chip size and worker count, a fresh subprocess builds the label set
   (boxes as numpy, no vector file), a spatial split (10% of 2048 px blocks held out; 512 px
   blocks on the small scene) and a
   :class:`fsanet_geo.geodata.chips.SceneChipDataset` (half the chips object-centred, flips
   on), and pulls ``--chips`` chips through a DataLoader (batches of 4, seeded items as the
   trainer draws them) after one warm-up batch. Reported: chips/s, peak RSS of the main
   process (VmHWM) and of the largest worker (ru_maxrss of the joined children). A 2,000 px
   scene with the same object density is run at one setting for the memory comparison.
3. Training. One optimiser step (forward, backward, SGD) of a random-init ``fsanet_r18_tiny``
   on a batch of 4 chips of the same size, best of ``--steps``: the chips/s training eats.

Reproduce (about 10 minutes on 2 shared cores, the first time most of it writing the COG)::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_chips.py
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_chips.py --chip-sizes 512 --workers 0 --chips 64
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BLOCK = 512
CACHE = Path(__file__).resolve().parent / ".cache"
OBJECTS_PER_MPX = 5000 / 400.0  # ~5,000 objects on 20,000 x 20,000 px


def vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def scene_boxes(side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Objects of a ``side`` px scene: boxes [N, 4] xyxy pixels and labels [N] (0..2)."""
    n = max(1, round(OBJECTS_PER_MPX * side * side / 1e6))
    rng = np.random.default_rng(seed)
    size = rng.integers(6, 41, (n, 2))
    x1 = rng.integers(0, side - size[:, 0])
    y1 = rng.integers(0, side - size[:, 1])
    boxes = np.stack([x1, y1, x1 + size[:, 0], y1 + size[:, 1]], axis=1).astype(np.float64)
    return boxes, rng.integers(0, 3, n)


class _Painter:
    """Block pixels: a smooth background and field stripes (separable sums), one hashed texture
    tile shared by every block, objects painted in (cheap, so writing is bound by the codec)."""

    def __init__(self, side: int, boxes: np.ndarray, labels: np.ndarray) -> None:
        axis = np.arange(side + BLOCK, dtype=np.float32)
        self.fx = 95 + 35 * np.sin(axis / 700.0) + 12 * ((axis // 97) % 2)
        self.fy = 25 * np.cos(axis / 530.0) + 12 * ((axis // 131) % 2)
        ys, xs = np.mgrid[0:BLOCK, 0:BLOCK]
        self.texture = ((xs * 7919 + ys * 104729) % 11).astype(np.float32)
        self.boxes, self.labels = boxes, labels
        self.colours = np.array([[230, 40, 40], [40, 220, 60], [250, 250, 250]], np.uint8)

    def block(self, col: int, row: int, width: int, height: int) -> np.ndarray:
        """uint8 [3, height, width] of the block at (col, row)."""
        base = self.fy[row : row + height, None] + self.fx[None, col : col + width]
        texture = self.texture[:height, :width]
        image = np.stack([base + texture, base * 0.9 + texture, base * 0.8 + 10]).clip(0, 255).astype(np.uint8)
        b = self.boxes
        near = (b[:, 2] > col) & (b[:, 0] < col + width) & (b[:, 3] > row) & (b[:, 1] < row + height)
        for (x1, y1, x2, y2), label in zip(b[near].astype(int), self.labels[near]):
            image[:, max(y1 - row, 0) : y2 - row, max(x1 - col, 0) : x2 - col] = self.colours[label][:, None, None]
        return image


def write_cog(path: Path, side: int) -> Path:
    """The benchmark scene (see the module docstring), cached: written once per path."""
    import rasterio
    import rasterio.shutil
    from affine import Affine

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    painter = _Painter(side, *scene_boxes(side))
    plain = path.with_suffix(".plain.tif")  # uncompressed staging file: the COG driver compresses once
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32633", "transform": Affine(0.5, 0, 500000, 0, -0.5, 4500000), "tiled": True,
               "blockxsize": BLOCK, "blockysize": BLOCK, "BIGTIFF": "IF_SAFER"}
    with rasterio.Env(GDAL_CACHEMAX=256 * 2**20):
        with rasterio.open(plain, "w", **profile) as dst:
            for row in range(0, side, BLOCK):
                for col in range(0, side, BLOCK):
                    w, h = min(BLOCK, side - col), min(BLOCK, side - row)
                    window = rasterio.windows.Window(col, row, w, h)
                    dst.write(painter.block(col, row, w, h), window=window)
        tmp = path.with_suffix(".tmp.tif")
        rasterio.shutil.copy(plain, tmp, driver="COG", compress="DEFLATE", predictor="YES", blocksize=BLOCK,
                             overview_resampling="AVERAGE", BIGTIFF="IF_SAFER", num_threads="ALL_CPUS")
    os.replace(tmp, path)
    plain.unlink()
    return path


def read_chips(scene: str, side: int, chip_size: int, workers: int, chips: int) -> dict[str, float]:
    """Pull ``chips`` chips through a DataLoader (in this process); chips/s and peak RSS."""
    import torch

    from fsanet_geo.data.dataset import collate
    from fsanet_geo.geo.pixels.reader import open_scene
    from fsanet_geo.geodata.chips import SceneChipDataset
    from fsanet_geo.geodata.spatial_split import spatial_split
    from fsanet_geo.geodata.types import LabelSet, LabelSource, SceneLabels
    from fsanet_geo.train.sampler import SeededItems, epoch_batches, keyed_batches

    boxes, labels = scene_boxes(side)
    label_set = LabelSet(("red", "green", "white"), [SceneLabels(LabelSource(scene, "-"), open_scene(scene),
                                                                  boxes, labels.astype(np.int64))])
    block = 2048 if side >= 8192 else 512
    splits = spatial_split(label_set, val_fraction=0.1, block_size=block, seed=0, chip_size=chip_size)
    dataset = SceneChipDataset(label_set, splits, chip_size=chip_size, chips_per_epoch=chips + 4)
    batches = keyed_batches(epoch_batches(len(dataset), 4, seed=0, epoch=0), epoch=0)
    loader = torch.utils.data.DataLoader(SeededItems(dataset, 0), batch_sampler=batches, num_workers=workers,
                                         collate_fn=collate)
    it = iter(loader)
    next(it)  # warm-up: workers started, handles opened
    start, seen, boxes_seen = time.perf_counter(), 0, 0
    for images, targets in it:
        seen += len(images)
        boxes_seen += sum(len(t["boxes"]) for t in targets)
    seconds = time.perf_counter() - start
    del it, loader
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"chips_per_s": seen / seconds, "boxes_per_chip": boxes_seen / max(seen, 1),
            "main_mib": vm_kib("VmHWM") / 1024, "worker_mib": children / 1024 if workers else 0.0}


def train_step_seconds(chip_size: int, steps: int) -> float:
    """Best time of one optimiser step of fsanet_r18_tiny on 4 random chips (seconds)."""
    import torch

    from fsanet_geo.model.presets import build_model

    torch.manual_seed(0)
    model = build_model("fsanet_r18_tiny", num_classes=3, class_names=["red", "green", "white"],
                        input_size=chip_size)
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    boxes, labels = torch.tensor([[10.0, 10.0, 30.0, 24.0], [100.0, 80.0, 112.0, 96.0]]), torch.tensor([0, 1])
    images = [torch.rand(3, chip_size, chip_size) * 255 for _ in range(4)]
    targets = [{"boxes": boxes, "labels": labels} for _ in range(4)]
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        losses = model(images, targets)
        loss = sum(losses.values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        best = min(best, time.perf_counter() - start)
    return best


def child(args: list[str]) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=CACHE, help="folder of the generated scenes")
    parser.add_argument("--side", type=int, default=20000)
    parser.add_argument("--chip-sizes", default="512,800")
    parser.add_argument("--workers", default="0,2")
    parser.add_argument("--chips", type=int, default=96)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "read":
            scene, side, chip, workers, chips = rest
            result = read_chips(scene, int(side), int(chip), int(workers), int(chips))
        else:
            result = {"step_s": train_step_seconds(int(rest[0]), int(rest[1]))}
        print(json.dumps(result))
        return
    start = time.perf_counter()
    big = write_cog(args.cache / f"chips_{args.side}.tif", args.side)
    small = write_cog(args.cache / "chips_2000.tif", 2000)
    print(f"scene {big} ({big.stat().st_size / 2**20:.0f} MiB, ready in {time.perf_counter() - start:.0f} s)")
    rows = []
    sizes = [int(v) for v in args.chip_sizes.split(",")]
    for chip in sizes:
        step = child(["train", str(chip), str(args.steps)])["step_s"]
        for workers in [int(v) for v in args.workers.split(",")]:
            r = child(["read", str(big), str(args.side), str(chip), str(workers), str(args.chips)])
            rows.append((f"{args.side}", chip, workers, r, 4 / step))
    r = child(["read", str(small), "2000", str(sizes[0]), "0", str(args.chips)])
    rows.append(("2000", sizes[0], 0, r, float("nan")))
    print(f"\n{' '.join(sys.argv)}  (torch threads {os.environ.get('OMP_NUM_THREADS', 'default')})")
    print("| scene px | chip px | workers | chips/s read | boxes/chip | main peak MiB | worker peak MiB "
          "| chips/s trained (r18_tiny, batch 4) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for side, chip, workers, r, trained in rows:
        print(f"| {side} | {chip} | {workers} | {r['chips_per_s']:.1f} | {r['boxes_per_chip']:.1f} | "
              f"{r['main_mib']:.0f} | {r['worker_mib']:.0f} | {'-' if math.isnan(trained) else f'{trained:.2f}'} |")


if __name__ == "__main__":
    main()
