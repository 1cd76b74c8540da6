"""Commands of `flightlog` for git: see COMMANDS."""

from __future__ import annotations

import click

__all__ = ["COMMANDS", "HOOK_COMMANDS"]

COMMANDS: list[click.Command] = []
HOOK_COMMANDS: list[click.Command] = []  # added under `flightlog hook` (what git's hooks run)
