"""Pieces every CLI command module shares: opening the ledger once per command, and the
one-line report of a stored batch."""

from __future__ import annotations

import click

from flightlog.errors import LedgerError
from flightlog.home import resolve_home
from flightlog.ledger.log import Ledger, PendingEntry

__all__ = ["open_ledger", "store_summary"]


def open_ledger(ctx: click.Context, writable: bool | None = False, existing: bool = False) -> Ledger:
    """Open the ledger once per command: read-only unless the command writes, so reading works
    beside a running server; `None` means writable if no other process is writing. `existing`:
    fail when there is no ledger yet rather than start one (a checkpoint or proof of a mistyped
    home must not come from a new, empty ledger and a new signing key)."""
    if "ledger" not in ctx.obj:
        home = resolve_home(ctx.find_root().obj["home"])
        if existing and not (home / "ledger.db").exists():
            ledger = Ledger.open(home, False)  # raises: no ledger in HOME yet
        elif writable is None:
            try:
                ledger = Ledger.open(home, True)
            except LedgerError as exc:
                if "in use" not in exc.message:
                    raise
                ledger = Ledger.open(home, False)
        else:
            ledger = Ledger.open(home, writable)
        ctx.obj["ledger"] = ledger
        ctx.find_root().call_on_close(ledger.close)
    found: Ledger = ctx.obj["ledger"]
    return found


def store_summary(ledger: Ledger, entries: list[PendingEntry]) -> str:
    """Append `entries` and say what became of them in one line."""
    indexes = ledger.append(entries)
    new = [i for i, e in zip(indexes, entries, strict=True) if not e.duplicate]
    redacted = sum(len(e.event["redactions"]) for e in entries if not e.duplicate)
    cp = ledger.checkpoint()
    where = f" as entries {new[0]}..{new[-1]}" if new else ""
    again = f"; {len(entries) - len(new)} already stored" if len(new) < len(entries) else ""
    return f"stored {len(new)} event(s){where} ({redacted} secret(s) redacted){again}; checkpoint size {cp.size}"
