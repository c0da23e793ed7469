"""Side files that make a CSV or COCO output self-describing, written beside the main file.

- ``out.csv``: ``out.csvt`` gives GDAL/QGIS each column's type (``Integer``, ``Real``,
  ``String``, ``WKT``), so numbers read as numbers, not text; ``out.prj`` states the CRS of
  the ``WKT`` geometry column (GDAL's CSV driver reads it, as it does a Shapefile's). A CSV
  in pixels (a scene without CRS) has no ``.prj``.
- ``out.json`` (COCO results, a list): ``out.images.json`` holds COCO ``images`` entries,
  ``{"id": image_id, "file_name": scene}``, the image id -> scene mapping of the results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def sidecar_paths(target: Path, suffix: str) -> list[Path]:
    """The side files of output ``target`` with format ``suffix`` (written before it)."""
    if suffix == ".csv":
        return [target.with_suffix(".csvt"), target.with_suffix(".prj")]
    if suffix == ".json":
        return [coco_images_path(target)]
    return []


def coco_images_path(target: Path) -> Path:
    """``out.json`` -> ``out.images.json``."""
    return target.with_name(f"{target.stem}.images.json")


def csvt_types(dtypes: dict[str, Any], geometry_column: str = "WKT") -> list[str]:
    """GDAL's ``.csvt`` type of each column, in order: ``Integer`` / ``Real`` / ``String``, and
    ``WKT`` for ``geometry_column``."""
    types = []
    for name, dtype in dtypes.items():
        kind = getattr(dtype, "kind", "O")
        if name == geometry_column:
            types.append("WKT")
        elif kind in "iub":
            types.append("Integer64" if kind in "iu" and getattr(dtype, "itemsize", 4) > 4 else "Integer")
        elif kind == "f":
            types.append("Real")
        else:
            types.append("String")
    return types


def write_csv_sidecars(csv_path: Path, dtypes: dict[str, Any], crs: Any) -> None:
    """``.csvt`` (column types) and, when ``crs`` is not None, ``.prj`` (ESRI WKT, as GDAL
    writes for a Shapefile; WKT2 where ESRI WKT cannot express the CRS) beside ``csv_path``."""
    csv_path.with_suffix(".csvt").write_text(",".join(f'"{t}"' for t in csvt_types(dtypes)) + "\n")
    if crs is None:
        return
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    try:
        wkt = c.to_wkt("WKT1_ESRI") or c.to_wkt()
    except Exception:  # noqa: BLE001 - pyproj raises CRSError or ValueError by version
        wkt = c.to_wkt()
    csv_path.with_suffix(".prj").write_text(wkt)


def write_coco_images(json_path: Path, scene_ids: dict[Any, int]) -> None:
    """``out.images.json`` beside the COCO results ``json_path``: ``{"images": [{"id", "file_name"}]}``."""
    images = [{"id": image_id, "file_name": str(scene)} for scene, image_id in scene_ids.items()]
    coco_images_path(json_path).write_text(json.dumps({"images": images}, indent=1) + "\n")
