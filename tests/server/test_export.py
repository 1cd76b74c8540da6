"""Onward export: real OTLP backends on loopback receive the ledger's events as GenAI spans."""

from __future__ import annotations

import json
import logging
import re
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from flightlog.capture.otlp_map import log_to_event, make_scope
from flightlog.ledger.log import Ledger
from flightlog.pipeline import Pipeline
from flightlog.server.export import OtlpForwarder, check_endpoint, cursor_path, parse_headers
from flightlog.server.metrics import CollectorMetrics
from tests.conftest import TRACE, make_event
from tests.redact_cases import GITHUB_PAT
from tests.server.conftest import Server, start_server
from tests.server.otlp_backend import Backend, recording_backend

TOKEN = "tok-3f9a1c-never-logged"
CONTENT = "canary-content-never-logged"


def test_stored_events_are_forwarded_as_otlp_spans(serve: Callable[..., Server], tmp_path: Path) -> None:
    backend = start_server(tmp_path / "backend-home")
    try:
        server = serve("--export-otlp", backend.url + "/v1/traces")
        events = [make_event(i) for i in range(8)]
        events[1]["payload"] = {"tool_name": "Bash", "input": {"command": f"GH_TOKEN={GITHUB_PAT} gh pr list"}}
        assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
        _until(lambda: httpx.get(backend.url + "/healthz").json()["entries"] >= 8, timeout=20)
        received = httpx.get(f"{backend.url}/api/v1/traces/{TRACE}").json()["events"]
        assert len(received) == 8
        sent_spans = {e["span_id"] for e in events}
        assert {e["event"]["span_id"] for e in received} == sent_spans
        assert GITHUB_PAT not in httpx.get(f"{backend.url}/api/v1/traces/{TRACE}").text
        assert server.stop() == 0
    finally:
        backend.stop()


# --- helpers: a ledger, a forwarder following it, a real loopback backend ----------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "home") as opened:
        yield opened


def _store(ledger: Ledger, events: list[dict[str, Any]], forwarder: OtlpForwarder | None = None) -> None:
    indexes = Pipeline(ledger).ingest(events)
    assert all(isinstance(i, int) for i in indexes), indexes
    if forwarder is not None:
        forwarder.notify(ledger.size)


def _events(n: int, first: int = 0, **overrides: Any) -> list[dict[str, Any]]:
    events = [make_event(i, **overrides) for i in range(first, first + n)]
    if first == 0:
        events[0]["payload"] = {"text": CONTENT}
    return events


def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@contextmanager
def _forwarder(endpoint: str, home: Path, **kwargs: Any) -> Iterator[OtlpForwarder]:
    forwarder = OtlpForwarder(endpoint, home, **kwargs)
    try:
        yield forwarder
    finally:
        forwarder.close()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "flightlog.export" and r.levelno == logging.WARNING]


def _span_ids(backend: Backend) -> list[str]:
    return [span.span_id.hex() for _, span in backend.accepted()]


def _close_within(forwarder: OtlpForwarder, seconds: float) -> None:
    """Close on another thread and fail unless it returned within `seconds` (a deadline, not a timing)."""
    closer = threading.Thread(target=forwarder.close, kwargs={"timeout": 1.0})
    closer.start()
    closer.join(seconds)
    assert not closer.is_alive(), "close() hung"


# --- endpoint and header checks ---------------------------------------------------------------


def test_parse_headers_reads_pairs_and_the_otel_env_format() -> None:
    assert parse_headers(["Authorization=Bearer abc+/=", "x-scope-orgid = tenant-1"]) == {
        "Authorization": "Bearer abc+/=",
        "x-scope-orgid": "tenant-1",
    }
    # OTEL_EXPORTER_OTLP_HEADERS: a comma-separated list, values percent-decoded; a lone string is one item.
    assert parse_headers("api-key=k%3Dv%2Cw,x-note=a%20b,") == {"api-key": "k=v,w", "x-note": "a b"}
    assert parse_headers(["authorization=old", "Authorization=new"]) == {"Authorization": "new"}
    assert parse_headers([]) == {}


