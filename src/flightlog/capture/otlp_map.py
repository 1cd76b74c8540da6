"""Map one OTLP span or log record to one flightlog producer event (pure functions).

`flightlog.capture.otlp` decodes request bodies and calls `span_to_event` / `log_to_event` for
each item; a mapping problem raises `ValidationError` and rejects that item alone.

Spans map by `gen_ai.operation.name` (OTel GenAI semantic conventions), else by Claude Code's
beta span name, else by the generic rule:

- prompt: `invoke_agent`, `create_agent`, `invoke_workflow`; `claude_code.interaction`.
  payload.text is the last user message of `gen_ai.input.messages` (kept whole as
  payload.messages), else `gen_ai.prompt`, else Claude Code's `user_prompt`, else the span name.
- model_call: `chat`, `text_completion`, `generate_content`, `embeddings`;
  `claude_code.llm_request`. request = `gen_ai.request.*` + input messages, system
  instructions, tool definitions; response = `gen_ai.response.*` + output messages; usage =
  `gen_ai.usage.*` (dots become underscores) or Claude Code's token counts.
- tool_call: `execute_tool`; `claude_code.tool`, `claude_code.tool.execution`. tool_name,
  tool_call_id, input (`gen_ai.tool.call.arguments`, parsed when it is a JSON object or array),
  output (`gen_ai.tool.call.result`, likewise), error (the status message of a failed span).
- policy_evaluation: `claude_code.tool.blocked_on_user` (decision, source; "reject" → denied).
- generic (any other span): type "ci" when it has a `cicd.*` attribute, else "span" with
  payload.name = the span name, and payload.error = the status message of a failed span (status
  "error"). An HTTP call or a database query is not a tool call; typing it as one would skew the
  tool failure rate.

Log records (Claude Code events, named by the `event_name` field, the `event.name` attribute or
the body, with or without the `claude_code.` prefix): `user_prompt` → prompt, `api_request` →
model_call, `api_error` → model_call with status error, `tool_result` → tool_call,
`tool_decision` → policy_evaluation; any other Claude Code event (`assistant_response`,
`api_refusal`, `compaction`, `hook_execution_complete`, …) → a `span` event named after it,
its attributes under payload.raw. A record of another program becomes an `error` event when its
severity is ERROR (17) or above and is skipped otherwise.

Attributes that the mapping did not turn into an event field stay under `payload.raw`:
`{"attributes", "resource", "span_name", "span_kind", ...}` for spans and
`{"attributes", "resource", "event_name", "severity"}` for log records, as plain JSON values
(bytes as their text, or base64 when they are not text; non-finite doubles as
"NaN"/"Infinity"/"-Infinity").

Ids of log records: a record with trace context keeps its trace id, gets its own span id and
points at the span it was emitted in as its parent. A record without trace context (most
Claude Code events) gets ids derived deterministically, so a retried export maps to the same
ids: trace_id = sha256("flightlog-trace:" + session.id + ":" + prompt.id)[:16] (session only
when there is no prompt.id), span_id = sha256("flightlog-span:" + trace_id + ":" + timestamp +
":" + event name + ":" + event.sequence, or "#" + the record's index in the request)[:8].

Event ids are derived too (a UUIDv7 of the span's start or the record's time, its other bits
from sha256 of the trace and span ids), so an exporter that retries after a timeout, when the
first attempt was in fact stored, stores nothing twice.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from flightlog.capture import claude_shape
from flightlog.errors import ValidationError
from flightlog.ids import derive_id, stable_event_id, unix_ms

__all__ = ["MODEL_OPS", "PROMPT_OPS", "Scope", "any_value", "attributes", "log_to_event", "make_scope", "span_to_event"]

Event = dict[str, Any]
Attrs = dict[str, Any]

SOURCE_KIND: Final = "otlp"
ERROR_SEVERITY: Final = 17  # SEVERITY_NUMBER_ERROR
_MAX_SAFE: Final = 2**53 - 1  # largest integer an IEEE double (and so RFC 8785) holds exactly
_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not in text, but in binary
_MAX_DEPTH: Final = 64  # nesting kept when a JSON string attribute is parsed
_SPAN_KINDS: Final = ("unspecified", "internal", "server", "client", "producer", "consumer")
# gen_ai.operation.name values that make a prompt (a turn) and a model call: shared with export.
PROMPT_OPS: Final = frozenset({"invoke_agent", "create_agent", "invoke_workflow"})
MODEL_OPS: Final = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
_CLAUDE_SPANS: Final = {
    "claude_code.interaction": "prompt",
    "claude_code.llm_request": "model_call",
    "claude_code.tool": "tool_call",
    "claude_code.tool.execution": "tool_call",
    "claude_code.tool.blocked_on_user": "policy_evaluation",
}
# Claude Code's own token and cost attributes (spans and api_request events) → usage keys
# named like the GenAI ones (`gen_ai.usage.cache_read.input_tokens` → cache_read_input_tokens).
_CLAUDE_USAGE: Final = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_tokens": "cache_read_input_tokens",
    "cache_creation_tokens": "cache_creation_input_tokens",
}
# Attributes Claude Code's tool span carries with OTEL_LOG_TOOL_DETAILS: what the tool acted on.
_CLAUDE_TOOL_INPUT: Final = ("full_command", "file_path", "skill_name", "subagent_type")


@dataclass(frozen=True)
class Scope:
    """What every item of one resource + instrumentation scope shares."""

    resource: Attrs
    source: dict[str, Any]


def make_scope(resource: Attrs, scope: InstrumentationScope) -> Scope:
    """Return the shared context; source.version is "<scope name> <scope version>" or None."""
    version = f"{scope.name} {scope.version}".strip() if scope.name else None
    return Scope(resource, {"kind": SOURCE_KIND, "version": version})


def any_value(value: AnyValue) -> Any:
    """Return an OTLP AnyValue as a JSON value: bytes as their UTF-8 text, or base64 when they
    are not text (not UTF-8, or control characters other than tab and line ends); NaN/±Infinity
    and integers beyond ±(2**53 - 1) as strings (RFC 8785 canonical JSON cannot hold them as
    numbers)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return _safe_int(value.int_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else json.dumps(number)
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        # As text when they are text, so redaction reads them: a token sent as bytes would pass
        # every rule inside base64.
        try:
            text = value.bytes_value.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and not _CONTROL.search(text):
            return text
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def attributes(pairs: Iterable[KeyValue]) -> Attrs:
    """Return OTLP key/value pairs as a flat dict (a repeated key keeps its last value)."""
    # Strings, the common case, are read inline: a call per value was a tenth of the mapping.
    # HasField on the oneof member is a quarter cheaper than comparing WhichOneof's name.
    return {
        kv.key: value.string_value if (value := kv.value).HasField("string_value") else any_value(value) for kv in pairs
    }


def rfc3339(nanos: int) -> str:
    """Return Unix nanoseconds as RFC 3339 UTC with microseconds, e.g. 2026-11-24T17:00:00.123456Z."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    return f"{_utc_second(seconds)}.{rest // 1000:06d}Z"


@lru_cache(maxsize=4096)
def _utc_second(seconds: int) -> str:
    # The spans of one request mostly share their seconds; formatting a datetime is the slow part.
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}"


def span_to_event(span: Span, scope: Scope) -> Event:
    """Return the producer event for one span; raise ValidationError when it cannot be one."""
    if len(span.trace_id) != 16 or not any(span.trace_id):
        raise ValidationError("trace_id", _bad_id(span.trace_id, 16))
    if len(span.span_id) != 8 or not any(span.span_id):
        raise ValidationError("span_id", _bad_id(span.span_id, 8))
    parent = span.parent_span_id
    if parent and len(parent) != 8:
        raise ValidationError("parent_span_id", _bad_id(parent, 8))
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if not start:
        raise ValidationError("start_time_unix_nano", "is missing")
    attrs = attributes(span.attributes)
    failed = span.status.code == Status.STATUS_CODE_ERROR
    op = attrs.get("gen_ai.operation.name")
    if op in PROMPT_OPS:
        kind = "prompt"
    elif op in MODEL_OPS:
        kind = "model_call"
    elif op == "execute_tool":
        kind = "tool_call"
    else:
        kind = _CLAUDE_SPANS.get(span.name, "")
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    event = _envelope(attrs, scope, trace_id, span_id, rfc3339(start))
    event["event_id"] = stable_event_id(f"flightlog-otlp-span:{trace_id}:{span_id}", start // 1_000_000)
    if any(parent):
        event["parent_span_id"] = parent.hex()
    if end >= start:
        event["duration_ms"] = _number((end - start) / 1e6)
    event["status"] = "error" if failed else "ok"
    if kind == "prompt":
        payload = _span_prompt(attrs, span.name)
    elif kind == "model_call":
        payload = _model_payload(attrs, span.status.message if failed else None)
    elif kind == "tool_call":
        payload, ok = _span_tool(attrs, span.name, span.status.message if failed else None)
        event["status"] = "ok" if ok else "error"
        kind, payload = _typed_tool(attrs, payload)
    elif kind == "policy_evaluation":
        payload = _decision(attrs)
        if payload.get("decision") == "reject":
            event["status"] = "denied"
    elif any(key.startswith("cicd.") for key in attrs):
        kind, payload = "ci", {"name": span.name}
    else:
        kind, payload = "span", {"name": span.name or "unnamed span"}
        if failed:
            payload["error"] = span.status.message or "failed"
    event["type"] = kind
    payload["raw"] = _span_raw(span, attrs, scope)
    event["payload"] = payload
    return event


def log_to_event(record: LogRecord, scope: Scope, index: int) -> Event | None:
    """Return the producer event for one log record, or None when it is skipped (not an agent
    event and below ERROR severity); raise ValidationError when it cannot be an event."""
    attrs = attributes(record.attributes)
    body = any_value(record.body) if record.HasField("body") else None
    named = attrs.pop("event.name", None)
    name = record.event_name or (named if isinstance(named, str) else "") or (body if isinstance(body, str) else "")
    handler = _CLAUDE_LOGS.get(name.removeprefix("claude_code."))
    # Claude Code's other events (assistant_response, api_refusal, compaction, hook_execution_*,
    # permission_mode_changed, …) are part of the session's record: kept as generic events. Other
    # programs' log records are kept from ERROR up; below that they are application logging.
    claude = name.startswith("claude_code.") or (isinstance(body, str) and body.startswith("claude_code."))
    if handler is None and not claude and record.severity_number < ERROR_SEVERITY:
        return None
    stamp = attrs.pop("event.timestamp", None)
    if record.time_unix_nano or record.observed_time_unix_nano:
        timestamp = rfc3339(record.time_unix_nano or record.observed_time_unix_nano)
    elif isinstance(stamp, str):
        timestamp = _iso_to_rfc3339(stamp)
    else:
        raise ValidationError("time_unix_nano", "is missing (and no event.timestamp attribute)")
    trace, span = record.trace_id, record.span_id
    if trace and len(trace) != 16:
        raise ValidationError("trace_id", _bad_id(trace, 16))
    if span and len(span) != 8:
        raise ValidationError("span_id", _bad_id(span, 8))
    sequence = attrs.get("event.sequence")
    item_key = f"{timestamp}:{name}:{sequence if sequence is not None else f'#{index}'}"
    parent = None
    span_id = ""
    if any(trace):
        trace_id = trace.hex()
        parent = span.hex() if any(span) else None
    else:
        session = _peek_text(attrs, "gen_ai.conversation.id", "session.id")
        prompt_id = attrs.get("prompt.id")
        if session is None and prompt_id is None:
            seed = f"record:{item_key}"
        else:
            seed = f"{session or ''}:{prompt_id}" if prompt_id is not None else session or ""
        trace_id = derive_id(f"flightlog-trace:{seed}", 16)
        if claude and session is not None and isinstance(prompt_id, str):
            # The spans the Claude Code hook gives the same turn: its prompt and tool calls are
            # then one event each, whichever source the collector hears first (it skips a
            # span already stored), and the rest hang under the prompt.
            prompt_span = claude_shape.prompt_span_id(trace_id)
            tool_use = _peek_text(attrs, "tool_use_id", "gen_ai.tool.call.id")
            if handler is _user_prompt:
                span_id = prompt_span
            else:
                parent = prompt_span
                if handler is _tool_result and tool_use is not None:
                    span_id = claude_shape.tool_span_id(session, tool_use)
    span_id = span_id or derive_id(f"flightlog-span:{trace_id}:{item_key}", 8)
    event = _envelope(attrs, scope, trace_id, span_id, timestamp)
    event["event_id"] = stable_event_id(f"flightlog-otlp-log:{trace_id}:{span_id}", unix_ms(timestamp))
    if parent is not None:
        event["parent_span_id"] = parent
    event["status"] = "ok"
    if handler is not None:
        event["type"], payload = handler(attrs, event)
    elif claude:
        failed = record.severity_number >= ERROR_SEVERITY
        qualified = name if name.startswith("claude_code.") else f"claude_code.{name}"
        event["type"], event["status"] = "span", "error" if failed else "ok"
        payload = {"name": qualified}
        if failed:
            payload["error"] = _text(attrs, "error") or qualified
    else:
        event["type"], event["status"] = "error", "error"
        payload = {"message": body if isinstance(body, str) else ""}
        if body is not None and not isinstance(body, str):
            payload["body"] = body
    severity = record.severity_text or (record.severity_number or None)
    raw: dict[str, Any] = {"event_name": name, "attributes": attrs, "resource": dict(scope.resource)}
    if severity is not None:
        raw["severity"] = severity
    payload["raw"] = raw
    event["payload"] = payload
    return event


# --- shared pieces -------------------------------------------------------------------------


def _envelope(attrs: Attrs, scope: Scope, trace_id: str, span_id: str, timestamp: str) -> Event:
    """The fields every event has; consumes the identity attributes from `attrs`."""
    resource = scope.resource
    # the id first: a run's display name may differ from the id its other spans carry
    agent = _text(attrs, "gen_ai.agent.id", "gen_ai.agent.name", limit=256) or resource.get("service.name")
    event: Event = {
        "trace_id": trace_id,
        "span_id": span_id,
        "timestamp": timestamp,
        "agent_id": agent[:256] if isinstance(agent, str) and agent else "unknown",
        "source": dict(scope.source),
    }
    session = _text(attrs, "gen_ai.conversation.id", "session.id", limit=256)
    if session is not None:
        event["session_id"] = session
    # A set intersection (one C call) tells which optional parts can be there at all.
    if not _USER_KEYS.isdisjoint(attrs.keys()) or not _USER_KEYS.isdisjoint(resource.keys()):
        # The person before an id: Claude Code's user.id is an anonymous install id, its
        # user.email the signed-in account.
        user = _text(attrs, *_USER_ORDER)
        if user is None:
            user = next((v for k in _USER_ORDER if isinstance(v := resource.get(k), str)), None)
        host = _text(attrs, "host.name")
        host = host if host is not None else resource.get("host.name")
        if user is not None or isinstance(host, str):
            event["user_context"] = {"user_id": user, "host": host if isinstance(host, str) else None}
    if not _MODEL_KEYS.isdisjoint(attrs.keys()):
        model = {
            "provider": _text(attrs, "gen_ai.provider.name", "gen_ai.system"),
            "name": _peek_text(attrs, "gen_ai.request.model", "gen_ai.response.model"),
            "version": _text(attrs, "flightlog.model.version"),
            "temperature": _as_float(attrs.get("gen_ai.request.temperature")),
            "top_p": _as_float(attrs.get("gen_ai.request.top_p")),
            "seed": _as_int(attrs.get("gen_ai.request.seed")),
        }
        if model["provider"] is not None or model["name"] is not None:
            event["model"] = {k: v for k, v in model.items() if v is not None}
    return event


_USER_ORDER: Final = ("user.email", "enduser.id", "user.id")
_USER_KEYS: Final = frozenset((*_USER_ORDER, "host.name"))
# A model is recorded only with a provider or a name; the other keys only add to one.
_MODEL_KEYS: Final = frozenset(
    ("gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model", "gen_ai.response.model")
)


def _text(attrs: Attrs, *keys: str, limit: int | None = None) -> str | None:
    """Pop and return the first non-empty string (of at most `limit` characters) among `keys`;
    the others stay in `attrs`."""
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, str) and value and (limit is None or len(value) <= limit):
            return attrs.pop(key)  # type: ignore[no-any-return]
    return None


def _peek_text(attrs: Attrs, *keys: str) -> str | None:
    """Return the first non-empty string among `keys`, leaving them in place."""
    return next((v for k in keys if isinstance(v := attrs.get(k), str) and v), None)


def _as_int(value: object) -> int | None:
    """Lenient integer: 5, "5" and 5.0 are 5; anything else, or beyond ±(2**53 - 1), is None."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and len(value) < 20 and value.strip().lstrip("-").isascii():
        try:
            number = int(value)
        except ValueError:
            return None
    return number if number is not None and -_MAX_SAFE <= number <= _MAX_SAFE else None


def _as_float(value: object) -> float | None:
    """Lenient finite number: 0.5 and "0.5" are 0.5; anything else is None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _as_bool(value: object) -> bool | None:
    """Lenient boolean: True/"true"/"1" and False/"false"/"0"; anything else is None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    return None


def _number(value: float) -> float | int:
    """An integral float as an int (the same canonical JSON, and the faster encoder path)."""
    return int(value) if value.is_integer() and abs(value) <= _MAX_SAFE else value


def _safe_int(number: int) -> int | str:
    return number if -_MAX_SAFE <= number <= _MAX_SAFE else str(number)


def _safe_float(text: str) -> float | str:
    number = float(text)
    return number if math.isfinite(number) else text


def _maybe_json(value: object) -> Any:
    """Return a JSON object or array given as a string parsed (numbers kept within what
    canonical JSON holds, at most _MAX_DEPTH deep); anything else unchanged."""
    if not isinstance(value, str) or value.lstrip()[:1] not in ("{", "["):
        return value
    try:
        parsed = json.loads(value, parse_int=lambda t: _safe_int(int(t)), parse_float=_safe_float, parse_constant=str)
    except (ValueError, RecursionError):
        return value
    return parsed if _shallow(parsed) else value


def _shallow(value: object) -> bool:
    """True when `value` nests at most _MAX_DEPTH arrays/objects deep (checked without recursion)."""
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= _MAX_DEPTH:
                return False
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return True


def _take(attrs: Attrs, prefix: str, convert: Callable[[str], str] = str) -> dict[str, Any]:
    """Pop every attribute under `prefix` into a dict keyed by the rest of its name."""
    keys = [k for k in attrs if k.startswith(prefix)]
    return {convert(k[len(prefix) :]): attrs.pop(k) for k in keys}


def _bad_id(value: bytes, size: int) -> str:
    if not value:
        return "is missing"
    if len(value) != size:
        return f"has {len(value)} bytes, expected {size}"
    return "is all zero"


def _iso_to_rfc3339(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationError("event.timestamp", "is not an ISO 8601 date-time") from None
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S.%f}Z"


# --- spans ---------------------------------------------------------------------------------


def _span_raw(span: Span, attrs: Attrs, scope: Scope) -> dict[str, Any]:
    kind = _SPAN_KINDS[span.kind] if 0 <= span.kind < len(_SPAN_KINDS) else str(span.kind)
    raw: dict[str, Any] = {
        "span_name": span.name,
        "span_kind": kind,
        "attributes": attrs,
        "resource": dict(scope.resource),
    }
    if span.status.message:
        raw["status_message"] = span.status.message
    if span.events:
        raw["events"] = [
            {"name": e.name, "timestamp": rfc3339(e.time_unix_nano), "attributes": attributes(e.attributes)}
            for e in span.events
        ]
    if span.links:
        raw["links"] = [
            {
                "trace_id": ln.trace_id.hex(),
                "span_id": ln.span_id.hex(),
                "attributes": attributes(ln.attributes),
            }
            for ln in span.links
        ]
    return raw


def _span_prompt(attrs: Attrs, span_name: str) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if "gen_ai.input.messages" in attrs:
        messages = _maybe_json(attrs.pop("gen_ai.input.messages"))
        text = _last_user_text(messages)
        if isinstance(messages, list):
            payload["messages"] = messages
        if text is None:
            text = messages if isinstance(messages, str) else json.dumps(messages, ensure_ascii=False)
    elif isinstance(attrs.get("gen_ai.prompt"), str):
        text = attrs.pop("gen_ai.prompt")
    elif isinstance(attrs.get("user_prompt"), str):  # claude_code.interaction
        text = attrs.pop("user_prompt")
    else:
        text = span_name
    payload["text"] = text
    return payload


def _last_user_text(messages: object) -> str | None:
    """The text parts of the last user message in GenAI `{role, parts: [{type, content}]}` form."""
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            parts = message.get("parts")
            texts = [
                p["content"]
                for p in (parts if isinstance(parts, list) else [])
                if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("content"), str)
            ]
            return "\n".join(texts) if texts else None
    return None


