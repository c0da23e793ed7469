"""Retries of a remote scene's opens and reads, bounded in total time per scene.

GDAL retries a request answered 429 or 5xx itself (``GDAL_HTTP_MAX_RETRY`` times, backoff from
``GDAL_HTTP_RETRY_DELAY``, see :data:`~fsanet_geo.geo.pixels.remote.REMOTE_GDAL_DEFAULTS`), but
not a connection dropped in the middle of a reply or a truncated body, and a server failing
every request cost minutes (each request its own retries). :class:`RetryBudget` wraps an open or
a window read: a transient fault (see :func:`~fsanet_geo.geo.pixels.remote.classify_remote_error`)
is retried with backoff, GDAL's memory of the file dropped first, until the scene has been
failing for :func:`retry_seconds` (environment ``FSANET_RETRY_SECONDS``, default 60 s); then one
line says the server kept failing, with the requests sent and the last status. A failure with no
status (a truncated reply reads as a failed decode) is retried :data:`UNSURE_ATTEMPTS` times only,
since a file that is not a raster fails the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from rasterio.errors import RasterioError

from fsanet_geo.errors import RasterError
from fsanet_geo.geo.pixels.network_stats import forget_remote_file, network_requests
from fsanet_geo.geo.pixels.remote import SceneLocation, classify_remote_error, display_location, gdal_path
from fsanet_geo.geo.pixels.unreadable import gdal_error_text

T = TypeVar("T")

RETRY_SECONDS_ENV = "FSANET_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 60.0
UNSURE_ATTEMPTS = 3
_FIRST_DELAY_S, _MAX_DELAY_S = 0.25, 8.0


_BOUND: contextvars.ContextVar[float | None] = contextvars.ContextVar("fsanet_retry_bound", default=None)
BOUND_OPTION = "--retry-seconds"


@contextlib.contextmanager
def retry_bound(seconds: float | None) -> Iterator[None]:
    """Within the block (this thread and context), :func:`retry_seconds` is ``seconds``
    (``DetectSettings.retry_seconds``, ``fsanet detect --retry-seconds``); None changes nothing."""
    token = _BOUND.set(seconds) if seconds is not None else None
    try:
        yield
    finally:
        if token is not None:
            _BOUND.reset(token)


def bound_source() -> str:
    """What set the bound now in force: the option, else the environment variable."""
    return BOUND_OPTION if _BOUND.get() is not None else RETRY_SECONDS_ENV


def retry_seconds() -> float:
    """The bound on one scene's retries, seconds: :func:`retry_bound`'s, else
    ``FSANET_RETRY_SECONDS``, else 60."""
    bound = _BOUND.get()
    if bound is not None:
        return max(0.0, float(bound))
    value = os.environ.get(RETRY_SECONDS_ENV)
    try:
        return max(0.0, float(value)) if value else DEFAULT_RETRY_SECONDS
    except ValueError:
        raise RasterError(f"{RETRY_SECONDS_ENV}={value!r} is not a number of seconds") from None


class RetryBudget:
    """Retries of one remote scene, sharing one time bound (``seconds``; None: :func:`retry_seconds`).
    Safe to share between threads (counts are only informative)."""

    def __init__(self, location: SceneLocation, seconds: float | None = None) -> None:
        self.location = location
        self.seconds = retry_seconds() if seconds is None else seconds
        self.source = bound_source() if seconds is None else BOUND_OPTION
        self.first_failure: float | None = None
        self.failures = 0
        self.requests = 0
        self.last = ""

    def call(self, action: Callable[[], T]) -> T:
        """``action()``, retried on transient faults while the budget lasts; its error otherwise."""
        delay, unsure = _FIRST_DELAY_S, 0
        while True:
            sent = network_requests()
            try:
                return action()
            except RasterioError as exc:
                fault = classify_remote_error(gdal_error_text(exc))
                unsure += fault.kind == "unsure"
                if fault.kind not in ("transient", "unsure") or unsure > UNSURE_ATTEMPTS:
                    raise
                now = time.monotonic()
                self.first_failure = now if self.first_failure is None else self.first_failure
                after = network_requests()
                self.requests += max(1, after - sent) if after is not None and sent is not None else 1
                self.failures += 1
                self.last = (f"HTTP {fault.status}" if fault.status else
                             "no answer (connection dropped)" if fault.status == 0 else "an incomplete reply")
                if now - self.first_failure + delay > self.seconds:
                    raise RasterError(self.describe(now)) from exc
                forget_remote_file(gdal_path(self.location))
                time.sleep(delay)
                delay = min(2 * delay, _MAX_DELAY_S)

    def describe(self, now: float) -> str:
        """The line that ends a scene whose server kept failing."""
        spent = now - (self.first_failure or now)
        return (f"scene {display_location(self.location)}: the server kept failing for {spent:.0f} s "
                f"(retry bound {self.seconds:g} s, {self.source}): {self.requests} requests failed, "
                f"the last with {self.last}")
