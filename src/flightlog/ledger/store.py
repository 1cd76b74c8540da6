"""The SQLite store behind the ledger: entries, Merkle nodes, checkpoints (WAL, durable commits).

Only this module speaks SQL. Leaf bytes are stored verbatim; the index columns beside them are
copies for queries, never trusted by `verify`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from flightlog.errors import LedgerError

__all__ = ["SqliteStore", "StoredCheckpoint"]

SCHEMA_VERSION: Final = "1"
_WAL_CHECKPOINT_BYTES: Final = 8 * 1024 * 1024
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
  idx INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  trace_id TEXT NOT NULL,
  span_id TEXT NOT NULL,
  parent_span_id TEXT,
  type TEXT NOT NULL,
  status TEXT NOT NULL,
  timestamp TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  session_id TEXT,
  leaf BLOB NOT NULL,
  leaf_hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_trace ON entries (trace_id, idx);
CREATE TABLE IF NOT EXISTS nodes (
  level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
  id INTEGER PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL,
  created TEXT NOT NULL
);
"""

# Who sent an entry from another machine (client address and token), for the entries that came
# that way: the collector's rollback route acts only on file changes recorded on this machine.
# Like the columns beside each leaf, not covered by the Merkle tree.
_ORIGINS: Final = "CREATE TABLE IF NOT EXISTS origins (idx INTEGER PRIMARY KEY, origin TEXT NOT NULL)"


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint as stored: its size, root and the full signed note."""

    size: int
    root: bytes
    note: str
    created: str


class SqliteStore:
    """The ledger's tables in one SQLite file (WAL mode, synchronous=FULL: a commit is durable)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        if not path.exists():
            # SQLite gives the -wal and -shm files the mode of the database file.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA busy_timeout=10000")
            # Checkpoints run on a thread of their own (below) instead of inside a commit,
            # where they stall the writer for tens of milliseconds every ~1,000 pages.
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            # SQLite's own words mislead when the folder is not writable: a WAL reader must
            # create the -shm file beside the database.
            hint = " (its folder must be writable, also for reading)" if "readonly" in str(exc) else ""
            raise LedgerError(f"cannot open ledger database {path}: {exc}{hint}") from None
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="wal-checkpoint", daemon=True)
        self._checkpointer.start()

    @property
    def read(self) -> sqlite3.Connection:
        """This thread's read connection: it sees only committed data (a WAL snapshot per
        statement), never a transaction the writer connection has open."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _checkpoint_loop(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        wal = Path(f"{self.path}-wal")
        try:
            while not self._stop.wait(0.2):
                try:
                    if wal.exists() and wal.stat().st_size > _WAL_CHECKPOINT_BYTES:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except (OSError, sqlite3.Error):
                    continue  # a busy database: try again on the next tick
        finally:
            conn.close()

    def close(self) -> None:
        """Close the writer and every read connection (idempotent)."""
        self._stop.set()
        if self._checkpointer.is_alive():
            self._checkpointer.join()
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()
        self.conn.close()

    def get_meta(self, key: str) -> str | None:
        """Return a metadata value or None."""
        row = self.read.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a metadata value (its own durable transaction)."""
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def size(self) -> int:
        """Return the number of entries (the largest index + 1)."""
        row = self.read.execute("SELECT MAX(idx) FROM entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def append(
        self,
        rows: Sequence[tuple[Any, ...]],
        nodes: Sequence[tuple[int, int, bytes]],
        origins: Sequence[tuple[int, str]] = (),
    ) -> None:
        """Insert entry rows (idx, the `Columns` fields, leaf, leaf hash), new Merkle nodes and
        the (idx, origin) of entries sent by another machine, in one transaction, durable when
        this returns."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            self.conn.executemany("INSERT INTO nodes VALUES (?,?,?)", nodes)
            if origins:
                # Made when first needed: a ledger that never had a remote client stays as it was
                # (and opens on a read-only medium).
                self.conn.execute(_ORIGINS)
                self.conn.executemany("INSERT INTO origins VALUES (?,?)", origins)
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise LedgerError(f"append failed, nothing stored: {exc}") from None

    def read_hash(self, level: int, index: int) -> bytes:
        """Return the stored hash of the complete subtree (level, index); level 0 is a leaf."""
        if level == 0:
            row = self.read.execute("SELECT leaf_hash FROM entries WHERE idx=?", (index,)).fetchone()
        else:
            row = self.read.execute("SELECT hash FROM nodes WHERE level=? AND idx=?", (level, index)).fetchone()
        if row is None:
            raise LedgerError(f"missing Merkle node level {level} index {index}")
        return bytes(row[0])

    def leaf(self, index: int) -> tuple[str, bytes] | None:
        """Return (event_id, leaf bytes) of an entry, or None."""
        row = self.read.execute("SELECT event_id, leaf FROM entries WHERE idx=?", (index,)).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def indexes_of(self, event_ids: Sequence[str]) -> dict[str, int]:
        """Return {event_id: index} for those of `event_ids` the log holds (read on the writer's
        connection, so it sees every commit)."""
        return {str(e): int(i) for e, i in _by_event_id(self.conn, "idx", event_ids)}

    def leaf_hashes_of(self, event_ids: Sequence[str]) -> dict[str, bytes]:
        """Return {event_id: leaf hash} for those of `event_ids` the log holds, as committed (the
        read connection: never a group commit still open on the writer's)."""
        return {str(e): bytes(h) for e, h in _by_event_id(self.read, "leaf_hash", event_ids)}

    def index_of(self, event_id: str) -> int | None:
        """Return the index of the entry with this event id, or None."""
        row = self.read.execute("SELECT idx FROM entries WHERE event_id=?", (event_id,)).fetchone()
        return None if row is None else int(row[0])

    def iter_entries(self, batch: int = 5000) -> Iterator[tuple[int, str, bytes, bytes]]:
        """Yield (index, event_id, leaf, stored leaf_hash) in index order."""
        cur = self.read.execute("SELECT idx, event_id, leaf, leaf_hash FROM entries ORDER BY idx")
        while rows := cur.fetchmany(batch):
            yield from rows

    def iter_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        """Yield every stored (level, index, hash) of level >= 1."""
        yield from self.read.execute("SELECT level, idx, hash FROM nodes")

    def add_checkpoint(self, size: int, root: bytes, note: str, created: str) -> None:
        """Store a signed checkpoint (durable)."""
        self.conn.execute(
            "INSERT INTO checkpoints (size, root, note, created) VALUES (?,?,?,?)",
            (size, root, note, created),
        )

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Return every stored checkpoint, oldest first."""
        rows = self.read.execute("SELECT size, root, note, created FROM checkpoints ORDER BY id")
        return [StoredCheckpoint(int(s), bytes(r), str(n), str(c)) for s, r, n, c in rows]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """Return the newest checkpoint or None."""
        row = self.read.execute("SELECT size, root, note, created FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), row[2], row[3])

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        """Return the newest checkpoint of exactly this size, or None."""
        row = self.read.execute(
            "SELECT size, root, note, created FROM checkpoints WHERE size=? ORDER BY id DESC LIMIT 1",
            (size,),
        ).fetchone()
        return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), row[2], row[3])

    def traces(self, limit: int = 50) -> list[tuple[str, int, str, str, str]]:
        """Return (trace_id, events, first timestamp, last timestamp, agent ids), newest first."""
        rows = self.read.execute(
            "SELECT trace_id, COUNT(*), MIN(timestamp), MAX(timestamp), GROUP_CONCAT(DISTINCT agent_id)"
            " FROM entries GROUP BY trace_id ORDER BY MAX(idx) DESC LIMIT ?",
            (limit,),
        )
        return [(str(a), int(b), str(c), str(d), str(e)) for a, b, c, d, e in rows]

    def recorded_spans(self, trace_ids: Sequence[str]) -> dict[tuple[str, str], int]:
        """Return the (span_id, type) pairs already stored in these traces, each with the index
        of its first entry."""
        found: dict[tuple[str, str], int] = {}
        ids = list(dict.fromkeys(trace_ids))
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.read.execute(
                f"SELECT span_id, type, idx FROM entries WHERE trace_id IN ({marks}) ORDER BY idx DESC", chunk
            )
            found.update(((str(span), str(kind)), int(idx)) for span, kind, idx in rows)
        return found

    def remote_origins(self, indexes: Sequence[int]) -> dict[int, str]:
        """Return, of these entries, those sent by another machine, with who sent them."""
        found: dict[int, str] = {}
        if self.read.execute("SELECT 1 FROM sqlite_master WHERE name = 'origins'").fetchone() is None:
            return found
        ids = list(indexes)
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            rows = self.read.execute(
                f"SELECT idx, origin FROM origins WHERE idx IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update((int(i), str(o)) for i, o in rows)
        return found

    def trace_leaves(self, trace_id: str) -> list[tuple[int, bytes]]:
        """Return (index, leaf bytes) of one trace's entries in index order."""
        rows = self.read.execute("SELECT idx, leaf FROM entries WHERE trace_id=? ORDER BY idx", (trace_id,))
        return [(int(i), bytes(b)) for i, b in rows]


def _by_event_id(conn: sqlite3.Connection, column: str, event_ids: Sequence[str]) -> Iterator[tuple[Any, Any]]:
    """(event_id, `column`) of the entries with these event ids."""
    ids = list(event_ids)
    for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(f"SELECT event_id, {column} FROM entries WHERE event_id IN ({marks})", chunk)


def _trace_filters(filters: dict[str, str | None]) -> tuple[list[str], list[object]]:
    """Return the conditions over entries (to be joined with AND) for the query API's trace filters."""
    columns = {"agent": "agent_id", "session": "session_id", "type": "type", "status": "status"}
    where: list[str] = []
    args: list[object] = []
    for key, column in columns.items():
        if filters.get(key):
            where.append(f"{column} = ?")
            args.append(filters[key])
    if filters.get("since"):
        where.append("timestamp >= ?")
        args.append(filters["since"])
    if filters.get("until"):
        where.append("timestamp < ?")
        args.append(filters["until"])
    if filters.get("file_path"):
        where.append("json_extract(CAST(leaf AS TEXT), '$.payload.file_path') = ?")
        args.append(filters["file_path"])
    return where, args


def query_traces(
    store: SqliteStore, filters: dict[str, str | None], limit: int, before: int | None, as_of: int | None = None
) -> list[dict[str, object]]:
    """Return summaries of the traces that have an event matching every filter, the trace of
    the newest matching event first (without filters: of the newest event).

    Each summary covers the whole trace; its `cursor` is the index of its newest matching
    event. Paging: `before` is the `cursor` of the last row of the previous page, and `as_of`
    the ledger size when the first page was made: later pages see the log as it was then, so a
    trace that gets new events while a client pages is still listed once (it moves to the top
    of a new first page).
    """
    where, args = _trace_filters(filters)
    if as_of is not None:
        where, args = [*where, "idx < ?"], [*args, as_of]
    found = _newest_traces(store, limit, before, where, args)
    if not found:
        return []
    sql = (
        "SELECT trace_id, COUNT(*), MIN(timestamp), MAX(timestamp),"
        # JSON arrays, not GROUP_CONCAT: an id may itself hold a comma.
        " JSON_GROUP_ARRAY(DISTINCT agent_id),"
        " JSON_GROUP_ARRAY(DISTINCT session_id) FILTER (WHERE session_id IS NOT NULL),"
        f" SUM(status = 'error') FROM entries WHERE trace_id IN ({','.join('?' * len(found))})"
        + (" AND idx < ?" if as_of is not None else "")
        + " GROUP BY trace_id"
    )
    rows = {row[0]: row for row in store.read.execute(sql, [*found, *([as_of] if as_of is not None else [])])}
    return [
        {
            "trace_id": t,
            "events": n,
            "first": first,
            "last": last,
            "cursor": found[t],
            "agents": json.loads(agents),
            "sessions": json.loads(sessions),
            "errors": errors or 0,
        }
        for t, n, first, last, agents, sessions, errors in (rows[t] for t in found if t in rows)
    ]


def _newest_traces(
    store: SqliteStore, limit: int, before: int | None, where: list[str], args: list[object]
) -> dict[str, int]:
    """The `limit` traces whose newest matching entry is below `before`, newest first, each with
    that entry's index.

    Walks back from the newest matching entry until `limit` traces are found, so a page costs
    what it shows, not the whole log (grouping every matching entry took 0.3 s a page at
    300,000 events); a filter that matches little is still a scan of the log, in SQLite.
    """
    matching = "".join(f" AND {w}" for w in where)
    found: dict[str, int] = {}
    seen: set[str] = set()
    cursor = store.read.execute(
        f"SELECT trace_id, idx FROM entries WHERE idx < ?{matching} ORDER BY idx DESC",
        (before if before is not None else 2**63 - 1, *args),
    )
    for trace_id, idx in cursor:
        if trace_id in seen:
            continue
        seen.add(trace_id)
        # Met first at its newest matching entry below `before`; listed on an earlier page if it
        # has one at or above it (an index seek on entries_trace).
        if before is not None:
            (newest,) = store.read.execute(
                f"SELECT MAX(idx) FROM entries WHERE trace_id = ?{matching}", (trace_id, *args)
            ).fetchone()
            if newest >= before:
                continue
        found[trace_id] = int(idx)
        if len(found) == limit:
            break
    cursor.close()
    return found
