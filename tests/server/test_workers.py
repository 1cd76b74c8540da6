"""OTLP bodies are decoded and prepared in a worker process that never outlives the server."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.redact_cases import GITHUB_PAT
from tests.server.conftest import Server

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")


def _children(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                found.append(int(name))
        except (OSError, IndexError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _body() -> bytes:
    spans = [
        Span(
            trace_id=TRACE,
            span_id=bytes([0, 0, 0, 0, 0, 0, 0, i + 1]),
            name="execute_tool shell",
            start_time_unix_nano=1_795_021_200_000_000_000 + i,
            end_time_unix_nano=1_795_021_200_035_000_000,
            attributes=[
                KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="execute_tool")),
                KeyValue(key="gen_ai.tool.call.result", value=AnyValue(string_value=f"GH_TOKEN={GITHUB_PAT} ok {i}")),
            ],
        )
        for i in range(3)
    ]
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    return request.SerializeToString()


def test_otlp_is_prepared_in_a_worker_that_exits_with_the_server(serve: Callable[..., Server], home: Path) -> None:
    server = serve()
    workers = _children(server.proc.pid)
    assert workers, "the prepare worker starts with the server"
    r = httpx.post(server.url + "/v1/traces", content=_body(), headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 200
    events = httpx.get(f"{server.url}/api/v1/traces/{TRACE.hex()}").json()["events"]
    assert len(events) == 3
    stored = json.dumps(events)
    assert GITHUB_PAT not in stored and "[REDACTED:" in stored

    server.stop(signal.SIGKILL)  # no shutdown hook runs: the workers notice on their own
    deadline = time.monotonic() + 30
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, workers)), "a worker outlived its SIGKILLed server"
