"""Scene sources: --scene/--labels pairs and --scenes CSV lists (relative paths, URLs, bad rows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsanet_geo.errors import ConfigError
from fsanet_geo.geodata.sources import pair_sources, read_scene_list
from fsanet_geo.geodata.types import LabelSource


def test_pairs_in_order_with_qgis_layer_names() -> None:
    assert pair_sources(["a.tif", "b.tif"], ["a.gpkg", "all.gpkg|layername=cars"]) == [
        LabelSource("a.tif", "a.gpkg"), LabelSource("b.tif", "all.gpkg", layer="cars")]
    with pytest.raises(ConfigError, match=r"^2 --scene and 1 --labels given: give one --labels per --scene"):
        pair_sources(["a.tif", "b.tif"], ["a.gpkg"])
    with pytest.raises(ConfigError, match="empty layer name"):
        pair_sources(["a.tif"], ["a.gpkg|layername="])


def test_scene_list_resolves_relative_paths_and_keeps_urls(tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    folder.mkdir()
    csv = folder / "scenes.csv"
    csv.write_text("\ufeffscene, labels ,split,layer\n"
                   "# a comment\n"
                   "a.tif,labels/a.gpkg,train,\n"
                   "\n"
                   f"{tmp_path / 'b.tif'},b.gpkg,VAL,cars\n"
                   "https://example.com/c.tif?sig=1,s3://bucket/c.gpkg,,\n")
    assert read_scene_list(csv) == [
        LabelSource(str(folder / "a.tif"), str(folder / "labels/a.gpkg"), split="train"),
        LabelSource(str(tmp_path / "b.tif"), str(folder / "b.gpkg"), layer="cars", split="val"),
        LabelSource("https://example.com/c.tif?sig=1", "s3://bucket/c.gpkg"),
    ]
    short = folder / "short.csv"
    short.write_text("labels,scene\nx.gpkg,x.tif\n")
    assert read_scene_list(short) == [LabelSource(str(folder / "x.tif"), str(folder / "x.gpkg"))]


@pytest.mark.parametrize(("text", "message"), [
    ("scene,labels,split\na.tif,a.gpkg,train\nb.tif,b.gpkg,test\n",
     r"line 3: split 'test' is not train, val or empty$"),
    ("scene,labels\na.tif,a.gpkg\n\nb.tif\n", r"line 4: 1 values for 2 columns \(scene,labels\)$"),
    ("scene,labels\n,a.gpkg\n", r"line 2: empty scene$"),
    ("scene,label\na.tif,a.gpkg\n", r"line 1: header 'scene,label' is not scene,labels\[,split\]\[,layer\]$"),
    ("scene,labels\n", r"has a header but no scenes$"),
    ("", r"is empty \(expected a header scene,labels\[,split\]\[,layer\]\)$"),
])
def test_bad_scene_lists_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    csv = tmp_path / "s.csv"
    csv.write_text(text)
    with pytest.raises(ConfigError, match=rf"^scene list {csv} " + message):
        read_scene_list(csv)


def test_missing_scene_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^scene list .*none.csv does not exist$"):
        read_scene_list(tmp_path / "none.csv")
