"""Trace listing pages: newest trace first, each trace once across pages, with or without filters."""

from __future__ import annotations

from pathlib import Path

from flightlog.ledger.log import Ledger
from flightlog.ledger.store import query_traces
from flightlog.pipeline import Pipeline
from tests.conftest import make_event


def _pages(ledger: Ledger, filters: dict[str, str | None], limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    before: int | None = None
    while rows := query_traces(ledger.store, filters, limit, before):
        pages.append([str(r["trace_id"]) for r in rows])
        before = int(str(rows[-1]["cursor"]))
    return pages


def test_pages_list_each_trace_once_newest_last_event_first(home: Path) -> None:
    traces = [f"{n:032x}" for n in range(1, 6)]
    # Interleaved: trace 1's last event comes after traces 2 and 3 started.
    order = [0, 1, 0, 2, 1, 3, 0, 4, 2, 3]
    events = [make_event(i, trace_id=traces[t], parent_span_id=None) for i, t in enumerate(order)]
    with Ledger(home) as ledger:
        assert Pipeline(ledger).ingest(events) == list(range(len(events)))
        last = {t: i for i, t in enumerate(order)}
        expected = [traces[t] for t in sorted(last, key=lambda t: -last[t])]
        everything = {"agent": "claude-code"}  # a filter that matches all: the grouped query
        for limit in (1, 2, 3, 50):
            fast = _pages(ledger, {}, limit)
            assert [t for page in fast for t in page] == expected, limit
            assert fast == _pages(ledger, everything, limit)
        first = query_traces(ledger.store, {}, 50, None)[0]
        assert (first["trace_id"], first["events"], first["cursor"]) == (traces[3], 2, 9)
