"""Read tiles ahead in background threads, in order, with a bounded queue.

Memory is ``depth`` tiles whatever the scene size; see :func:`prefetch_tiles`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

from fsanet_geo.geo.windows import TileWindow

TileT_co = TypeVar("TileT_co", covariant=True)


class IndexedReader(Protocol[TileT_co]):
    """What :func:`prefetch_tiles` reads from (e.g. ``reader.TileReader``, which yields ``TileData``)."""

    def read(self, index: int, window: TileWindow) -> TileT_co: ...


def prefetch_tiles(
    reader: IndexedReader[TileT_co],
    windows: Sequence[TileWindow],
    indexes: Sequence[int],
    *,
    threads: int = 2,
    depth: int = 8,
) -> Iterator[TileT_co]:
    """Yield ``reader.read(i, windows[i])`` for ``i`` in ``indexes``, in order.

    ``threads`` background threads keep up to ``depth`` tiles read ahead (a bounded
    queue: memory is ``depth`` tiles, whatever the scene size). Closing the generator
    early cancels the reads not yet started.
    """
    threads = max(1, int(threads))
    depth = max(1, int(depth))
    todo = iter(indexes)
    pending: deque[Future[TileT_co]] = deque()
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fsanet-read")
    try:
        for i in todo:
            pending.append(pool.submit(reader.read, i, windows[i]))
            if len(pending) >= depth:
                break
        while pending:
            tile = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(reader.read, nxt, windows[nxt]))
            yield tile
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
