"""Full-text search over the stored (already redacted) events, with SQLite FTS5.

The index is derived data beside the ledger, filled from the entries after they are committed
(`catch_up`), and can be rebuilt at any time. It is not covered by the Merkle tree: `verify`
never trusts it. It lives in a database file of its own (`index.db`, next to `ledger.db`):
SQLite has one writer per file, and an index transaction in the ledger's file held up every
append behind it (for ~0.3 s per 2,000 entries under load).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import sqlite3
import sys
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from flightlog._internal.jsonwalk import _strings
from flightlog.errors import LedgerError, ValidationError

__all__ = [
    "CATCH_UP_STEP",
    "INDEX_FILE",
    "MATCH_MARKS",
    "MAX_QUERY_WORDS",
    "TEXT_FIELDS",
    "SearchHit",
    "SearchIndex",
    "check_query",
    "event_text",
]

_log = logging.getLogger(__name__)

INDEX_FILE: Final = "index.db"
# Held (flock) while a missing or corrupt index.db is replaced, so that two processes doing it at
# once never remove each other's new files.
_LOCK_FILE: Final = "index.lock"
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
# Snippets cost about (hits x phrases): one query of "alpha" 5,000 times took 87 s at 50,000
# events. Repeats are dropped, and more words than this are refused.
MAX_QUERY_WORDS: Final = 32
_MAX_QUERY_CHARS: Final = 2048  # after repeats are dropped: long enough for any real search
_READ_CHUNK: Final = 500  # hits read from the ledger per query: far below SQLite's bound on variables
_MAX_LIMIT: Final = 2**63 - 1  # SQLite's largest integer
# Snippet match markers that cannot be confused with text: control characters, which the
# tokenizer takes for spaces, so the text the snippets are cut from has them replaced by spaces.
MATCH_MARKS: Final = ("\x02", "\x03")
# ASCII letters and digits, and every non-ASCII character: unicode61 splits words at every other
# ASCII character; non-ASCII separators are kept in a word's key, so that two words are taken
# for one only when FTS5 sees the same phrase in both.
_WORD: Final = re.compile(r"[0-9a-z\x80-\U0010ffff]+")


@dataclass(frozen=True)
class SearchHit:
    """One matching event: ledger index, ids, type and a snippet with the match in [brackets]
    (or in the `marks` given to `SearchIndex.search`)."""

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
    """Turn user input into an FTS5 query: every word must occur (quoted, so no syntax errors).
    A word repeated (in any case, or with other punctuation around it) is searched for once;
    raise ValidationError for more than MAX_QUERY_WORDS words."""
    # NUL ends an FTS5 query string early (a syntax error); the tokenizer splits words there anyway.
    # Each whitespace-separated word is a phrase: "foo-bar" still means foo next to bar.
    phrases: dict[tuple[str, ...], str] = {}
    for word in text.replace("\x00", " ").split():
        phrases.setdefault(tuple(_WORD.findall(word.lower())), word)
    words = " ".join(phrases.values())
    if len(words) > _MAX_QUERY_CHARS:
        raise ValidationError("query", f"{len(words)} characters; a search takes at most {_MAX_QUERY_CHARS}")
    count = _token_count(words)
    if count > MAX_QUERY_WORDS:
        raise ValidationError("query", f"{count} different words; a search takes at most {MAX_QUERY_WORDS}")
    return " ".join('"' + w.replace('"', '""') + '"' for w in phrases.values())


def check_query(text: str) -> None:
    """Raise ValidationError for a query `SearchIndex.search` would refuse: checked before an
    index catches up, so that a bad query is told at once, not after a backlog."""
    _fts_query(text)


def _token_count(text: str) -> int:
    """How many tokens FTS5's own tokenizer makes of `text`: a guess from Python's idea of a
    letter falls short (letters newer than SQLite's Unicode tables, dashes and dots in other
    scripts split words there and not here), and each token costs every hit a snippet pass."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE VIRTUAL TABLE q USING fts5(body, tokenize = 'unicode61')")
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(q, 'instance')")
        conn.execute("INSERT INTO q (body) VALUES (?)", (text,))
        return int(conn.execute("SELECT count(*) FROM v").fetchone()[0])


