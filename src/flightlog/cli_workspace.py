"""Commands of `flightlog` for workspace: see COMMANDS."""

from __future__ import annotations

import click

__all__ = ["COMMANDS"]

COMMANDS: list[click.Command] = []