def _model_payload(attrs: Attrs, error: str | None) -> dict[str, Any]:
    """request / response / usage from GenAI attributes, plus Claude Code's own names."""
    request = _take(attrs, "gen_ai.request.")
    for key, name in (
        ("gen_ai.input.messages", "messages"),
        ("gen_ai.system_instructions", "system_instructions"),
        ("gen_ai.tool.definitions", "tools"),
    ):
        if key in attrs:
            request[name] = _maybe_json(attrs.pop(key))
    response = _take(attrs, "gen_ai.response.")
    if "gen_ai.output.messages" in attrs:
        response["messages"] = _maybe_json(attrs.pop("gen_ai.output.messages"))
    for key in ("request_id", "stop_reason", "status_code"):
        if key in attrs:
            response[key] = attrs.pop(key)
    usage = _take(attrs, "gen_ai.usage.", lambda k: k.replace(".", "_"))
    usage.update(_claude_usage(attrs))
    payload: dict[str, Any] = {"request": request, "response": response, "usage": usage or None}
    error = error or _text(attrs, "error")
    if error:
        payload["error"] = error
    return payload


def _claude_usage(attrs: Attrs) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for key, name in _CLAUDE_USAGE.items():
        if (count := _as_int(attrs.get(key))) is not None:
            attrs.pop(key)
            usage[name] = count
    if (cost := _as_float(attrs.get("cost_usd"))) is not None:
        attrs.pop("cost_usd")
        usage["cost_usd"] = cost
    return usage


