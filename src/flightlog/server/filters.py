"""The trace filters of the query API and the UI's list page, checked before any query runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from flightlog.events import EVENT_TYPES, STATUSES, time_bound

__all__ = ["MAX_CURSOR", "TRACE_FILTERS", "trace_filters"]

TRACE_FILTERS: Final = ("agent", "session", "type", "status", "since", "until", "file_path")
MAX_CURSOR: Final = 2**63 - 1  # SQLite's largest integer; a larger cursor pages from the newest


def trace_filters(query: Mapping[str, str | None]) -> dict[str, str | None]:
    """Return the filters given in `query` (empty ones as None), the times in the stored form.
    Raise ValueError naming the first bad one: an unknown type or status would match nothing
    and a time that is not one would compare as text, both silently wrong."""
    out: dict[str, str | None] = {}
    for key in TRACE_FILTERS:
        value = (query.get(key) or "").strip() or None
        if value is not None and key == "type" and value not in EVENT_TYPES:
            raise ValueError(f"type must be one of {', '.join(EVENT_TYPES)}")
        if value is not None and key == "status" and value not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        if value is not None and key in ("since", "until"):
            try:
                value = time_bound(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        out[key] = value
    return out
