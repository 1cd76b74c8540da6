"""Reading a Claude Code transcript file: JSON lines made safe for the ledger, and small
accessors for fields that may hold anything (the format is internal to Claude Code and
changes between versions).

A line that is not UTF-8, not JSON, not an object or nested over 64 levels is a `Problem` and
skipped; blank lines are ignored. A line without a valid timestamp takes the previous line's
(or the file's first). JSON that RFC 8785 cannot canonicalize is made safe on read, so one odd
value cannot sink a whole import unit: NaN/Infinity and integers beyond ±(2**53 - 1) become
strings, lone surrogates U+FFFD.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from flightlog.capture.claude_transcript_build import text_of
from flightlog.capture.jsonlines import MAX_DEPTH, SURROGATE_ESCAPE, lenient_timestamp, load_json, too_deep
from flightlog.capture.mapped import Problem

__all__ = ["MAX_DEPTH", "Line", "as_dict", "as_str", "blocks", "is_prompt", "ms_between", "read_lines"]

_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")  # json.loads has already joined the valid pairs
_INTERRUPTED: Final = "[Request interrupted by user"


@dataclass
class Line:
    """One parsed line: where it is, the object, and the fields every mapper needs."""

    path: str
    no: int
    obj: dict[str, Any]
    key: str  # the line's uuid, else a digest of its bytes: stable across re-imports
    size: int
    ts: str | None


def _clean(value: Any) -> Any:
    """Return `value` with lone surrogates in strings (and keys) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def read_lines(path: Path, problems: list[Problem]) -> list[Line]:
    """Return the usable lines of one JSONL file; each unusable one becomes a Problem."""
    lines: list[Line] = []
    with path.open("rb") as handle:
        for no, raw in enumerate(handle, 1):
            data = raw.strip()
            if not data:
                continue
            reason, obj = _parse(data)
            if obj is None:
                problems.append(Problem(str(path), no, reason))
                continue
            uuid = obj.get("uuid")
            key = uuid if isinstance(uuid, str) and 0 < len(uuid) <= 200 else hashlib.sha256(data).hexdigest()[:32]
            lines.append(Line(str(path), no, obj, key, len(data), lenient_timestamp(obj.get("timestamp"))))
    first = next((line.ts for line in lines if line.ts), None)
    last = first
    for line in lines:  # Claude Code writes lines in time order, so a neighbour's time is close
        last = line.ts = line.ts or last
    return lines


def _parse(data: bytes) -> tuple[str, dict[str, Any] | None]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8", None
    try:
        obj = load_json(text)
    except (ValueError, RecursionError):
        return "not valid JSON", None
    if not isinstance(obj, dict):
        return "not a JSON object", None
    if (text.count("{") + text.count("[") > MAX_DEPTH) and too_deep(obj):
        return f"nested deeper than {MAX_DEPTH} levels", None
    if SURROGATE_ESCAPE.search(text):
        obj = _clean(obj)
    return "", obj


# --- small accessors: transcript fields may hold anything -------------------------------------


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def blocks(message: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    content = message.get("content")
    if isinstance(content, str):
        yield 0, {"type": "text", "text": content}
    elif isinstance(content, list):
        yield from ((i, b) for i, b in enumerate(content) if isinstance(b, dict))


def is_prompt(obj: dict[str, Any]) -> bool:
    """True for a user line that a person typed (the rules are in `claude_transcript`'s docstring)."""
    if obj.get("type") != "user" or "toolUseResult" in obj:
        return False
    if any(obj.get(k) is True for k in ("isMeta", "isCompactSummary", "isVisibleInTranscriptOnly", "isSidechain")):
        return False
    content = as_dict(obj.get("message")).get("content")
    if isinstance(content, list):
        kinds = [b.get("type") if isinstance(b, dict) else None for b in content]
        if not kinds or any(k not in ("text", "image", "document") for k in kinds):
            return False
    elif not isinstance(content, str):
        return False
    return not (text_of(content) or "").startswith(_INTERRUPTED)


def ms_between(start: str, end: str) -> int | None:
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    ms = round(delta.total_seconds() * 1000)
    return ms if ms >= 0 else None
