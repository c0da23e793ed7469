"""`fsanet detect` (being built; see the issue tracker)."""

from __future__ import annotations

from fsanet_cli._common import fail


def detect() -> None:
    """Not available yet in this build."""
    fail("'fsanet detect' is not implemented in this build yet", code=3)
