"""Recording events from a client-side command (`exec`, `rollback`, git hooks, the watcher):
to the collector at $FLIGHTLOG_URL when one answers, else straight into the local ledger when no
other process holds it, else the durable spool. One function, so every command behaves alike.

(The Claude Code hook does not use this: it never loads the ledger on its path and spools.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flightlog.client import SendError, post_events
from flightlog.errors import LedgerError, ValidationError

__all__ = ["record"]


def record(events: list[dict[str, Any]], home: Path) -> str:
    """Store `events` durably and return where they went: "collector", "ledger" or "spool".
    Raises ValidationError if the collector or the pipeline refuses them (a bug in the caller)."""
    if not events:
        return "nowhere (no events)"
    try:
        post_events(events)
        return "collector"
    except SendError as exc:
        if not exc.retry:
            raise ValidationError("$", str(exc)) from None
    from flightlog.ledger.log import Ledger
    from flightlog.pipeline import Pipeline

    try:
        ledger = Ledger.open(home, True)
    except LedgerError:  # another process writes this ledger but did not answer: keep them safe
        from flightlog.spool import spool_events

        spool_events(home, events)
        return "spool"
    try:
        pipeline = Pipeline(ledger, source_kind="cli")
        good, bad = pipeline.prepare_batch(events)
        if bad:
            raise ValidationError(f"event {bad[0].index}: {bad[0].field}", bad[0].reason)
        ledger.append(good)
        ledger.checkpoint()
    finally:
        ledger.close()
    return "ledger"
