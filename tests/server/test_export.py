"""Onward export: a second, real OTLP backend (another flightlog) receives the stored spans."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import TRACE, make_event
from tests.redact_cases import GITHUB_PAT
from tests.server.conftest import Server, start_server


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
