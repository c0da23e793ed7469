"""A georeferenced synthetic example scene with its ground truth, and a GeoTIFF writer.

:func:`make_example_scene` renders one :func:`fsanet_geo.data.synthetic.render_scene`
scene (the generator of the synthetic training set, at the same object density, so an
800-px tile of it looks like a training image) and writes:

- ``example_scene.tif``: RGB GeoTIFF in UTM zone 33N (EPSG:32633), 0.5 m pixels, tiled
  512 x 512, JPEG-compressed in RGB (no chroma subsampling: a YCbCr JPEG halves the colour
  resolution and smears the colour of 2-6 px objects), internal overviews 2/4/8 stored
  before the full-resolution tiles (a cloud-optimised layout);
- ``example_scene_truth.gpkg``: one polygon per object in the scene CRS, columns
  ``class_id`` (0-based), ``class_name``, ``x_min, y_min, x_max, y_max`` (scene pixels,
  pixel edges); the layer metadata item ``pixel_size`` holds the 0.5 m pixel size;
- ``example_scene_truth.json``: the same objects as COCO ground truth, the scene as image 1;
- ``example_scene_quicklook.png`` (optional): a small 8-bit overview for a first look.

The scene's top-left corner is at E 639000 m, N 5316500 m (UTM 33N): the Parndorf plateau
in Burgenland, Austria (about 47.99 N, 16.86 E), farmland with roads, a lake country
next door and wind farms; a 3000 px scene covers 1.5 x 1.5 km south-east of that corner.

Units: boxes are scene pixels (x = column, y = row, pixel edges); polygons and the
transform are CRS units (metres).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from affine import Affine

from fsanet_geo.data import synthetic
from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.data.synthetic import DEFAULT_DENSITY, SyntheticScene
from fsanet_geo.errors import ConfigError, FileOverwriteError
from fsanet_geo.geo.georef import pixel_boxes_to_polygons
from fsanet_geo.io_utils import atomic_path

if TYPE_CHECKING:
    import geopandas

SCENE_CRS = "EPSG:32633"
"""UTM zone 33N (WGS 84)."""
PIXEL_SIZE_M = 0.5
"""Ground sampling distance of the example scene, metres per pixel."""
SCENE_ORIGIN = (639_000.0, 5_316_500.0)
"""(easting, northing) of the scene's top-left pixel corner, metres (Parndorf plateau, Austria)."""

Compression = Literal["jpeg", "deflate", "none"]
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


def render_large_scene(height: int, width: int, *, seed: int, density: float = DEFAULT_DENSITY) -> SyntheticScene:
    """A synthetic scene whose roads, rivers and lakes are as frequent per 800-px tile as in the training set.

    :func:`fsanet_geo.data.synthetic.render_scene` scales the number of roads, rivers and
    lakes with the scene AREA (in 800 x 800 px units), right for one training image but
    not for a scene many tiles wide: a band crossing the scene crosses many tiles, so a
    3000 px scene would be mostly water. Here the count scales with the longer SIDE
    (in 800 px units), which keeps the context per tile about as in the training images.
    Objects (``density`` per 100 x 100 px), shapes and boxes are exactly the generator's.
    Deterministic for a seed. Returns the generator's :class:`SyntheticScene`.
    """
    if min(height, width) < 16:
        raise ConfigError(f"scene size must be at least 16 x 16 px, got {height} x {width}")
    if density < 0:
        raise ConfigError(f"density must be >= 0, got {density}")
    # The painter's context scale is the one knob render_scene does not expose.
    painter = synthetic._Painter(height, width, np.random.default_rng(seed), list(AITOD_CLASSES))
    painter.area_units = max(height, width) / 800.0
    return painter.paint(density)


