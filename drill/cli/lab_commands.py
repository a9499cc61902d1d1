"""Placeholder: commands are registered here by their owner module."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the drill app."""
