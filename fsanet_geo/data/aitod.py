"""Finding AI-TOD (v1 and v2) on disk, in either layout seen in the wild.

Layouts (``root`` is what the user passes as ``--data-root``):

- the official toolkit's output: ``root/aitod/annotations/<name>.json`` and
  ``root/aitod/images/<split>/`` (``root`` may also be the ``aitod`` folder itself);
  names ``small_<split>_v1_1.0.json`` (v1), ``small_{trainval,test}_v2_2.0.json`` and
  ``small_{train,val}_v2_1.0.json`` (v2);
- FSANet's config: ``root/<split>/aitod_<split>_v1.json`` + ``root/<split>/Images/``
  (``_v2`` accepted too).

Splits: ``train``, ``val``, ``trainval``, ``test``. When both versions are present and no
version is asked for, v2 wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.errors import DatasetError

Split = Literal["train", "val", "trainval", "test"]
Version = Literal["v1", "v2"]
Layout = Literal["toolkit", "fsanet"]

SPLITS: tuple[str, ...] = ("train", "val", "trainval", "test")
VERSIONS: tuple[str, ...] = ("v2", "v1")  # preference order

TOOLKIT_ANN_NAMES: dict[str, dict[str, str]] = {
    "v1": {
        "trainval": "small_trainval_v1_1.0.json",
        "test": "small_test_v1_1.0.json",
        "train": "small_train_v1_1.0.json",
        "val": "small_val_v1_1.0.json",
    },
    "v2": {
        "trainval": "small_trainval_v2_2.0.json",
        "test": "small_test_v2_2.0.json",
        "train": "small_train_v2_1.0.json",
        "val": "small_val_v2_1.0.json",
    },
}
"""Annotation file names written by the official AI-TOD toolkit, per version and split."""

FSANET_IMAGES_DIRS: tuple[str, ...] = ("Images", "images")


def fsanet_ann_name(split: str, version: str) -> str:
    """Annotation file name of FSANet's layout, e.g. ``aitod_trainval_v1.json``."""
    return f"aitod_{split}_{version}.json"


def toolkit_paths(root: Path, split: str, version: str) -> tuple[Path, Path]:
    """(annotation file, images folder) of the toolkit layout under ``root`` (the ``aitod`` folder's parent)."""
    base = root / "aitod"
    return base / "annotations" / TOOLKIT_ANN_NAMES[version][split], base / "images" / split


def fsanet_paths(root: Path, split: str, version: str) -> tuple[Path, Path]:
    """(annotation file, images folder) of FSANet's layout under ``root``."""
    return root / split / fsanet_ann_name(split, version), root / split / FSANET_IMAGES_DIRS[0]


def find_aitod_split(root: str | Path, split: str, version: str | None = None) -> tuple[Path, Path]:
    """Locate ``(annotation JSON, images folder)`` of an AI-TOD split under ``root``.

    Tries the toolkit layout (with ``root`` being the parent of ``aitod/`` or ``aitod/``
    itself), then FSANet's layout; v2 before v1 unless ``version`` is given. Raises
    :class:`DatasetError` listing every path looked for when none fits.
    """
    root = Path(root)
    if split not in SPLITS:
        raise DatasetError(f"unknown AI-TOD split {split!r}; choose one of {', '.join(SPLITS)}")
    if version is not None and version not in VERSIONS:
        raise DatasetError(f"unknown AI-TOD version {version!r}; choose v1 or v2")
    if not root.is_dir():
        raise DatasetError(f"AI-TOD data root {root} is not a folder")
    versions = [version] if version else list(VERSIONS)
    candidates: list[tuple[Path, Path]] = []
    bases = [root, root.parent] if root.name == "aitod" else [root]
    for v in versions:
        for base in bases:
            candidates.append(toolkit_paths(base, split, v))
    for v in versions:
        ann, _ = fsanet_paths(root, split, v)
        for images_name in FSANET_IMAGES_DIRS:
            candidates.append((ann, ann.parent / images_name))
    looked: list[str] = []
    for ann, images in candidates:
        if ann.is_file() and images.is_dir():
            return ann, images
        if ann.is_file():
            looked.append(f"{ann} (found, but its images folder {images} is missing)")
        else:
            looked.append(str(ann))
    seen: dict[str, None] = dict.fromkeys(looked)
    raise DatasetError(
        f"no AI-TOD {split!r} split found under {root}; looked for: {'; '.join(seen)}"
    )


def normalise_class_name(name: str) -> str:
    """Lower case, with '_' and spaces as '-' ("Storage_Tank" -> "storage-tank")."""
    return "-".join(name.strip().lower().replace("_", " ").split())


def validate_aitod_categories(categories: Sequence[Mapping[str, Any]], source: str | Path) -> None:
    """Check that a COCO ``categories`` list is AI-TOD's: ids 1..8 with the official names.

    Raises :class:`DatasetError` naming the mismatching entries.
    """
    expected = {i + 1: name for i, name in enumerate(AITOD_CLASSES)}
    found = {int(c["id"]): normalise_class_name(str(c["name"])) for c in categories}
    wrong = [f"{cid}: {found.get(cid, 'missing')!r} (expected {name!r})"
             for cid, name in expected.items() if found.get(cid) != name]
    extra = sorted(set(found) - set(expected))
    if wrong or extra:
        parts = []
        if wrong:
            parts.append("mismatching categories " + ", ".join(wrong[:3]) + (" ..." if len(wrong) > 3 else ""))
        if extra:
            parts.append(f"extra category ids {extra[:3]}")
        raise DatasetError(
            f"{source} is not AI-TOD: {'; '.join(parts)} (use --dataset coco for other label sets)"
        )