def write_geotiff(
    path: str | os.PathLike[str],
    image: np.ndarray,
    transform: Affine,
    crs: Any,
    *,
    compress: Compression = "deflate",
    jpeg_quality: int = 90,
    overview_jpeg_quality: int = 70,
    tiled: bool = True,
    blocksize: int = 512,
    overviews: Sequence[int] = (2, 4, 8),
    tags: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``image`` (uint8 [H, W] or [H, W, C]) as a GeoTIFF, atomically; return the path.

    ``transform`` maps pixel edges to CRS units, ``crs`` is anything rasterio accepts.
    ``compress``: ``"jpeg"`` (lossy, RGB colour space, ``jpeg_quality`` for the full
    resolution and ``overview_jpeg_quality`` for the overviews), ``"deflate"`` (lossless,
    horizontal predictor 2) or ``"none"``. With ``tiled`` the blocks are ``blocksize``
    square (a multiple of 16). ``overviews`` are increasing decimation factors, built by
    averaging and stored inside the file before the full-resolution data (the
    cloud-optimised GeoTIFF layout); empty for none. ``tags`` go into the dataset metadata.
    """
    import rasterio
    import rasterio.shutil
    from rasterio.enums import Resampling
    from rasterio.io import MemoryFile

    bands = _bands_first(image)
    count, height, width = bands.shape
    factors = _check_overviews(overviews)
    options = _creation_options(compress, jpeg_quality, tiled, blocksize, count)
    if compress == "jpeg" and not 1 <= overview_jpeg_quality <= 100:
        raise ConfigError(f"overview JPEG quality must be 1..100, got {overview_jpeg_quality}")
    profile = {"driver": "GTiff", "width": width, "height": height, "count": count, "dtype": "uint8",
               "crs": crs, "transform": transform}
    env = {"JPEG_QUALITY_OVERVIEW": str(overview_jpeg_quality)} if compress == "jpeg" else {}
    with atomic_path(path, overwrite=overwrite) as tmp, rasterio.Env(**env), MemoryFile() as memfile:
        with memfile.open(**profile) as staging:
            staging.write(bands)
            if count == 3:
                from rasterio.enums import ColorInterp

                staging.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
            if tags:
                staging.update_tags(**dict(tags))
            if factors:
                staging.build_overviews(list(factors), Resampling.average)
        with memfile.open() as staged:
            rasterio.shutil.copy(staged, tmp, driver="GTiff", copy_src_overviews=True, **options)
    return Path(path)


def _bands_first(image: np.ndarray) -> np.ndarray:
    """uint8 [C, H, W] from [H, W] or [H, W, C]."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ConfigError(f"the image must be uint8, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or min(array.shape) < 1:
        raise ConfigError(f"the image must be [H, W] or [H, W, C], got shape {array.shape}")
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def _check_overviews(overviews: Sequence[int]) -> tuple[int, ...]:
    factors = tuple(int(f) for f in overviews)
    if any(f < 2 for f in factors) or any(b <= a for a, b in zip(factors, factors[1:])):
        raise ConfigError(f"overview factors must be increasing integers >= 2, got {list(overviews)}")
    return factors


def _creation_options(
    compress: Compression, jpeg_quality: int, tiled: bool, blocksize: int, count: int
) -> dict[str, Any]:
    options: dict[str, Any] = {"interleave": "pixel"}
    if tiled:
        if blocksize < 16 or blocksize % 16:
            raise ConfigError(f"tile size must be a multiple of 16, got {blocksize}")
        options.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    if compress == "jpeg":
        if not 1 <= jpeg_quality <= 100:
            raise ConfigError(f"JPEG quality must be 1..100, got {jpeg_quality}")
        if count not in (1, 3):
            raise ConfigError(f"JPEG compression needs 1 or 3 bands, got {count}")
        options.update(compress="JPEG", jpeg_quality=jpeg_quality)
    elif compress == "deflate":
        options.update(compress="DEFLATE", predictor=2, zlevel=9)
    elif compress != "none":
        raise ConfigError(f"compression must be 'jpeg', 'deflate' or 'none', got {compress!r}")
    return options


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
    y_max`` (pixels) and the geometry (each box's four corners through ``transform``).
    """
    import geopandas

    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if len(labels) != len(boxes):
        raise ConfigError(f"{len(boxes)} boxes but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ConfigError(f"labels must be in 0..{len(class_names) - 1}, got {labels.min()}..{labels.max()}")
    names = np.asarray(list(class_names), dtype=object)
    data = {
        "class_id": labels,
        "class_name": names[labels],
        "x_min": boxes[:, 0],
        "y_min": boxes[:, 1],
        "x_max": boxes[:, 2],
        "y_max": boxes[:, 3],
    }
    geometry = geopandas.GeoSeries(pixel_boxes_to_polygons(boxes, transform), crs=crs)
    return geopandas.GeoDataFrame(data, geometry=geometry, crs=crs)


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


def coco_ground_truth(
    boxes: np.ndarray,
    labels: np.ndarray,
    *,
    file_name: str,
    width: int,
    height: int,
    class_names: Sequence[str] = AITOD_CLASSES,
) -> dict[str, Any]:
    """COCO ground truth of one image (id 1): bbox ``[x, y, w, h]`` pixels, category id = label + 1."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    annotations = []
    for i, ((x0, y0, x1, y1), label) in enumerate(zip(boxes.tolist(), np.asarray(labels).tolist()), start=1):
        w, h = x1 - x0, y1 - y0
        annotations.append({"id": i, "image_id": 1, "category_id": int(label) + 1, "bbox": [x0, y0, w, h],
                            "area": w * h, "iscrowd": 0, "ignore": 0})
    return {
        "info": {"description": "synthetic example scene (fsanet-geo)"},
        "images": [{"id": 1, "file_name": file_name, "width": int(width), "height": int(height)}],
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n, "supercategory": n} for i, n in enumerate(class_names)],
    }


