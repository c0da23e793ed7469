"""Tile window arithmetic: hand cases and coverage invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.pixels.tiling import axis_starts, tile_windows
from fsanet_geo.geo.windows import TileWindow


def test_hand_case_2000_by_2500_tile_800_overlap_100() -> None:
    windows = tile_windows(2000, 2500, 800, 100)
    rows = [0, 700, 1200]
    cols = [0, 700, 1400, 1700]
    assert windows == [TileWindow(r, c, 800, 800) for r in rows for c in cols]


def test_exact_fit_has_no_shifted_tile() -> None:
    # 1500 = 800 + 700: the second window ends exactly on the edge.
    assert axis_starts(1500, 800, 100) == [0, 700]
    assert tile_windows(800, 800, 800, 100) == [TileWindow(0, 0, 800, 800)]


def test_scene_smaller_than_tile_gives_one_window_of_scene_size() -> None:
    assert tile_windows(300, 500, 800, 64) == [TileWindow(0, 0, 300, 500)]


def test_one_axis_smaller_than_tile() -> None:
    windows = tile_windows(300, 1000, 800, 100)
    assert windows == [TileWindow(0, 0, 300, 800), TileWindow(0, 200, 300, 800)]


def test_zero_overlap_tiles_edge_to_edge() -> None:
    assert axis_starts(2400, 800, 0) == [0, 800, 1600]
    assert axis_starts(2401, 800, 0) == [0, 800, 1600, 1601]


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap", "match"),
    [
        (100, 100, 64, 64, "smaller than the tile size"),
        (100, 100, 64, 80, "smaller than the tile size"),
        (100, 100, 64, -1, "overlap must be >= 0"),
        (100, 100, 0, 0, "tile size must be positive"),
        (0, 100, 64, 8, "scene size must be positive"),
    ],
)
def test_invalid_settings_raise_config_error(
    height: int, width: int, tile: int, overlap: int, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        tile_windows(height, width, tile, overlap)


scene_and_tiling = st.integers(1, 64).flatmap(
    lambda tile: st.tuples(
        st.integers(1, 300),
        st.integers(1, 300),
        st.just(tile),
        st.integers(0, tile - 1),
    )
)


@settings(max_examples=100, deadline=None)
@given(scene_and_tiling)
def test_windows_inside_scene_full_size_unique_and_row_major(params: tuple[int, int, int, int]) -> None:
    height, width, tile, overlap = params
    windows = tile_windows(height, width, tile, overlap)
    assert len(set(windows)) == len(windows)
    assert windows == sorted(windows, key=lambda w: (w.row_off, w.col_off))
    for w in windows:
        assert 0 <= w.row_off and w.row_end <= height
        assert 0 <= w.col_off and w.col_end <= width
        assert w.height == min(tile, height) and w.width == min(tile, width)


@settings(max_examples=100, deadline=None)
@given(scene_and_tiling)
def test_every_pixel_is_covered(params: tuple[int, int, int, int]) -> None:
    height, width, tile, overlap = params
    covered = np.zeros((height, width), bool)
    for w in tile_windows(height, width, tile, overlap):
        covered[w.row_off : w.row_end, w.col_off : w.col_end] = True
    assert covered.all()


@settings(max_examples=150, deadline=None)
@given(scene_and_tiling, st.data())
def test_objects_no_larger_than_overlap_lie_wholly_inside_a_tile(
    params: tuple[int, int, int, int], data: st.DataObject
) -> None:
    height, width, tile, overlap = params
    obj_h = data.draw(st.integers(1, max(1, min(overlap, height))))
    obj_w = data.draw(st.integers(1, max(1, min(overlap, width))))
    top = data.draw(st.integers(0, height - obj_h))
    left = data.draw(st.integers(0, width - obj_w))
    windows = tile_windows(height, width, tile, overlap)
    assert any(
        w.row_off <= top and top + obj_h <= w.row_end and w.col_off <= left and left + obj_w <= w.col_end
        for w in windows
    )


@settings(max_examples=100, deadline=None)
@given(scene_and_tiling)
def test_consecutive_windows_share_at_least_overlap(params: tuple[int, int, int, int]) -> None:
    height, _, tile, overlap = params
    starts = axis_starts(height, tile, overlap)
    for a, b in zip(starts, starts[1:]):
        assert 0 < b - a <= tile - overlap