@pytest.mark.parametrize(
    ("items", "says"),
    [
        ([f"Bearer {TOKEN}"], "header item 1 has no '='"),
        (["a=1", f"b=2,{TOKEN}"], "header item 2, entry 2, has no '='"),
        ([f"Bearer {TOKEN}=="], "header item 1 does not start with a valid header name"),
        ([f"{TOKEN}="], "header item 1 has an empty value"),
        ([f"x-api-key={TOKEN}%0D%0AHost: evil"], "control or non-ASCII"),
        ([f"x-api-key={TOKEN}é"], "control or non-ASCII"),
        (["Content-Type=application/json"], "sets a header the exporter sets itself (content-type)"),
    ],
)
def test_parse_headers_refuses_malformed_items_without_echoing_values(items: list[str], says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        parse_headers(items)
    assert TOKEN not in str(caught.value) and "\n" not in str(caught.value)


def test_check_endpoint_accepts_only_http_urls_with_a_host(tmp_path: Path) -> None:
    assert check_endpoint(" http://127.0.0.1:4318/v1/traces ") == "http://127.0.0.1:4318/v1/traces"
    assert check_endpoint("https://tempo.example.com/v1/traces") == "https://tempo.example.com/v1/traces"
    for bad, says in [
        ("notaurl", "must start with http:// or https://"),
        ("localhost:4318/v1/traces", "must start with http:// or https://"),
        ("ftp://example.com/v1/traces", "must start with http:// or https://"),
        ("http:///v1/traces", "has no host"),
        ("http://127.0.0.1:99999/v1/traces", "is not a valid URL"),
        (f"gopher://user:{TOKEN}@example.com/", "must start with http:// or https://"),
        (f"example.com/v1/traces?api_key={TOKEN}", "must start with http:// or https://"),
    ]:
        with pytest.raises(ValueError, match=re.escape(says)) as caught:
            check_endpoint(bad)
        assert TOKEN not in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ValueError):
        OtlpForwarder("notaurl", tmp_path)  # the forwarder checks too: no thread posting to nowhere


# --- 1. durability: the ledger is the queue, the cursor survives -------------------------------


