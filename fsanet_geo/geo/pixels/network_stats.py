"""Bytes fetched over the network by GDAL, for progress reports of remote scenes.

GDAL counts what its network file systems (``/vsicurl/``, ``/vsis3/`` ...) download when
``CPL_VSIL_NETWORK_STATS_ENABLED=YES`` (set by :data:`~fsanet_geo.geo.pixels.remote.REMOTE_GDAL_DEFAULTS`),
and gives the counts as JSON through ``VSINetworkStatsGetAsSerializedJSON``, a C function that
rasterio does not wrap. :func:`network_bytes` calls it through ctypes in the GDAL library
rasterio loaded (found in ``/proc/self/maps``: rasterio's own bundled copy when there is one,
since pyogrio's wheels bring a second GDAL that reads nothing here); where that is not
possible (not Linux, a GDAL older than 3.2, two GDALs and none rasterio's) it returns None and
progress simply shows no byte count.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
from typing import Any


@functools.lru_cache(maxsize=1)
def _stats_function() -> Any:
    """``VSINetworkStatsGetAsSerializedJSON``, ``VSIFree`` and ``VSICurlPartialClearCache`` (or None)
    of the loaded libgdal, or None."""
    import rasterio  # noqa: F401 - loads libgdal

    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libgdal" in os.path.basename(line.split()[-1])}
        ours = [p for p in paths if "rasterio" in p]
        if ours:
            paths = set(ours)
        if len(paths) != 1:
            return None
        for path in paths:
            lib = ctypes.CDLL(path)
            fn = getattr(lib, "VSINetworkStatsGetAsSerializedJSON", None)
            free = getattr(lib, "VSIFree", None)
            forget = getattr(lib, "VSICurlPartialClearCache", None)
            if fn is not None and free is not None:
                fn.restype, fn.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
                free.restype, free.argtypes = None, [ctypes.c_void_p]
                if forget is not None:
                    forget.restype, forget.argtypes = None, [ctypes.c_char_p]
                return fn, free, forget
    except (OSError, IndexError):
        return None
    return None


def _stats() -> dict[str, Any] | None:
    """GDAL's network statistics (JSON object), or None if unknown."""
    found = _stats_function()
    if found is None:
        return None
    fn, free = found[0], found[1]
    ptr = fn(None)
    if not ptr:
        return None
    try:
        return dict(json.loads(ctypes.string_at(ptr).decode("utf-8")))
    except ValueError:
        return None
    finally:
        free(ptr)


def network_bytes() -> int | None:
    """Bytes GDAL has downloaded in this process so far (all network file systems), or None if unknown."""
    stats = _stats()
    return None if stats is None else int(stats.get("methods", {}).get("GET", {}).get("downloaded_bytes", 0))


def network_requests() -> int | None:
    """HTTP requests (GET and HEAD) GDAL has sent in this process so far, retries included, or None."""
    stats = _stats()
    if stats is None:
        return None
    methods = stats.get("methods", {})
    return sum(int(methods.get(m, {}).get("count", 0)) for m in ("GET", "HEAD"))


def forget_remote_file(gdal_path: str) -> None:
    """Drop what GDAL's network file systems remember of ``gdal_path`` (size, existence, fetched
    ranges), so that a retry after a failure asks the server again; no-op where unreachable."""
    found = _stats_function()
    if found is not None and found[2] is not None:
        found[2](gdal_path.encode("utf-8"))
