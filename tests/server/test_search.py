"""Full-text search over redacted events, through the API and the CLI."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from flightlog.index import INDEX_FILE, SearchIndex
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
