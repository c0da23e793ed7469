"""Streaming cross-tile merge: NMS only where tiles overlap, results as soon as they are final.

Letters: K = tiles, N = detections. All coordinates are scene pixels (pixel edges).

How it works
------------
Each tile's detections (already in scene pixels) are clipped to the tile's window. A
detection whose box meets no other tile's window (positive area) lies in its tile's
exclusive area: nothing from another tile can overlap it, so it is final at once and is
never compared with anything. The others wait in a bucket keyed by the set of tiles their
box meets (an overlap zone) until every one of those tiles is done.

When a tile arrives, its waiting detections are paired with the waiting detections of
the neighbouring tiles already done through a grid hash (:func:`overlapping_pairs`);
pairs that would interact (different tiles, same class, overlap above the threshold)
become edges of a graph whose connected components are tracked with union-find.
A component is decided (greedy NMS on its members, :func:`graph_nms`) once all of its
members' zones are complete: no later tile can add a member then, because a new
neighbour of a detection can only come from a tile its box meets.

Equivalence with the brute force (the statement tested with hypothesis)
-----------------------------------------------------------------------
Greedy NMS, hard or soft, never lets two detections influence each other unless they
are joined by a chain of interacting pairs, so it decomposes exactly over the connected
components of the interaction graph. The streamed result therefore equals
:func:`brute_force_merge`, a global O(N^2) greedy NMS over all detections of all tiles,
provided both use the same rules, which define the merge:

- boxes are first clipped to their own tile's window (and the scene); empty boxes dropped;
- only detections from different tiles interact (the predictor already ran NMS per tile);
- priority = (not truncated, score), ties broken by (tile index, position in the tile).

Chains of overlaps that cross several zones are handled (a component waits for all its
zones), so no zone-local approximation is involved: the statement holds exactly, soft-NMS
scores included, whatever the tile order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.merge_nms import (
    Method,
    Metric,
    dense_nms,
    edge_threshold,
    graph_nms,
    overlapping_pairs,
    pair_overlap,
)
from fsanet_geo.geo.windows import TileWindow

_LOCAL_BITS = 32  # a waiting detection's id is (tile << 32) + its row in the tile's chunk


@dataclass
class _Prepared:
    """Detections of one or more tiles after clipping; float64 scores, whole = not truncated."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    tiles: np.ndarray
    seq: np.ndarray
    whole: np.ndarray

    def select(self, index: np.ndarray) -> "_Prepared":
        return _Prepared(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    def to_detections(self, scores: np.ndarray | None = None) -> Detections:
        return Detections(self.boxes, self.scores if scores is None else scores, self.labels, self.tiles)


@dataclass
class _Chunk:
    """The waiting detections of one tile, and which of them are still held."""

    data: _Prepared
    alive: np.ndarray
    has_edge: np.ndarray
    n_alive: int


@dataclass
class _Component:
    """A connected set of interacting waiting detections (ids) and its edges."""

    members: list[int]
    edges: list[tuple[int, int, float]] = field(default_factory=list)
    incomplete: int = 1


class _Geometry:
    """Tile windows as clipped xyxy arrays, plus which of their edges are interior."""

    def __init__(self, windows: Sequence[TileWindow], height: int, width: int) -> None:
        if height <= 0 or width <= 0:
            raise ConfigError(f"scene size must be positive, got {height} x {width}")
        w = np.asarray([tuple(win) for win in windows], np.int64).reshape(-1, 4)
        if len(w) == 0:
            raise ConfigError("no tile windows given")
        row, col, h, wd = w.T
        self.x0 = np.clip(col, 0, width).astype(np.float64)
        self.y0 = np.clip(row, 0, height).astype(np.float64)
        self.x1 = np.clip(col + wd, 0, width).astype(np.float64)
        self.y1 = np.clip(row + h, 0, height).astype(np.float64)
        if np.any((self.x1 <= self.x0) | (self.y1 <= self.y0)):
            raise ConfigError("every tile window must overlap the scene")
        # An edge is interior when the scene goes on beyond it.
        self.left_in = col > 0
        self.top_in = row > 0
        self.right_in = col + wd < width
        self.bottom_in = row + h < height
        self._neighbours: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.x0)

    def neighbours(self, t: int) -> np.ndarray:
        """Tiles (other than ``t``) whose windows overlap tile ``t``'s with positive area."""
        cached = self._neighbours.get(t)
        if cached is None:
            hit = (np.minimum(self.x1, self.x1[t]) > np.maximum(self.x0, self.x0[t])) & (
                np.minimum(self.y1, self.y1[t]) > np.maximum(self.y0, self.y0[t])
            )
            hit[t] = False
            cached = self._neighbours[t] = np.flatnonzero(hit)
        return cached

    def touches(self, boxes: np.ndarray, tiles: np.ndarray) -> np.ndarray:
        """bool [N, len(tiles)]: box i meets window tiles[k] with positive area."""
        b = boxes[:, None, :]
        return (np.minimum(b[..., 2], self.x1[tiles]) > np.maximum(b[..., 0], self.x0[tiles])) & (
            np.minimum(b[..., 3], self.y1[tiles]) > np.maximum(b[..., 1], self.y0[tiles])
        )