class SearchIndex:
    """The FTS5 index of the ledger in `ledger_db`, kept in `index.db` beside it. The ledger is
    only read (a read-only connection), so indexing never takes the ledger's write lock."""

    def __init__(self, ledger_db: Path) -> None:
        self._path = ledger_db.with_name(INDEX_FILE)
        self._conn = _open_index(self._path)
        self._file = _file_id(self._path)
        uri = f"file:{urllib.parse.quote(str(ledger_db))}?mode=ro"
        self._ledger = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._ledger.execute("PRAGMA busy_timeout=10000")
        self._lock = threading.Lock()
        self._conn_lock = threading.Lock()  # held while `_conn` is used outside `_lock` or swapped
        self._offered: dict[int, str] = {}
        self._indexed = int(self._conn.execute("SELECT indexed FROM fts_state").fetchone()[0])
        self._offered_lock = threading.Lock()

    def _reopen_if_replaced(self) -> None:
        # A deleted index.db stays open here, written and read by no one else: the next process
        # would make a new one and index everything again beside it. So this one reopens the
        # file at the path (made anew if missing) and indexes from where that file stands.
        seen = _file_id(self._path)
        if seen == self._file:
            return
        conn = _open_index(self._path)
        # The file as seen before opening: if it is replaced again meanwhile, the next call sees
        # a difference and reopens (the file seen after opening might not be the one opened).
        opened = seen if seen is not None else _file_id(self._path)
        with self._conn_lock:
            old, self._conn, self._file = self._conn, conn, opened
        # SQLite neither checkpoints nor deletes the -wal/-shm files of a moved database on close.
        old.close()
        self._indexed = int(conn.execute("SELECT indexed FROM fts_state").fetchone()[0])

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
        try:
            rows = self._ledger.execute(
                "SELECT idx, leaf FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?", (done, batch)
            ).fetchall()
        except sqlite3.DatabaseError as exc:  # the ledger's fault, not the index's: never rebuilt for it
            raise LedgerError(f"cannot read the ledger to index it: {exc}") from None
        return [(idx, event_text(orjson.loads(leaf))) for idx, leaf in rows]

    def _rebuild_if_corrupt(self, exc: sqlite3.DatabaseError) -> None:
        # Damage found after opening (a bad page of the term lists): made anew, as at opening,
        # rather than failing every search and every catch-up until a restart. Call with `_lock`.
        if not _is_corrupt(exc):
            raise exc
        with _replacing(self._path):
            if _file_id(self._path) == self._file:  # else another process replaced it already
                _log.warning(
                    "flightlog: the search index %s is damaged (%s); rebuilding it from the ledger", self._path, exc
                )
                _make_empty(self._path)
        self._reopen_if_replaced()

    def catch_up(self, batch: int = 2000, limit: int | None = None) -> int:
        """Index entries committed since the last call, or at most about `limit` of them (whole
        batches); return how many were added."""
        with self._lock:
            self._reopen_if_replaced()
            try:
                return self._catch_up(batch, limit)
            except sqlite3.DatabaseError as exc:
                self._rebuild_if_corrupt(exc)
            return self._catch_up(batch, limit)

    def _catch_up(self, batch: int, limit: int | None) -> int:
        added = 0
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
                with contextlib.suppress(sqlite3.Error):  # a damaged file may refuse it too
                    self._conn.execute("ROLLBACK")
                raise
        return added

    def catch_up_step(self) -> int:
        """Index at most one step (CATCH_UP_STEP entries) of the backlog; return how many were
        added. Callers that must answer soon take steps, so none waits behind a whole backlog."""
        return self.catch_up(CATCH_UP_STEP, CATCH_UP_STEP)

    def search(self, text: str, limit: int = 50, marks: tuple[str, str] = ("[", "]")) -> list[SearchHit]:
        """Return the newest events (at most `limit`) containing every word of `text`, with
        `marks` around the matches in their snippets. Raise ValidationError for a query of
        more than MAX_QUERY_WORDS different words."""
        query = _fts_query(text)
        limit = min(max(limit, 0), _MAX_LIMIT)
        if not query or not limit:
            return []
        try:
            found = self._matches(query, limit)
        except sqlite3.DatabaseError as exc:
            with self._lock:
                self._rebuild_if_corrupt(exc)
            found = self._matches(query, limit)  # none until the new index has caught up
        hits: list[SearchHit] = []
        for start in range(0, len(found), _READ_CHUNK):
            chunk = found[start : start + _READ_CHUNK]
            rows: list[tuple[int, Any, Any, Any, bytes]] = self._ledger.execute(
                f"SELECT idx, event_id, trace_id, type, leaf FROM entries WHERE idx IN ({','.join('?' * len(chunk))})"
                " ORDER BY idx DESC",
                chunk,
            ).fetchall()
            texts = [(idx, event_text(orjson.loads(leaf))) for idx, _, _, _, leaf in rows]
            snippets = _snippets(query, texts, marks)
            hits.extend(SearchHit(idx, str(e), str(t), str(k), snippets.get(idx, "")) for idx, e, t, k, _ in rows)
        return hits

    def _matches(self, query: str, limit: int) -> list[int]:
        with self._conn_lock:
            return [
                idx
                for (idx,) in self._conn.execute(
                    "SELECT rowid FROM events_fts WHERE events_fts MATCH ? ORDER BY rowid DESC LIMIT ?", (query, limit)
                )
            ]


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[None]:
    fd = os.open(path.with_name(_LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def _make_empty(path: Path) -> None:
    # -wal and -shm files left from the file that was there belong to another database: SQLite
    # would read them with the new one ("disk I/O error").
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink(missing_ok=True)
    # SQLite gives the -wal and -shm files the mode of the database file.
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _open_index(path: Path) -> sqlite3.Connection:
    """Open the index in `path`; make a new one if it is missing or corrupt (derived data)."""
    if not path.exists():
        with _replacing(path):
            if not path.exists():  # else another process made it meanwhile
                _make_empty(path)
    try:
        return _connect(path)
    except sqlite3.DatabaseError as exc:
        if not _is_corrupt(exc):
            raise
    with _replacing(path):
        try:
            return _connect(path)  # another process may have replaced it meanwhile
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc):
                raise
            _log.warning("flightlog: the search index %s is damaged (%s); rebuilding it from the ledger", path, exc)
            _make_empty(path)
    return _connect(path)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        # Derived data: a commit lost to a power cut is indexed again, so no fsync per commit.
        conn.execute("PRAGMA synchronous=NORMAL")
        _drop_stored_text_index(conn)
        conn.executescript(_SCHEMA)
        # A persistent setting: written once, so that opening the index stays a read.
        row = conn.execute("SELECT v FROM events_fts_config WHERE k = 'automerge'").fetchone()
        if row is None or row[0] != _AUTOMERGE:
            conn.execute("INSERT INTO events_fts(events_fts, rank) VALUES ('automerge', ?)", (_AUTOMERGE,))
        conn.execute("SELECT indexed FROM fts_state").fetchone()  # a damaged page here is found now
    except BaseException:
        conn.close()
        raise
    return conn


def _drop_stored_text_index(conn: sqlite3.Connection) -> None:
    # An index made by an older flightlog kept every event's text: it is dropped and built
    # again from the ledger (in steps, as for a deleted index.db).
    # Its free pages are reused by the new index.
    conn.execute("BEGIN IMMEDIATE")
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events_fts'").fetchone()
    if row is not None and "content = ''" not in row[0]:
        conn.execute("DROP TABLE events_fts")
        conn.execute("DROP TABLE IF EXISTS fts_state")
    conn.execute("COMMIT")


def _snippets(query: str, texts: list[tuple[int, str]], marks: tuple[str, str]) -> dict[int, str]:
    """FTS5's own snippet (match in `marks`, 12 tokens) of each text, by its index. The index
    keeps no text, so the hits' texts go through a throwaway in-memory table of the same kind."""
    if not texts:
        return {}
    start, end = MATCH_MARKS
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE VIRTUAL TABLE hits USING fts5(body, tokenize = 'unicode61')")
        # In rowid order: FTS5 flushes its pending terms at every rowid lower than the last (3x).
        conn.executemany(
            "INSERT INTO hits (rowid, body) VALUES (?, ?)",
            sorted((i, t.replace(start, " ").replace(end, " ")) for i, t in texts),
        )
        rows = conn.execute(
            "SELECT rowid, snippet(hits, 0, ?, ?, '…', 12) FROM hits WHERE hits MATCH ?", (*marks, query)
        ).fetchall()
    return {int(idx): str(snippet) for idx, snippet in rows}
