"""Onward export: a second, real OTLP backend (another flightlog) receives the stored spans."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from flightlog.events import fill_defaults
from flightlog.server.export import OtlpForwarder, check_endpoint, parse_headers
from tests.conftest import TRACE, make_event
from tests.redact_cases import GITHUB_PAT
from tests.server.conftest import Server, start_server
from tests.server.otlp_backend import recording_backend


def test_stored_events_are_forwarded_as_otlp_spans(serve: Callable[..., Server], tmp_path: Path) -> None:
    backend = start_server(tmp_path / "backend-home")
    try:
        server = serve("--export-otlp", backend.url + "/v1/traces")
        events = [make_event(i) for i in range(8)]
        events[1]["payload"] = {"tool_name": "Bash", "input": {"command": f"GH_TOKEN={GITHUB_PAT} gh pr list"}}
        assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and httpx.get(backend.url + "/healthz").json()["entries"] < 8:
            time.sleep(0.1)
        received = httpx.get(f"{backend.url}/api/v1/traces/{TRACE}").json()["events"]
        assert len(received) == 8
        sent_spans = {e["span_id"] for e in events}
        assert {e["event"]["span_id"] for e in received} == sent_spans
        assert GITHUB_PAT not in httpx.get(f"{backend.url}/api/v1/traces/{TRACE}").text
        assert server.stop() == 0
    finally:
        backend.stop()


# --- failures are visible: endpoint and header checks, counts, warnings (a real loopback backend) ---

TOKEN = "tok-3f9a1c-never-logged"
CONTENT = "canary-content-never-logged"


def _stored(n: int) -> list[dict[str, Any]]:
    events = [fill_defaults(make_event(i)) for i in range(n)]
    events[0]["payload"] = {"text": CONTENT}
    return events


def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@contextmanager
def _forwarder(endpoint: str, **kwargs: Any) -> Iterator[OtlpForwarder]:
    forwarder = OtlpForwarder(endpoint, **kwargs)
    try:
        yield forwarder
    finally:
        forwarder.close()


def _failed_reaches(forwarder: OtlpForwarder, spans: int) -> Callable[[], bool]:
    return lambda: forwarder.failed >= spans


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "flightlog.export" and r.levelno == logging.WARNING]


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


def test_check_endpoint_accepts_only_http_urls_with_a_host() -> None:
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
        OtlpForwarder("notaurl")  # the forwarder checks too: no thread posting to nowhere


def test_headers_reach_the_backend_and_sent_spans_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    with recording_backend() as backend:
        headers = parse_headers([f"Authorization=Bearer {TOKEN}", "x-scope-orgid=team%20a"])
        with _forwarder(backend.url, headers=headers) as forwarder:
            forwarder.submit(_stored(5))
        assert (forwarder.sent, forwarder.failed, forwarder.dropped, forwarder.queue_depth) == (5, 0, 0, 0)
        assert backend.spans == 5
        request = backend.requests[0]
        assert request.path == "/v1/traces"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["x-scope-orgid"] == "team a"
        assert request.headers["content-type"] == "application/x-protobuf"
    assert _warnings(caplog) == []


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_fail_at_once_and_warn_without_secrets(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with recording_backend(status) as backend:
        endpoint = backend.url.replace("http://", f"http://user:{TOKEN}@") + f"?api_key={TOKEN}"
        with _forwarder(endpoint, headers={"Authorization": f"Bearer {TOKEN}"}, retries=3) as forwarder:
            forwarder.submit(_stored(4))
            _until(lambda: forwarder.failed == 4)
        assert len(backend.requests) == 1  # not retried: a refused token stays refused
        assert backend.requests[0].headers["authorization"] == f"Basic {_basic('user', TOKEN)}"
    assert (forwarder.sent, forwarder.failed) == (0, 4)
    [warning] = _warnings(caplog)
    assert f"the backend refused the credentials (HTTP {status})" in warning
    assert "gave up on 4 spans (1 batch)" in warning
    assert backend.url.removesuffix("/v1/traces") in warning
    assert TOKEN not in caplog.text and CONTENT not in caplog.text and "Bearer" not in caplog.text


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_unavailable_backend_is_retried_then_counted_failed(caplog: pytest.LogCaptureFixture) -> None:
    with recording_backend(503) as backend:
        with _forwarder(backend.url, retries=2, backoff=0.01) as forwarder:
            forwarder.submit(_stored(3))
            _until(lambda: forwarder.failed == 3)
        assert len(backend.requests) == 3  # the first try and two retries
    [warning] = _warnings(caplog)
    assert "gave up on 3 spans (1 batch): HTTP 503" in warning


def test_unreachable_backend_is_counted_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with _forwarder(f"http://127.0.0.1:{port}/v1/traces", retries=1, backoff=0.01) as forwarder:
        forwarder.submit(_stored(2))
        _until(lambda: forwarder.failed == 2)
    [warning] = _warnings(caplog)
    assert "could not reach the backend (ConnectError)" in warning


def test_warnings_are_rate_limited_and_summarised_on_close(caplog: pytest.LogCaptureFixture) -> None:
    with recording_backend(401) as backend:
        with _forwarder(backend.url, warn_interval=3600) as forwarder:
            forwarder.submit(_stored(2))
            _until(lambda: forwarder.failed == 2)
            for more in range(1, 4):  # three more batches, each waited for so each is its own request
                forwarder.submit(_stored(1))
                _until(_failed_reaches(forwarder, 2 + more))
            assert len(_warnings(caplog)) == 1  # within the interval: counted, not logged
        assert forwarder.failed == 5 and len(backend.requests) == 4
    first, summary = _warnings(caplog)
    assert "gave up on 2 spans (1 batch)" in first
    assert "since the last warning, gave up on 3 spans (3 batches)" in summary
    assert "HTTP 401" in summary


def test_full_queue_drops_are_counted_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    with recording_backend() as backend:
        backend.release.clear()  # the backend holds its answer: the sender is busy
        with _forwarder(backend.url, max_queue=2) as forwarder:
            forwarder.submit(_stored(1))
            assert backend.arrived.wait(10)
            forwarder.submit(_stored(5))  # two fit in the queue, three do not
            assert (forwarder.dropped, forwarder.queue_depth) == (3, 2)
            backend.release.set()
        assert (forwarder.sent, forwarder.dropped, forwarder.failed) == (3, 3, 0)
    [warning] = _warnings(caplog)
    assert "dropped 3 spans (export queue full)" in warning


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
