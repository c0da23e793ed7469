"""A synthetic scene as a user brings it to ``fsanet train --scene``: a GeoTIFF, its labels
drawn as polygons in another CRS, and a held-out block.

:func:`make_labelled_scene` renders one scene with the project's generator
(:func:`fsanet_geo.synth.render.render_scene_layers`, the generator of the demo model's
training data) and writes into ``out_dir``:

- ``<name>.tif``: RGB GeoTIFF, UTM 33N (EPSG:32633), 0.5 m pixels, deflate, 512 px tiles;
- ``<name>_labels.gpkg``: one polygon per object in ``label_crs`` (default EPSG:4326, not
  the raster's CRS, as labels drawn in QGIS over a web map often are), column ``class``;
- ``<name>_holdout.gpkg``: one square polygon in ``label_crs``, the bottom-right
  ``holdout`` x ``holdout`` pixels of the scene (for ``--val-aoi`` and ``detect --aoi``).

Units: boxes are scene pixels (pixel edges); polygons are ``label_crs`` units.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.errors import ConfigError, FileOverwriteError
from fsanet_geo.geo.outputs.raster_io import write_geotiff
from fsanet_geo.io_utils import atomic_path
from fsanet_geo.synth.example_scene import SCENE_CRS, scene_transform, truth_geodataframe
from fsanet_geo.synth.render import DEFAULT_DENSITY, render_scene_layers


@dataclass(frozen=True)
class LabelledScene:
    """What :func:`make_labelled_scene` wrote, with the truth in scene pixels.

    Attributes:
        image, labels, holdout: the three files.
        boxes: float64 [N, 4] xyxy scene pixels; classes: int64 [N] into ``class_names``.
        holdout_window: (col_off, row_off, width, height) of the held-out block, pixels.
    """

    image: Path
    labels: Path
    holdout: Path
    boxes: np.ndarray
    classes: np.ndarray
    class_names: tuple[str, ...]
    holdout_window: tuple[int, int, int, int]


def make_labelled_scene(
    out_dir: str | os.PathLike[str],
    *,
    size: int = 1024,
    seed: int = 11,
    density: float = DEFAULT_DENSITY,
    classes: Sequence[str] = AITOD_CLASSES,
    label_crs: str = "EPSG:4326",
    holdout: int = 256,
    name: str = "scene",
    overwrite: bool = False,
) -> LabelledScene:
    """Render a ``size`` px square scene of ``classes`` and write it as the module docstring says.

    The same arguments always give the same files. Existing files are replaced only with ``overwrite``.
    """
    import geopandas
    import shapely

    if not 0 < holdout < size:
        raise ConfigError(f"the held-out block must be 1..{size - 1} px, got {holdout}")
    out = Path(out_dir)
    paths = [out / f"{name}.tif", out / f"{name}_labels.gpkg", out / f"{name}_holdout.gpkg"]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileOverwriteError(f"{existing[0]} already exists (use overwrite to replace it)")
    out.mkdir(parents=True, exist_ok=True)
    scene = render_scene_layers(size, size, seed=seed, density=density, classes=classes, context_scale="side")
    transform = scene_transform()
    write_geotiff(paths[0], scene.image, transform, SCENE_CRS, compress="deflate", overviews=(), overwrite=overwrite)
    truth = truth_geodataframe(scene.boxes, scene.labels, transform, SCENE_CRS, class_names=list(classes))
    labels = truth[["class_name", "geometry"]].rename(columns={"class_name": "class"}).to_crs(label_crs)
    corner = size - holdout
    block = shapely.box(*(transform @ (corner, size)), *(transform @ (size, corner)))
    block_frame = geopandas.GeoDataFrame({"name": ["holdout"]}, geometry=[block], crs=SCENE_CRS).to_crs(label_crs)
    for frame, path in ((labels, paths[1]), (block_frame, paths[2])):
        with atomic_path(path, overwrite=overwrite) as tmp:
            frame.to_file(tmp, layer=path.stem, driver="GPKG")
    return LabelledScene(image=paths[0], labels=paths[1], holdout=paths[2], boxes=scene.boxes,
                         classes=scene.labels, class_names=tuple(classes),
                         holdout_window=(corner, corner, holdout, holdout))
