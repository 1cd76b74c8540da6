"""Full-text search over redacted events, through the API and the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from flightlog.index import INDEX_FILE
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
