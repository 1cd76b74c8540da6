"""GET /metrics reflects what agents did, and every metric the shipped alerts use exists."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from flightlog.events import fill_defaults
from flightlog.server.export import OtlpForwarder
from flightlog.server.metrics import CollectorMetrics
from tests.conftest import make_event
from tests.server.conftest import Server
from tests.server.otlp_backend import recording_backend

JSON, PB = "application/json", "application/x-protobuf"
ALERTS = Path(__file__).parent.parent.parent / "deploy" / "prometheus" / "alerts.yml"


def _value(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_agent_signals(serve: Callable[..., Server]) -> None:
    server = serve()
    t0 = "2026-11-24T17:00:00.000Z"
    events = [
        make_event(0, type="prompt", payload={"text": "go"}, timestamp=t0),
        make_event(1, type="tool_call", payload={"tool_name": "Bash"}, timestamp="2026-11-24T17:00:02.000Z"),
        make_event(
            2, type="tool_call", payload={"tool_name": "Bash"}, status="error", timestamp="2026-11-24T17:00:04.000Z"
        ),
        make_event(3, type="git_op", payload={"op": "commit"}, timestamp="2026-11-24T17:00:05.000Z"),
        make_event(4, type="rollback", payload={}, timestamp="2026-11-24T17:00:06.000Z"),
        make_event(5, type="policy_evaluation", payload={}, status="denied", timestamp="2026-11-24T17:00:07.000Z"),
        make_event(
            6, type="tool_call", payload={"tool_name": "Bash"}, status="denied", timestamp="2026-11-24T17:00:07.500Z"
        ),
        # The session's next turn: it ends the first one, whose last event came 7.5 s after its prompt.
        make_event(7, type="prompt", payload={"text": "next"}, trace_id="f" * 32, timestamp="2026-11-24T17:01:00Z"),
    ]
    assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
    assert httpx.post(server.url + "/api/v1/events", json=[make_event(9, span_id="bad")]).status_code == 422
    assert httpx.post(server.url + "/api/v1/events", content=b"[{", headers={"content-type": JSON}).status_code == 400
    assert httpx.post(server.url + "/v1/traces", content=b"\xff", headers={"content-type": PB}).status_code == 400
    text = httpx.get(server.url + "/metrics").text
    assert _value(text, "flightlog_tool_calls_total") == 3
    assert _value(text, "flightlog_tool_failures_total") == 1
    assert _value(text, "flightlog_commits_total") == 1
    assert _value(text, "flightlog_rollbacks_total") == 1
    assert _value(text, "flightlog_turns_total") == 2
    assert _value(text, "flightlog_denied_actions_total") == 1  # the call, not also its evaluation
    assert _value(text, "flightlog_events_received_total") == 9
    assert _value(text, 'flightlog_events_rejected_total{reason="validation",source="api"}') == 1
    assert _value(text, 'flightlog_requests_refused_total{source="api",status="400"}') == 1
    assert _value(text, 'flightlog_requests_refused_total{source="otlp",status="400"}') == 1
    assert _value(text, "flightlog_action_latency_seconds_count") == 1  # one turn ended
    assert _value(text, "flightlog_action_latency_seconds_sum") == 7.5
    assert _value(text, "flightlog_ledger_entries") == 8
    deadline = time.monotonic() + 10  # the collector indexes what it stored right after the commit
    while _value(text, "flightlog_search_index_lag") > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        text = httpx.get(server.url + "/metrics").text
    assert _value(text, "flightlog_search_index_lag") == 0


def test_alert_rules_use_only_exported_metrics(serve: Callable[..., Server]) -> None:
    server = serve()
    text = httpx.get(server.url + "/metrics").text
    exported = set(re.findall(r"^# TYPE (\S+) (\S+)", text, re.M))
    names = set()
    for name, kind in exported:
        names.add(name)
        if kind == "counter":
            names.add(name + "_total")
        if kind == "histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
    used = set(re.findall(r"\b(flightlog_[a-z_]+)", ALERTS.read_text()))
    assert used and used <= names, used - names


def test_export_metrics_read_the_forwarder_at_scrape_time() -> None:
    metrics = CollectorMetrics()
    names = ("sent_total", "failed_total", "dropped_total", "queue_depth")

    def export_values() -> list[float]:
        text = metrics.render().decode()
        return [_value(text, f"flightlog_export_{name}") for name in names]

    def until(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)

    assert export_values() == [0, 0, 0, 0]  # export off: present, so the alert rules always resolve
    events = [fill_defaults(make_event(i)) for i in range(8)]
    with recording_backend() as backend:
        forwarder = OtlpForwarder(backend.url, retries=0, max_queue=1)  # one at a time: room for one
        try:
            metrics.watch_export(forwarder)

            def reached(count: str, n: int) -> Callable[[], bool]:
                return lambda: bool(getattr(forwarder, count) == n)

            for n, event in enumerate(events[:3], 1):
                forwarder.submit([event])
                until(reached("sent", n))
            backend.status = 401
            for n, event in enumerate(events[3:5], 1):
                forwarder.submit([event])
                until(reached("failed", n))
            backend.status = 200
            backend.release.clear()  # hold the next answer: one in flight, one queued, two dropped
            forwarder.submit(events[5:6])
            until(lambda: len(backend.requests) == 6)
            forwarder.submit(events[6:8] + events[:1])
            assert export_values() == [3, 2, 2, 1]
        finally:
            backend.release.set()
            forwarder.close()
    assert export_values() == [5, 2, 2, 0]
