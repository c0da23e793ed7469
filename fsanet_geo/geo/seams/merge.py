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
the neighbouring tiles already done through a grid hash
(:func:`~fsanet_geo.ops.grid_pairs.intersecting_pairs_between`); pairs that would
interact (different tiles, same class, overlap above the threshold, the rules of
:mod:`fsanet_geo.ops.nms_rules`) become edges of a graph whose connected components are
tracked with union-find.
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
from typing import TYPE_CHECKING, Any

import numpy as np

from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.seams.merge_geometry import PreparedDetections, TileGeometry, prepare_detections
from fsanet_geo.geo.seams.merge_nms import MergeOptions, box_area, dense_nms, graph_nms
from fsanet_geo.geo.windows import TileWindow
from fsanet_geo.ops.grid_pairs import intersecting_pairs_between
from fsanet_geo.ops.nms_rules import NmsMethod, interaction_threshold
from fsanet_geo.ops.overlap import OverlapMetric, box_overlap

if TYPE_CHECKING:
    from fsanet_geo.geo.settings import DetectSettings

_LOCAL_BITS = 32  # a waiting detection's id is (tile << 32) + its row in the tile's chunk


@dataclass
class _Chunk:
    """The waiting detections of one tile, and which of them are still held."""

    data: PreparedDetections
    alive: np.ndarray
    has_edge: np.ndarray
    n_alive: int


@dataclass
class _Component:
    """A connected set of interacting waiting detections (ids) and its edges."""

    members: list[int]
    edges: list[tuple[int, int, float]] = field(default_factory=list)
    incomplete: int = 1


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
        metric: OverlapMetric = "ios",
        method: NmsMethod = "hard",
        sigma: float = 0.5,
        min_score: float = 1e-3,
        class_aware: bool = True,
        edge_margin: float = 1.0,
    ) -> None:
        self._options = MergeOptions(
            iou_threshold=float(iou_threshold), metric=metric, method=method, sigma=float(sigma),
            min_score=float(min_score), class_aware=class_aware, edge_margin=float(edge_margin),
        )  # fmt: skip
        self._geom = TileGeometry(windows, scene_height, scene_width)
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
        if len(dets) == 0:  # nothing to hold (e.g. a tile without data): only release what waited on t
            return Detections.concat(self._complete_tile(t))
        tiles = np.full(len(dets), t, np.int64)
        opts = self._options
        prep = prepare_detections(
            self._geom, dets, tiles, edge_margin=opts.edge_margin, min_score=opts.soft_min_score
        )
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

    def _hold(self, t: int, data: PreparedDetections, touch: np.ndarray, neighbours: np.ndarray) -> None:
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
        ia, ib = intersecting_pairs_between(a.boxes, b_boxes)
        if self._options.class_aware:
            same = a.labels[ia] == b_labels[ib]
            ia, ib = ia[same], ib[same]
        overlap = box_overlap(a.boxes[ia], b_boxes[ib], self._options.metric)
        hit = overlap > interaction_threshold(self._options.method, self._options.iou_threshold)
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

    def _gather(self, ids: np.ndarray) -> PreparedDetections:
        """The held data of ``ids`` (in the order of ``ids``)."""
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        tiles = sorted_ids >> _LOCAL_BITS
        cuts = np.r_[0, np.flatnonzero(np.diff(tiles)) + 1, len(ids)]
        parts = [
            self._chunks[int(tiles[s])].data.select(sorted_ids[s:e] & ((1 << _LOCAL_BITS) - 1))
            for s, e in zip(cuts[:-1], cuts[1:])
        ]
        fields = PreparedDetections.__dataclass_fields__
        merged = PreparedDetections(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))
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
        keep, scores = graph_nms(data.scores, box_area(data.boxes), data.tiles, data.seq, data.whole, u, v, o, self._options)
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
    opts = MergeOptions(**options)
    geom = TileGeometry(windows, scene_height, scene_width)
    tiles = dets.tile
    if len(tiles) and (tiles.min() < 0 or tiles.max() >= len(geom)):
        raise ValueError("every detection needs a valid tile index for the brute-force merge")
    prep = prepare_detections(geom, dets, tiles, edge_margin=opts.edge_margin, min_score=opts.soft_min_score)
    keep, scores = dense_nms(prep.boxes, prep.scores, prep.labels, prep.tiles, prep.seq, prep.whole, opts)
    return prep.select(keep).to_detections(scores)


def merger_for(
    windows: Sequence[TileWindow], scene_height: int, scene_width: int, settings: DetectSettings
) -> SeamMerger:
    """The :class:`SeamMerger` a detection run with ``settings`` uses over ``windows`` (scene
    pixels); ``fsanet detect`` and the tiled evaluation of large images share it."""
    return SeamMerger(
        windows,
        scene_height,
        scene_width,
        iou_threshold=settings.nms_iou,
        metric=settings.merge_metric,  # type: ignore[arg-type]
        method=settings.merge_method,  # type: ignore[arg-type]
        sigma=settings.soft_nms_sigma,
        class_aware=True,
    )
