"""The Event model of schema flightlog.event/v1: validation, defaults, canonical bytes.

The JSON Schema file `schema/event-v1.schema.json` is the source of truth; it is compiled once
with jsonschema-rs (a compiled validator that runs the schema itself: 3x faster per event than
fastjsonschema's generated Python, and 1 ms to compile instead of 35, which every hook process
pays) so there is no second, hand-written copy of the rules to drift.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Final

import jsonschema_rs
import orjson
import rfc8785

from flightlog.errors import ValidationError
from flightlog.ids import new_event_id

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_ID",
    "STATUSES",
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
STATUSES: Final[tuple[str, ...]] = tuple(event_schema()["properties"]["status"]["enum"])


_validator = jsonschema_rs.validator_for(event_schema())

_REASONS: Final = {
    "trace_id": "must be 32 lowercase hex digits, not all zero (W3C trace id)",
    "span_id": "must be 16 lowercase hex digits, not all zero (W3C span id)",
    "parent_span_id": "must be 16 lowercase hex digits, not all zero, or null",
    "timestamp": "must be an RFC 3339 date-time such as 2026-01-02T03:04:05.678Z",
    "event_id": "must be a UUIDv7 string",
}


def _json_path(parts: list[str | int]) -> str:
    """Turn an instance path (['payload', 'x', 0]) into '$.payload.x[0]'."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _reason(kind: Any, field: str | int | None) -> str:
    # Built from the failed keyword and its limits only: the validator's own message quotes
    # the value, which may hold a secret.
    name, details = kind.name, kind.as_dict()
    if name == "additionalProperties":
        return "unknown field(s): " + ", ".join(sorted(details.get("unexpected", [])))
    if name in ("pattern", "anyOf", "type") and field in _REASONS:
        return _REASONS[str(field)]
    if name == "anyOf":
        return "must be a string (or null where allowed) or a blob reference {blob, size}"
    if name == "enum":
        return "must be one of " + ", ".join(map(str, details.get("options", [])))
    if name == "type":
        types = sorted(details.get("types", []), key=lambda t: t == "null")  # "or null" last
        return "must be " + " or ".join(types)
    if name in _LIMITS:
        return _LIMITS[name].format(details.get("limit"))
    return f"fails rule {name}"


_LIMITS: Final = {
    "minLength": "must be at least {} character(s) long",
    "maxLength": "must be at most {} character(s) long",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
}


def validate_event(event: object) -> Event:
    """Return `event` unchanged if it matches flightlog.event/v1; raise ValidationError naming
    the field and the reason otherwise. Values are never echoed (they may hold secrets)."""
    if not isinstance(event, dict):
        raise ValidationError("$", "an event must be a JSON object")
    try:
        _validator.validate(event)
    except jsonschema_rs.ValidationError as exc:
        path: list[str | int] = list(exc.instance_path)
        if exc.kind.name == "required":
            raise ValidationError(_json_path([*path, exc.kind.as_dict()["property"]]), "is required") from None
        raise ValidationError(_json_path(path), _reason(exc.kind, path[-1] if path else None)) from None
    except (ValueError, TypeError, OverflowError) as exc:  # not JSON data: a non-string key, …
        if "Recursion limit" in str(exc):  # jsonschema-rs's own bound on nesting (~255 levels)
            raise ValidationError("$", "nested too deeply") from None
        raise ValidationError("$", f"is not JSON data ({type(exc).__name__})") from None
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
    except OverflowError:  # year 1 or 9999 moved past the calendar's end by its offset
        raise ValidationError("$.timestamp", "not a valid date-time (out of range in UTC)") from None
    # The year padded by hand: strftime's %Y writes year 999 as "999" on glibc, which would sort
    # after "2026" as text.
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S.%f}Z"


_OFFSET: Final = re.compile(r"(?:[zZ]|[+-]\d{2}:\d{2})$")


