"""Commands of `flightlog` for watch: see COMMANDS."""

from __future__ import annotations

import click

__all__ = ["COMMANDS"]

COMMANDS: list[click.Command] = []
