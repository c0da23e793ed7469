"""`fsanet train` (being built; see the issue tracker)."""

from __future__ import annotations

from fsanet_cli._common import fail


def train() -> None:
    """Not available yet in this build."""
    fail("'fsanet train' is not implemented in this build yet", code=3)
