"""Vector labels -> pixel boxes per scene, with one class list for all scenes.

:func:`load_label_set` reads each scene's label layer (:mod:`~fsanet_geo.geodata.label_layer`),
settles the class list, maps each feature to a box in its scene's pixels
(:mod:`~fsanet_geo.geodata.label_boxes`: reprojection, exact inverse affine, point squares)
and keeps or drops it by these rules, each feature counted once, in this order
(:class:`~fsanet_geo.geodata.types.LabelCounts`):

1. ``empty``: no geometry, an empty one, or no class value (null / NaN).
2. ``other_class``: a class not among ``LabelOptions.classes``.
3. ``points_refused``: a point without ``point_box`` (a layer of points only is an error).
4. ``empty``: a box under 1 px in either axis (before clipping).
5. ``outside``: no area inside the raster, less than :data:`~fsanet_geo.data.transforms.MIN_VISIBLE`
   (half) of the box area inside it (training crops apply the same rule at chip edges), a
   reprojection that failed, or, with an area of interest, a box centre (of the whole box,
   boundary included) outside it.
6. ``empty``: a box cut by the raster edge to under 1 px in either axis.
7. ``on_nodata``: every pixel the box touches is nodata / masked (:mod:`~fsanet_geo.geodata.label_nodata`).

The rest are ``kept``, clipped to the raster (``clipped`` when the edge cut them). Without
``classes`` the class list is the sorted union of every layer's classes, so all scenes share
one label numbering; ``classes`` selects and orders them.

Letters: F = features of a layer, N = kept boxes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from fsanet_geo.data.transforms import MIN_VISIBLE
from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.pixels.reader import SceneInfo, open_scene
from fsanet_geo.geo.pixels.remote import display_location, is_remote
from fsanet_geo.geodata.label_boxes import EMPTY, POINT_REFUSED, pixel_boxes
from fsanet_geo.geodata.label_layer import LabelLayer, read_label_layer
from fsanet_geo.geodata.label_nodata import boxes_with_data
from fsanet_geo.geodata.types import LabelCounts, LabelOptions, LabelSet, LabelSource, SceneLabels


def load_label_set(sources: Sequence[LabelSource], options: LabelOptions, *, aoi: str | None = None) -> LabelSet:
    """Every scene's labels in its own pixels, numbered by one class list.

    Args:
        sources: the scenes and their label layers.
        options: class field and selection, point box, bands.
        aoi: a vector file of the areas labelled exhaustively (every object in them is in the
            layers); None: each whole raster is.

    Raises:
        ConfigError: no sources, a missing class field, an unknown or repeated class in
            ``classes``, labels and scene not both with or both without a CRS, a layer of points
            only without ``point_box``.
        DatasetError: a label file that is missing or unreadable.
        RasterError: a scene that is missing, unreadable or has bad bands.
    """
    if not sources:
        raise ConfigError("no scenes given: name them with --scene/--labels or --scenes")
    layers = [read_label_layer(s.labels, s.layer, options.class_field) for s in sources]
    class_names = resolve_classes([layer.found_classes() for layer in layers], options.classes)
    scenes = [_scene_labels(source, layer, options, class_names, aoi) for source, layer in zip(sources, layers)]
    return LabelSet(class_names=class_names, scenes=scenes)


def load_scene_labels(
    source: LabelSource, options: LabelOptions, *, class_names: Sequence[str] | None = None, aoi: str | None = None
) -> SceneLabels:
    """One scene's labels (see :func:`load_label_set`); ``class_names`` numbers the labels
    (None: ``options.classes``, else the layer's classes sorted by name)."""
    layer = read_label_layer(source.labels, source.layer, options.class_field)
    names = tuple(class_names) if class_names is not None else resolve_classes([layer.found_classes()], options.classes)
    return _scene_labels(source, layer, options, names, aoi)


def resolve_classes(found: Sequence[set[str]], wanted: Sequence[str] | None = None) -> tuple[str, ...]:
    """The label set's class list: ``wanted`` in its order (each must be found in some layer),
    else the sorted union of ``found`` (one set of class names per layer).

    Raises:
        ConfigError: a class of ``wanted`` found in no layer (naming the classes found), or repeated.
    """
    union = set().union(*found) if found else set()
    if wanted is None:
        return tuple(sorted(union))
    wanted = tuple(str(c) for c in wanted)
    if not wanted:
        raise ConfigError("--classes is empty: name at least one class")
    repeated = sorted({c for c in wanted if wanted.count(c) > 1})
    if repeated:
        raise ConfigError(f"--classes names {', '.join(repeated)} more than once")
    missing = [c for c in wanted if c not in union]
    if missing:
        shown = ", ".join(sorted(union)) if union else "none"
        raise ConfigError(f"--classes: {', '.join(repr(c) for c in missing)} found in no label layer "
                          f"(classes found: {shown})")
    return wanted


def _scene_labels(
    source: LabelSource, layer: LabelLayer, options: LabelOptions, class_names: Sequence[str], aoi: str | None
) -> SceneLabels:
    info = open_scene(source.scene, bands=options.bands, in_channels=options.in_channels)
    _check_crs(layer, info)
    area = None
    if aoi is not None:
        from fsanet_geo.geo.pixels.aoi import load_aoi

        area = load_aoi(aoi).in_scene(info.crs, info.transform).geometry
    boxes, labels, counts = _keep(layer, info, options, class_names, area)
    return SceneLabels(source=source, info=info, boxes=boxes, labels=labels, labelled_area=area, counts=counts)


def check_scenes_once(sources: Sequence[LabelSource]) -> None:
    """One source per raster for training and export (:class:`ConfigError` naming both): the same
    raster twice (e.g. one layer per class) would make each copy's objects the other's background,
    and its validation blocks the other's training chips. ``data check`` shows such lists as they are."""
    seen: dict[str, LabelSource] = {}
    for source in sources:
        key = source.scene if is_remote(source.scene) else os.path.realpath(source.scene)
        first = seen.setdefault(key, source)
        if first is not source:
            named = [display_location(s.labels) + (f"|layername={s.layer}" if s.layer else "")
                     for s in (first, source)]
            raise ConfigError(f"scene {display_location(source.scene)} is given twice (labels {named[0]} and "
                              f"{named[1]}): put all of its labels in one layer, with a class field "
                              "(--class-field) when they are of several classes")


def _check_crs(layer: LabelLayer, info: SceneInfo) -> None:
    """Labels and scene both with a CRS, or both without (pixel / transform coordinates)."""
    scene = display_location(info.path)
    if layer.crs is None and info.crs is not None:
        raise ConfigError(f"labels {layer.path} have no CRS but scene {scene} is in {info.crs.to_string()}: "
                          "set the layer's CRS (e.g. in QGIS: Layer CRS > Set Layer CRS)")
    if layer.crs is not None and info.crs is None:
        raise ConfigError(f"labels {layer.path} are in {layer.crs.to_string()} but scene {scene} has no CRS "
                          "to place them in")


def _keep(
    layer: LabelLayer, info: SceneInfo, options: LabelOptions, class_names: Sequence[str], area: Any
) -> tuple[np.ndarray, np.ndarray, LabelCounts]:
    """Boxes float64 [N, 4], labels int64 [N] and counts, by the rules of the module docstring."""
    counts = LabelCounts(read=len(layer))
    label_of = {name: i for i, name in enumerate(class_names)}
    names = layer.class_names
    has_class = np.array([c is not None for c in names.tolist()], bool)
    labels = np.array([label_of.get(c, -1) if c is not None else -1 for c in names.tolist()], np.int64)
    selected = has_class & (labels >= 0)
    _check_points(layer, options)
    boxes, status = pixel_boxes(np.where(selected, layer.geometries, None), layer.crs, info.crs, info.transform,
                                options.point_box)
    refused = selected & (status == POINT_REFUSED)
    counts.empty = int((~has_class | (selected & (status == EMPTY))).sum())
    counts.other_class = int((has_class & ~selected).sum())
    counts.points_refused = int(refused.sum())
    todo = np.flatnonzero(selected & (status != EMPTY) & ~refused)
    b = boxes[todo]
    finite = np.isfinite(b).all(axis=1)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    tiny = finite & ((w < 1) | (h < 1))
    clip = np.column_stack([np.clip(b[:, [0, 2]], 0, info.width), np.clip(b[:, [1, 3]], 0, info.height)])[:, [0, 2, 1, 3]]
    cw, ch = clip[:, 2] - clip[:, 0], clip[:, 3] - clip[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        visible = np.where(finite & ~tiny, (cw * ch) / (w * h), 0.0)
    outside = ~finite | (~tiny & ((cw <= 0) | (ch <= 0) | (visible < MIN_VISIBLE)))
    if area is not None:
        import shapely

        shapely.prepare(area)
        centre_in = shapely.intersects_xy(area, (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2)
        outside |= ~tiny & ~centre_in
    cut_tiny = ~tiny & ~outside & ((cw < 1) | (ch < 1))
    counts.empty += int((tiny | cut_tiny).sum())
    counts.outside = int(outside.sum())
    alive = ~(tiny | outside | cut_tiny)
    has_data = np.zeros(len(todo), bool)
    has_data[alive] = boxes_with_data(info, clip[alive])
    counts.on_nodata = int((alive & ~has_data).sum())
    kept = alive & has_data
    counts.kept = int(kept.sum())
    counts.clipped = int((kept & (clip != b).any(axis=1)).sum())
    return np.ascontiguousarray(clip[kept], np.float64), labels[todo][kept], counts


def _check_points(layer: LabelLayer, options: LabelOptions) -> None:
    """A layer whose features (those with a geometry) are all points, without ``point_box``: an error."""
    if options.point_box is not None:
        return
    import shapely

    geoms = layer.geometries[~(shapely.is_missing(layer.geometries) | shapely.is_empty(layer.geometries))]
    if len(geoms) and (shapely.get_dimensions(geoms) == 0).all():
        raise ConfigError(f"labels {layer.path} hold only points ({len(geoms)}): give their box side "
                          "with --point-box METRES")
