"""A decimated quicklook PNG of a scene with its detections drawn, coloured by class."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fsanet_geo.errors import RasterError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.pixels.reader import SceneInfo, scene_scaling
from fsanet_geo.io_utils import atomic_path

PALETTE = [
    (255, 64, 64),
    (64, 160, 255),
    (255, 200, 0),
    (80, 220, 80),
    (230, 80, 230),
    (0, 220, 220),
    (255, 140, 0),
    (170, 120, 255),
]


def class_colour(label: int) -> tuple[int, int, int]:
    """The RGB colour of class ``label`` (0-based)."""
    return PALETTE[label % len(PALETTE)]


def render_preview(
    info: SceneInfo,
    detections: Detections,
    class_names: Sequence[str],
    *,
    max_side: int = 1024,
    value_range: Sequence[float] | None = None,
    percentiles: Sequence[float] = (2.0, 98.0),
) -> Image.Image:
    """An RGB image of the scene, at most ``max_side`` pixels a side, boxes drawn; the legend
    (classes and counts) in a panel to the right of the scene, so it never hides a detection.

    Args:
        info: the scene (its selected bands: 1 band shows grey, 3+ show the first three).
        detections: boxes in scene pixels (any number; drawn at least 1 preview pixel wide).
        class_names: names by label, for the legend.
    """
    import rasterio
    from rasterio.enums import Resampling

    from fsanet_geo.geo.pixels.remote import display_location, open_raster

    scale = min(1.0, max_side / max(info.height, info.width))
    out_h, out_w = max(1, round(info.height * scale)), max(1, round(info.width * scale))
    bands = list(info.bands[:3]) if len(info.bands) >= 3 else [info.bands[0]] * 3
    try:
        with open_raster(info.path) as ds:
            data = ds.read(bands, out_shape=(3, out_h, out_w), resampling=Resampling.nearest)
            valid = ds.dataset_mask(out_shape=(out_h, out_w)) > 0
    except rasterio.errors.RasterioError as exc:
        raise RasterError(f"cannot read {display_location(info.path)} for the preview: {exc}") from exc
    if not info.is_byte or value_range is not None:
        scaling = scene_scaling(info, value_range=value_range, percentiles=percentiles)
        if scaling is not None:
            band_scaling = type(scaling)(
                scaling.low[[info.bands.index(b) for b in bands]], scaling.high[[info.bands.index(b) for b in bands]]
            )
            data = band_scaling.apply(data)
    rgb = np.where(valid[None], data, 0).astype(np.uint8).transpose(1, 2, 0)
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    draw = ImageDraw.Draw(image)
    sy, sx = out_h / info.height, out_w / info.width
    for (x0, y0, x1, y1), label in zip(detections.boxes, detections.labels.tolist()):
        px0, py0 = int(np.floor(x0 * sx)), int(np.floor(y0 * sy))
        px1, py1 = max(px0, int(np.ceil(x1 * sx)) - 1), max(py0, int(np.ceil(y1 * sy)) - 1)
        draw.rectangle([px0, py0, px1, py1], outline=class_colour(label))
    return _with_legend(image, detections, class_names)


def _with_legend(image: Image.Image, detections: Detections, class_names: Sequence[str]) -> Image.Image:
    """``image`` with a legend panel added on its right (none without detections)."""
    labels, counts = np.unique(detections.labels, return_counts=True)
    if len(labels) == 0:
        return image
    lines = [
        (int(k), f"{class_names[k] if 0 <= k < len(class_names) else f'class_{k}'}: {n}")
        for k, n in zip(labels.tolist(), counts.tolist())
    ]
    line_h = 12
    width = 20 + 7 * max(len(text) for _, text in lines)
    canvas = Image.new("RGB", (image.width + width, max(image.height, 6 + line_h * len(lines))), (0, 0, 0))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    x = image.width + 2
    for i, (label, text) in enumerate(lines):
        y = 4 + i * line_h
        draw.rectangle([x + 3, y + 2, x + 10, y + 9], fill=class_colour(label))
        draw.text((x + 14, y), text, fill=(255, 255, 255))
    return canvas


def write_preview(
    info: SceneInfo,
    detections: Detections,
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    *,
    max_side: int = 1024,
    value_range: Sequence[float] | None = None,
    percentiles: Sequence[float] = (2.0, 98.0),
    overwrite: bool = False,
) -> Path:
    """Render :func:`render_preview` and write it as PNG, atomically."""
    image = render_preview(
        info, detections, class_names, max_side=max_side, value_range=value_range, percentiles=percentiles
    )
    with atomic_path(path, overwrite=overwrite) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)
