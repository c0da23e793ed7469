"""Write failures of a file output said in one line that names the user's path.

A full disk shows up in many shapes: ``OSError(ENOSPC)`` from the journal, a GDAL/SQLite
``FeatureError ... database or disk is full`` from the GeoPackage writer, or a bare I/O
error once nothing is left. :func:`write_faults` turns them into
``no space left on device writing OUT`` and says what was kept: the resume journal's
finished tiles (for ``--resume`` once there is space) or nothing; the partial output itself
is always removed, and an output being replaced (``--overwrite``) is left as it was.
Other OS errors on the hidden temporary files name the output, never the temporary name.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from fsanet_geo.errors import FsanetError, OutputError

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXTS = ("no space left on device", "database or disk is full", "disk full", "disk quota exceeded")
NEARLY_FULL_BYTES = 1 << 20
"""An I/O error while the output's file system has less free space than this counts as a full disk."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def is_disk_full(exc: BaseException, folder: Path) -> bool:
    """True when ``exc`` (or an exception it came from) means the disk holding ``folder`` is full."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        if any(text in str(e).lower() for text in _FULL_TEXTS):
            return True
    if isinstance(exc, (OSError, RuntimeError)) or type(exc).__module__.startswith("pyogrio"):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    return False


def _temporary(path: str | None, out: Path) -> bool:
    """``path`` is one of the output's hidden temporaries or its journal."""
    if not path:
        return False
    name = Path(path)
    return any(p.name.startswith(f".{out.name}.") or p.name == f"{out.name}.partial"
               or (p.name.startswith(f".{out.stem}.") and ".tmp" in p.name)  # io_utils.atomic_path's
               for p in (name, *name.parents))


@contextlib.contextmanager
def write_faults(out: Path, kept: Callable[[], Path | None]) -> Iterator[None]:
    """Translate write failures of ``out`` (see the module docstring); ``kept()`` names the journal
    folder when it still holds finished tiles after the failure, else None."""
    try:
        yield
    except FsanetError:
        raise
    except Exception as exc:  # noqa: BLE001 - only disk-full and temporary-path errors are translated
        if is_disk_full(exc, out.parent):
            journal = kept()
            what = (f"the finished tiles are kept in {journal} for --resume once there is space"
                    if journal is not None else "nothing was kept")
            raise OutputError(f"no space left on device writing {out}: {what} (the partial output was removed)") \
                from exc
        if isinstance(exc, OSError) and _temporary(exc.filename, out):
            raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
        raise
