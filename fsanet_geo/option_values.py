"""Option values given as text: comma-separated lists such as ``--bands 3,2,1``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fsanet_geo.errors import ConfigError


def parse_csv(value: str | None, cast: Callable[[str], Any] = str, name: str = "value") -> list[Any] | None:
    """``"3,2,1"`` as ``[3, 2, 1]`` (each item through ``cast``); None for None or blank text.

    Raises:
        ConfigError: an empty item (``"3,,1"``) or one ``cast`` cannot read, naming ``name``.
    """
    if value is None or value.strip() == "":
        return None
    items = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            raise ConfigError(f"{name}: empty item in {value!r} (give comma-separated values)")
        try:
            items.append(cast(part))
        except ValueError as exc:
            raise ConfigError(f"{name}: cannot read {part!r}") from exc
    return items
