"""One writer per output: a lock file ``<output>.lock`` beside it, held for the whole run.

The resume journal (``<output>.partial``) and the sink's temporary folder are named after
the output only, so two runs writing the same output would delete each other's files. A run
therefore takes an exclusive ``flock`` on ``<output>.lock`` (which also covers the journal)
and writes its pid and host name into it; a second run is refused with
``another fsanet run is writing OUT (pid N)``. The kernel drops a ``flock`` when its process
dies, so a lock file left by a killed run is stale as soon as it can be locked: it is taken
over with a :class:`~fsanet_geo.errors.StaleLockWarning` naming the run that left it. Where
the file system has no ``flock`` (some network mounts), the file is created with ``O_EXCL``
instead and a lock of this host whose pid is not alive counts as stale.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fsanet_geo.errors import OutputError, StaleLockWarning

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]


def lock_path(output: str | os.PathLike[str]) -> Path:
    """The lock file of ``output``: ``<output>.lock`` beside it."""
    p = Path(output)
    return p.with_name(p.name + ".lock")


def _holder(fd: int) -> dict[str, Any]:
    """The pid / host recorded in an open lock file ({} when empty or unreadable)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _who(holder: dict[str, Any]) -> str:
    host = holder.get("host")
    mine = host in (None, socket.gethostname())
    return f"pid {holder.get('pid', '?')}" + ("" if mine else f" on {host}")


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True  # alive (another user's), or unknown: do not take it over
    return True


class OutputLock:
    """The lock of one output; :meth:`acquire` then :meth:`release` (or use :func:`output_lock`)."""

    def __init__(self, output: str | os.PathLike[str]) -> None:
        self.output = Path(output)
        self.path = lock_path(output)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock; :class:`OutputError` when another live run holds it."""
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(f"cannot create the lock file {self.path}: {exc.strerror}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise OutputError(f"another fsanet run is writing {self.output} ({_who(holder)})") from None
            except OSError as exc:  # no flock here (e.g. a network mount)
                os.close(fd)
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                self._acquire_exclusive(me)
                return
            try:  # a run that just released it unlinked the file: lock the new one instead
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _holder(fd)
        if previous:
            warnings.warn(f"{self.path}: the run that held it ({_who(previous)}) is gone; taking it over",
                          StaleLockWarning, stacklevel=3)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, me)
        self._fd = fd

    def _acquire_exclusive(self, me: bytes) -> None:
        """Without flock: create the file with O_EXCL; a lock of this host with a dead pid is stale."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            fd = os.open(self.path, os.O_RDONLY)
            holder = _holder(fd)
            os.close(fd)
            if holder.get("host") == socket.gethostname() and not _pid_alive(holder.get("pid")):
                warnings.warn(f"{self.path}: the run that held it ({_who(holder)}) is gone; taking it over",
                              StaleLockWarning, stacklevel=4)
                os.unlink(self.path)
                self._acquire_exclusive(me)
                return
            raise OutputError(f"another fsanet run is writing {self.output} ({_who(holder)})") from None
        os.write(fd, me)
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file, then let go (a waiting run then locks a fresh file)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


@contextlib.contextmanager
def output_lock(output: str | os.PathLike[str]) -> Iterator[OutputLock]:
    """Hold the lock of ``output`` for the body (see the module docstring)."""
    lock = OutputLock(output)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
