"""STAC items as scenes: an Item, an ItemCollection or a folder of item files (read with pystac).

Each item becomes one scene, a :class:`~fsanet_geo.geo.pixels.remote.NamedLocation` named by the
item's id (the ``scene`` value of its detections) at the href of one of its assets: the asset
the user chose, else the first RGB-like one (role or key ``visual``, a true-colour key, or
bands named red, green, blue, else the one GeoTIFF asset of role ``data``), which is said once
in a note.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from fsanet_geo.errors import ConfigError, first_line
from fsanet_geo.geo.pixels.remote import NamedLocation, as_location, display_location, is_remote

_RGB_KEYS = ("visual", "rgb", "tci", "truecolor", "true_color", "true-color")


def is_stac_input(entry: str | os.PathLike[str]) -> bool:
    """Whether ``entry`` names STAC: a ``.json`` file or URL, or a local folder holding ``.json`` items."""
    text = os.fspath(entry)
    path = urlsplit(text).path if is_remote(text) else text
    if path.lower().endswith(".json"):
        return True
    return not is_remote(text) and Path(text).is_dir() and any(Path(text).glob("*.json"))


def stac_scenes(entry: str | os.PathLike[str], asset: str | None = None) -> tuple[list[NamedLocation], str | None]:
    """The scenes of a STAC Item, ItemCollection or folder of items, and the note on the asset chosen.

    Raises:
        ConfigError: unreadable or not STAC, no such asset, or no RGB-like asset without ``asset``.
    """
    text = os.fspath(entry)
    sources = sorted(Path(text).glob("*.json")) if not is_remote(text) and Path(text).is_dir() else [text]
    scenes: list[NamedLocation] = []
    chosen: set[str] = set()
    for source in sources:
        for item, base in _items(str(source)):
            key = asset if asset is not None else _rgb_asset(item)
            if key not in item.assets:
                raise ConfigError(f"STAC item {item.id} has no asset {key!r} "
                                  f"(it has: {', '.join(item.assets) or 'none'})")
            chosen.add(key)
            scenes.append(NamedLocation(as_location(_absolute(item.assets[key].href, item, base)), item.id))
    if not scenes:
        raise ConfigError(f"{display_location(text)} holds no STAC items")
    note = None
    if asset is None:
        note = f"STAC: reading asset {', '.join(sorted(chosen))} of each item (choose another with --asset)"
    return scenes, note


def _items(source: str) -> list[tuple[Any, str]]:
    """(pystac Item, the href its relative links are relative to) of one JSON file or URL."""
    import pystac

    try:
        data = pystac.StacIO.default().read_json(source)
    except Exception as exc:  # noqa: BLE001 - any read failure (missing, HTTP, not JSON) is the input's
        raise ConfigError(f"cannot read STAC {display_location(source)}: {first_line(exc)}") from exc
    try:
        if data.get("type") == "FeatureCollection":
            collection = pystac.ItemCollection.from_dict(data, preserve_dict=False)
            return [(item, source) for item in collection]
        if data.get("type") == "Feature":
            item = pystac.Item.from_dict(data, href=source, migrate=True, preserve_dict=False)
            return [(item, source)]
    except Exception as exc:  # noqa: BLE001 - pystac raises many kinds for invalid STAC
        raise ConfigError(f"{display_location(source)} is not a valid STAC item: {first_line(exc)}") from exc
    raise ConfigError(f"{display_location(source)} is not a STAC Item or ItemCollection "
                      f"(type {data.get('type')!r})")


def _rgb_asset(item: Any) -> str:
    """The key of the first RGB-like asset of ``item``."""
    for key, a in item.assets.items():
        if key.lower() in _RGB_KEYS or "visual" in (a.roles or []):
            return key
    for key, a in item.assets.items():
        bands = a.extra_fields.get("eo:bands") or a.extra_fields.get("bands") or []
        names = [str(b.get("common_name") or b.get("eo:common_name") or b.get("name", "")).lower() for b in bands]
        if names[:3] == ["red", "green", "blue"]:
            return key
    data = [key for key, a in item.assets.items() if "data" in (a.roles or []) and _is_geotiff(a)]
    if len(data) == 1:  # the item's one GeoTIFF of data (e.g. an aerial mosaic)
        return data[0]
    raise ConfigError(f"STAC item {item.id} has no RGB-like asset: choose one with --asset "
                      f"(it has: {', '.join(item.assets) or 'none'})")


def _is_geotiff(asset: Any) -> bool:
    """Whether a STAC asset is a (Cloud Optimized) GeoTIFF, by media type or file name."""
    media = str(asset.media_type or "").lower()
    return media.startswith("image/tiff") or asset.href.lower().split("?")[0].endswith((".tif", ".tiff"))


def _absolute(href: str, item: Any, base: str) -> str:
    """``href`` made absolute against the item's own location, else against ``base``."""
    if is_remote(href) or Path(href).is_absolute():
        return href
    origin = item.get_self_href() or base
    if is_remote(origin):
        return urljoin(origin, href)
    return str((Path(origin).parent / href).resolve())
