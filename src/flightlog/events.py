"""The Event model of schema flightlog.event/v1: validation, defaults, canonical bytes.

The JSON Schema file `schema/event-v1.schema.json` is the source of truth; it is compiled once
with fastjsonschema (the fastest validator that runs the schema itself) so there is no second,
hand-written copy of the rules to drift.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Final

import fastjsonschema
import orjson
import rfc8785

from flightlog.errors import ValidationError
from flightlog.ids import new_event_id

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_ID",
    "canonical_bytes",
    "event_schema",
    "fill_defaults",
    "new_event_id",
    "validate_event",
]

SCHEMA_ID: Final = "flightlog.event/v1"
Event = dict[str, Any]


@cache
def event_schema() -> dict[str, Any]:
    """Return the parsed JSON Schema of flightlog.event/v1."""
    text = resources.files("flightlog.schema").joinpath("event-v1.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


EVENT_TYPES: Final[tuple[str, ...]] = tuple(event_schema()["properties"]["type"]["enum"])


def _compile_validators() -> tuple[Any, dict[str, Any]]:
    """Compile the envelope and each type's payload separately: one `if/then` per type in a
    single validator costs ~3x more per event than a dict lookup and one payload check."""
    schema = event_schema()
    envelope = {k: v for k, v in schema.items() if k != "allOf"}
    payloads = {}
    for t in EVENT_TYPES:
        sub = {"definitions": schema["definitions"], **schema["definitions"][f"{t}_payload"]}
        payloads[t] = fastjsonschema.compile(sub)
    return fastjsonschema.compile(envelope), payloads


_envelope_validator, _payload_validators = _compile_validators()

_REASONS: Final = {
    "trace_id": "must be 32 lowercase hex digits, not all zero (W3C trace id)",
    "span_id": "must be 16 lowercase hex digits, not all zero (W3C span id)",
    "parent_span_id": "must be 16 lowercase hex digits, not all zero, or null",
    "timestamp": "must be an RFC 3339 date-time such as 2026-01-02T03:04:05.678Z",
    "event_id": "must be a UUIDv7 string",
}


def _json_path(parts: list[str]) -> str:
    """Turn fastjsonschema's path (['data', 'payload', 'x']) into '$.payload.x'."""
    return "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts[1:])


def validate_event(event: object) -> Event:
    """Return `event` unchanged if it matches flightlog.event/v1; raise ValidationError naming
    the field and the reason otherwise. Values are never echoed (they may hold secrets)."""
    if not isinstance(event, dict):
        raise ValidationError("$", "an event must be a JSON object")
    prefix = ["data"]
    try:
        _envelope_validator(event)
        prefix = ["data", "payload"]
        _payload_validators[event["type"]](event["payload"])
    except fastjsonschema.JsonSchemaValueException as exc:
        path = prefix + [str(p) for p in (exc.path or ["data"])[1:]]
        field = path[-1] if len(path) > 1 else ""
        if exc.rule == "additionalProperties":
            reason = "unknown field(s): " + exc.message.split("contain", 1)[-1].split("prop")[0]
        elif exc.rule == "required":
            value = exc.value if isinstance(exc.value, dict) else {}
            missing = [k for k in exc.rule_definition or [] if k not in value]
            raise ValidationError(_json_path([*path, *missing[:1]]), "is required") from None
        elif exc.rule in ("pattern", "anyOf", "type") and field in _REASONS:
            reason = _REASONS[field]
        elif exc.rule == "anyOf":
            reason = "must be a string (or null where allowed) or a blob reference {blob, size}"
        elif exc.rule == "enum":
            reason = "must be one of " + ", ".join(map(str, exc.rule_definition or []))
        else:
            reason = exc.message.removeprefix(".".join(path)).strip() or f"fails rule {exc.rule}"
        raise ValidationError(_json_path(path), reason) from None
    return event


def normalize_timestamp(value: str) -> str:
    """Return an RFC 3339 timestamp (already schema-valid) converted to UTC with a Z suffix,
    keeping microsecond precision."""
    if len(value) == 27 and value[10] == "T" and value[19] == "." and value[-1] == "Z":
        try:  # already in the stored form: only check that the date exists
            datetime.fromisoformat(value)
            return value
        except ValueError:
            pass
    text = value.upper()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, _, frac_off = text.partition(".")
    if frac_off:  # fromisoformat on 3.11 needs exactly 3 or 6 fraction digits
        digits = frac_off[: len(frac_off) - 6]
        text = f"{head}.{(digits + '000000')[:6]}{frac_off[-6:]}"
    try:
        moment = datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as exc:
        raise ValidationError("$.timestamp", f"not a valid date-time ({exc})") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fill_defaults(event: Event, source_kind: str = "api") -> Event:
    """Return a copy of a producer's (validated) event with the pipeline's fields filled:
    event_id, status, source, redactions, signatures and a UTC timestamp."""
    out = dict(event)
    if "event_id" not in out:
        out["event_id"] = new_event_id()
    out.setdefault("status", "ok")
    out.setdefault("source", {"kind": source_kind})
    out.setdefault("redactions", [])
    out.setdefault("signatures", [])
    out["timestamp"] = normalize_timestamp(out["timestamp"])
    return out


def _json_fast_ok(value: object) -> bool:
    """True when json.dumps gives exactly the RFC 8785 form: only ASCII object keys (key order
    by UTF-16 code units equals code point order there) and only floats that Python's repr
    writes as ECMAScript does. Leaves are tested inline: this runs per event."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if not key.isascii():
                return False
            t = type(item)
            if t is not str and t is not int and item is not None and t is not bool and not _json_fast_ok(item):
                return False
        return True
    if kind is list:
        for item in value:  # type: ignore[attr-defined]
            t = type(item)
            if t is not str and t is not int and item is not None and t is not bool and not _json_fast_ok(item):
                return False
        return True
    if kind is float:
        # Both write the shortest round-trip digits; they differ only in exponent notation
        # (Python below 1e-4 and from 1e16, ECMAScript below 1e-6 and from 1e21) and in the
        # ".0" Python keeps on integral values (ECMA-262 Number::toString, RFC 8785 3.2.2.3).
        return 1e-4 <= abs(value) < 1e16 and not value.is_integer()  # type: ignore[arg-type,attr-defined]
    return kind is str or kind is int or kind is bool or value is None


def canonical_bytes(event: Event) -> bytes:
    """Return the RFC 8785 (JCS) canonical UTF-8 bytes of `event`: what is hashed, signed and
    exported. Raises ValidationError for values JCS cannot represent (NaN, lone surrogates)."""
    try:
        if _json_fast_ok(event):
            # On this subset orjson writes exactly the RFC 8785 bytes, 2x faster than the
            # stdlib encoder and 8x faster than rfc8785 (tests/test_events.py checks all three
            # agree, with Hypothesis). It refuses ints beyond 64 bits and lone surrogates: the
            # stdlib encoder writes the first and raises for the second, as before.
            try:
                return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
            except orjson.JSONEncodeError:
                return json.dumps(
                    event, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
                ).encode("utf-8")
        return rfc8785.dumps(event)
    except (ValueError, UnicodeEncodeError, rfc8785.CanonicalizationError) as exc:
        raise ValidationError("$", f"cannot be canonicalized: {exc}") from None
