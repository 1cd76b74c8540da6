"""The durable local spool: events a client could not hand to the collector wait here, under
`$FLIGHTLOG_HOME/spool/`, until the next send or `flightlog spool flush`.

Each batch is one NDJSON file written atomically (0600, fsynced), so a crash leaves whole
batches only. Secrets are redacted before a batch touches the disk. Sending a file twice is
harmless: producers choose stable event ids and the ledger stores an id once.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flightlog.client import SendError, post_events
from flightlog.home import ensure_home, write_private_file

__all__ = ["FlushResult", "flush_spool", "read_batch", "spool_dir", "spool_events", "spooled_files"]

Event = dict[str, Any]
_PINNED = frozenset({"event_id", "trace_id", "span_id", "parent_span_id", "timestamp", "redactions"})


@dataclass
class FlushResult:
    """What a flush did: batches and events handed over, batches left, and why it stopped."""

    sent_files: int = 0
    sent_events: int = 0
    left_files: int = 0
    rejected_files: int = 0
    stopped: str | None = None


def spool_dir(home: Path) -> Path:
    return home / "spool"


def spool_events(home: Path, events: list[Event]) -> Path:
    """Redact `events` and store them as one batch file; return its path."""
    from flightlog.redact import Redactor  # loaded only when the collector is away

    redactor = Redactor.default()
    cleaned: list[Event] = []
    for event in events:
        # ids and timestamps are pinned hex/date shapes that a generic hex-secret rule could hit
        free = {k: v for k, v in event.items() if k not in _PINNED}
        redacted, found = redactor.redact_value(free)
        assert isinstance(redacted, dict)  # redact_value keeps the shape of its input
        out = {**event, **redacted}
        if found:
            out["redactions"] = [*event.get("redactions", []), *(r.to_json() for r in found)]
        cleaned.append(out)
    directory = ensure_home(spool_dir(ensure_home(home)))
    path = directory / f"{time.time_ns():020d}-{os.getpid()}.ndjson"
    write_private_file(path, b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in cleaned))
    return path


def spooled_files(home: Path) -> list[Path]:
    """Return the waiting batch files, oldest first."""
    try:
        return sorted(p for p in spool_dir(home).iterdir() if p.suffix == ".ndjson" and p.is_file())
    except FileNotFoundError:
        return []


def read_batch(path: Path) -> list[Event]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def flush_spool(home: Path, send: Callable[[list[Event]], object] = post_events, wait: bool = False) -> FlushResult:
    """Hand every waiting batch to `send` (the collector by default), oldest first, deleting
    each once it is accepted. Stops at the first batch that cannot be sent now; a batch the
    receiver refuses outright is moved to `spool/rejected/` so it cannot block the rest.
    Returns at once (nothing flushed) if another process is flushing, unless `wait`."""
    result = FlushResult()
    files = spooled_files(home)
    if not files:
        return result
    with _flush_lock(home, wait) as held:
        if not held:
            result.left_files, result.stopped = len(files), "another flush is running"
            return result
        files = spooled_files(home)  # the other flusher may have sent some
        for i, path in enumerate(files):
            try:
                events = read_batch(path)
                send(events)
            except SendError as exc:
                if exc.retry:
                    result.left_files, result.stopped = len(files) - i, str(exc)
                    return result
                _set_aside(path)
                result.rejected_files += 1
                result.stopped = str(exc)
                continue
            except (OSError, ValueError) as exc:
                _set_aside(path)
                result.rejected_files += 1
                result.stopped = f"{path.name}: unreadable ({exc})"
                continue
            path.unlink(missing_ok=True)
            result.sent_files += 1
            result.sent_events += len(events)
    return result


def _set_aside(path: Path) -> None:
    rejected = ensure_home(path.parent / "rejected")
    os.replace(path, rejected / path.name)


@contextmanager
def _flush_lock(home: Path, wait: bool) -> Iterator[bool]:
    fd = os.open(spool_dir(home) / ".flush.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
