"""Full-text search over the stored (already redacted) events, with SQLite FTS5.

The index is derived data beside the ledger, filled from the entries after they are committed
(`catch_up`), and can be rebuilt at any time. It is not covered by the Merkle tree: `verify`
never trusts it. It lives in a database file of its own (`index.db`, next to `ledger.db`):
SQLite has one writer per file, and an index transaction in the ledger's file held up every
append behind it (for ~0.3 s per 2,000 entries under load).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from flightlog._internal.jsonwalk import _strings

__all__ = ["CATCH_UP_STEP", "INDEX_FILE", "TEXT_FIELDS", "SearchHit", "SearchIndex", "event_text"]

INDEX_FILE: Final = "index.db"
# Contentless (content=''): the index keeps only its term lists, not a second copy of each
# event's text, which the ledger already holds. Half the file (35 vs 80 MB for 60,000 agent
# spans) and 2.5 µs less per event to index (8.8 -> 6.3); snippets are cut from the ledger's
# copy of the hits (`_snippets`: 500 hits take 8 instead of 5 ms).
_FTS: Final = "fts5(body, tokenize = 'unicode61', content = '')"
_SCHEMA: Final = f"""
PRAGMA journal_mode = WAL;
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING {_FTS};
CREATE TABLE IF NOT EXISTS fts_state (id INTEGER PRIMARY KEY CHECK (id = 0), indexed INTEGER NOT NULL);
INSERT OR IGNORE INTO fts_state VALUES (0, 0);
"""
# FTS5 merges b-tree segments once 4 of a size exist (its default), so each term list is
# rewritten about log4(n) times. At 16 (the most it allows) ingest spends 3 to 6 µs less per
# event (13.0 -> 9.2 µs at 60,000 events, 16.9 -> 11.2 at 200,000; bench/results/ingest.json)
# and searches in the same 200,000 events took as long (99 vs 101 ms).
_AUTOMERGE: Final = 16
CATCH_UP_STEP: Final = 2000  # entries indexed per lock hold by the collector: a search waits at most that
_MAX_OFFERED: Final = 20_000  # texts held for catch_up (~15 MB); past it they are read from the ledger
# After the type: the fields whose strings are searched, in this order.
TEXT_FIELDS: Final = ("agent_id", "session_id", "model", "payload", "user_context")


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
    # No depth limit: a stored event (from before the limit, or one level deeper for a blob
    # reference) must always be indexable, and a decoded leaf has no cycles; the walk is a loop.
    return "\n".join(_strings([event.get("type"), *(event.get(f) for f in TEXT_FIELDS)], "$", limit=sys.maxsize))


def _fts_query(text: str) -> str:
    """Turn user input into an FTS5 query: every word must occur (quoted, so no syntax errors)."""
    # NUL ends an FTS5 query string early (a syntax error); the tokenizer splits words there anyway.
    words = [w.replace('"', '""') for w in text.replace("\x00", " ").split()]
    return " ".join(f'"{w}"' for w in words)


class SearchIndex:
    """The FTS5 index of the ledger in `ledger_db`, kept in `index.db` beside it. The ledger is
    only read (a read-only connection), so indexing never takes the ledger's write lock."""

    def __init__(self, ledger_db: Path) -> None:
        path = ledger_db.with_name(INDEX_FILE)
        if not path.exists():
            # SQLite gives the -wal and -shm files the mode of the database file.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=10000")
        # Derived data: a commit lost to a power cut is indexed again, so no fsync per commit.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._drop_stored_text_index()
        self._conn.executescript(_SCHEMA)
        # A persistent setting: written once, so that opening the index stays a read.
        row = self._conn.execute("SELECT v FROM events_fts_config WHERE k = 'automerge'").fetchone()
        if row is None or row[0] != _AUTOMERGE:
            self._conn.execute("INSERT INTO events_fts(events_fts, rank) VALUES ('automerge', ?)", (_AUTOMERGE,))
        uri = f"file:{urllib.parse.quote(str(ledger_db))}?mode=ro"
        self._ledger = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._ledger.execute("PRAGMA busy_timeout=10000")
        self._lock = threading.Lock()
        self._offered: dict[int, str] = {}
        self._indexed = int(self._conn.execute("SELECT indexed FROM fts_state").fetchone()[0])
        self._offered_lock = threading.Lock()

    def _drop_stored_text_index(self) -> None:
        # An index made by an older flightlog kept every event's text: it is dropped and built
        # again from the ledger (in steps, as for a deleted index.db).
        # Its free pages are reused by the new index.
        self._conn.execute("BEGIN IMMEDIATE")
        row = self._conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events_fts'").fetchone()
        if row is not None and "content = ''" not in row[0]:
            self._conn.execute("DROP TABLE events_fts")
            self._conn.execute("DROP TABLE IF EXISTS fts_state")
        self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close both connections."""
        self._ledger.close()
        self._conn.close()

    def offer(self, texts: Iterable[tuple[int, str | None]]) -> None:
        """Hand over the text of entries just committed (ledger index, text), so that
        `catch_up` need not read and decode them again. A text not offered is read from the
        ledger; one offered for an index already indexed is dropped."""
        with self._offered_lock:
            if len(self._offered) < _MAX_OFFERED:
                self._offered.update((i, t) for i, t in texts if t is not None)

    @property
    def indexed(self) -> int:
        """Return how many ledger entries (from the first) the index held at the end of the
        last `catch_up` of this process (without waiting for one that is running)."""
        return self._indexed

    def _texts_from(self, done: int, batch: int) -> list[tuple[int, str]]:
        # The offered texts from `done` on, in order while they are contiguous; else the
        # next entries read from the ledger and decoded.
        texts: list[tuple[int, str]] = []
        with self._offered_lock:
            for stale in [i for i in self._offered if i < done]:
                del self._offered[stale]
            while len(texts) < batch and (text := self._offered.pop(done + len(texts), None)) is not None:
                texts.append((done + len(texts), text))
        if texts:
            return texts
        rows = self._ledger.execute(
            "SELECT idx, leaf FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?", (done, batch)
        ).fetchall()
        return [(idx, event_text(orjson.loads(leaf))) for idx, leaf in rows]

    def catch_up(self, batch: int = 2000, limit: int | None = None) -> int:
        """Index entries committed since the last call, or at most about `limit` of them (whole
        batches); return how many were added."""
        added = 0
        with self._lock:
            while limit is None or added < limit:
                (done,) = self._conn.execute("SELECT indexed FROM fts_state").fetchone()
                # The text is built before the write transaction, so it is held only for the inserts.
                texts = self._texts_from(done, batch)
                if not texts:
                    self._indexed = done
                    return added
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    (now,) = self._conn.execute("SELECT indexed FROM fts_state").fetchone()
                    if now == done:  # else another process indexed these meanwhile: read again
                        self._conn.executemany("INSERT INTO events_fts (rowid, body) VALUES (?, ?)", texts)
                        self._conn.execute("UPDATE fts_state SET indexed = ?", (texts[-1][0] + 1,))
                        added += len(texts)
                    self._conn.execute("COMMIT")
                    if now == done:
                        self._indexed = texts[-1][0] + 1
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            return added

    def catch_up_step(self) -> int:
        """Index at most one step (CATCH_UP_STEP entries) of the backlog; return how many were
        added. Callers that must answer soon take steps, so none waits behind a whole backlog."""
        return self.catch_up(CATCH_UP_STEP, CATCH_UP_STEP)

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """Return the newest events containing every word of `text`."""
        query = _fts_query(text)
        if not query:
            return []
        found = self._conn.execute(
            "SELECT rowid FROM events_fts WHERE events_fts MATCH ? ORDER BY rowid DESC LIMIT ?", (query, limit)
        ).fetchall()
        marks = ",".join("?" * len(found))
        rows: list[tuple[int, Any, Any, Any, bytes]] = self._ledger.execute(
            f"SELECT idx, event_id, trace_id, type, leaf FROM entries WHERE idx IN ({marks}) ORDER BY idx DESC",
            [idx for (idx,) in found],
        ).fetchall()
        snippets = _snippets(query, [(idx, event_text(orjson.loads(leaf))) for idx, _, _, _, leaf in rows])
        return [SearchHit(idx, str(e), str(t), str(k), snippets.get(idx, "")) for idx, e, t, k, _ in rows]


def _snippets(query: str, texts: list[tuple[int, str]]) -> dict[int, str]:
    """FTS5's own snippet (match in [brackets], 12 tokens) of each text, by its index. The index
    keeps no text, so the hits' texts go through a throwaway in-memory table of the same kind."""
    if not texts:
        return {}
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE VIRTUAL TABLE hits USING fts5(body, tokenize = 'unicode61')")
        # In rowid order: FTS5 flushes its pending terms at every rowid lower than the last (3x).
        conn.executemany("INSERT INTO hits (rowid, body) VALUES (?, ?)", sorted(texts))
        rows = conn.execute(
            "SELECT rowid, snippet(hits, 0, '[', ']', '…', 12) FROM hits WHERE hits MATCH ?", (query,)
        ).fetchall()
    return {int(idx): str(snippet) for idx, snippet in rows}
