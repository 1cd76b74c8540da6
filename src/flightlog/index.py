"""Full-text search over the stored (already redacted) events, with SQLite FTS5.

The index is derived data beside the ledger, filled from the entries after they are committed
(`catch_up`), so it never slows the durable append path and can be rebuilt at any time. It is
not covered by the Merkle tree: `verify` never trusts it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = ["SearchHit", "SearchIndex", "event_text"]

_SCHEMA: Final = """
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(body, tokenize = 'unicode61');
CREATE TABLE IF NOT EXISTS fts_state (id INTEGER PRIMARY KEY CHECK (id = 0), indexed INTEGER NOT NULL);
INSERT OR IGNORE INTO fts_state VALUES (0, 0);
"""
_TEXT_FIELDS: Final = ("type", "agent_id", "session_id", "model", "payload", "user_context")


@dataclass(frozen=True)
class SearchHit:
    """One matching event: ledger index, ids, type and a snippet with the match in [brackets]."""

    index: int
    event_id: str
    trace_id: str
    type: str
    snippet: str


def event_text(event: dict[str, Any]) -> str:
    """Return the searchable text of an event: its type, agent, model and every string value."""
    parts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for field in _TEXT_FIELDS:
        walk(event.get(field))
    return "\n".join(parts)


def _fts_query(text: str) -> str:
    """Turn user input into an FTS5 query: every word must occur (quoted, so no syntax errors)."""
    words = [w.replace('"', '""') for w in text.split()]
    return " ".join(f'"{w}"' for w in words)


class SearchIndex:
    """The FTS5 index in the ledger's database file, on a connection of its own."""

    def __init__(self, db_path: Path) -> None:
        self._conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the index connection."""
        self._conn.close()

    def catch_up(self, batch: int = 2000) -> int:
        """Index entries committed since the last call; return how many were added."""
        added = 0
        with self._lock:
            while True:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    (done,) = self._conn.execute("SELECT indexed FROM fts_state").fetchone()
                    rows = self._conn.execute(
                        "SELECT idx, leaf FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?", (done, batch)
                    ).fetchall()
                    self._conn.executemany(
                        "INSERT INTO events_fts (rowid, body) VALUES (?, ?)",
                        [(idx, event_text(json.loads(leaf))) for idx, leaf in rows],
                    )
                    if rows:
                        self._conn.execute("UPDATE fts_state SET indexed = ?", (rows[-1][0] + 1,))
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                added += len(rows)
                if len(rows) < batch:
                    return added

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """Return the newest events containing every word of `text`."""
        query = _fts_query(text)
        if not query:
            return []
        rows = self._conn.execute(
            "SELECT e.idx, e.event_id, e.trace_id, e.type,"
            " snippet(events_fts, 0, '[', ']', '…', 12)"
            " FROM events_fts JOIN entries e ON e.idx = events_fts.rowid"
            " WHERE events_fts MATCH ? ORDER BY e.idx DESC LIMIT ?",
            (query, limit),
        ).fetchall()
        return [SearchHit(int(i), str(ev), str(t), str(ty), str(s)) for i, ev, t, ty, s in rows]
