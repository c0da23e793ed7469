"""Measure the demo model's training imagery levels (``fsanet_geo.model.files.imagery.DEMO_IMAGERY``).

Renders the first ``--images`` images of the demo model's last training set (stage 6 of
``examples/train_demo.sh``: seed 2029, 384 px, density 2.0) and prints the per-band 2nd and
98th percentiles of their pixels, the 8-bit levels ``fsanet detect`` stretches non-8-bit
scenes to. The GSD (0.5 m) is the renderer's: it draws the example scene's objects at the
same pixel sizes as the training images.

    PYTHONPATH=. python benchmarks/demo_imagery.py [--images 256]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from fsanet_geo.geo.pixels.stretch import image_levels
from fsanet_geo.model.files.imagery import DEMO_IMAGERY
from fsanet_geo.synth.aitod_layout import generate_synthetic_aitod


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generate_synthetic_aitod(tmp, args.images, seed=2029, size=384, density=2.0, test_fraction=0.0)
        files = sorted({p.name: p for p in Path(tmp).rglob("*.png")}.values())
        images = (np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f in files)
        low, high = image_levels(images, DEMO_IMAGERY.percentiles)
    print(f"{len(files)} images; levels at {DEMO_IMAGERY.percentiles}: low {[round(v) for v in low]}, "
          f"high {[round(v) for v in high]}")
    print(f"recorded in DEMO_IMAGERY: low {list(DEMO_IMAGERY.low or ())}, high {list(DEMO_IMAGERY.high or ())}")


if __name__ == "__main__":
    main()
