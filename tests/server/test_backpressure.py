"""Past what it holds pending, the collector answers 503 + Retry-After at once (never an unbounded
queue that makes clients time out), and a request it could never take is a 413, not a 503 that
a client would retry forever."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from flightlog.ledger.log import Ledger
from tests.conftest import CliRunner, make_event
from tests.server.conftest import Server

PB = {"content-type": "application/x-protobuf"}


def _body(n: int, spans: int) -> bytes:
    trace = os.urandom(16)
    items = [
        Span(
            trace_id=trace,
            span_id=(n * spans + i + 1).to_bytes(8, "big"),
            name="execute_tool shell",
            start_time_unix_nano=1_795_021_200_000_000_000 + i,
            end_time_unix_nano=1_795_021_200_035_000_000 + i,
            attributes=[
                KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="execute_tool")),
                KeyValue(key="gen_ai.tool.call.result", value=AnyValue(string_value=f"line {i} " + "x" * 600)),
            ],
        )
        for i in range(spans)
    ]
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=items)])]
    ).SerializeToString()


def test_a_burst_past_the_pending_budget_gets_503_with_retry_after(
    serve: Callable[..., Server], flightlog: CliRunner
) -> None:
    server = serve("--max-pending-bytes", str(1024 * 1024))
    bodies = [_body(n, 2000) for n in range(16)]  # ~1.3 MB each: one at a time fits the budget
    with httpx.Client(timeout=120) as client, concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda b: client.post(server.url + "/v1/traces", content=b, headers=PB), bodies))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) == {200, 503}, statuses  # was: all 200, the last after every body before it
    assert all(a.headers.get("retry-after") == "1" for a in answers if a.status_code == 503)
    accepted = statuses.count(200)
    metrics = httpx.get(server.url + "/metrics").text
    overloads = next(line for line in metrics.splitlines() if line.startswith("flightlog_overload_responses_total "))
    assert float(overloads.split()[1]) == statuses.count(503)
    server.stop()
    flightlog("verify", check=True)
    assert len(flightlog("export", "--format", "leaves", check=True).stdout.splitlines()) == accepted * 2000


def test_a_request_of_more_events_than_are_ever_held_pending_is_413(
    serve: Callable[..., Server], home: Path, flightlog: CliRunner
) -> None:
    server = serve("--max-pending-events", "3")
    url = server.url + "/api/v1/events"
    too_many = httpx.post(url, json=[make_event(n, span_id=f"{n + 1:016x}") for n in range(4)])
    assert too_many.status_code == 413, too_many.text  # was: 503 + Retry-After, on an idle server, forever
    assert "at most 3 at once: split it" in too_many.json()["error"]
    assert httpx.post(server.url + "/v1/traces", content=_body(0, 4), headers=PB).status_code == 413
    assert httpx.post(url, json=[make_event(n) for n in range(3)]).status_code == 200
    server.stop()
    flightlog("verify", check=True)
    assert len(flightlog("export", "--format", "leaves", check=True).stdout.splitlines()) == 3


def test_a_hook_call_is_recorded_even_while_the_queue_is_full(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A hook call, an approval and a rollback are few and the record of something done: never
    # refused for load (a refused hook call fails open: the agent acts, unrecorded).
    from tests.server.test_openapi_accuracy import appends_held, running

    async def run() -> int:
        async with running(home) as c:  # max_pending_events=1
            ingest = {"content-type": "application/json"}
            with appends_held(monkeypatch) as (entered, release):
                first = asyncio.create_task(
                    c.send("POST", "/api/v1/events", "ingest", ingest, json.dumps([make_event(0)]).encode())
                )
                assert await asyncio.to_thread(entered.wait, 30)
                prompt = {"session_id": "s-full", "hook_event_name": "UserPromptSubmit", "prompt": "go", "cwd": "/"}
                hook = asyncio.create_task(
                    c.send("POST", "/hooks/claude-code", "ingest", ingest, json.dumps(prompt).encode())
                )
                await asyncio.sleep(0.2)
                release.set()
                assert (await first).status_code == 200 and (await hook).status_code == 200
            with Ledger.open(home, writable=False) as ledger:
                events = [json.loads(leaf) for _, _, leaf, _ in ledger.store.iter_entries()]
                return sum(e["source"]["kind"] == "claude-code-hook" for e in events)

    assert asyncio.run(run()) == 1  # was: 0, the hook's prompt refused as overload
