"""Stop a training run cleanly on SIGINT / SIGTERM.

:class:`StopSignals` is a context manager: inside it, the first SIGINT (Ctrl-C) or SIGTERM
(a scheduler's stop) only sets :attr:`StopSignals.requested`; the training loop finishes
the current iteration, writes ``last`` and returns. A second signal of either kind raises
:class:`KeyboardInterrupt` at once (the escape hatch when saving itself hangs). The
previous handlers are restored on exit. Outside the main thread (where Python cannot
install handlers) it does nothing and the default behaviour stays.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Turn the first SIGINT / SIGTERM into a request to stop after the current iteration."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name
