"""`fsanet data ...`: dataset helpers (synthetic AI-TOD-like generator)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Dataset tools (synthetic AI-TOD-like data).")
