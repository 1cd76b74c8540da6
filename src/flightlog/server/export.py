"""Onward export: forward stored (normalized, redacted) events as OTLP spans to another backend.

Teams keep their Jaeger, Tempo, Langfuse or Phoenix dashboards: `flightlog serve --export-otlp
URL` sends every committed event there as an OTLP/HTTP protobuf span. Export never slows or
blocks ingest: a bounded queue feeds one background thread; when it is full, events are dropped
and counted, and failed sends are retried a few times with backoff.

Export failures never fail ingest, so they must be visible elsewhere: the forwarder counts sent,
failed and dropped spans (read by the collector's /metrics) and logs a rate-limited warning on
the "flightlog.export" logger saying why. Warnings name the endpoint without credentials or
query and never carry event content or header values: headers usually hold the backend's token.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from flightlog.render import event_summary

__all__ = ["OtlpForwarder", "check_endpoint", "events_to_request", "parse_headers"]

_log = logging.getLogger("flightlog.export")

_BATCH: Final = 512
_QUEUE: Final = 50_000
_GEN_AI_OPERATION: Final = {"prompt": "invoke_agent", "model_call": "chat", "tool_call": "execute_tool"}
_RETRYABLE: Final = frozenset({429, 502, 503, 504})  # the only statuses OTLP/HTTP lets a client retry
_FIELD_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
# httpx encodes header values as ASCII; a control character would split or smuggle a header.
_FIELD_VALUE: Final = re.compile(r"[\t\x20-\x7e]*")
# Set by the exporter itself: a user value would break the protobuf body or the framing.
_RESERVED_HEADERS: Final = frozenset({"content-type", "content-length", "transfer-encoding", "host"})


def check_endpoint(url: str) -> str:
    """Return `url` (trimmed) if it is an http(s) URL with a host; else raise a one-line ValueError."""
    text = url.strip()
    # Never echo credentials written into the URL (user:password@, ?api_key=…).
    shown = re.sub(r"//[^/@]*@", "//***@", text).split("?")[0].split("#")[0]
    example = "e.g. http://127.0.0.1:4318/v1/traces"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - parsing the port is what raises on a bad one
        httpx.URL(text)  # what the client will accept when it sends
    except (ValueError, httpx.InvalidURL):
        raise ValueError(f"export URL {shown!r} is not a valid URL ({example})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"export URL {shown!r} must start with http:// or https:// ({example})")
    if not parts.hostname:
        raise ValueError(f"export URL {shown!r} has no host ({example})")
    return text


def parse_headers(pairs: Sequence[str]) -> dict[str, str]:
    """Return the headers written as "Key=Value" items, each also allowed to be a list "k1=v1,k2=v2".

    The list form is OTEL_EXPORTER_OTLP_HEADERS's (W3C Baggage without properties), whose values
    are percent-decoded, so a literal "," or "%" in a value is written %2C or %25. Raises a
    one-line ValueError on a malformed item; the message never repeats a value (it may be a token).
    """
    if isinstance(pairs, str):  # a lone env var value, not a sequence of one-letter items
        pairs = [pairs]
    headers: dict[str, str] = {}
    for number, item in enumerate(pairs, 1):
        members = item.split(",")
        for entry, member in enumerate(members, 1):
            if not member.strip():
                continue  # "a=b," and empty env values are harmless
            # Messages name the place, never the text: a pasted token may sit where the name goes.
            where = f"header item {number}" + (f", entry {entry}," if len(members) > 1 else "")
            raw_key, sep, raw_value = member.partition("=")
            if not sep:
                raise ValueError(f"{where} has no '=': write Key=Value (or k1=v1,k2=v2)")
            key, value = unquote(raw_key).strip(), unquote(raw_value).strip()
            if not _FIELD_NAME.fullmatch(key):
                raise ValueError(f"{where} does not start with a valid header name: write Key=Value")
            if key.lower() in _RESERVED_HEADERS:
                raise ValueError(f"{where} sets a header the exporter sets itself ({key.lower()})")
            if not value:
                raise ValueError(f"{where} has an empty value (an unset variable?)")
            if not _FIELD_VALUE.fullmatch(value):
                raise ValueError(f"{where}: the value has a control or non-ASCII character")
            for old in [k for k in headers if k.lower() == key.lower()]:
                del headers[old]  # names are case-insensitive: the last one given wins, as in a dict
            headers[key] = value
    return headers


def _display(endpoint: str) -> str:
    # The endpoint as logs show it: user:password@ and ?api_key=… may be secrets.
    parts = urlsplit(endpoint)
    port = f":{parts.port}" if parts.port else ""
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _refusal(status: int) -> str:
    if status in (401, 403):
        return f"the backend refused the credentials (HTTP {status})"
    if status in (404, 405):
        return f"HTTP {status} (is the URL the full /v1/traces path?)"
    return f"HTTP {status}"


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
    """A background sender of stored events to `endpoint` (a full /v1/traces URL).

    `sent`, `failed` and `dropped` count spans; the collector's /metrics reads them at scrape
    time. Problems are logged as warnings at most once per `warn_interval` seconds, each saying
    how much failed or was dropped since the previous one.
    """

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        retries: int = 3,
        *,
        warn_interval: float = 60.0,
        backoff: float = 0.2,
        max_queue: int = _QUEUE,
    ) -> None:
        self.endpoint = check_endpoint(endpoint)
        user = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
        self.headers = {**user, "content-type": "application/x-protobuf"}
        self.retries = retries
        self.warn_interval = warn_interval
        self.backoff = backoff
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        # submit() runs on the event loop, sending on the thread: both update counts and warnings.
        self._lock = threading.Lock()
        self._last_warning: float | None = None
        self._unreported_failed = 0
        self._unreported_batches = 0
        self._unreported_dropped = 0
        self._reason = ""
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(max_queue)
        self._thread = threading.Thread(target=self._run, name="otlp-export", daemon=True)
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        """Events waiting to be sent."""
        return self._queue.qsize()

    def submit(self, events: list[dict[str, Any]]) -> None:
        """Queue events for export; drops (and counts) what does not fit."""
        dropped = 0
        for event in events:
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                dropped += 1
        if dropped:
            with self._lock:
                self.dropped += dropped
                self._unreported_dropped += dropped
            self._warn()

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (up to `timeout` seconds), then stop."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):  # a sender stuck behind a full queue must not hang shutdown
            self._queue.put(None, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._warn(final=True)  # what failed since the last (rate-limited) warning
        if self._thread.is_alive() and (left := self._queue.qsize()):
            _log.warning(
                "flightlog export to %s: stopped with %d spans still queued, not sent",
                _display(self.endpoint),
                left,
            )

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
                try:
                    self._send(client, batch)
                except Exception as exc:  # one bad batch must not end export for good
                    self._give_up(len(batch), f"could not send the batch ({type(exc).__name__})")

    def _send(self, client: httpx.Client, batch: list[dict[str, Any]]) -> None:
        body = events_to_request(batch).SerializeToString()
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(2 ** (attempt - 1) * self.backoff, 5))
            try:
                response = client.post(self.endpoint, content=body, headers=self.headers)
            except httpx.HTTPError as exc:
                # Only the class name: some transport errors quote the offending header value.
                reason = f"could not reach the backend ({type(exc).__name__})"
                continue
            if response.status_code < 300:
                with self._lock:
                    self.sent += len(batch)
                return
            reason = _refusal(response.status_code)
            if response.status_code not in _RETRYABLE:
                break  # the OTLP spec: other failures must not be retried (a 401 stays a 401)
        self._give_up(len(batch), reason)

    def _give_up(self, spans: int, reason: str) -> None:
        with self._lock:
            self.failed += spans
            self._unreported_failed += spans
            self._unreported_batches += 1
            self._reason = reason
        self._warn()

    def _warn(self, final: bool = False) -> None:
        """Log what failed or was dropped since the last warning, unless one was logged recently."""
        with self._lock:
            now = time.monotonic()
            recent = self._last_warning is not None and now - self._last_warning < self.warn_interval
            if (recent and not final) or not (self._unreported_failed or self._unreported_dropped):
                return
            parts = []
            if self._unreported_failed:
                batches = self._unreported_batches
                parts.append(
                    f"gave up on {self._unreported_failed} spans ({batches} batch{'es' if batches != 1 else ''}): "
                    + self._reason
                )
            if self._unreported_dropped:
                parts.append(f"dropped {self._unreported_dropped} spans (export queue full)")
            since = "since the last warning, " if self._last_warning is not None else ""
            self._unreported_failed = self._unreported_batches = self._unreported_dropped = 0
            self._last_warning = now
        _log.warning("flightlog export to %s: %s%s", _display(self.endpoint), since, "; ".join(parts))
