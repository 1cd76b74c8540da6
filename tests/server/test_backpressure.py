"""Past what it holds pending, the collector answers 503 + Retry-After at once (never an unbounded
queue that makes clients time out), and a request it could never take is a 413, not a 503 that
a client would retry forever."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

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
