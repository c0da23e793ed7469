"""Which scenes go with which label layers: ``--scene/--labels`` pairs and ``--scenes list.csv``.

A labels path may name its layer QGIS's way, ``roads.gpkg|layername=cars``. A scene list is a
CSV file (UTF-8, a BOM allowed) with the header ``scene,labels`` and optional ``split``
(``train``, ``val`` or empty: let the spatial split decide) and ``layer`` columns, in any
order; blank lines and lines starting with ``#`` are skipped. Relative paths are relative to
the CSV's folder; absolute paths and remote locations (``https://``, ``s3://``, ``/vsicurl/``
...) are kept as written.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.pixels.remote import is_remote
from fsanet_geo.geodata.types import LabelSource

SPLITS = ("train", "val")
"""Values of a scene list's ``split`` column (besides empty)."""

_COLUMNS = ("scene", "labels", "split", "layer")
_LAYER_SUFFIX = "|layername="


def pair_sources(scenes: Sequence[str], labels: Sequence[str]) -> list[LabelSource]:
    """``--scene`` i with ``--labels`` i (a labels path may end in ``|layername=NAME``).

    Raises:
        ConfigError: the two counts differ (the message gives both).
    """
    if len(scenes) != len(labels):
        raise ConfigError(f"{len(scenes)} --scene and {len(labels)} --labels given: give one --labels per "
                          "--scene, in the same order")
    return [LabelSource(str(scene), *split_layer(str(label))) for scene, label in zip(scenes, labels)]


def split_layer(labels: str) -> tuple[str, str | None]:
    """(path, layer) of ``path|layername=NAME`` (QGIS's form); (labels, None) without the suffix."""
    path, sep, layer = labels.partition(_LAYER_SUFFIX)
    if not sep:
        return labels, None
    if not layer:
        raise ConfigError(f"labels {labels!r}: empty layer name after {_LAYER_SUFFIX!r}")
    return path, layer


def read_scene_list(path: str | os.PathLike[str]) -> list[LabelSource]:
    """The rows of a scene list CSV (see the module docstring), in file order.

    Raises:
        ConfigError: the file is missing or unreadable, its header lacks ``scene`` or ``labels``
            or has unknown columns, it has no rows, or a row is bad (naming its line number).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"scene list {p} does not exist" if not p.exists() else f"scene list {p} is not a file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read scene list {p}: {exc}") from exc
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ConfigError(f"scene list {p} is empty (expected a header scene,labels[,split][,layer])")
    header_no, header_line = lines[0]
    header = [h.strip().lower() for h in next(csv.reader([header_line]))]
    unknown = [h for h in header if h not in _COLUMNS]
    if unknown or "scene" not in header or "labels" not in header or len(set(header)) != len(header):
        raise ConfigError(f"scene list {p} line {header_no}: header {header_line.strip()!r} is not "
                          "scene,labels[,split][,layer]")
    sources = []
    for number, line in lines[1:]:
        cells = [c.strip() for c in next(csv.reader([line]))]
        if len(cells) != len(header):
            raise ConfigError(f"scene list {p} line {number}: {len(cells)} values for {len(header)} columns "
                              f"({','.join(header)})")
        row = dict(zip(header, cells))
        if not row["scene"] or not row["labels"]:
            raise ConfigError(f"scene list {p} line {number}: empty {'scene' if not row['scene'] else 'labels'}")
        split = row.get("split") or None
        if split is not None and split.lower() not in SPLITS:
            raise ConfigError(f"scene list {p} line {number}: split {split!r} is not train, val or empty")
        sources.append(LabelSource(scene=_resolve(row["scene"], p.parent), labels=_resolve(row["labels"], p.parent),
                                   layer=row.get("layer") or None, split=split.lower() if split else None))
    if not sources:
        raise ConfigError(f"scene list {p} has a header but no scenes")
    return sources


def _resolve(location: str, folder: Path) -> str:
    """``location`` relative to ``folder`` when it is a relative local path; else as written."""
    if is_remote(location) or Path(location).expanduser().is_absolute():
        return str(Path(location).expanduser()) if not is_remote(location) else location
    return str(folder / location)
