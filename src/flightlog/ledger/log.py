"""The ledger: an append-only RFC 6962 log of canonical event bytes with signed checkpoints.

Everything stored under `$FLIGHTLOG_HOME`: `ledger.db` (SQLite), `blobs/`, `keys/`.
"""

from __future__ import annotations

import base64
import copy
import fcntl
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

import orjson

from flightlog.errors import FlightlogError, LedgerError, ProofError, ValidationError
from flightlog.home import ensure_home
from flightlog.ledger import merkle
from flightlog.ledger.blobs import BlobStore
from flightlog.ledger.checkpoint import Checkpoint, format_checkpoint, sign_note
from flightlog.ledger.keys import KeyRing
from flightlog.ledger.store import SqliteStore, StoredCheckpoint

__all__ = ["CHECKPOINT_INTERVAL", "Columns", "IdConflict", "Ledger", "PendingEntry"]

CHECKPOINT_INTERVAL: Final = 1.0  # seconds: a checkpoint at least this often while entries arrive


class Columns(NamedTuple):
    """The event fields the store keeps beside the leaf, for queries (never trusted by verify)."""

    event_id: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    type: str
    status: str
    timestamp: str
    agent_id: str
    session_id: str | None

    @classmethod
    def of(cls, ev: dict[str, Any]) -> Columns:
        """Return the columns of a stored event."""
        return cls(
            ev["event_id"],
            ev["trace_id"],
            ev["span_id"],
            ev.get("parent_span_id"),
            ev["type"],
            ev["status"],
            ev["timestamp"],
            ev["agent_id"],
            ev.get("session_id"),
        )


class PendingEntry:
    """An event ready to append: its exact leaf bytes, query columns, the blobs it names and its
    search text. The event itself is the leaf decoded; pickling (to or from a prepare worker)
    sends the leaf alone and the receiver decodes it only if asked, several times cheaper
    than unpickling the event's dicts."""

    __slots__ = ("_event", "blobs", "columns", "duplicate", "given_id", "leaf", "strict_id", "text")

    def __init__(
        self,
        event: dict[str, Any] | None,
        leaf: bytes,
        blobs: dict[str, bytes] | None = None,
        given_id: bool = False,
        text: str | None = None,
        columns: Sequence[Any] | None = None,
    ) -> None:
        self._event = event
        self.leaf = leaf
        self.blobs = blobs or {}
        # True when the producer chose the event id (a retry or re-import may send it again);
        # only those are looked up, so fresh ids cost no query.
        self.given_id = given_id
        self.text = text  # the search index's text of the event, when the preparer made it
        self.columns = Columns._make(columns) if columns is not None else Columns.of(self.event)
        # Set by `Ledger.append` when the log already held this event id and stored nothing.
        self.duplicate = False
        # Set by the preparer when a different event under this given id must be refused
        # (`IdConflict`) rather than taken for a duplicate: checked again inside the commit,
        # where two requests racing with one id meet.
        self.strict_id = False

    @property
    def event(self) -> dict[str, Any]:
        """The stored event (the leaf decoded)."""
        if self._event is None:
            self._event = orjson.loads(self.leaf)
        return self._event

    def __reduce__(self) -> tuple[Any, ...]:
        return (PendingEntry, (None, self.leaf, self.blobs, self.given_id, self.text, tuple(self.columns)))


class IdConflict(ValidationError):
    """An event under an event id the log holds for a different event: nothing of its batch
    is stored."""

    def __init__(self, event_id: str) -> None:
        super().__init__("$.event_id", "already stored with different content")
        self.event_id = event_id


@dataclass
class _Waiter:
    """One caller's batch in a group commit, and what became of it."""

    entries: list[PendingEntry]
    origin: str | None = None
    indexes: list[int] | None = None
    error: FlightlogError | None = None


