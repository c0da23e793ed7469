"""Make the georeferenced example scene and its ground truth.

    python examples/make_example_scene.py --out examples/data [--size 3000] [--seed 7] [--overwrite]

Writes example_scene.tif (RGB GeoTIFF, UTM 33N, 0.5 m pixels, tiled, JPEG, overviews
2/4/8; the Parndorf plateau, Burgenland, Austria), example_scene_truth.gpkg (one polygon
per object), example_scene_truth.json (COCO ground truth, the scene as one image) and
example_scene_quicklook.png. See fsanet_geo.synth.example_scene.
"""

from __future__ import annotations

import argparse
import sys
import time

from fsanet_geo.errors import FsanetError
from fsanet_geo.synth.example_scene import make_example_scene

MAX_SCENE_BYTES = 10_000_000
"""The example scene ships with the repository: keep it small."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--size", type=int, default=3000, help="scene side in pixels (default 3000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        scene = make_example_scene(args.out, size=args.size, seed=args.seed, overwrite=args.overwrite,
                                   progress=lambda step: print(f"{step} ...", file=sys.stderr))
    except FsanetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{scene.width} x {scene.height} px, {scene.num_objects} objects, {scene.crs}, "
          f"{time.perf_counter() - start:.1f} s")
    for path in (scene.image, scene.truth_gpkg, scene.truth_coco, scene.quicklook):
        if path is not None:
            print(f"{path}  {path.stat().st_size / 1e6:.2f} MB")
    if scene.image.stat().st_size > MAX_SCENE_BYTES:
        print(f"warning: {scene.image} is over {MAX_SCENE_BYTES / 1e6:.0f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
