"""Writing a synthetic AI-TOD-like data set in the exact AI-TOD file layout.

The images are :func:`fsanet_geo.synth.render.render_scene` scenes (PNG); the labels are
plain COCO JSON with AI-TOD's categories (ids 1..8), built by
:func:`fsanet_geo.data.coco.coco_ground_truth`. The whole tree is written into a
temporary folder beside ``out_dir`` and renamed into place at the end, so an interrupted
run never leaves a half-written data set.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fsanet_geo.data.aitod import fsanet_paths, toolkit_paths
from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.data.coco import LabelledImage, coco_ground_truth
from fsanet_geo.errors import ConfigError, FileOverwriteError, OutputError
from fsanet_geo.io_utils import check_replaceable_dir, replace_dir
from fsanet_geo.synth.render import DEFAULT_DENSITY, render_scene

_DESCRIPTION = "synthetic AI-TOD-like data (fsanet-geo)"

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``, called after each image is written."""


def scene_seed(seed: int, index: int) -> int:
    """The render seed of image ``index`` of a data set generated with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def generate_synthetic_aitod(
    out_dir: str | Path,
    num_images: int,
    *,
    seed: int,
    size: int = 800,
    layout: Literal["toolkit", "fsanet"] = "toolkit",
    version: Literal["v1", "v2"] = "v2",
    test_fraction: float = 0.2,
    density: float = DEFAULT_DENSITY,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> Path:
    """Write ``num_images`` synthetic ``size`` x ``size`` scenes as an AI-TOD tree; return ``out_dir``.

    The last ``round(num_images * test_fraction)`` images form ``test``, the rest
    ``trainval``; v2 in the toolkit layout also gets ``train``/``val`` (80/20 of trainval;
    their image files are hard links to trainval's where the file system allows).
    Layouts: ``toolkit`` (``aitod/annotations/small_*.json`` + ``aitod/images/<split>/``)
    or ``fsanet`` (``<split>/aitod_<split>_<version>.json`` + ``<split>/Images/``).
    ``out_dir`` may not exist or be empty unless ``overwrite`` is true.
    Deterministic: the same arguments give byte-identical files.
    """
    out = Path(out_dir)
    _check_arguments(out, num_images, size, layout, version, test_fraction, overwrite)
    n_test = int(round(num_images * test_fraction))
    if num_images >= 2:
        n_test = min(max(n_test, 1 if test_fraction > 0 else 0), num_images - 1)
    ids = list(range(1, num_images + 1))
    splits: dict[str, list[int]] = {"trainval": ids[: num_images - n_test], "test": ids[num_images - n_test:]}
    if layout == "toolkit" and version == "v2":
        trainval = splits["trainval"]
        n_val = int(round(len(trainval) * 0.2)) if len(trainval) >= 2 else 0
        n_val = max(n_val, 1) if len(trainval) >= 2 else 0
        splits["train"], splits["val"] = trainval[: len(trainval) - n_val], trainval[len(trainval) - n_val:]

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:  # name the folder, not the hidden temporary one
        above = next(p for p in (out.parent, *out.parent.parents) if p.exists())
        why = "is a file, not a folder" if not above.is_dir() else f"is not writable ({exc.strerror})"
        raise OutputError(f"cannot write {out}: {above} {why}") from exc
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the data set is an ordinary folder
    try:
        for split in splits:
            _paths(tmp, layout, split, version)[1].mkdir(parents=True, exist_ok=True)
        records = _write_images(tmp, splits["trainval"] + splits["test"], splits, layout, version,
                                seed, size, density, progress)
        for split, members in splits.items():
            ann, images = _paths(tmp, layout, split, version)
            ann.parent.mkdir(parents=True, exist_ok=True)
            _write_json(ann, coco_ground_truth((records[i] for i in members), class_names=AITOD_CLASSES,
                                                 description=_DESCRIPTION))
        replace_dir(tmp, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _check_arguments(out: Path, num_images: int, size: int, layout: str, version: str,
                     test_fraction: float, overwrite: bool) -> None:
    if num_images < 1:
        raise ConfigError(f"number of images must be >= 1, got {num_images}")
    if size < 32:
        raise ConfigError(f"image size must be >= 32 px, got {size}")
    if layout not in ("toolkit", "fsanet"):
        raise ConfigError(f"layout must be 'toolkit' or 'fsanet', got {layout!r}")
    if version not in ("v1", "v2"):
        raise ConfigError(f"version must be 'v1' or 'v2', got {version!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"test fraction must be in [0, 1), got {test_fraction}")
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not overwrite:
            raise FileOverwriteError(f"{out} exists and is not empty (use --overwrite to replace it)")
        ours = {_paths(Path(), layout, split, version)[0].parts[0] for split in ("train", "val", "trainval", "test")}
        check_replaceable_dir(out, ours, what="a synthetic AI-TOD set")  # never a folder of other files


def _paths(root: Path, layout: str, split: str, version: str) -> tuple[Path, Path]:
    if layout == "toolkit":
        return toolkit_paths(root, split, version)
    return fsanet_paths(root, split, version)


def _write_images(root: Path, ids: list[int], splits: dict[str, list[int]], layout: str, version: str,
                  seed: int, size: int, density: float, progress: ProgressFn | None) -> dict[int, LabelledImage]:
    """Render and save every image once (linking it into the other splits); return its ground truth by id."""
    from PIL import Image

    owners: dict[int, list[str]] = {}
    for split, members in splits.items():
        for i in members:
            owners.setdefault(i, []).append(split)
    records: dict[int, LabelledImage] = {}
    for done, image_id in enumerate(ids, start=1):
        image, boxes, labels = render_scene(size, size, seed=scene_seed(seed, image_id), density=density)
        file_name = f"synth_{image_id:06d}.png"
        first: Path | None = None
        for split in owners[image_id]:
            path = _paths(root, layout, split, version)[1] / file_name
            if first is None:
                Image.fromarray(image).save(path, format="PNG", compress_level=1)
                first = path
            else:
                _link_or_copy(first, path)
        records[image_id] = LabelledImage(image_id, file_name, width=size, height=size, boxes=boxes, labels=labels)
        if progress is not None:
            progress(done, len(ids))
    return records


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
