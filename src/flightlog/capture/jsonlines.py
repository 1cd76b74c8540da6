"""Helpers shared by the session-file importers (`claude_transcript_lines`, `codex_events`):
a lenient timestamp reader, JSON decoding that keeps values RFC 8785 cannot hold, and the
nesting limit with its check.

`load_json` keeps integers beyond ±(2**53 - 1) and non-finite numbers (NaN, Infinity) as
their source text; what an importer then does with lone surrogates or unusable lines is its
own rule, so that stays with it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from flightlog.errors import ValidationError
from flightlog.events import normalize_timestamp

__all__ = ["MAX_DEPTH", "SURROGATE_ESCAPE", "lenient_timestamp", "load_json", "too_deep"]

MAX_DEPTH: Final = 64
_MAX_SAFE: Final = 2**53 - 1  # beyond this RFC 8785 cannot hold an integer exactly
SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")  # only such an escape can make a lone surrogate
_TIMESTAMP: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def lenient_timestamp(value: object) -> str | None:
    """Return `value` as a stored (UTC, Z) timestamp when it is an RFC 3339 date-time, else None."""
    if not isinstance(value, str) or len(value) > 40 or not _TIMESTAMP.fullmatch(value):
        return None
    try:
        return normalize_timestamp(value)
    except (ValidationError, OverflowError, ValueError):
        return None


def _json_int(text: str) -> int | str:
    number = int(text) if len(text) <= 17 else None  # 18+ characters is always beyond _MAX_SAFE
    return number if number is not None and abs(number) <= _MAX_SAFE else text


def _json_float(text: str) -> float | str:
    number = float(text)
    return number if math.isfinite(number) else text


def load_json(text: str | bytes) -> Any:
    """Return the JSON value of `text`, with integers beyond ±(2**53 - 1) and NaN/Infinity kept as
    their source text; raise ValueError (or RecursionError) as `json.loads` does."""
    return json.loads(text, parse_int=_json_int, parse_float=_json_float, parse_constant=str)


def too_deep(value: Any) -> bool:
    """True when `value` nests arrays/objects deeper than MAX_DEPTH (the value itself is level 1);
    iterative, so it cannot overflow itself."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False
