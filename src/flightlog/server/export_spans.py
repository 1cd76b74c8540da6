"""Stored events as OTLP spans, for onward export (pure: no I/O).

Spans follow the OpenTelemetry GenAI semantic conventions (v1.41.0): `invoke_agent {agent}`,
`chat {model}`, `execute_tool {tool}`, with OpenInference attributes beside them for Phoenix
(`openinference.span.kind`, `input.value`, `output.value`); what is flightlog's own is under
`flightlog.*`. Content is what the ledger holds: redacted before it was stored.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from flightlog.capture.otlp_map import MODEL_OPS, PROMPT_OPS

__all__ = ["events_to_request", "request", "service", "span"]

# --- stored events -> OTLP spans (pure) ------------------------------------------------------

_ERROR_CHARS: Final = 1024  # characters of a status message
_CONTENT_CHARS: Final = 32 * 1024  # characters of one content attribute (messages, arguments, results)
_SCOPE_VERSION: Final = importlib.metadata.version("flightlog")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# openinference.span.kind of each event type (Phoenix builds its views from it); others: CHAIN.
_OPENINFERENCE_KIND: Final = {
    "prompt": "AGENT",
    "model_call": "LLM",
    "tool_call": "TOOL",
    "shell": "TOOL",
    "file_op": "TOOL",
    "policy_evaluation": "GUARDRAIL",
    "approval": "GUARDRAIL",
}
# Stored usage keys (GenAI's with dots as underscores, Anthropic's, Codex's) -> GenAI names.
# Other numbers stay flightlog's own: flightlog.usage.<key> (cost_usd, total_tokens, …).
_USAGE: Final = {
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cache_read_input_tokens": "gen_ai.usage.cache_read.input_tokens",
    "cached_input_tokens": "gen_ai.usage.cache_read.input_tokens",
    "cache_creation_input_tokens": "gen_ai.usage.cache_creation.input_tokens",
    "reasoning_output_tokens": "gen_ai.usage.reasoning.output_tokens",
}
_REQUEST_KEYS: Final = frozenset(
    {"max_tokens", "temperature", "top_p", "top_k", "seed", "frequency_penalty", "presence_penalty", "stop_sequences"}
)
_RESPONSE_KEYS: Final = frozenset({"id", "model", "finish_reasons"})
_OP_WORD: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # a file or git op fit for a span name


def _attr(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        strings = [AnyValue(string_value=_capped(v, _ERROR_CHARS)) for v in value[:64]]
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=strings)))
    return KeyValue(key=key, value=AnyValue(string_value=_json_text(value)))


def _capped(text: str, limit: int = _CONTENT_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…[{len(text) - limit} more characters]"


def _json_text(value: object) -> str:
    """A content attribute's value: strings as they are, anything else as JSON; capped."""
    if isinstance(value, str):
        return _capped(value)
    return _capped(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))


def _mime(value: object) -> str:
    return "text/plain" if isinstance(value, str) else "application/json"