def _span_tool(attrs: Attrs, span_name: str, error: str | None) -> tuple[dict[str, Any], bool]:
    """The tool_call payload and whether the call succeeded (ERROR status or success=false)."""
    name = _text(attrs, "gen_ai.tool.name", "tool_name") or span_name.removeprefix("execute_tool ")
    payload: dict[str, Any] = {
        "tool_name": name or "unknown",
        "tool_call_id": _text(attrs, "gen_ai.tool.call.id", "tool_use_id"),
    }
    if "gen_ai.tool.call.arguments" in attrs:
        payload["input"] = _maybe_json(attrs.pop("gen_ai.tool.call.arguments"))
    elif details := {k: attrs.pop(k) for k in _CLAUDE_TOOL_INPUT if k in attrs}:
        payload["input"] = details
    if "gen_ai.tool.call.result" in attrs:
        payload["output"] = _maybe_json(attrs.pop("gen_ai.tool.call.result"))
    failed = error is not None or _as_bool(attrs.get("success")) is False
    if failed:
        error = error or _text(attrs, "error", "error.type") or "failed"
    payload["error"] = error if failed else None
    return payload, not failed


_TYPED_TOOLS: Final = {
    # `flightlog.event.type` on an execute_tool span (the SDK sets it): the arguments and the
    # result hold exactly that event type's payload fields.
    "file_op": ("op", "file_path", "old_path", "checksum_before", "checksum_after", "diff", "workspace_snapshot"),
    "shell": ("command", "cwd", "exit_code", "stdout", "stderr"),
}