def _prepare(
    geom: _Geometry,
    dets: Detections,
    tiles: np.ndarray,
    *,
    edge_margin: float,
    min_score: float | None,
) -> _Prepared:
    """Clip to each detection's tile window, drop empty (and too-low soft-NMS) boxes, flag truncation.

    ``seq`` is the position of each detection among those of its tile, in input order.
    """
    n = len(dets)
    order = np.argsort(tiles, kind="stable")
    seq = np.empty(n, np.int64)
    if n:
        starts = np.r_[0, np.flatnonzero(np.diff(tiles[order])) + 1]
        counts = np.diff(np.r_[starts, n])
        seq[order] = np.arange(n) - np.repeat(starts, counts)
    x0, y0, x1, y1 = geom.x0[tiles], geom.y0[tiles], geom.x1[tiles], geom.y1[tiles]
    boxes = np.stack(
        [
            np.clip(dets.boxes[:, 0], x0, x1),
            np.clip(dets.boxes[:, 1], y0, y1),
            np.clip(dets.boxes[:, 2], x0, x1),
            np.clip(dets.boxes[:, 3], y0, y1),
        ],
        axis=1,
    ).reshape(n, 4)
    truncated = (
        (geom.left_in[tiles] & (boxes[:, 0] < x0 + edge_margin))
        | (geom.top_in[tiles] & (boxes[:, 1] < y0 + edge_margin))
        | (geom.right_in[tiles] & (boxes[:, 2] > x1 - edge_margin))
        | (geom.bottom_in[tiles] & (boxes[:, 3] > y1 - edge_margin))
    )
    scores = dets.scores.astype(np.float64)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if min_score is not None:
        keep &= scores >= min_score
    return _Prepared(boxes, scores, dets.labels, tiles, seq, ~truncated).select(keep)


def _check_options(
    iou_threshold: float, metric: str, method: str, sigma: float, min_score: float, edge_margin: float
) -> None:
    if not 0.0 <= iou_threshold <= 1.0:
        raise ConfigError(f"NMS threshold must be in [0, 1], got {iou_threshold}")
    if metric not in ("iou", "ios"):
        raise ConfigError(f"unknown overlap metric {metric!r} (use 'iou' or 'ios')")
    if method not in ("hard", "linear", "gaussian"):
        raise ConfigError(f"unknown NMS method {method!r} (use 'hard', 'linear' or 'gaussian')")
    if sigma <= 0:
        raise ConfigError(f"soft-NMS sigma must be positive, got {sigma}")
    if not 0.0 <= min_score <= 1.0:
        raise ConfigError(f"minimum score must be in [0, 1], got {min_score}")
    if edge_margin < 0:
        raise ConfigError(f"edge margin must be >= 0 pixels, got {edge_margin}")


