"""Which scenes a job reads: the names given, a list file, STAC items; those that cannot be used.

:func:`gather_scenes` turns what the user named (paths, URLs, GDAL paths, STAC items,
ItemCollections or folders of items, and the lines of a ``--scenes`` list file) into scene
inputs (:data:`~fsanet_geo.geo.pixels.remote.SceneInput`). :func:`screen_scenes` opens each one as
the run will, before any work: a scene that fails to open stops the job, or with
``skip_bad`` is set aside with its reason; a scene the area of interest misses is always set
aside (:class:`SkippedScene`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fsanet_geo.errors import ConfigError, RasterError
from fsanet_geo.geo.pixels.remote import SceneInput, as_location, is_remote, scene_label
from fsanet_geo.geo.settings import DetectSettings, Predictor, predictor_config, resolve_tiling


@dataclass(frozen=True)
class SkippedScene:
    """A scene set aside before the run: ``scene`` as shown to the user, and why."""

    scene: str
    reason: str


@dataclass
class GatheredScenes:
    """The scenes to read, in order, and notes for the user (e.g. which STAC asset was chosen)."""

    scenes: list[SceneInput]
    notes: list[str] = field(default_factory=list)


def read_scene_list(path: str | os.PathLike[str]) -> list[str]:
    """The scenes of a list file: one path or URL per line; blank lines and ``#`` comment lines
    are ignored; a relative local path is taken relative to the list file's folder."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"scene list {p} does not exist")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read scene list {p}: {exc}") from exc
    entries = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if not is_remote(entry) and not Path(entry).is_absolute():
            entry = str(p.parent / entry)
        entries.append(entry)
    if not entries:
        raise ConfigError(f"scene list {p} names no scenes")
    return entries


def gather_scenes(
    names: Sequence[str], *, scene_list: str | os.PathLike[str] | None = None, asset: str | None = None
) -> GatheredScenes:
    """The scene inputs named by ``names`` then by the lines of ``scene_list``.

    A STAC Item (``.json`` file or URL), an ItemCollection, or a folder of item files becomes
    one scene per item, reading its ``asset`` (default: the first RGB-like asset, said in a note).
    """
    from fsanet_geo.geo.pixels.stac import is_stac_input, stac_scenes

    entries = list(names) + (read_scene_list(scene_list) if scene_list is not None else [])
    if not entries:
        raise ConfigError("no scenes given: name scene files or URLs, or a list file with --scenes")
    gathered = GatheredScenes([])
    for entry in entries:
        if is_stac_input(entry):
            scenes, note = stac_scenes(entry, asset)
            gathered.scenes.extend(scenes)
            if note and note not in gathered.notes:
                gathered.notes.append(note)
        else:
            gathered.scenes.append(as_location(entry))
    return gathered


def screen_scenes(
    scenes: Sequence[SceneInput], predictor: Predictor, settings: DetectSettings, *, skip_bad: bool = False
) -> tuple[list[SceneInput], list[SkippedScene]]:
    """Open every scene as the run will (bands, CRS, area of interest), reading no pixels.

    Returns the usable scenes and those set aside: a scene the area of interest misses, and
    with ``skip_bad`` a scene that fails to open (its error as the reason). Without
    ``skip_bad`` that error is raised, before any work.
    """
    from fsanet_geo.geo.pixels.tiled_scene import open_tiled_scenes

    tile, overlap = resolve_tiling(settings, predictor)
    in_channels = predictor_config(predictor, "in_channels")
    kept: list[SceneInput] = []
    skipped: list[SkippedScene] = []
    for scene in scenes:
        shown = scene_label(scene)
        try:
            opened = open_tiled_scenes([scene], settings, tile, overlap, in_channels, warn=False)
        except RasterError as exc:
            if not skip_bad:
                raise
            skipped.append(SkippedScene(shown, str(exc)))
            continue
        if not opened:
            skipped.append(SkippedScene(shown, "outside the area of interest"))
            continue
        kept.append(scene)
    return kept, skipped