def test_headers_reach_the_backend_and_sent_spans_are_counted(ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    with recording_backend() as backend:
        headers = parse_headers([f"Authorization=Bearer {TOKEN}", "x-scope-orgid=team%20a"])
        with _forwarder(backend.url, ledger.home, headers=headers) as forwarder:
            _store(ledger, _events(5), forwarder)
            _until(lambda: forwarder.sent == 5)
        assert (forwarder.sent, forwarder.failed, forwarder.dropped, forwarder.queue_depth) == (5, 0, 0, 0)
        assert backend.spans == 5
        request = backend.requests[0]
        assert request.path == "/v1/traces"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["x-scope-orgid"] == "team a"
        assert request.headers["content-type"] == "application/x-protobuf"
    assert _warnings(caplog) == []


def test_an_unavailable_backend_is_retried_until_it_takes_every_span(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    with recording_backend() as backend:
        backend.statuses = [503, 502, 504, 429, 503, 503, 503]  # down for longer than any fixed retry count
        with _forwarder(backend.url, ledger.home, backoff=0.01, max_delay=0.05) as forwarder:
            _store(ledger, _events(10), forwarder)
            _until(lambda: forwarder.sent == 10)
        assert (forwarder.sent, forwarder.failed, forwarder.queue_depth) == (10, 0, 0)
        assert [r.status for r in backend.requests] == [503, 502, 504, 429, 503, 503, 503, 200]
        assert all(r.span_count == 10 for r in backend.requests)  # the same batch each time, nothing lost
    [warning] = _warnings(caplog)  # one, then rate-limited
    assert "failed attempt to deliver (HTTP 503), still retrying" in warning
    assert "10 stored events waiting, none lost" in warning
    assert "gave up" not in caplog.text


def test_retry_after_is_honoured_up_to_the_cap(ledger: Ledger) -> None:
    with recording_backend() as backend:
        backend.statuses, backend.retry_after = [503], "1"
        with _forwarder(backend.url, ledger.home, backoff=0.01, max_delay=60) as forwarder:
            _store(ledger, _events(2), forwarder)
            _until(lambda: forwarder.sent == 2)
        first, second = backend.requests
        assert second.at - first.at >= 1.0  # waited what the backend asked, not its own 0.01 s
        # A Retry-After past the cap waits the cap: an hour-long answer does not stall export.
        backend.statuses, backend.retry_after = [429], "3600"
        with _forwarder(backend.url, ledger.home, backoff=0.01, max_delay=0.1) as forwarder:
            _store(ledger, _events(2, first=2), forwarder)
            _until(lambda: forwarder.sent == 2)
        assert [r.status for r in backend.requests] == [503, 200, 429, 200]
        # Retry-After: 0 does not mean "at once, forever": the backoff still applies.
        backend.statuses, backend.retry_after = [503, 503, 503], "0"
        with _forwarder(backend.url, ledger.home, backoff=0.2, max_delay=60) as forwarder:
            _store(ledger, _events(2, first=4), forwarder)
            _until(lambda: forwarder.sent == 2)
        tried = backend.requests[4:]
        assert [r.status for r in tried] == [503, 503, 503, 200]  # was: thousands a second
        assert tried[-1].at - tried[0].at >= 0.2 * (0.5 + 1 + 2)  # jitter: at least half of each


def test_export_resumes_from_its_cursor_after_a_restart(ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    events = _events(5)
    with recording_backend(503) as backend:
        backend.retry_after = "30"
        forwarder = OtlpForwarder(backend.url, ledger.home, backoff=0.01)
        _store(ledger, events, forwarder)
        assert backend.arrived.wait(10)
        _close_within(forwarder, 10)  # not held up by the 30 s the backend asked for
        assert len(backend.requests) == 1 and (forwarder.sent, forwarder.failed) == (0, 0)
        assert forwarder.queue_depth == 5
        assert "stopped with 5 stored events not exported yet" in caplog.text
        cursor = cursor_path(ledger.home, backend.url)
        assert stat.S_IMODE(cursor.stat().st_mode) == 0o600
        assert json.loads(cursor.read_text())["next"] == 0
        # Stored while export is stopped, then the backend is back: all of it arrives, once.
        more = _events(3, first=5)
        _store(ledger, more)
        backend.status, backend.retry_after = 200, None
        with _forwarder(backend.url, ledger.home) as again:
            _until(lambda: again.sent == 8)
            assert again.queue_depth == 0
        assert _span_ids(backend) == [e["span_id"] for e in events + more]
        assert json.loads(cursor.read_text())["next"] == 8


def test_a_new_endpoint_starts_at_the_ledger_end_and_each_endpoint_has_its_cursor(ledger: Ledger) -> None:
    _store(ledger, _events(4))  # before export was configured: not sent
    with recording_backend() as one, recording_backend() as two:
        with _forwarder(one.url, ledger.home) as first:
            assert (first.position, first.queue_depth) == (4, 0)
            later = _events(2, first=4)
            _store(ledger, later, first)
            _until(lambda: first.sent == 2)
        with _forwarder(two.url, ledger.home) as second:
            assert second.position == 6
        assert _span_ids(one) == [e["span_id"] for e in later]
        assert two.requests == []
    assert cursor_path(ledger.home, one.url) != cursor_path(ledger.home, two.url)
    # Projects named in the query (Phoenix) are endpoints of their own; credentials are not.
    base = "http://127.0.0.1:6006/v1/traces"
    assert cursor_path(ledger.home, base + "?project=a") != cursor_path(ledger.home, base + "?project=b")
    assert cursor_path(ledger.home, "http://u:p@127.0.0.1:6006/v1/traces") == cursor_path(ledger.home, base)
    assert sorted(p.name for p in (ledger.home / "export").iterdir()) == sorted(
        p.name for p in (cursor_path(ledger.home, one.url), cursor_path(ledger.home, two.url))
    )


def test_memory_is_bounded_by_the_batch_not_the_backlog(ledger: Ledger) -> None:
    with recording_backend() as backend:
        backend.release.clear()  # the backend holds its first answer while a backlog builds up
        with _forwarder(backend.url, ledger.home, batch=100) as forwarder:
            _store(ledger, _events(1), forwarder)
            assert backend.arrived.wait(10)
            _store(ledger, _events(250, first=1), forwarder)
            assert forwarder.queue_depth == 251
            backend.release.set()
            _until(lambda: forwarder.sent == 251)
        assert [r.span_count for r in backend.requests] == [1, 100, 100, 50]


def test_unreachable_backend_keeps_the_events_and_warns(ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with _forwarder(f"http://127.0.0.1:{port}/v1/traces", ledger.home, backoff=0.01, max_delay=0.05) as forwarder:
        _store(ledger, _events(2), forwarder)
        _until(lambda: "could not reach the backend (ConnectError)" in caplog.text)
    assert (forwarder.failed, forwarder.queue_depth) == (0, 2)


# --- refusals: skipped, counted, each with its own reason --------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_fail_at_once_and_warn_without_secrets(
    status: int, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    with recording_backend(status) as backend:
        endpoint = backend.url.replace("http://", f"http://user:{TOKEN}@") + f"?api_key={TOKEN}"
        with _forwarder(endpoint, ledger.home, headers={"Authorization": f"Bearer {TOKEN}"}) as forwarder:
            _store(ledger, _events(4), forwarder)
            _until(lambda: forwarder.failed == 4)
        assert len(backend.requests) == 1  # not retried: a refused token stays refused
        assert backend.requests[0].headers["authorization"] == f"Basic {_basic('user', TOKEN)}"
    assert (forwarder.sent, forwarder.failed, forwarder.queue_depth) == (0, 4, 0)
    [warning] = _warnings(caplog)
    assert f"gave up on 4 spans (1 batch): the backend refused the credentials (HTTP {status})" in warning
    assert backend.url.removesuffix("/v1/traces") in warning
    assert TOKEN not in caplog.text and CONTENT not in caplog.text and "Bearer" not in caplog.text


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_refused_batches_are_skipped_and_each_reason_is_named(ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    with recording_backend() as backend:
        backend.statuses = [401, 400, 413, 400]  # then 200
        with _forwarder(backend.url, ledger.home, batch=1, warn_interval=3600) as forwarder:
            _store(ledger, _events(5), forwarder)
            _until(lambda: forwarder.sent == 1)
            assert len(_warnings(caplog)) == 1  # within the interval: counted, not logged
        assert (forwarder.sent, forwarder.failed, forwarder.queue_depth) == (1, 4, 0)
        assert len(backend.requests) == 5  # refused batches are not retried: skipped
    first, summary = _warnings(caplog)
    assert "gave up on 1 spans (1 batch): the backend refused the credentials (HTTP 401)" in first
    assert "since the last warning, gave up on 2 spans (2 batches): HTTP 400; " in summary
    assert "gave up on 1 spans (1 batch): HTTP 413 (the backend takes smaller requests)" in summary


def test_export_metrics_show_sent_failed_and_the_backlog(ledger: Ledger) -> None:
    metrics = CollectorMetrics()
    names = ("sent_total", "failed_total", "dropped_total", "queue_depth")

    def export_values() -> list[float]:
        text = metrics.render().decode()
        return [_metric(text, f"flightlog_export_{name}") for name in names]

    assert export_values() == [0, 0, 0, 0]  # export off: present, so the alert rules always resolve
    with recording_backend(503) as backend, _forwarder(backend.url, ledger.home, backoff=0.01, max_delay=0.05) as fw:
        metrics.watch_export(fw)
        _store(ledger, _events(3), fw)
        _until(lambda: len(backend.requests) >= 2)
        assert export_values() == [0, 0, 0, 3]  # waiting, not failed: the backend is down
        backend.status = 200
        _until(lambda: fw.sent == 3)
        backend.status = 401
        _store(ledger, _events(2, first=3), fw)
        _until(lambda: fw.failed == 2)
        assert export_values() == [3, 2, 0, 0]


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


# --- through `flightlog serve` ------------------------------------------------------------------


def test_serve_warns_on_stderr_when_the_backend_refuses(serve: Callable[..., Server]) -> None:
    with recording_backend(401) as backend:
        server = serve("--export-otlp", backend.url)
        assert httpx.post(server.url + "/api/v1/events", json=[make_event(i) for i in range(3)]).status_code == 200
        _until(lambda: "refused the credentials (HTTP 401)" in server.log.read_text(), timeout=20)
        assert server.stop() == 0
    assert len(backend.requests) == 1


def test_serve_refuses_a_malformed_export_url(serve: Callable[..., Server]) -> None:
    with pytest.raises(RuntimeError, match=re.escape("must start with http:// or https://")):
        serve("--export-otlp", "notaurl")


def test_serve_sends_export_headers_and_counts_sent_spans(serve: Callable[..., Server]) -> None:
    with recording_backend(200) as backend:
        server = serve("--export-otlp", backend.url, "--export-header", "Authorization=Bearer t0k-123")
        assert httpx.post(server.url + "/api/v1/events", json=[make_event(i) for i in range(3)]).status_code == 200
        _until(lambda: backend.spans == 3, timeout=20)
        assert {r.headers.get("authorization") for r in backend.requests} == {"Bearer t0k-123"}
        metrics = httpx.get(server.url + "/metrics").text
        assert "flightlog_export_sent_total 3.0" in metrics
        assert "flightlog_export_failed_total 0.0" in metrics
        assert server.stop() == 0
    assert "t0k-123" not in server.log.read_text()


def test_serve_exports_after_a_crash_what_a_down_backend_missed(serve: Callable[..., Server]) -> None:
    events = [make_event(i) for i in range(3)]
    with recording_backend(503) as backend:
        server = serve("--export-otlp", backend.url)
        assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
        _until(lambda: bool(backend.requests), timeout=20)
        assert "flightlog_export_queue_depth 3.0" in httpx.get(server.url + "/metrics").text
        server.stop(signal.SIGKILL)  # a crash: nothing gets to save or flush
        backend.status = 200
        again = serve("--export-otlp", backend.url)
        _until(lambda: len(_span_ids(backend)) == 3, timeout=20)
        assert _span_ids(backend) == [e["span_id"] for e in events]
        assert again.stop() == 0


# --- 2. span shapes for GenAI backends (Langfuse, Phoenix) ---------------------------------------


def _attrs(span: Span) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        if kind == "array_value":
            values[kv.key] = [v.string_value for v in kv.value.array_value.values]
        else:
            values[kv.key] = getattr(kv.value, kind or "string_value")
    return values


def _exported(ledger: Ledger, events: list[dict[str, Any]]) -> tuple[Backend, dict[str, tuple[str, Span]]]:
    with recording_backend() as backend, _forwarder(backend.url, ledger.home) as forwarder:
        _store(ledger, events, forwarder)
        _until(lambda: forwarder.sent == len(events))
    return backend, {span.span_id.hex(): (service, span) for service, span in backend.accepted()}


def test_spans_follow_the_genai_semantic_conventions(ledger: Ledger) -> None:
    prompt = make_event(0, payload={"text": "fix the failing test"})
    chat = make_event(
        1,
        type="model_call",
        timestamp="2026-11-24T17:00:01.000Z",
        duration_ms=1500,
        model={"provider": "anthropic", "name": "claude-sonnet-4-5"},
        payload={
            "request": {
                "messages": [{"role": "user", "parts": [{"type": "text", "content": "fix it"}]}],
                "system_instructions": [{"type": "text", "content": "be brief"}],
            },
            "response": {"text": "Running the tests.", "id": "msg_01"},
            "stop_reason": "tool_use",
            "usage": {
                "input_tokens": 12,
                "output_tokens": 34,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 50,
                "cost_usd": 0.0123,
            },
        },
    )
    bash = make_event(
        2,
        type="tool_call",
        payload={
            "tool_name": "Bash",
            "tool_call_id": "toolu_01",
            "input": {"command": f"GH_TOKEN={GITHUB_PAT} gh pr list"},
            "output": "3 open pull requests",
        },
    )
    broken = make_event(
        3,
        type="tool_call",
        status="error",
        payload={"tool_name": "Read", "tool_call_id": "toolu_02", "input": {"file_path": "x"}, "error": "no such file"},
    )
    other = make_event(4, agent_id="codex", type="shell", payload={"command": "pytest", "exit_code": 1})
    backend, spans = _exported(ledger, [prompt, chat, bash, broken, other])

    service, span = spans[prompt["span_id"]]
    a = _attrs(span)
    assert (service, span.name, span.kind) == ("claude-code", "invoke_agent claude-code", Span.SPAN_KIND_INTERNAL)
    assert a["gen_ai.operation.name"] == "invoke_agent" and a["gen_ai.agent.name"] == "claude-code"
    assert a["gen_ai.conversation.id"] == a["session.id"] == "session-1"
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "fix the failing test"}]}
    ]
    assert (a["openinference.span.kind"], a["input.value"]) == ("AGENT", "fix the failing test")

    _, span = spans[chat["span_id"]]
    a = _attrs(span)
    assert (span.name, span.kind) == ("chat claude-sonnet-4-5", Span.SPAN_KIND_CLIENT)
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.model"] == "claude-sonnet-4-5" and a["gen_ai.response.id"] == "msg_01"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (12, 34)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 50
    assert a["flightlog.usage.cost_usd"] == 0.0123
    assert not {"gen_ai.usage.cost_usd", "gen_ai.usage.cache_read_input_tokens"} & a.keys()  # invented names
    assert json.loads(a["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Running the tests."}], "finish_reason": "tool_use"}
    ]
    assert json.loads(a["gen_ai.input.messages"])[0]["role"] == "user"
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "be brief"}]
    assert (a["openinference.span.kind"], a["output.value"]) == ("LLM", "Running the tests.")
    assert (span.end_time_unix_nano - span.start_time_unix_nano) == 1_500_000_000

    _, span = spans[bash["span_id"]]
    a = _attrs(span)
    assert span.name == "execute_tool Bash"  # bounded: no arguments in the name
    assert (a["gen_ai.operation.name"], a["gen_ai.tool.name"], a["gen_ai.tool.call.id"]) == (
        "execute_tool",
        "Bash",
        "toolu_01",
    )
    arguments = json.loads(a["gen_ai.tool.call.arguments"])
    assert arguments["command"].endswith("gh pr list") and GITHUB_PAT not in arguments["command"]  # stored redacted
    assert a["gen_ai.tool.call.result"] == a["output.value"] == "3 open pull requests"
    assert a["openinference.span.kind"] == "TOOL" and a["flightlog.redactions"] >= 1
    assert span.status.code == Status.STATUS_CODE_OK and "error.type" not in a

    _, span = spans[broken["span_id"]]
    a = _attrs(span)
    assert (span.status.code, span.status.message) == (Status.STATUS_CODE_ERROR, "no such file")
    assert a["error.type"] == "_OTHER" and a["flightlog.status"] == "error"

    service, span = spans[other["span_id"]]
    a = _attrs(span)
    assert (service, span.name, a["openinference.span.kind"], a["input.value"]) == ("codex", "shell", "TOOL", "pytest")
    assert a["flightlog.event.type"] == "shell" and json.loads(a["flightlog.payload"])["exit_code"] == 1
    assert all(GITHUB_PAT not in str(r.request) for r in backend.requests)