class SeamMerger:
    """Merge detections of overlapping tiles, tile by tile, in any order.

    Args:
        windows: the K tile windows (scene pixels); tile index = position in this list.
        scene_height, scene_width: scene size in pixels.
        iou_threshold: overlap above which a lower-priority detection is suppressed (hard,
            linear soft-NMS).
        metric: ``"ios"`` (intersection over the smaller box, default) or ``"iou"``.
        method: ``"hard"`` NMS, or soft-NMS ``"linear"`` / ``"gaussian"``.
        sigma: Gaussian soft-NMS width. min_score: soft-NMS drops scores below this.
        class_aware: only detections of the same label interact.
        edge_margin: pixels; a box within this distance of an interior tile edge is
            truncated and loses to any non-truncated twin whatever the scores.

    Tiles skipped by the caller (e.g. all nodata) must still be reported, with
    ``add(t, Detections())``, or :meth:`finish` must be called with ``allow_missing=True``.
    See the module docstring for the algorithm and its exact equivalence to
    :func:`brute_force_merge`.
    """

    def __init__(
        self,
        windows: Sequence[TileWindow],
        scene_height: int,
        scene_width: int,
        *,
        iou_threshold: float = 0.5,
        metric: Literal["iou", "ios"] = "ios",
        method: Literal["hard", "linear", "gaussian"] = "hard",
        sigma: float = 0.5,
        min_score: float = 1e-3,
        class_aware: bool = True,
        edge_margin: float = 1.0,
    ) -> None:
        _check_options(iou_threshold, metric, method, sigma, min_score, edge_margin)
        self._geom = _Geometry(windows, scene_height, scene_width)
        self._metric: Metric = metric
        self._method: Method = method
        self._thr = float(iou_threshold)
        self._sigma = float(sigma)
        self._min_score = float(min_score)
        self._class_aware = class_aware
        self._edge_margin = float(edge_margin)
        self._done = np.zeros(len(self._geom), bool)
        self._chunks: dict[int, _Chunk] = {}
        self._buckets: dict[frozenset[int], tuple[set[int], list[np.ndarray]]] = {}
        self._waiting_on: dict[int, list[frozenset[int]]] = {}
        self._parent: dict[int, int] = {}
        self._components: dict[int, _Component] = {}
        self._pending = 0
        self._finished = False

    @property
    def pending(self) -> int:
        """Number of detections held back, waiting for neighbouring tiles."""
        return self._pending

    @property
    def tiles_done(self) -> int:
        """Number of tiles added so far."""
        return int(self._done.sum())

    def add(self, tile_index: int, dets: Detections) -> Detections:
        """Take the detections of one tile (scene pixels) and return those now final.

        The returned detections carry ``tile`` = their source tile; soft-NMS may have
        lowered their scores. Raises ValueError for an unknown or repeated tile.
        """
        t = int(tile_index)
        if self._finished:
            raise ValueError("the merge is finished; no more tiles can be added")
        if not 0 <= t < len(self._geom):
            raise ValueError(f"tile index {t} is out of range (0..{len(self._geom) - 1})")
        if self._done[t]:
            raise ValueError(f"tile {t} was already added")
        tiles = np.full(len(dets), t, np.int64)
        soft_min = None if self._method == "hard" else self._min_score
        prep = _prepare(self._geom, dets, tiles, edge_margin=self._edge_margin, min_score=soft_min)
        neighbours = self._geom.neighbours(t)
        touch = self._geom.touches(prep.boxes, neighbours)
        waiting = touch.any(axis=1)
        final = [prep.select(~waiting).to_detections()]
        if waiting.any():
            self._hold(t, prep.select(waiting), touch[waiting], neighbours)
        final.extend(self._complete_tile(t))
        return Detections.concat(final)

    def finish(self, *, allow_missing: bool = False) -> Detections:
        """Return the detections still held; error if tiles were never added.

        With ``allow_missing=True`` the missing tiles are taken as empty.
        """
        missing = np.flatnonzero(~self._done)
        if len(missing) and not allow_missing:
            shown = ", ".join(str(i) for i in missing[:10])
            raise ValueError(
                f"{len(missing)} of {len(self._done)} tiles were never added (first: {shown});"
                " add them, or pass allow_missing=True"
            )
        out = [self.add(int(t), Detections()) for t in missing]
        self._finished = True
        assert self._pending == 0, "all tiles are done, nothing may wait"
        return Detections.concat(out)

    # -- holding ---------------------------------------------------------------------

    def _hold(self, t: int, data: _Prepared, touch: np.ndarray, neighbours: np.ndarray) -> None:
        n = len(data.boxes)
        ids = (np.int64(t) << _LOCAL_BITS) + np.arange(n, dtype=np.int64)
        chunk = _Chunk(data, np.ones(n, bool), np.zeros(n, bool), n)
        self._chunks[t] = chunk
        self._pending += n
        self._link(t, chunk, ids, neighbours[self._done[neighbours] & touch.any(axis=0)])
        patterns, inverse = np.unique(touch, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        for p, pattern in enumerate(patterns):
            key = frozenset([t, *neighbours[pattern].tolist()])
            bucket = self._buckets.get(key)
            if bucket is None:
                outstanding = {u for u in key if not self._done[u]}
                bucket = self._buckets[key] = (outstanding, [])
                for u in outstanding:
                    self._waiting_on.setdefault(u, []).append(key)
            bucket[1].append(ids[inverse == p])

    def _link(self, t: int, chunk: _Chunk, ids: np.ndarray, others: np.ndarray) -> None:
        """Find the interacting pairs between tile t's waiting detections and those of done tiles."""
        parts = [(u, np.flatnonzero(self._chunks[u].alive)) for u in others.tolist() if u in self._chunks]
        if not parts:
            return
        b_ids = np.concatenate([(np.int64(u) << _LOCAL_BITS) + rows for u, rows in parts])
        b_boxes = np.concatenate([self._chunks[u].data.boxes[rows] for u, rows in parts])
        b_labels = np.concatenate([self._chunks[u].data.labels[rows] for u, rows in parts])
        a = chunk.data
        ia, ib = overlapping_pairs(a.boxes, b_boxes)
        if self._class_aware:
            same = a.labels[ia] == b_labels[ib]
            ia, ib = ia[same], ib[same]
        overlap = pair_overlap(a.boxes[ia], b_boxes[ib], self._metric)
        hit = overlap > edge_threshold(self._method, self._thr)
        ia, ib, overlap = ia[hit], ib[hit], overlap[hit]
        if len(ia) == 0:
            return
        chunk.has_edge[ia] = True
        linked_ids = b_ids[ib]
        for u, _ in parts:
            rows = linked_ids[linked_ids >> _LOCAL_BITS == u] & ((1 << _LOCAL_BITS) - 1)
            self._chunks[u].has_edge[rows] = True
        for x, y, o in zip(ids[ia].tolist(), b_ids[ib].tolist(), overlap.tolist()):
            rx, ry = self._find(x), self._find(y)
            if rx != ry:
                cx, cy = self._components[rx], self._components[ry]
                if len(cx.members) < len(cy.members):
                    rx, ry, cx, cy = ry, rx, cy, cx
                cx.members.extend(cy.members)
                cx.edges.extend(cy.edges)
                cx.incomplete += cy.incomplete
                self._parent[ry] = rx
                del self._components[ry]
            self._components[rx].edges.append((x, y, o))

    def _find(self, x: int) -> int:
        parent = self._parent
        if x not in parent:
            parent[x] = x
            self._components[x] = _Component([x])
            return x
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    # -- releasing -------------------------------------------------------------------

    def _complete_tile(self, t: int) -> list[Detections]:
        """Mark tile t done; decide every detection whose component is now complete."""
        self._done[t] = True
        completed: list[np.ndarray] = []
        for key in self._waiting_on.pop(t, []):
            outstanding, members = self._buckets[key]
            outstanding.discard(t)
            if not outstanding:
                completed.extend(members)
                del self._buckets[key]
        if not completed:
            return []
        ids = np.concatenate(completed)
        linked = self._gather_flag(ids)
        out = [self._release(ids[~linked])]
        ready: list[_Component] = []
        for x in ids[linked].tolist():
            root = self._find(x)
            comp = self._components[root]
            comp.incomplete -= 1
            if comp.incomplete == 0:
                ready.append(comp)
                del self._components[root]
        if ready:
            out.append(self._decide(ready))
        return out

    def _gather_flag(self, ids: np.ndarray) -> np.ndarray:
        flag = np.empty(len(ids), bool)
        tiles = ids >> _LOCAL_BITS
        for u in np.unique(tiles).tolist():
            sel = tiles == u
            flag[sel] = self._chunks[u].has_edge[ids[sel] & ((1 << _LOCAL_BITS) - 1)]
        return flag

    def _gather(self, ids: np.ndarray) -> _Prepared:
        """The held data of ``ids`` (in the order of ``ids``)."""
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        tiles = sorted_ids >> _LOCAL_BITS
        cuts = np.r_[0, np.flatnonzero(np.diff(tiles)) + 1, len(ids)]
        parts = [
            self._chunks[int(tiles[s])].data.select(sorted_ids[s:e] & ((1 << _LOCAL_BITS) - 1))
            for s, e in zip(cuts[:-1], cuts[1:])
        ]
        fields = _Prepared.__dataclass_fields__
        merged = _Prepared(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return merged.select(inverse)

    def _drop(self, ids: np.ndarray) -> None:
        tiles = ids >> _LOCAL_BITS
        for u in np.unique(tiles).tolist():
            chunk = self._chunks[u]
            rows = ids[tiles == u] & ((1 << _LOCAL_BITS) - 1)
            chunk.alive[rows] = False
            chunk.n_alive -= len(rows)
            if chunk.n_alive == 0:
                del self._chunks[u]
        self._pending -= len(ids)

    def _release(self, ids: np.ndarray) -> Detections:
        """Detections without any interacting pair: final as they are."""
        if len(ids) == 0:
            return Detections()
        data = self._gather(ids)
        self._drop(ids)
        return data.to_detections()

    def _decide(self, components: list[_Component]) -> Detections:
        """Greedy (soft-)NMS over complete components (they never interact with each other)."""
        ids = np.asarray([x for c in components for x in c.members], np.int64)
        local = {x: i for i, x in enumerate(ids.tolist())}
        edges = [e for c in components for e in c.edges]
        u = np.asarray([local[e[0]] for e in edges], np.int64)
        v = np.asarray([local[e[1]] for e in edges], np.int64)
        o = np.asarray([e[2] for e in edges], np.float64)
        for x in ids.tolist():
            del self._parent[x]
        data = self._gather(ids)
        keep, scores = graph_nms(
            data.scores,
            data.tiles,
            data.seq,
            data.whole,
            u,
            v,
            o,
            method=self._method,
            iou_threshold=self._thr,
            sigma=self._sigma,
            min_score=self._min_score,
        )
        self._drop(ids)
        return data.select(keep).to_detections(scores)


def brute_force_merge(
    dets: Detections,
    windows: Sequence[TileWindow],
    scene_height: int,
    scene_width: int,
    **options: Any,
) -> Detections:
    """Reference merge: one global O(N^2) greedy NMS over all detections of all tiles.

    ``dets.tile`` must give each detection's tile (index into ``windows``); the options
    are those of :class:`SeamMerger`. Same rules (clipping, cross-tile pairs only,
    truncated-loses priority), no zones, no graph: used to test the streamed merge.
    """
    merger_defaults: dict[str, Any] = dict(
        iou_threshold=0.5, metric="ios", method="hard", sigma=0.5, min_score=1e-3,
        class_aware=True, edge_margin=1.0,
    )  # fmt: skip
    unknown = set(options) - set(merger_defaults)
    if unknown:
        raise TypeError(f"unknown options: {sorted(unknown)}")
    opts = {**merger_defaults, **options}
    _check_options(
        opts["iou_threshold"], opts["metric"], opts["method"], opts["sigma"], opts["min_score"],
        opts["edge_margin"],
    )  # fmt: skip
    geom = _Geometry(windows, scene_height, scene_width)
    tiles = dets.tile
    if len(tiles) and (tiles.min() < 0 or tiles.max() >= len(geom)):
        raise ValueError("every detection needs a valid tile index for the brute-force merge")
    soft_min = None if opts["method"] == "hard" else opts["min_score"]
    prep = _prepare(geom, dets, tiles, edge_margin=opts["edge_margin"], min_score=soft_min)
    keep, scores = dense_nms(
        prep.boxes,
        prep.scores,
        prep.labels,
        prep.tiles,
        prep.seq,
        prep.whole,
        metric=opts["metric"],
        method=opts["method"],
        iou_threshold=opts["iou_threshold"],
        sigma=opts["sigma"],
        min_score=opts["min_score"],
        class_aware=opts["class_aware"],
    )
    return prep.select(keep).to_detections(scores)
