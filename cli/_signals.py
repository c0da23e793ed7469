"""SIGTERM (a scheduler stopping a job) handled like Ctrl-C: the library cleans up the same way.

Python's default SIGTERM ends the process at once: the journal survives (its chunks are
atomic) but the lock and temporary files are left, and nothing says how to continue.
:func:`sigterm_as_interrupt` raises :class:`Terminated` (a ``KeyboardInterrupt``) instead,
so every ``finally`` and context manager runs; the command then exits with 143 (128 + 15).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

TERMINATED_EXIT_CODE = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the body, SIGTERM raises :class:`Terminated` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