def _claude_log(name: str, end_ns: int, **attributes: Any) -> LogRecord:
    pairs = [KeyValue(key="event.name", value=AnyValue(string_value=name))]
    for key, value in {"session.id": "sess-1", "prompt.id": "prompt-1", **attributes}.items():
        any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=str(value))
        pairs.append(KeyValue(key=key, value=any_value))
    return LogRecord(time_unix_nano=end_ns, attributes=pairs)


def test_telemetry_log_events_are_exported_from_their_start(ledger: Ledger) -> None:
    # Claude Code logs api_request and tool_result when the call is over: the record's time is the end.
    scope = make_scope({"service.name": "claude-code"}, InstrumentationScope(name="com.anthropic.claude_code"))
    logged = 1_795_000_000_000_000_000
    api = _claude_log("claude_code.api_request", logged, model="claude-sonnet-4-5", duration_ms=2350, input_tokens=7)
    tool = _claude_log("claude_code.tool_result", logged, tool_name="Bash", duration_ms=50, success="true")
    events = [e for i, r in enumerate((api, tool)) if (e := log_to_event(r, scope, i)) is not None]
    assert len(events) == 2
    _, spans = _exported(ledger, events)
    by_name = {span.name: span for _, span in spans.values()}
    chat, bash = by_name["chat claude-sonnet-4-5"], by_name["execute_tool Bash"]
    assert (chat.start_time_unix_nano, chat.end_time_unix_nano) == (logged - 2_350_000_000, logged)
    assert (bash.start_time_unix_nano, bash.end_time_unix_nano) == (logged - 50_000_000, logged)
    assert _attrs(chat)["gen_ai.usage.input_tokens"] == 7
