"""A georeferenced synthetic example scene with its ground truth.

:func:`make_example_scene` renders one :func:`fsanet_geo.synth.render.render_scene_layers`
scene (the generator of the synthetic training set, at the same object density, so an
800-px tile of it looks like a training image; roads, rivers and lakes scale with the
scene's longer side, ``context_scale="side"``) and writes:

- ``example_scene.tif`` (:func:`fsanet_geo.geo.outputs.raster_io.write_geotiff`): RGB GeoTIFF in
  UTM zone 33N (EPSG:32633), 0.5 m pixels, tiled 512 x 512, JPEG-compressed in RGB (no
  chroma subsampling: a YCbCr JPEG halves the colour resolution and smears the colour of
  2-6 px objects), internal overviews 2/4/8 stored before the full-resolution tiles (a
  cloud-optimised layout);
- ``example_scene_truth.gpkg``: one polygon per object in the scene CRS, columns
  ``class_id`` (0-based), ``class_name``, ``x_min, y_min, x_max, y_max`` (scene pixels,
  pixel edges); the layer metadata item ``pixel_size`` holds the 0.5 m pixel size;
- ``example_scene_truth.json``: the same objects as COCO ground truth, the scene as image 1;
- ``example_scene_quicklook.png`` (optional, :func:`fsanet_geo.geo.outputs.raster_io.write_quicklook`):
  a small 8-bit overview for a first look.

The scene's top-left corner is at E 639000 m, N 5316500 m (UTM 33N): the Parndorf plateau
in Burgenland, Austria (about 47.99 N, 16.86 E), farmland with roads, a lake country
next door and wind farms; a 3000 px scene covers 1.5 x 1.5 km south-east of that corner.

Units: boxes are scene pixels (x = column, y = row, pixel edges); polygons and the
transform are CRS units (metres).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine

from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.data.coco import LabelledImage, coco_ground_truth
from fsanet_geo.errors import ConfigError, FileOverwriteError
from fsanet_geo.geo.outputs.georef import labelled_boxes_frame
from fsanet_geo.geo.outputs.raster_io import write_geotiff, write_quicklook
from fsanet_geo.io_utils import atomic_path
from fsanet_geo.synth.render import DEFAULT_DENSITY, render_scene_layers

if TYPE_CHECKING:
    import geopandas

SCENE_CRS = "EPSG:32633"
"""UTM zone 33N (WGS 84)."""
PIXEL_SIZE_M = 0.5
"""Ground sampling distance of the example scene, metres per pixel."""
SCENE_ORIGIN = (639_000.0, 5_316_500.0)
"""(easting, northing) of the scene's top-left pixel corner, metres (Parndorf plateau, Austria)."""

ProgressFn = Callable[[str], None]
"""``progress(step)``, called before each step of :func:`make_example_scene` with its name."""


@dataclass(frozen=True)
class ExampleScene:
    """What :func:`make_example_scene` wrote.

    Attributes:
        image: the GeoTIFF.
        truth_gpkg: ground-truth polygons (GeoPackage, scene CRS).
        truth_coco: ground truth as COCO JSON (the scene is image 1).
        quicklook: the PNG quicklook, None when not asked for.
        width, height: scene size, pixels.
        num_objects: number of ground-truth objects.
        crs: the scene CRS (``"EPSG:32633"``).
        transform: pixel edges -> CRS metres.
    """

    image: Path
    truth_gpkg: Path
    truth_coco: Path
    quicklook: Path | None
    width: int
    height: int
    num_objects: int
    crs: str
    transform: Affine


def scene_transform(
    origin: tuple[float, float] = SCENE_ORIGIN, pixel_size: float = PIXEL_SIZE_M
) -> Affine:
    """North-up affine of a scene whose top-left pixel corner is ``origin`` (CRS units)."""
    if not pixel_size > 0:
        raise ConfigError(f"pixel size must be > 0, got {pixel_size}")
    return Affine(pixel_size, 0.0, origin[0], 0.0, -pixel_size, origin[1])