class Ledger:
    """The append-only log under one data directory; one writer at a time (a process lock)."""

    def __init__(self, home: Path, writable: bool = True) -> None:
        self.home = ensure_home(home)
        self.writable = writable
        self._lock_fd: int | None = None
        if writable:
            self._lock_fd = _take_writer_lock(home / "ledger.lock")
        elif not (home / "ledger.db").exists():
            raise LedgerError(f"no ledger in {home} yet")
        self.store = SqliteStore(home / "ledger.db")
        (home / "blobs").mkdir(mode=0o700, exist_ok=True)
        self.blobs = BlobStore(home / "blobs")
        origin = self.store.get_meta("origin")
        if origin is None and not writable:
            raise LedgerError(f"no ledger in {home} yet")
        if origin is None:
            origin = f"flightlog.local/{os.urandom(8).hex()}"
            self.store.set_meta("origin", origin)
        self.origin = origin
        self.keys = KeyRing(home / "keys", origin)
        self._lock = threading.Lock()  # held by the thread committing a group
        self._queue_lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self.commits = 0  # transactions committed by append (a group commit counts once)
        self._frontier = merkle.Frontier.from_reader(self.store.size(), self.store.read_hash)
        latest = self.store.latest_checkpoint()
        self._checkpointed_size = latest.size if latest else -1
        self._last_checkpoint = time.monotonic() if latest else 0.0

    @classmethod
    def open(cls, home: Path, writable: bool = True) -> Ledger:
        """Open the ledger in `home`: writable (creating it on first use; one writer process at
        a time) or read-only (works beside a running writer, such as `flightlog serve`)."""
        return cls(home, writable)

    def close(self) -> None:
        """Issue a final checkpoint if entries arrived since the last one, then close."""
        with self._lock:
            if self.writable and self._frontier.size != self._checkpointed_size:
                self._issue_checkpoint()
            self.store.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        """Return the number of entries."""
        return self._frontier.size

    def append(self, entries: Sequence[PendingEntry], origin: str | None = None) -> list[int]:
        """Append a batch atomically and return the entries' indexes; durable when it returns.
        `origin` says who sent a batch from another machine (None: this machine).

        Group commit: batches that arrive from other threads while a commit is running are
        committed together in the next transaction (one fsync for all). Blobs are fsynced
        before the rows that name them. On error nothing of this batch is in the log.
        """
        if not self.writable:
            raise LedgerError("the ledger was opened read-only")
        waiter = _Waiter(list(entries), origin)
        with self._queue_lock:
            self._queue.append(waiter)
        with self._lock:
            if waiter.indexes is None and waiter.error is None:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit_group(group)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.indexes is not None  # set by whichever thread committed the group
        return waiter.indexes

    def _commit_group(self, group: list[_Waiter]) -> None:
        try:
            indexes = self._commit([e for w in group for e in w.entries], [w.origin for w in group for _ in w.entries])
        except FlightlogError as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            for waiter in group:  # one bad batch must not sink the others
                self._commit_group([waiter])
            return
        for waiter in group:
            waiter.indexes, indexes = indexes[: len(waiter.entries)], indexes[len(waiter.entries) :]
        self.commits += 1

    def _commit(self, entries: list[PendingEntry], origins: list[str | None]) -> list[int]:
        """Append `entries`; an event id the log already holds (or that came earlier in the same
        batch) is not stored again: its entry reports the index stored first."""
        known = self.store.indexes_of([e.columns.event_id for e in entries if e.given_id])
        frontier = copy.deepcopy(self._frontier)  # the live one changes only after commit
        rows: list[tuple[Any, ...]] = []
        nodes: list[tuple[int, int, bytes]] = []
        indexes: list[int] = []
        remote: list[tuple[int, str]] = []
        hashes: dict[int, bytes] = {}  # leaf hashes of this group's rows, by index
        for entry, origin in zip(entries, origins, strict=True):
            columns = entry.columns
            if entry.given_id:
                found = known.get(columns.event_id)
                if found is not None:
                    if entry.strict_id:
                        held = hashes.get(found) or self.store.read_hash(0, found)
                        if held != merkle.leaf_hash(entry.leaf):
                            raise IdConflict(columns.event_id)
                    entry.duplicate = True
                    indexes.append(found)
                    continue
                known[columns.event_id] = frontier.size
            for data in entry.blobs.values():
                self.blobs.put(data)
            h = merkle.leaf_hash(entry.leaf)
            hashes[frontier.size] = h
            indexes.append(frontier.size)
            if origin is not None:
                remote.append((frontier.size, origin))
            rows.append((frontier.size, *columns, entry.leaf, h))
            nodes.extend(frontier.append(h))
        if rows:
            self.store.append(rows, nodes, remote)
            self._frontier = frontier
        if time.monotonic() - self._last_checkpoint >= CHECKPOINT_INTERVAL:
            self._issue_checkpoint()
        return indexes

    def checkpoint(self) -> StoredCheckpoint:
        """Return the latest checkpoint, issuing a new one first if entries arrived since."""
        with self._lock:
            latest = self.store.latest_checkpoint()
            if self.writable and (latest is None or latest.size != self._frontier.size):
                return self._issue_checkpoint()
            if latest is None:
                raise LedgerError("no checkpoint yet (the log is empty or its writer has not signed one)")
            return latest

    def sign_if_due(self) -> bool:
        """Sign a checkpoint if entries arrived since the last one and that is CHECKPOINT_INTERVAL
        old; return whether one was signed. For a long-running writer's timer: appends sign at
        most once an interval, so the last entries of a burst waited for the next append."""
        if not self.writable or time.monotonic() - self._last_checkpoint < CHECKPOINT_INTERVAL:
            return False
        with self._lock:
            if self._frontier.size in (0, self._checkpointed_size):
                return False
            self._issue_checkpoint()
            return True

    def _issue_checkpoint(self) -> StoredCheckpoint:
        size = self._frontier.size
        root = self._frontier.root()
        text = format_checkpoint(Checkpoint(self.origin, size, root))
        note = sign_note(text, self.origin, self.keys.private_key())
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.store.add_checkpoint(size, root, note, created)
        self._checkpointed_size = size
        self._last_checkpoint = time.monotonic()
        return StoredCheckpoint(size, root, note, created)

    def rotate_key(self) -> StoredCheckpoint:
        """Retire the signing key, make a new one, and sign the current tree with it."""
        if not self.writable:
            raise LedgerError("the ledger was opened read-only")
        with self._lock:
            self.keys.rotate()
            return self._issue_checkpoint()

    def resolve_index(self, ref: str) -> int:
        """Return the index named by `ref`: a decimal index or an event id."""
        if ref.isascii() and ref.isdigit():
            return int(ref)
        index = self.store.index_of(ref)
        if index is None:
            raise LedgerError(f"no entry with event id {ref}")
        return index

    def prove_inclusion(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof of entry `index` in the tree of `size` (default: all)."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ProofError(f"entry {index} is not in a tree of size {size} (log has {self.size})")
        return merkle.prove_inclusion(index, size, self.store.read_hash)

    def prove_consistency(self, size1: int, size2: int) -> list[bytes]:
        """Return the consistency proof between the trees of `size1` and `size2`."""
        if not 0 < size1 <= size2 <= self.size:
            raise ProofError(f"need 0 < OLD <= NEW <= {self.size}, got {size1} and {size2}")
        return merkle.prove_consistency(size1, size2, self.store.read_hash)

    def checkpoint_record(self) -> dict[str, Any]:
        """Return the latest checkpoint as the JSON the CLI and the API hand to auditors:
        origin, size, root (hex), the signed note and every verifier key."""
        cp = self.checkpoint()
        return {
            "origin": self.origin,
            "size": cp.size,
            "root": cp.root.hex(),
            "note": cp.note,
            "verifier_key": self.keys.active_verifier_key(),
            "verifier_keys": self.keys.verifier_keys(),
        }

    def inclusion_record(self, index: int) -> dict[str, Any]:
        """Return the inclusion proof of entry `index` in the latest checkpoint's tree as JSON:
        index, event_id, size, leaf_hash, leaf (base64 of the exact bytes), proof, root, note."""
        cp = self.checkpoint()
        path = self.prove_inclusion(index, cp.size)
        found = self.store.leaf(index)
        if found is None:
            raise LedgerError(f"entry {index} is missing")
        event_id, leaf = found
        return {
            "index": index,
            "event_id": event_id,
            "size": cp.size,
            "leaf_hash": self.store.read_hash(0, index).hex(),
            "leaf": base64.b64encode(leaf).decode(),
            "proof": [h.hex() for h in path],
            "root": cp.root.hex(),
            "note": cp.note,
        }

    def root(self, size: int) -> bytes:
        """Return the root hash of the tree of the first `size` entries."""
        if not 0 <= size <= self.size:
            raise ProofError(f"size {size} is beyond the log ({self.size} entries)")
        return merkle.tree_root(size, self.store.read_hash)


def _take_writer_lock(path: Path) -> int:
    """Hold an exclusive flock on `path` for this process's lifetime, or fail clearly: two
    writers would each extend their own idea of the tree."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except PermissionError:
        raise LedgerError(
            f"cannot write to {path.parent} (permission denied); writing needs the data directory's owner"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LedgerError(
            f"the ledger in {path.parent} is in use by another flightlog process "
            "(a running `flightlog serve`?); send events to it instead"
        ) from None
    return fd