def _nanos(timestamp: str) -> int:
    moment = datetime.fromisoformat(timestamp.replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _ends_at_timestamp(event: dict[str, Any]) -> bool:
    """True for an event whose timestamp is when its operation ended: an OTLP log record (Claude
    Code's api_request, tool_result, …) is emitted when the call is over; every other source
    stamps the start (spans, hooks, transcripts, the SDK)."""
    raw = _dict(event.get("payload")).get("raw")
    return _dict(event.get("source")).get("kind") == "otlp" and isinstance(raw, dict) and "event_name" in raw


def _span_times(event: dict[str, Any]) -> tuple[int, int]:
    """Return the (start, end) of a stored event in Unix nanoseconds."""
    at = _nanos(event["timestamp"])
    duration = event.get("duration_ms")
    length = 0
    if isinstance(duration, int | float) and not isinstance(duration, bool) and math.isfinite(duration):
        length = max(0, round(duration * 1_000_000))
    return (at - length, at) if _ends_at_timestamp(event) else (at, at + length)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text_messages(role: str, text: object) -> list[dict[str, Any]]:
    return [{"role": role, "parts": [{"type": "text", "content": text if isinstance(text, str) else ""}]}]


def _raw_op(payload: dict[str, Any], allowed: frozenset[str], default: str) -> str:
    raw = payload.get("raw")
    attrs = raw.get("attributes") if isinstance(raw, dict) else None
    op = attrs.get("gen_ai.operation.name") if isinstance(attrs, dict) else None
    return op if isinstance(op, str) and op in allowed else default


def _prompt_attrs(event: dict[str, Any], payload: dict[str, Any], attrs: dict[str, Any]) -> str:
    op = _raw_op(payload, PROMPT_OPS, "invoke_agent")
    attrs["gen_ai.operation.name"] = op
    attrs["gen_ai.agent.name"] = event["agent_id"]
    messages = payload.get("messages")
    if not isinstance(messages, list):
        messages = _text_messages("user", payload.get("text"))
    attrs["gen_ai.input.messages"] = _json_text(messages)
    if isinstance(payload.get("text"), str):
        attrs["input.value"], attrs["input.mime_type"] = _capped(payload["text"]), "text/plain"
    return f"{op} {event['agent_id']}"


def _model_attrs(event: dict[str, Any], payload: dict[str, Any], attrs: dict[str, Any]) -> str:
    op = _raw_op(payload, MODEL_OPS, "chat")
    model = _dict(event.get("model"))
    request, response = _dict(payload.get("request")), _dict(payload.get("response"))
    name = model.get("name") or request.get("model")
    attrs["gen_ai.operation.name"] = op
    if isinstance(name, str) and name:
        attrs["gen_ai.request.model"] = attrs["llm.model_name"] = name
    for key in ("temperature", "top_p", "seed"):
        if model.get(key) is not None:
            attrs[f"gen_ai.request.{key}"] = model[key]
    for key, value in request.items():
        if key in _REQUEST_KEYS and isinstance(value, int | float | str | list):
            attrs[f"gen_ai.request.{key}"] = value
    for key, value in response.items():
        if key in _RESPONSE_KEYS and isinstance(value, int | float | str | list):
            attrs[f"gen_ai.response.{key}"] = value
    for key, value in _dict(payload.get("usage")).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[_USAGE.get(key, f"flightlog.usage.{key}")] = value
    for ours, theirs in (("input_tokens", "prompt"), ("output_tokens", "completion")):
        if f"gen_ai.usage.{ours}" in attrs:
            attrs[f"llm.token_count.{theirs}"] = attrs[f"gen_ai.usage.{ours}"]
    if isinstance(request.get("messages"), list):
        attrs["gen_ai.input.messages"] = attrs["input.value"] = _json_text(request["messages"])
        attrs["input.mime_type"] = "application/json"
    for key, theirs in (("system_instructions", "gen_ai.system_instructions"), ("tools", "gen_ai.tool.definitions")):
        if request.get(key) is not None:
            attrs[theirs] = _json_text(request[key])
    output = response.get("messages")
    if not isinstance(output, list) and isinstance(response.get("text"), str):
        output = _text_messages("assistant", response["text"])
        stop = payload.get("stop_reason") or response.get("stop_reason")
        if isinstance(stop, str):
            output[0]["finish_reason"] = stop
    if isinstance(output, list):
        attrs["gen_ai.output.messages"] = _json_text(output)
        text = response.get("text")
        attrs["output.value"] = _capped(text) if isinstance(text, str) else attrs["gen_ai.output.messages"]
        attrs["output.mime_type"] = "text/plain" if isinstance(text, str) else "application/json"
    return f"{op} {name}" if isinstance(name, str) and name else op


def _tool_attrs(event: dict[str, Any], payload: dict[str, Any], attrs: dict[str, Any]) -> str:
    tool = payload.get("tool_name") if isinstance(payload.get("tool_name"), str) else "unknown"
    attrs["gen_ai.operation.name"] = "execute_tool"
    attrs["gen_ai.tool.name"] = attrs["tool.name"] = tool
    if isinstance(payload.get("tool_call_id"), str):
        attrs["gen_ai.tool.call.id"] = payload["tool_call_id"]
    if payload.get("input") is not None:
        attrs["gen_ai.tool.call.arguments"] = attrs["input.value"] = _json_text(payload["input"])
        attrs["input.mime_type"] = _mime(payload["input"])
    if payload.get("output") is not None:
        attrs["gen_ai.tool.call.result"] = attrs["output.value"] = _json_text(payload["output"])
        attrs["output.mime_type"] = _mime(payload["output"])
    return f"execute_tool {tool}"


def _other_attrs(event: dict[str, Any], payload: dict[str, Any], attrs: dict[str, Any]) -> str:
    kind = event["type"]
    shown = {k: v for k, v in payload.items() if k != "raw"}
    if shown:
        attrs["flightlog.payload"] = _json_text(shown)
    if kind == "shell" and isinstance(payload.get("command"), str):
        attrs["input.value"], attrs["input.mime_type"] = _capped(payload["command"]), "text/plain"
        if isinstance(payload.get("stdout"), str):
            attrs["output.value"], attrs["output.mime_type"] = _capped(payload["stdout"]), "text/plain"
    op = payload.get("op")
    if kind in ("file_op", "git_op") and isinstance(op, str) and _OP_WORD.fullmatch(op):
        return f"{kind} {op}"
    if kind == "span" and isinstance(payload.get("name"), str) and payload["name"]:
        return _capped(payload["name"], 128)  # the name its own source gave the span
    return str(kind)


_NAMERS: Final = {"prompt": _prompt_attrs, "model_call": _model_attrs, "tool_call": _tool_attrs}


def _failure(event: dict[str, Any], payload: dict[str, Any]) -> tuple[str, str]:
    """(error.type, status message) of a failed or denied event."""
    if event.get("status") == "denied":
        reason = payload.get("reason") or payload.get("error")
        return "denied", _capped(reason, _ERROR_CHARS) if isinstance(reason, str) else "denied by policy"
    error = payload.get("error")
    message = error if isinstance(error, str) and error else f"{event['type']} failed"
    code = _dict(payload.get("response")).get("status_code")
    if isinstance(code, int) and not isinstance(code, bool):
        kind = str(code)
    elif isinstance(payload.get("exit_code"), int):
        kind = "exit_code"  # a shell command that exited non-zero
    else:
        kind = "_OTHER"  # the semantic conventions' value when no well-known one fits
    return kind, _capped(message, _ERROR_CHARS)


def span(event: dict[str, Any]) -> Span:
    payload = _dict(event.get("payload"))
    attrs: dict[str, Any] = {}
    name = _NAMERS.get(event["type"], _other_attrs)(event, payload, attrs)
    attrs["openinference.span.kind"] = _OPENINFERENCE_KIND.get(event["type"], "CHAIN")
    model = _dict(event.get("model"))
    if model.get("provider"):
        attrs["gen_ai.provider.name"] = model["provider"]
    if event.get("session_id"):
        attrs["gen_ai.conversation.id"] = attrs["session.id"] = event["session_id"]
    user = _dict(event.get("user_context"))
    if isinstance(user.get("user_id"), str):
        attrs["user.id"] = user["user_id"]
    attrs["flightlog.event_id"] = event["event_id"]
    attrs["flightlog.event.type"] = event["type"]
    attrs["flightlog.agent_id"] = event["agent_id"]
    attrs["flightlog.status"] = event.get("status", "unset")
    if (event.get("source") or {}).get("kind"):
        attrs["flightlog.source.kind"] = event["source"]["kind"]
    if event.get("redactions"):
        attrs["flightlog.redactions"] = len(event["redactions"])
    status = Status(code=Status.STATUS_CODE_OK if event.get("status") == "ok" else Status.STATUS_CODE_UNSET)
    if event.get("status") in ("error", "denied"):
        attrs["error.type"], message = _failure(event, payload)
        status = Status(code=Status.STATUS_CODE_ERROR, message=message)
    start, end = _span_times(event)
    return Span(
        trace_id=bytes.fromhex(event["trace_id"]),
        span_id=bytes.fromhex(event["span_id"]),
        parent_span_id=bytes.fromhex(event["parent_span_id"]) if event.get("parent_span_id") else b"",
        name=name,
        kind=Span.SPAN_KIND_CLIENT if event["type"] == "model_call" else Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=[_attr(k, v) for k, v in attrs.items()],
        status=status,
    )


def service(event: dict[str, Any]) -> str:
    agent = event.get("agent_id")
    if isinstance(agent, str) and agent and agent != "unknown":
        return agent
    kind = (event.get("source") or {}).get("kind")
    return f"flightlog-{kind}" if isinstance(kind, str) and kind else "flightlog"


def request(spans: list[tuple[str, Span]]) -> ExportTraceServiceRequest:
    scope = InstrumentationScope(name="flightlog", version=_SCOPE_VERSION)
    by_service: dict[str, list[Span]] = {}
    for service, span in spans:
        by_service.setdefault(service, []).append(span)
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[_attr("service.name", service)]),
                scope_spans=[ScopeSpans(scope=scope, spans=group)],
            )
            for service, group in by_service.items()
        ]
    )


def events_to_request(events: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    """Return the OTLP request that carries these stored events as spans, one resource (its
    service.name the agent id) per agent."""
    return request([(service(e), span(e)) for e in events])