def truth_geodataframe(
    boxes: np.ndarray,
    labels: np.ndarray,
    transform: Affine,
    crs: Any,
    *,
    class_names: Sequence[str] = AITOD_CLASSES,
) -> "geopandas.GeoDataFrame":
    """Ground truth as polygons in ``crs``: one row per box [N, 4] (scene pixels, pixel edges).

    Columns ``class_id`` (0-based ``labels`` [N]), ``class_name``, ``x_min, y_min, x_max,
    y_max`` (pixels) and the geometry (each box's four corners through ``transform``,
    :func:`fsanet_geo.geo.outputs.georef.labelled_boxes_frame`).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if len(labels) != len(boxes):
        raise ConfigError(f"{len(boxes)} boxes but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ConfigError(f"labels must be in 0..{len(class_names) - 1}, got {labels.min()}..{labels.max()}")
    return labelled_boxes_frame(boxes, labels, class_names=class_names, transform=transform, crs=crs)


def write_truth(
    truth: "geopandas.GeoDataFrame",
    path: str | os.PathLike[str],
    *,
    pixel_size: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a ground-truth frame as a GeoPackage polygon layer named after the file, atomically.

    ``pixel_size`` (CRS units per pixel) is stored as the layer-metadata item ``pixel_size``,
    where :func:`fsanet_geo.evaluate.mapspace.evaluate_vectors` finds it for the AI-TOD
    area ranges. Returns the path.
    """
    import pyogrio

    target = Path(path)
    if target.suffix.lower() != ".gpkg":
        raise ConfigError(f"the truth is written as a GeoPackage: give a .gpkg path, got {target}")
    metadata = {"pixel_size": repr(float(pixel_size))} if pixel_size is not None else None
    with atomic_path(target, overwrite=overwrite) as tmp:
        pyogrio.write_dataframe(truth, tmp, layer=target.stem, driver="GPKG", geometry_type="Polygon",
                                layer_metadata=metadata)
    return target


def make_example_scene(
    out_dir: str | os.PathLike[str],
    *,
    size: int = 3000,
    seed: int = 7,
    density: float = DEFAULT_DENSITY,
    name: str = "example_scene",
    jpeg_quality: int = 90,
    quicklook: bool = True,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> ExampleScene:
    """Render a ``size`` x ``size`` px example scene and write it with its truth into ``out_dir``.

    Files (module docstring): ``<name>.tif``, ``<name>_truth.gpkg``, ``<name>_truth.json``
    and, with ``quicklook``, ``<name>_quicklook.png``. ``out_dir`` is created when missing.
    Existing files are only replaced with ``overwrite`` (checked before any work). The same
    ``size``, ``seed`` and ``density`` always give the same scene and truth.
    """
    if size < 64:
        raise ConfigError(f"the example scene must be at least 64 px wide, got {size}")
    out = Path(out_dir)
    paths = {
        "image": out / f"{name}.tif",
        "truth_gpkg": out / f"{name}_truth.gpkg",
        "truth_coco": out / f"{name}_truth.json",
        "quicklook": out / f"{name}_quicklook.png",
    }
    if not quicklook:
        del paths["quicklook"]
    if not overwrite:
        for p in paths.values():
            if p.exists():
                raise FileOverwriteError(f"{p} already exists (use --overwrite to replace it)")
    out.mkdir(parents=True, exist_ok=True)

    def step(what: str) -> None:
        if progress is not None:
            progress(what)

    step("render")
    scene = render_scene_layers(size, size, seed=seed, density=density, context_scale="side")
    image, boxes, labels = scene.image, scene.boxes, scene.labels
    transform = scene_transform()
    step("geotiff")
    write_geotiff(paths["image"], image, transform, SCENE_CRS, compress="jpeg", jpeg_quality=jpeg_quality,
                  tags={"SOURCE": f"fsanet-geo synthetic example scene, seed {seed}, density {density}"},
                  overwrite=overwrite)
    step("truth")
    write_truth(truth_geodataframe(boxes, labels, transform, SCENE_CRS), paths["truth_gpkg"],
                pixel_size=PIXEL_SIZE_M, overwrite=overwrite)
    coco = coco_ground_truth([LabelledImage(1, paths["image"].name, width=size, height=size, boxes=boxes,
                                            labels=labels)],
                             class_names=AITOD_CLASSES, description="synthetic example scene (fsanet-geo)")
    with atomic_path(paths["truth_coco"], overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(coco, separators=(",", ":")), encoding="utf-8")
    if quicklook:
        step("quicklook")
        write_quicklook(paths["image"], paths["quicklook"], overwrite=overwrite)
    return ExampleScene(
        image=paths["image"], truth_gpkg=paths["truth_gpkg"], truth_coco=paths["truth_coco"],
        quicklook=paths.get("quicklook"), width=size, height=size, num_objects=len(boxes),
        crs=SCENE_CRS, transform=transform,
    )
