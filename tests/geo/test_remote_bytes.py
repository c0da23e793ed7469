"""Each byte once: a remote scene read by 1, 2 or 4 threads fetches its blocks once (issue 24, point 1).

A small COG (128 px uncompressed blocks) is served by a local server that counts the body bytes
it sends; tiles of 192 px with a 32 px overlap cut through blocks, so that neighbouring tiles
share blocks (read twice before the fix, once per thread's handle)."""

from __future__ import annotations

from pathlib import Path

import geopandas
import pytest
import shapely
from http_helpers import block_bytes, serve_folder, write_painted_cog
from scene_helpers import UTM_TRANSFORM, PaintedPredictor, PaintedScene

from fsanet_geo.geo.detect.pipeline import detect_scene
from fsanet_geo.geo.pixels.tiled_scene import open_tiled_scenes
from fsanet_geo.geo.settings import DetectSettings

TILE, OVERLAP = 192, 32


HEADER = 64 * 2**10
"""What GDAL reads at open (one chunk: TIFF header, IFDs, block index), bytes."""


@pytest.fixture(scope="module")
def cog(tmp_path_factory: pytest.TempPathFactory) -> PaintedScene:
    return write_painted_cog(tmp_path_factory.mktemp("www") / "cog.tif", height=640, width=640, n_objects=30)


@pytest.fixture(scope="module")
def big_cog(tmp_path_factory: pytest.TempPathFactory) -> PaintedScene:
    return write_painted_cog(tmp_path_factory.mktemp("www") / "cog.tif", height=1024, width=1024, n_objects=30)


def needed(cog: PaintedScene, settings: DetectSettings) -> int:
    """Bytes of the blocks under the tiles ``settings`` reads."""
    scenes = open_tiled_scenes([cog.path], settings, TILE, OVERLAP, None, warn=False)
    return block_bytes(cog.path, [tuple(w) for w in scenes[0].windows])  # type: ignore[misc]


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_a_whole_scene_costs_its_blocks_once(cog: PaintedScene, threads: int) -> None:
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, read_threads=threads, batch_size=2)
    local = detect_scene(cog.path, PaintedPredictor(), settings=settings)
    with serve_folder(cog.path.parent) as (url, server):
        server.reset_counts()
        remote = detect_scene(f"{url}/cog.tif", PaintedPredictor(), settings=settings)
        sent = server.bytes_sent
    size = cog.path.stat().st_size
    assert len(remote) == len(local) == 30
    assert block_bytes(cog.path) <= sent <= 1.05 * size, (threads, sent / size)
    assert sent <= 1.1 * needed(cog, settings)


@pytest.mark.parametrize("threads", [2, 4])
def test_an_aoi_costs_the_blocks_under_its_tiles_once(big_cog: PaintedScene, threads: int, tmp_path: Path) -> None:
    cog = big_cog
    box = shapely.box(UTM_TRANSFORM.c + 400 * 0.5, UTM_TRANSFORM.f - 600 * 0.5,  # pixels 400..600, both axes
                      UTM_TRANSFORM.c + 600 * 0.5, UTM_TRANSFORM.f - 400 * 0.5)
    geopandas.GeoDataFrame(geometry=[box], crs=32633).to_file(tmp_path / "aoi.gpkg")
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, read_threads=threads, batch_size=1,
                              aoi=str(tmp_path / "aoi.gpkg"))
    under = needed(cog, settings)
    with serve_folder(cog.path.parent) as (url, server):
        server.reset_counts()
        detect_scene(f"{url}/cog.tif", PaintedPredictor(), settings=settings)
        sent = server.bytes_sent
    assert under == 16 * 128 * 128 * 3  # 4 tiles over 4 x 4 blocks of the 8 x 8
    assert under <= sent <= 1.1 * under + HEADER, (threads, sent / under)