def time_bound(text: str) -> str:
    """Return a query's time bound in the stored form (UTC, microseconds, Z), so that it
    compares with stored timestamps as text. An offset is converted; a date-time without one
    (a space may stand for the T) is taken as UTC, and a bare date as its midnight UTC. Raise
    ValueError saying what is accepted."""
    value = text.strip().replace(" ", "T", 1)
    if len(value) == 10:
        value += "T00:00:00"
    if len(value) >= 16 and not _OFFSET.search(value[16:]):
        value += "Z"
    try:
        if len(value) < 17 or value[10] not in "Tt":
            raise ValidationError("$", "no date-time")
        return normalize_timestamp(value)
    except ValidationError:
        raise ValueError(
            f"{text.strip()[:60]!r} is not a time; use RFC 3339 such as 2026-11-24T17:00:00Z or "
            "2026-11-24T18:00:00+01:00 (a date, or a time without an offset, is taken as UTC)"
        ) from None


def fill_defaults(event: Event, source_kind: str = "api") -> Event:
    """Return a copy of a producer's (validated) event with the pipeline's fields filled:
    event_id, status, source, redactions, signatures and a UTC timestamp."""
    out = dict(event)
    if "event_id" not in out:
        out["event_id"] = new_event_id()
    if "status" not in out:  # a payload that reports an error is a failure, unless told otherwise
        payload = out.get("payload")
        out["status"] = "error" if isinstance(payload, dict) and payload.get("error") else "ok"
    out.setdefault("source", {"kind": source_kind})
    out.setdefault("redactions", [])
    out.setdefault("signatures", [])
    out["timestamp"] = normalize_timestamp(out["timestamp"])
    return out


def _json_fast_ok(value: object) -> bool:
    """True when orjson writes exactly the RFC 8785 form: only ASCII object keys (key order by
    UTF-16 code units equals code point order there) and only floats written in plain decimal
    notation by both. Integers are not looked at here: orjson's OPT_STRICT_INTEGER refuses the
    ones beyond RFC 8785's domain. Leaves are tested inline: this runs per event."""
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


MAX_SAFE_INTEGER: Final = 2**53 - 1  # beyond ±this an IEEE double, and so RFC 8785, is inexact
BIG_INTEGER_REASON: Final = (
    f"integer beyond ±{MAX_SAFE_INTEGER} (2**53 - 1), which RFC 8785 canonical JSON cannot hold exactly; "
    "send it as a string"
)


def canonical_bytes(event: Event) -> bytes:
    """Return the RFC 8785 (JCS) canonical UTF-8 bytes of `event`: what is hashed, signed and
    exported. Raises ValidationError naming the first value JCS cannot represent: an integer
    beyond ±(2**53 - 1), NaN or Infinity, a lone surrogate. The same rule on every path: a value
    is refused, never written in some other form, so `rfc8785.dumps` of the stored event always
    gives back the leaf."""
    if _json_fast_ok(event):
        # On this subset orjson writes exactly the RFC 8785 bytes, 8x faster than rfc8785
        # (tests/test_events.py checks that they agree, with Hypothesis). OPT_STRICT_INTEGER
        # makes it refuse integers beyond ±(2**53 - 1), as rfc8785 does; it refuses lone
        # surrogates as well.
        try:
            return orjson.dumps(event, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
        except orjson.JSONEncodeError:
            pass
    try:
        return rfc8785.dumps(event)
    except (ValueError, UnicodeEncodeError, RecursionError) as exc:  # CanonicalizationError is a ValueError
        field, reason = _unrepresentable(event, []) or ("$", f"cannot be canonicalized ({type(exc).__name__})")
        raise ValidationError(field, reason) from None


def _unrepresentable(value: object, parts: list[str | int]) -> tuple[str, str] | None:
    """The path and reason of the first value in `value` that RFC 8785 cannot represent, or None.
    Only run once canonicalization has failed. Values are never echoed (they may hold secrets)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else (_json_path(parts), BIG_INTEGER_REASON)
    if isinstance(value, float):
        return None if math.isfinite(value) else (_json_path(parts), "must be a finite number (not NaN or Infinity)")
    if isinstance(value, str):
        return None if _is_unicode(value) else (_json_path(parts), "holds a lone surrogate (not Unicode text)")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not _is_unicode(key):
                return _json_path(parts), "has a member name that is not Unicode text"
            if found := _unrepresentable(item, [*parts, key]):
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            if found := _unrepresentable(item, [*parts, n]):
                return found
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
