"""Onward export: forward stored (normalized, redacted) events as OTLP spans to another backend.

Teams keep their Jaeger, Tempo, Langfuse or Phoenix dashboards: `flightlog serve --export-otlp
URL` sends every committed event there as an OTLP/HTTP protobuf span. Export never slows or
blocks ingest: a bounded queue feeds one background thread; when it is full, events are dropped
and counted, and failed sends are retried a few times with backoff.
"""

from __future__ import annotations

import queue
import threading
import time
from datetime import datetime
from typing import Any, Final

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from flightlog.render import event_summary

__all__ = ["OtlpForwarder", "events_to_request"]

_BATCH: Final = 512
_QUEUE: Final = 50_000
_GEN_AI_OPERATION: Final = {"prompt": "invoke_agent", "model_call": "chat", "tool_call": "execute_tool"}


def _attr(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _nanos(timestamp: str) -> int:
    moment = datetime.fromisoformat(timestamp)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _span(event: dict[str, Any]) -> Span:
    start = _nanos(event["timestamp"])
    duration = event.get("duration_ms") or 0
    attrs = {
        "flightlog.event_id": event["event_id"],
        "flightlog.type": event["type"],
        "gen_ai.agent.name": event["agent_id"],
    }
    if event.get("session_id"):
        attrs["gen_ai.conversation.id"] = event["session_id"]
    if event["type"] in _GEN_AI_OPERATION:
        attrs["gen_ai.operation.name"] = _GEN_AI_OPERATION[event["type"]]
    model = event.get("model") or {}
    if model.get("name"):
        attrs["gen_ai.request.model"] = model["name"]
    if model.get("provider"):
        attrs["gen_ai.provider.name"] = model["provider"]
    payload = event.get("payload", {})
    if event["type"] == "tool_call":
        attrs["gen_ai.tool.name"] = payload.get("tool_name", "")
    for key, value in (payload.get("usage") or {}).items() if isinstance(payload.get("usage"), dict) else ():
        if isinstance(value, int | float):
            attrs[f"gen_ai.usage.{key}"] = value
    if event.get("redactions"):
        attrs["flightlog.redactions"] = len(event["redactions"])
    failed = event.get("status") in ("error", "denied")
    return Span(
        trace_id=bytes.fromhex(event["trace_id"]),
        span_id=bytes.fromhex(event["span_id"]),
        parent_span_id=bytes.fromhex(event["parent_span_id"]) if event.get("parent_span_id") else b"",
        name=f"{event['type']} {event_summary(event)}"[:200],
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=start + int(float(duration) * 1_000_000),
        attributes=[_attr(k, v) for k, v in attrs.items()],
        status=Status(code=Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_OK),
    )


def events_to_request(events: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    """Return the OTLP request that carries these stored events as spans."""
    resource = Resource(attributes=[_attr("service.name", "flightlog")])
    scope = InstrumentationScope(name="flightlog", version="1")
    spans = [_span(e) for e in events]
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans)])]
    )


class OtlpForwarder:
    """A background sender of stored events to `endpoint` (a full /v1/traces URL)."""

    def __init__(self, endpoint: str, headers: dict[str, str] | None = None, retries: int = 3) -> None:
        self.endpoint = endpoint
        self.headers = {"content-type": "application/x-protobuf", **(headers or {})}
        self.retries = retries
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(_QUEUE)
        self._thread = threading.Thread(target=self._run, name="otlp-export", daemon=True)
        self._thread.start()

    def submit(self, events: list[dict[str, Any]]) -> None:
        """Queue events for export; drops (and counts) what does not fit."""
        for event in events:
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self.dropped += 1

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (up to `timeout` seconds), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < _BATCH:
                    try:
                        item = self._queue.get(timeout=0.05)
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                self._send(client, batch)

    def _send(self, client: httpx.Client, batch: list[dict[str, Any]]) -> None:
        body = events_to_request(batch).SerializeToString()
        for attempt in range(self.retries + 1):
            try:
                response = client.post(self.endpoint, content=body, headers=self.headers)
                if response.status_code < 300:
                    self.sent += len(batch)
                    return
                if response.status_code not in (429, 502, 503, 504):
                    break  # the OTLP spec: other failures must not be retried
            except httpx.HTTPError:
                pass
            time.sleep(min(2**attempt * 0.2, 5))
        self.failed += len(batch)
