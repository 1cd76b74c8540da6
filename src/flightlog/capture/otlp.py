"""OTLP/HTTP request bodies (traces and logs) → flightlog producer events, and the responses.

Pure functions: no I/O. The server reads and gunzips the body, calls `traces_to_events` or
`logs_to_events`, stores `batch.events` and answers with `trace_response` / `logs_response`
in the request's encoding. How spans and log records become events is documented in
`flightlog.capture.otlp_map`.

Both encodings of OTLP/HTTP are accepted (OTLP specification, "OTLP/HTTP"):

- `application/x-protobuf`: a binary `Export{Trace,Logs}ServiceRequest`.
- `application/json`: the proto3 JSON mapping with OTLP's deviations: trace and span ids are
  hex strings (not base64), 64-bit integers are decimal strings (numbers are accepted too),
  enums are integers, keys are lowerCamelCase (the original snake_case names are accepted
  too) and unknown fields are ignored. Example::

      {"resourceSpans": [{"scopeSpans": [{"spans": [{
          "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
          "name": "execute_tool grep", "startTimeUnixNano": "1795021200123456000",
          "endTimeUnixNano": "1795021200223456000", "status": {"code": 2},
          "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}}]
      }]}]}]}

A body that cannot be decoded raises `OtlpDecodeError` (the server answers 400). An item that
decodes but cannot become an event (say, an all-zero trace id) is counted in
`OtlpBatch.rejected` and reported through the response's `partial_success`; the other items
of the request still map.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, NamedTuple, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from flightlog.capture.otlp_map import attributes, log_to_event, make_scope, span_to_event
from flightlog.errors import ValidationError
from flightlog.events import validate_event

__all__ = [
    "MAX_ITEMS",
    "OtlpBatch",
    "OtlpDecodeError",
    "logs_response",
    "logs_to_events",
    "trace_response",
    "traces_to_events",
]

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
MAX_ITEMS: Final = 100_000  # spans or log records per request
MAX_ERRORS: Final = 20  # error messages kept per batch
_HEX: Final = re.compile(r"[0-9a-fA-F]*")
_M = TypeVar("_M", bound=Message)


class OtlpDecodeError(ValidationError):
    """An OTLP request body cannot be decoded; `field` names where (a JSON path or "$")."""


@dataclass
class OtlpBatch:
    """The events of one request and what could not become one."""

    events: list[dict[str, Any]] = field(default_factory=list)  # each passes validate_event (if asked)
    rejected: int = 0  # spans / log records that could not become events
    errors: list[str] = field(default_factory=list)  # one per rejected item, at most MAX_ERRORS
    skipped: int = 0  # log records that are not agent events (dropped on purpose, not rejected)

    def reject(self, message: str) -> None:
        """Count one rejected item, keeping its message while fewer than MAX_ERRORS are kept."""
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)


def traces_to_events(body: bytes, content_type: str, *, validate: bool = True) -> OtlpBatch:
    """Return the events of an ExportTraceServiceRequest body (one per span); raise
    OtlpDecodeError when the body cannot be decoded or holds more than MAX_ITEMS spans.

    With `validate=False` the events are not checked against the schema here: for a caller
    that hands them to `Pipeline.prepare_batch`, which checks every event it stores (the
    server does; a check here too would cost a quarter of its time per span)."""
    check = validate_event if validate else _as_is
    request = _decode(body, content_type, ExportTraceServiceRequest(), _TRACE_PATHS)
    _check_count(sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans), "spans")
    batch = OtlpBatch()
    index = 0
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = make_scope(resource, scope_spans.scope)
            for span in scope_spans.spans:
                try:
                    batch.events.append(check(span_to_event(span, scope)))
                except ValidationError as exc:
                    batch.reject(f"span {index}: {exc.field} {exc.reason}")
                index += 1
    return batch


def logs_to_events(body: bytes, content_type: str, *, validate: bool = True) -> OtlpBatch:
    """Return the events of an ExportLogsServiceRequest body (one per agent event; other
    records are skipped); raise OtlpDecodeError when the body cannot be decoded or holds more
    than MAX_ITEMS log records. `validate` is as for `traces_to_events`."""
    check = validate_event if validate else _as_is
    request = _decode(body, content_type, ExportLogsServiceRequest(), _LOG_PATHS)
    _check_count(sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs), "log records")
    batch = OtlpBatch()
    index = 0
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            scope = make_scope(resource, scope_logs.scope)
            for record in scope_logs.log_records:
                try:
                    event = log_to_event(record, scope, index)
                    if event is None:
                        batch.skipped += 1
                    else:
                        batch.events.append(check(event))
                except ValidationError as exc:
                    batch.reject(f"log record {index}: {exc.field} {exc.reason}")
                index += 1
    return batch


def trace_response(batch: OtlpBatch, content_type: str) -> bytes:
    """Return the ExportTraceServiceResponse for `batch` in the request's encoding:
    `partial_success` is set only when spans were rejected (`{}` / zero bytes otherwise)."""
    response = ExportTraceServiceResponse()
    if batch.rejected:
        response.partial_success.rejected_spans = batch.rejected
        response.partial_success.error_message = _summary(batch)
    return _encode(response, content_type)


def logs_response(batch: OtlpBatch, content_type: str) -> bytes:
    """Return the ExportLogsServiceResponse for `batch` in the request's encoding:
    `partial_success` is set only when log records were rejected (skipped ones are not)."""
    response = ExportLogsServiceResponse()
    if batch.rejected:
        response.partial_success.rejected_log_records = batch.rejected
        response.partial_success.error_message = _summary(batch)
    return _encode(response, content_type)


# --- decoding ------------------------------------------------------------------------------


def _as_is(event: dict[str, Any]) -> dict[str, Any]:
    return event


class _IdPaths(NamedTuple):
    """Where OTLP/JSON puts hex ids."""

    containers: tuple[str, ...]  # array keys from the root down to the items
    ids: tuple[str, ...]  # id keys of each item
    nested: str | None  # an array in each item whose objects have traceId + spanId (links)
    what: str  # the items, for messages


_TRACE_PATHS: Final = _IdPaths(
    ("resourceSpans", "scopeSpans", "spans"), ("traceId", "spanId", "parentSpanId"), "links", "spans"
)
_LOG_PATHS: Final = _IdPaths(("resourceLogs", "scopeLogs", "logRecords"), ("traceId", "spanId"), None, "log records")


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _decode(body: bytes, content_type: str, message: _M, paths: _IdPaths) -> _M:
    name = message.DESCRIPTOR.name
    media_type = _media_type(content_type)
    if media_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError):
            raise OtlpDecodeError("$", f"not a valid {name} protobuf") from None
        return message
    if media_type != JSON:
        raise OtlpDecodeError("$", "content type must be application/x-protobuf or application/json")
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise OtlpDecodeError("$", "not valid JSON") from None
    if not isinstance(document, dict):
        raise OtlpDecodeError("$", f"must be a JSON object ({name})")
    _hex_ids_to_base64(document, paths)
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError) as exc:
        reason = _parse_error_reason(str(exc)) if isinstance(exc, json_format.ParseError) else "nested too deeply"
        raise OtlpDecodeError("$", f"not a valid {name} in OTLP/JSON: {reason}") from None
    return message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _hex_ids_to_base64(document: dict[str, Any], paths: _IdPaths) -> None:
    """Rewrite OTLP/JSON's hex ids to the base64 that the proto3 JSON mapping expects, in
    place, after checking the item count (MAX_ITEMS)."""
    items = [(document, "$")]
    for key in paths.containers:
        items = [child for item, where in items for child in _children(item, key, where)]
    _check_count(len(items), paths.what)
    for item, where in items:
        _rewrite_ids(item, paths.ids, where)
        if paths.nested is not None:
            for link, link_where in _children(item, paths.nested, where):
                _rewrite_ids(link, paths.ids[:2], link_where)


def _children(item: dict[str, Any], key: str, where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """The objects of the array under `key` (or its snake_case twin)."""
    for name in _names(key):
        values = item.get(name)
        if values is None:
            continue
        if not isinstance(values, list):
            raise OtlpDecodeError(f"{where}.{name}", "must be an array")
        for i, value in enumerate(values):
            if not isinstance(value, dict):
                raise OtlpDecodeError(f"{where}.{name}[{i}]", "must be an object")
            yield value, f"{where}.{name}[{i}]"


def _rewrite_ids(item: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        for name in _names(key):
            value = item.get(name)
            if value is None:
                continue
            if not isinstance(value, str) or len(value) % 2 or not _HEX.fullmatch(value):
                raise OtlpDecodeError(
                    f"{where}.{name}", "must be a hex string (OTLP/JSON encodes ids in hex, not base64)"
                )
            item[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


@cache
def _names(key: str) -> tuple[str, ...]:
    """The lowerCamelCase JSON name and, when it differs, the original proto field name."""
    snake = re.sub(r"([A-Z])", r"_\1", key).lower()
    return (key, snake) if snake != key else (key,)


def _check_count(count: int, what: str) -> None:
    if count > MAX_ITEMS:
        raise OtlpDecodeError("$", f"more than {MAX_ITEMS} {what} in one request; send smaller batches")


# --- encoding ------------------------------------------------------------------------------


def _summary(batch: OtlpBatch) -> str:
    text = "; ".join(batch.errors)
    if batch.rejected > len(batch.errors):
        text += f"; and {batch.rejected - len(batch.errors)} more"
    return text


def _encode(response: Message, content_type: str) -> bytes:
    media_type = _media_type(content_type)
    if media_type == PROTOBUF:
        return response.SerializeToString()
    if media_type == JSON:
        return json_format.MessageToJson(response, indent=None).encode("utf-8")
    raise OtlpDecodeError("$", "content type must be application/x-protobuf or application/json")


def _parse_error_reason(message: str) -> str:
    """The cause of a json_format.ParseError after its field path: the path comes as one
    "Failed to parse X field: " per level, so a deep one used to fill the 200 characters kept
    before the cause. The cause ends before its first ": ", where protobuf quotes the value
    ("invalid literal for int() with base 10: 'ghp_…'"): a value may be a secret, and error
    answers and logs never repeat what was sent."""
    fields = _PARSE_PREFIX.findall(message)
    cause = _PARSE_PREFIX.sub("", message).split(": ", 1)[0].rstrip(".")
    return (f"{'.'.join(fields)}: " if fields else "") + cause[:160]


_PARSE_PREFIX: Final = re.compile(r"Failed to parse (\w+) field: ")
