"""STAC items as scenes: items, ItemCollections and folders of items, with local and HTTP assets."""

from __future__ import annotations

import json
from pathlib import Path

import pystac
import pytest
from http_helpers import serve_folder
from scene_helpers import PaintedPredictor, write_painted_scene

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.detect.pipeline import detect_scenes
from fsanet_geo.geo.pixels.remote import NamedLocation
from fsanet_geo.geo.detect.scene_list import gather_scenes
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.geo.pixels.stac import is_stac_input, stac_scenes

BBOX = [15.0, 41.9, 15.01, 42.0]


def make_item(item_id: str, assets: dict[str, tuple[str, list[str] | None, dict]]) -> pystac.Item:
    """An item with ``assets`` key -> (href, roles, extra fields)."""
    item = pystac.Item(item_id, geometry={"type": "Polygon", "coordinates": [[
        [BBOX[0], BBOX[1]], [BBOX[2], BBOX[1]], [BBOX[2], BBOX[3]], [BBOX[0], BBOX[3]], [BBOX[0], BBOX[1]]]]},
        bbox=BBOX, datetime=None, properties={"start_datetime": "2024-01-01T00:00:00Z",
                                              "end_datetime": "2024-01-01T00:00:00Z"})
    for key, (href, roles, extra) in assets.items():
        item.add_asset(key, pystac.Asset(href, media_type=pystac.MediaType.COG, roles=roles, extra_fields=extra))
    return item


def write_item(item: pystac.Item, path: Path) -> Path:
    path.write_text(json.dumps(item.to_dict(include_self_link=False, transform_hrefs=False)))
    return path


@pytest.fixture
def scenes(tmp_path: Path) -> tuple[Path, Path]:
    a = write_painted_scene(tmp_path / "a_visual.tif", height=96, width=96, n_objects=5, seed=1).path
    b = write_painted_scene(tmp_path / "b_rgb.tif", height=96, width=96, n_objects=7, seed=2).path
    return a, b


def test_an_item_is_one_scene_named_by_its_id_reading_the_visual_asset(scenes: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    a, b = scenes
    item = make_item("S2A_tile_20240101", {
        "nir": ("b_rgb.tif", ["data"], {}),  # relative href: next to the item file
        "visual": ("a_visual.tif", ["visual"], {}),
    })
    path = write_item(item, tmp_path / "item.json")
    assert is_stac_input(str(path)) and not is_stac_input(str(a))
    found, note = stac_scenes(str(path))
    assert found == [NamedLocation(a, "S2A_tile_20240101")]
    assert note == "STAC: reading asset visual of each item (choose another with --asset)"
    gdf = detect_scenes(found, PaintedPredictor(), settings=DetectSettings(tile_size=64, overlap=16))
    assert set(gdf["scene"]) == {"S2A_tile_20240101"} and len(gdf) == 5
    chosen, note = stac_scenes(str(path), "nir")
    assert chosen == [NamedLocation(b, "S2A_tile_20240101")] and note is None


def test_rgb_bands_make_an_asset_rgb_like_and_none_is_one_clear_error(scenes: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    a, _ = scenes
    bands = {"eo:bands": [{"name": "B4", "common_name": "red"}, {"name": "B3", "common_name": "green"},
                          {"name": "B2", "common_name": "blue"}]}
    item = make_item("x", {"meta": ("meta.xml", ["metadata"], {}), "image": (str(a), ["data"], bands)})
    assert stac_scenes(str(write_item(item, tmp_path / "x.json")))[0] == [NamedLocation(a, "x")]
    # an item whose one GeoTIFF is its data (e.g. an aerial mosaic) needs no --asset
    single = make_item("z", {"image": (str(a), ["data"], {}), "meta": ("meta.xml", ["metadata"], {})})
    assert stac_scenes(str(write_item(single, tmp_path / "z.json")))[0] == [NamedLocation(a, "z")]
    plain = make_item("y", {"nir": (str(a), ["data"], {}), "swir": (str(a), ["data"], {})})
    with pytest.raises(ConfigError,
                       match=r"STAC item y has no RGB-like asset: choose one with --asset \(it has: nir, swir\)"):
        stac_scenes(str(write_item(plain, tmp_path / "y.json")))
    with pytest.raises(ConfigError, match=r"STAC item y has no asset 'visual' \(it has: nir, swir\)"):
        stac_scenes(str(tmp_path / "y.json"), "visual")


def test_item_collections_and_folders_are_many_scenes(scenes: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = scenes
    items = [make_item("first", {"visual": (str(a), ["visual"], {})}),
             make_item("second", {"visual": (str(b), ["visual"], {})})]
    collection = tmp_path / "collection.json"
    collection.write_text(json.dumps(pystac.ItemCollection(items).to_dict(transform_hrefs=False)))
    gathered = gather_scenes([str(collection)])
    assert gathered.scenes == [NamedLocation(a, "first"), NamedLocation(b, "second")]
    folder = tmp_path / "items"
    folder.mkdir()
    for item in items:
        write_item(item, folder / f"{item.id}.json")
    assert gather_scenes([str(folder)]).scenes == gathered.scenes
    gdf = detect_scenes(gathered.scenes, PaintedPredictor(), settings=DetectSettings(tile_size=64, overlap=16))
    assert sorted(gdf["scene"].value_counts().items()) == [("first", 5), ("second", 7)]


def test_an_item_url_with_http_assets(scenes: tuple[Path, Path], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")
    a, _ = scenes
    item = make_item("remote-item", {"visual": ("a_visual.tif", ["visual"], {})})  # relative to the item URL
    write_item(item, tmp_path / "item.json")
    with serve_folder(tmp_path) as (url, server):
        found, _ = stac_scenes(f"{url}/item.json")
        assert found == [NamedLocation(f"{url}/a_visual.tif", "remote-item")]
        gdf = detect_scenes(found, PaintedPredictor(), settings=DetectSettings(tile_size=64, overlap=16))
        assert ("GET", "/item.json", None) in server.requests
    assert set(gdf["scene"]) == {"remote-item"} and len(gdf) == 5


def test_not_stac_json_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "Catalog"}')
    with pytest.raises(ConfigError, match="bad.json is not a STAC Item or ItemCollection"):
        stac_scenes(str(bad))
    with pytest.raises(ConfigError, match="cannot read STAC .*missing.json"):
        stac_scenes(str(tmp_path / "missing.json"))
