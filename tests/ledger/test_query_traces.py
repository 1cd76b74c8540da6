"""Trace listing pages: newest trace first, each trace once across pages, with or without filters."""

from __future__ import annotations

import random
from pathlib import Path

from flightlog.ledger.log import Ledger
from flightlog.ledger.store import query_traces
from flightlog.pipeline import Pipeline
from flightlog.server.filters import trace_filters
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


def test_filtered_pages_order_traces_by_their_newest_matching_event(home: Path) -> None:
    rng = random.Random(7)
    traces = [f"{n:032x}" for n in range(1, 41)]
    agents, kinds = ("claude-code", "codex-cli", "aider"), ("prompt", "shell", "file_op")
    events = []
    for i in range(600):
        kind = rng.choice(kinds)
        payloads = {
            "prompt": {"text": "go"},
            "shell": {"command": "make", "exit_code": 0},
            "file_op": {"op": "create", "file_path": rng.choice(("a.py", "b.py"))},
        }
        events.append(
            make_event(
                i,
                trace_id=rng.choice(traces),
                parent_span_id=None,
                agent_id=rng.choice(agents),
                type=kind,
                payload=payloads[kind],
            )
        )
    cases: list[dict[str, str | None]] = [
        {"agent": "aider"},
        {"agent": "codex-cli", "type": "shell"},
        {"file_path": "b.py"},
        {"since": events[200]["timestamp"], "until": events[260]["timestamp"]},
        {"agent": "nobody"},
    ]
    with Ledger(home) as ledger:
        assert Pipeline(ledger).ingest(events) == list(range(len(events)))
        for filters in cases:
            newest: dict[str, int] = {}
            for i, e in enumerate(events):
                p = e["payload"]
                if (
                    filters.get("agent") in (None, e["agent_id"])
                    and filters.get("type") in (None, e["type"])
                    and filters.get("file_path") in (None, p.get("file_path"))
                    and e["timestamp"] >= (filters.get("since") or "")
                    and e["timestamp"] < (filters.get("until") or "~")
                ):
                    newest[e["trace_id"]] = i
            expected = sorted(newest, key=lambda t: -newest[t])
            for limit in (1, 3, 7, 50):
                pages = _pages(ledger, trace_filters(filters), limit)
                assert [t for page in pages for t in page] == expected, (filters, limit)
            if expected:  # a summary covers the whole trace, not only its matching events
                top = query_traces(ledger.store, trace_filters(filters), 1, None)[0]
                assert top["cursor"] == newest[expected[0]]
                assert top["events"] == sum(e["trace_id"] == expected[0] for e in events)


def test_a_trace_that_gets_events_while_a_client_pages_is_still_listed_once(home: Path) -> None:
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    with Ledger(home) as ledger:
        pipeline = Pipeline(ledger)
        pipeline.ingest([make_event(n, trace_id=t, parent_span_id=None) for n, t in enumerate((a, b, c))])
        for filters in ({}, trace_filters({"agent": "claude-code"})):
            as_of = ledger.size
            seen: list[object] = []
            before = None
            for step in range(5):
                rows = query_traces(ledger.store, filters, 1, before, as_of)
                if not rows:
                    break
                seen.append(rows[0]["trace_id"])
                before = int(str(rows[0]["cursor"]))
                if step == 0:  # A gets an event after the first page was read
                    pipeline.ingest([make_event(10 + len(seen) + 10 * len(filters), trace_id=a, parent_span_id=None)])
            assert sorted(map(str, seen)) == [a, b, c], (filters, seen)  # was: A never listed
