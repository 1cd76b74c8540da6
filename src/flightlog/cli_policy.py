"""Commands of `flightlog` for policy and approvals: see COMMANDS and KEYS_COMMANDS."""

from __future__ import annotations

import click

__all__ = ["COMMANDS", "KEYS_COMMANDS"]

COMMANDS: list[click.Command] = []
KEYS_COMMANDS: list[click.Command] = []  # added under `flightlog keys`