def write_quicklook(
    raster: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    max_side: int = 750,
    colors: int = 256,
    overwrite: bool = False,
) -> Path:
    """Write a downscaled PNG of an 8-bit RGB ``raster`` (read from its overviews), atomically.

    The longer side becomes ``max_side`` pixels (never upscaled); the colours are reduced to
    a ``colors``-entry palette to keep the file small. Returns the path.
    """
    import rasterio
    from PIL import Image
    from rasterio.enums import Resampling

    if max_side < 1 or not 2 <= colors <= 256:
        raise ConfigError(f"quicklook needs max_side >= 1 and 2..256 colours, got {max_side}, {colors}")
    with rasterio.open(raster) as src:
        scale = min(1.0, max_side / max(src.width, src.height))
        shape = (src.count, max(1, round(src.height * scale)), max(1, round(src.width * scale)))
        data = src.read(out_shape=shape, resampling=Resampling.average)
    picture = Image.fromarray(np.ascontiguousarray(data[:3].transpose(1, 2, 0)) if len(data) >= 3 else data[0])
    if picture.mode == "RGB":
        picture = picture.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with atomic_path(path, overwrite=overwrite) as tmp:
        picture.save(tmp, format="PNG", optimize=True)
    return Path(path)


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
    scene = render_large_scene(size, size, seed=seed, density=density)
    image, boxes, labels = scene.image, scene.boxes, scene.labels
    transform = scene_transform()
    step("geotiff")
    write_geotiff(paths["image"], image, transform, SCENE_CRS, compress="jpeg", jpeg_quality=jpeg_quality,
                  tags={"SOURCE": f"fsanet-geo synthetic example scene, seed {seed}, density {density}"},
                  overwrite=overwrite)
    step("truth")
    write_truth(truth_geodataframe(boxes, labels, transform, SCENE_CRS), paths["truth_gpkg"],
                pixel_size=PIXEL_SIZE_M, overwrite=overwrite)
    coco = coco_ground_truth(boxes, labels, file_name=paths["image"].name, width=size, height=size)
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