def _typed_tool(attrs: Attrs, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return ("file_op" | "shell", its payload) for a tool span that says it is one and carries
    the required fields, else ("tool_call", payload) unchanged."""
    kind = attrs.get("flightlog.event.type")
    fields = _TYPED_TOOLS.get(kind) if isinstance(kind, str) else None
    given = {}
    for part in (payload.get("input"), payload.get("output")):
        if isinstance(part, dict):
            given.update(part)
    if fields is None or not all(isinstance(given.get(f), str) for f in fields[: 2 if kind == "file_op" else 1]):
        return "tool_call", payload
    attrs.pop("flightlog.event.type")
    typed = {f: given[f] for f in fields if f in given}
    if payload.get("error"):
        typed["error"] = payload["error"]
    return str(kind), typed


def _decision(attrs: Attrs) -> dict[str, Any]:
    payload: dict[str, Any] = {k: attrs.pop(k) for k in ("decision", "source") if k in attrs}
    if (tool := _text(attrs, "tool_name")) is not None:
        payload["tool_name"] = tool
    if (call := _text(attrs, "tool_use_id")) is not None:
        payload["tool_call_id"] = call
    return payload


# --- Claude Code log events ----------------------------------------------------------------

_Handler = Callable[[Attrs, Event], tuple[str, dict[str, Any]]]


def _duration(attrs: Attrs, event: Event) -> None:
    duration = _as_float(attrs.get("duration_ms"))
    if duration is not None and duration >= 0:
        attrs.pop("duration_ms")
        event["duration_ms"] = _number(duration)


def _claude_model(attrs: Attrs, event: Event) -> None:
    name = _text(attrs, "model")
    if name is not None:
        event.setdefault("model", {}).setdefault("name", name)


def _user_prompt(attrs: Attrs, event: Event) -> tuple[str, dict[str, Any]]:
    prompt = attrs.pop("prompt", None)
    return "prompt", {"text": prompt if isinstance(prompt, str) else ""}


def _api_request(attrs: Attrs, event: Event) -> tuple[str, dict[str, Any]]:
    model = _peek_text(attrs, "model")
    _claude_model(attrs, event)
    _duration(attrs, event)
    response = {k: attrs.pop(k) for k in ("request_id",) if k in attrs}
    usage = _claude_usage(attrs)
    return "model_call", {"request": {"model": model}, "response": response, "usage": usage or None}


def _api_error(attrs: Attrs, event: Event) -> tuple[str, dict[str, Any]]:
    kind, payload = _api_request(attrs, event)
    if (status := _as_int(attrs.get("status_code"))) is not None:
        attrs.pop("status_code")
        payload["response"]["status_code"] = status
    payload["error"] = _text(attrs, "error") or "API error"
    event["status"] = "error"
    return kind, payload


def _tool_result(attrs: Attrs, event: Event) -> tuple[str, dict[str, Any]]:
    _duration(attrs, event)
    success = _as_bool(attrs.pop("success", None))
    payload: dict[str, Any] = {
        "tool_name": _text(attrs, "tool_name") or "unknown",
        "tool_call_id": _text(attrs, "tool_use_id", "gen_ai.tool.call.id"),
    }
    for key in ("tool_input", "tool_parameters"):
        if key in attrs:
            payload["input"] = _maybe_json(attrs.pop(key))
            break
    payload["error"] = None
    if success is False:
        event["status"] = "error"
        payload["error"] = _text(attrs, "error", "error_type") or "failed"
    return "tool_call", payload


def _tool_decision(attrs: Attrs, event: Event) -> tuple[str, dict[str, Any]]:
    payload = _decision(attrs)
    if payload.get("decision") == "reject":
        event["status"] = "denied"
    return "policy_evaluation", payload


_CLAUDE_LOGS: Final[dict[str, _Handler]] = {
    "user_prompt": _user_prompt,
    "api_request": _api_request,
    "api_error": _api_error,
    "tool_result": _tool_result,
    "tool_decision": _tool_decision,
}
