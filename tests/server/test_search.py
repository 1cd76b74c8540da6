"""Full-text search over redacted events, through the API and the CLI."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from flightlog.errors import ValidationError
from flightlog.index import INDEX_FILE, MAX_QUERY_WORDS, SearchIndex, _fts_query
from flightlog.ledger.log import Ledger
from flightlog.pipeline import Pipeline
from tests.conftest import make_event
from tests.redact_cases import GITHUB_PAT
from tests.server.conftest import Server


def test_search_finds_words_never_secrets(serve: Callable[..., Server], home: Path) -> None:
    server = serve()
    events = [
        make_event(0, payload={"text": "refactor the flux capacitor module"}),
        make_event(1, type="shell", payload={"command": f"GH_TOKEN={GITHUB_PAT} gh release create"}),
        make_event(2, type="prompt", payload={"text": "unrelated words"}),
    ]
    assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
    hits = httpx.get(server.url + "/api/v1/search", params={"q": "flux capacitor"}).json()["hits"]
    assert [h["index"] for h in hits] == [0] and "[flux]" in hits[0]["snippet"]
    assert httpx.get(server.url + "/api/v1/search", params={"q": GITHUB_PAT}).json()["hits"] == []
    redacted = httpx.get(server.url + "/api/v1/search", params={"q": "REDACTED github"}).json()["hits"]
    assert [h["index"] for h in redacted] == [1]
    odd = httpx.get(server.url + "/api/v1/search", params={"q": 'AND OR "( NEAR'})
    assert odd.status_code == 200
    server.stop()
    out = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), "search", "capacitor"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("#0 ")


def test_search_reports_coverage_while_a_deleted_index_is_rebuilt(serve: Callable[..., Server], home: Path) -> None:
    with Ledger.open(home) as ledger:
        events = [make_event(i, type="prompt", payload={"text": f"entry number{i}"}) for i in range(4500)]
        assert Pipeline(ledger).ingest(events) == list(range(4500))
    (home / INDEX_FILE).unlink(missing_ok=True)  # the index is derived data: rebuilt on start
    server = serve()
    first = httpx.get(server.url + "/api/v1/search", params={"q": "number4499"}).json()
    assert first["entries"] == 4500 and 0 < first["indexed"] <= 4500
    assert [h["index"] for h in first["hits"]] == ([4499] if first["indexed"] == 4500 else [])
    deadline = time.monotonic() + 30
    while httpx.get(server.url + "/healthz").json()["indexed"] < 4500 and time.monotonic() < deadline:
        time.sleep(0.1)
    done = httpx.get(server.url + "/api/v1/search", params={"q": "number4499"}).json()
    assert done["indexed"] == done["entries"] == 4500
    assert [h["index"] for h in done["hits"]] == [4499]


def test_cli_search_says_it_is_indexing_a_large_backlog(home: Path, flightlog: Any) -> None:
    with Ledger.open(home) as ledger:
        events = [make_event(i, type="prompt", payload={"text": f"entry number{i}"}) for i in range(10_500)]
        assert len(Pipeline(ledger).ingest(events)) == 10_500
    out = flightlog("search", "number10499", check=True)
    assert "indexing 10,500 entries for search first" in out.stderr
    assert "10,500 / 10,500" in out.stderr
    assert out.stdout.startswith("#10499 ")
    again = flightlog("search", "number7", check=True)  # caught up: nothing to say
    assert again.stderr == "" and again.stdout.startswith("#7 ")


def test_events_at_the_depth_limit_are_indexed(home: Path) -> None:
    # A long string at the deepest level the pipeline accepts becomes a blob reference, one
    # level deeper than the limit; indexing must take it (it used to stop the index for good).
    def nested(depth: int, leaf: str) -> dict[str, Any]:
        value: Any = leaf
        for _ in range(depth):
            value = [value]
        return make_event(1, payload={"tool_name": "Bash", "input": value})

    with Ledger(home) as ledger:
        pipeline = Pipeline(ledger)
        deepest = max(d for d in range(180, 230) if not pipeline.prepare_batch([nested(d, "x")])[1])
        assert pipeline.ingest([nested(deepest, "deepword " + "y" * 20_000)]) == [0]
        # Deep enough, the schema check (jsonschema-rs has its own bound) stops first.
        for depth in (220, 900):
            too_deep: Any = "x"
            for _ in range(depth):
                too_deep = [too_deep]
            good, bad = pipeline.prepare_batch([make_event(1, payload={"tool_name": "Bash", "input": too_deep})])
            assert not good and bad[0].reason in ("nested deeper than 200 levels", "nested too deeply")
    out = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), "search", "Bash"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "tool_call" in out.stdout


def test_an_index_that_kept_the_text_is_rebuilt_without_it(home: Path) -> None:
    # Indexes made before the index went contentless held every event's text a second time.
    with Ledger.open(home) as ledger:
        events = [make_event(i, type="prompt", payload={"text": f"entry number{i} of the old"}) for i in range(30)]
        assert Pipeline(ledger).ingest(events) == list(range(30))
    old = sqlite3.connect(home / INDEX_FILE, isolation_level=None)
    old.executescript(
        "CREATE VIRTUAL TABLE events_fts USING fts5(body, tokenize = 'unicode61');"
        "CREATE TABLE fts_state (id INTEGER PRIMARY KEY CHECK (id = 0), indexed INTEGER NOT NULL);"
        "INSERT INTO fts_state VALUES (0, 30);"
        "INSERT INTO events_fts (rowid, body) VALUES (3, 'stale text number3');"
    )
    old.close()
    index = SearchIndex(home / "ledger.db")
    try:
        assert index.indexed == 0  # rebuilt from the ledger, not trusted
        assert index.catch_up() == 30
        hits = index.search("number29 old")
        assert [h.index for h in hits] == [29]
        assert "[number29]" in hits[0].snippet and "[old]" in hits[0].snippet
        assert index.search("stale") == []
    finally:
        index.close()
    with contextlib.closing(sqlite3.connect(home / INDEX_FILE)) as check:
        tables = {name for (name,) in check.execute("SELECT name FROM sqlite_master")}
    assert "events_fts" in tables and "events_fts_content" not in tables  # no second copy of the text


def test_search_takes_any_limit_and_the_cli_a_range(
    home: Path, flightlog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More hits than SQLite takes variables in one statement: read in chunks. The bound is
    # 32,766 in SQLite's own builds, 250,000 in Debian's: the index's connections get the first.
    connect = sqlite3.connect

    def bounded(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
        return conn

    monkeypatch.setattr(sqlite3, "connect", bounded)
    with Ledger.open(home) as ledger:
        events = [make_event(i, type="prompt", payload={"text": f"tiny {i}"}) for i in range(33_000)]
        assert len(Pipeline(ledger).ingest(events)) == 33_000
    index = SearchIndex(home / "ledger.db")
    try:
        assert index.catch_up() == 33_000
        for limit in (300_000, 2**63, 2**100):
            hits = index.search("tiny", limit)
            assert [h.index for h in hits] == list(range(32_999, -1, -1))
            assert hits[-1].snippet.startswith("prompt") and "[tiny] 0" in hits[-1].snippet
        assert index.search("tiny", 0) == [] and index.search("tiny", -1) == []
        assert [h.index for h in index.search("tiny", 2)] == [32_999, 32_998]
    finally:
        index.close()
    for bad in ("300000", "9223372036854775808", "-1", "0"):
        out = flightlog("search", "--limit", bad, "tiny")
        assert out.returncode == 2 and "Invalid value for '--limit'" in out.stderr, out.stderr
    out = flightlog("search", "--limit", "10000", "tiny", check=True)
    assert len(out.stdout.splitlines()) == 10_000


def test_repeated_words_count_once_and_too_many_words_are_refused(
    serve: Callable[..., Server], home: Path, flightlog: Any
) -> None:
    assert _fts_query('alpha ALPHA alpha. (Alpha) "alpha" foo-bar foo.bar Foo_Bar bar-foo') == (
        '"alpha" "foo-bar" "bar-foo"'
    )
    assert _fts_query("🙂 👍 ☀ ☀") == '"🙂" "👍" "☀"'  # FTS5 indexes some emoji: never taken for one another
    server = serve()
    words = [f"w{i}" for i in range(MAX_QUERY_WORDS + 1)]
    event = make_event(0, type="prompt", payload={"text": " ".join(words)})
    assert httpx.post(server.url + "/api/v1/events", json=[event]).status_code == 200
    # Repeats (any case, any punctuation around them) do not count: 31 + "alpha" words.
    many = " ".join(words[: MAX_QUERY_WORDS - 1] + ["w0 W0 (w0) w0, W1."] * 400)
    found = httpx.get(server.url + "/api/v1/search", params={"q": many})
    assert found.status_code == 200 and [h["index"] for h in found.json()["hits"]] == [0]
    message = f"query: {MAX_QUERY_WORDS + 1} different words; a search takes at most {MAX_QUERY_WORDS}"
    refused = httpx.get(server.url + "/api/v1/search", params={"q": " ".join(words)})
    assert refused.status_code == 400 and refused.json() == {"error": message, "details": []}
    glued = httpx.get(server.url + "/api/v1/search", params={"q": ".".join(["alpha"] * 40)})  # one phrase of 40
    assert glued.status_code == 400
    page = httpx.get(server.url + "/", params={"q": " ".join(words)})
    assert page.status_code == 400 and message in page.text and 'value="w0 w1 w2' in page.text
    server.stop()
    out = flightlog("search", *words)
    assert out.returncode == 3 and out.stderr == f"error: {message}\n" and out.stdout == ""
    # Told before anything is indexed: the index of a large ledger may take minutes to build.
    (home / INDEX_FILE).unlink()
    assert flightlog("search", *words).stderr == f"error: {message}\n"
    assert not (home / INDEX_FILE).exists()


def test_the_ui_searches_the_whole_query_not_its_first_500_characters(serve: Callable[..., Server]) -> None:
    server = serve()
    long_word = "x" * 495
    events = [
        make_event(0, trace_id="a" * 32, type="prompt", payload={"text": f"{long_word} zebrafish"}),
        make_event(1, trace_id="b" * 32, type="prompt", payload={"text": f"{long_word} zebr"}),
    ]
    assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
    q = f"{long_word} zebrafish"  # 505 characters: cut at 500, it searched for "zebr"
    page = httpx.get(server.url + "/", params={"q": q})
    assert page.status_code == 200
    assert "/traces/" + "a" * 32 in page.text and "/traces/" + "b" * 32 not in page.text
    assert f'value="{q}"' in page.text


def test_snippets_in_the_ui_mark_only_the_matches(serve: Callable[..., Server]) -> None:
    server = serve()
    text = "see items[0] and [docs](http://x) then \x02odd\x03 zebra"
    event = make_event(0, type="prompt", payload={"text": text})
    assert httpx.post(server.url + "/api/v1/events", json=[event]).status_code == 200
    hits = httpx.get(server.url + "/api/v1/search", params={"q": "zebra"}).json()["hits"]
    assert hits[0]["snippet"].endswith("\nsee items[0] and [docs](http://x) then  odd  [zebra]")  # as documented
    page = httpx.get(server.url + "/", params={"q": "zebra"})
    assert page.status_code == 200
    assert "see items[0] and [docs](http://x) then  odd  <mark>zebra</mark>" in page.text
    assert page.text.count("<mark>") == 1 and "\x02" not in page.text


def test_an_index_deleted_while_open_is_made_anew_and_reopened(home: Path) -> None:
    with Ledger.open(home) as ledger:
        pipeline = Pipeline(ledger)
        assert pipeline.ingest(
            [make_event(i, type="prompt", payload={"text": f"warp {i}"}) for i in range(30)]
        ) == list(range(30))
        first = SearchIndex(ledger.store.path)
        assert first.catch_up() == 30
        (home / INDEX_FILE).unlink()  # its -wal and -shm stay: `first` still has them open
        assert (home / f"{INDEX_FILE}-wal").exists()
        second = SearchIndex(ledger.store.path)
        try:
            assert second.indexed == 0 and second.catch_up() == 30
            assert [h.index for h in second.search("warp 29")] == [29]
            assert pipeline.ingest([make_event(30, type="prompt", payload={"text": "warp 30"})]) == [30]
            # `first` notices and goes on in the new file, from where that file stands.
            assert first.catch_up() == 1 and first.indexed == 31
            assert (home / f"{INDEX_FILE}-wal").exists()  # closing the old file left the new one's alone
            assert [h.index for h in second.search("warp 30")] == [30]
            assert [h.index for h in first.search("warp 3")] == [3]
        finally:
            first.close()
            second.close()
        assert (home / "index.lock").stat().st_mode & 0o777 == 0o600


def test_a_missing_index_is_made_under_a_lock(home: Path) -> None:
    with Ledger.open(home) as ledger:
        assert Pipeline(ledger).ingest([make_event(0)]) == [0]
    fd = os.open(home / "index.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process is making index.db
    opened: list[SearchIndex] = []
    opener = threading.Thread(target=lambda: opened.append(SearchIndex(home / "ledger.db")))
    opener.start()
    opener.join(0.5)
    assert opener.is_alive() and not (home / INDEX_FILE).exists()
    os.close(fd)
    opener.join(10)
    assert opened and opened[0].catch_up() == 1
    opened[0].close()


def test_serve_follows_a_deleted_index_and_the_cli_searches_beside_it(
    serve: Callable[..., Server], home: Path, flightlog: Any
) -> None:
    server = serve()
    events = [make_event(i, type="prompt", payload={"text": f"quasar number{i}"}) for i in range(20)]
    assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
    assert len(httpx.get(server.url + "/api/v1/search", params={"q": "quasar"}).json()["hits"]) == 20
    (home / INDEX_FILE).unlink()
    assert flightlog("search", "number7", check=True).stdout.startswith("#7 ")
    more = [make_event(i, type="prompt", payload={"text": f"quasar number{i}"}) for i in range(20, 25)]
    assert httpx.post(server.url + "/api/v1/events", json=more).status_code == 200
    hits = httpx.get(server.url + "/api/v1/search", params={"q": "quasar"}).json()["hits"]
    assert [h["index"] for h in hits] == list(range(24, -1, -1))
    # The server writes to the file at the path, not to the one deleted.
    deadline = time.monotonic() + 30
    while _indexed_in_file(home) < 25 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _indexed_in_file(home) == 25
    assert flightlog("search", "number24", check=True).stdout.startswith("#24 ")


def _indexed_in_file(home: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{home / INDEX_FILE}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT indexed FROM fts_state").fetchone()[0])


def test_a_corrupt_index_is_rebuilt_other_faults_are_not(
    serve: Callable[..., Server], home: Path, flightlog: Any
) -> None:
    with Ledger.open(home) as ledger:
        events = [make_event(i, type="prompt", payload={"text": f"nebula number{i}"}) for i in range(20)]
        assert Pipeline(ledger).ingest(events) == list(range(20))
    index_db = home / INDEX_FILE
    index_db.write_bytes(os.urandom(4096))
    out = flightlog("search", "number19", check=True)
    assert out.stdout.startswith("#19 ")
    assert out.stderr.count("\n") == 1 and "search index" in out.stderr and "rebuilding it" in out.stderr
    index_db.write_bytes(os.urandom(4096))
    server = serve()  # was: "Application startup failed"
    hits = httpx.get(server.url + "/api/v1/search", params={"q": "nebula"}).json()["hits"]
    assert len(hits) == 20
    server.stop()
    assert "rebuilding it from the ledger" in server.log.read_text()
    # Not every fault is corruption: a file SQLite cannot open is reported and left alone.
    index_db.unlink()
    index_db.mkdir()
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        SearchIndex(home / "ledger.db")
    assert index_db.is_dir()


def _damage_term_lists(home: Path) -> None:
    """Overwrite the second half of a checkpointed index.db: its schema and state pages (the
    first ones) still open, so the damage is met only by a search or an insert."""
    index = SearchIndex(home / "ledger.db")
    index.catch_up()
    index._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    index.close()
    path = home / INDEX_FILE
    size = path.stat().st_size
    start = size // 2 // 4096 * 4096
    with path.open("r+b") as f:
        f.seek(start)
        f.write(os.urandom(size - start))


def test_damage_found_after_opening_rebuilds_the_index(
    serve: Callable[..., Server], home: Path, flightlog: Any
) -> None:
    with Ledger.open(home) as ledger:
        filler = "lorem ipsum dolor sit amet " * 20
        events = [make_event(i, type="prompt", payload={"text": f"nebula number{i} {filler}"}) for i in range(3000)]
        assert Pipeline(ledger).ingest(events) == list(range(3000))
    _damage_term_lists(home)
    out = flightlog("search", "number2999", check=True)  # was: "database disk image is malformed"
    assert out.stdout.startswith("#2999 ") and "rebuilding it" in out.stderr
    _damage_term_lists(home)
    server = serve()
    deadline = time.monotonic() + 30
    while True:  # was: 500 on every search until a restart
        answer = httpx.get(server.url + "/api/v1/search", params={"q": "number2999"})
        assert answer.status_code == 200, answer.text
        if answer.json()["hits"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [h["index"] for h in answer.json()["hits"]] == [2999]
    server.stop()
    assert "rebuilding it from the ledger" in server.log.read_text()


def test_words_are_counted_as_fts5_splits_them() -> None:
    # Glued by separators of other scripts (an em dash, a middle dot, an ideographic comma),
    # 40 words look like one to a Python pattern; FTS5 searches 40 phrases' tokens, each at the
    # cost of a snippet pass over every hit.
    for glue in ("\u2014", "\u00b7", "\u3001"):
        with pytest.raises(ValidationError, match="40 different words"):
            _fts_query(glue.join(f"w{i}" for i in range(40)))
    assert _fts_query("\u2014".join(f"w{i}" for i in range(30))).count('"') == 2  # one phrase, 30 tokens
    with pytest.raises(ValidationError, match="at most 2048"):
        _fts_query("x" * 3000)
