"""The one check of settings read back from a dict (a work dir's config.json, checkpoint metadata)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from fsanet_geo.errors import ConfigError


def check_known_fields(cls: Any, keys: Iterable[str], what: str) -> None:
    """:class:`ConfigError` ``"unknown WHAT: a, b"`` naming the ``keys`` that are not fields of
    the dataclass ``cls`` (sorted)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ConfigError(f"unknown {what}: {', '.join(unknown)}")
