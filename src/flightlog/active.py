"""Which trace is active in a workspace right now, so tools that run inside an agent's action
(git hooks, `flightlog exec`, the watcher) can join its trace.

Two sources, in order:
1. `TRACEPARENT` in the environment (W3C trace context: `00-<trace id>-<span id>-<flags>`),
   set by `flightlog exec` and the SDK for their subprocesses;
2. the marker a live agent session keeps for its workspace under
   `$FLIGHTLOG_HOME/active/<sha256(workspace root)[:16]>.json` (the Claude Code hook writes it
   at each prompt and tool call and removes it at Stop): `{"trace_id", "span_id", "agent_id",
   "model", "session_id", "root", "updated_ns"}`. A path inside the root (or the root itself)
   finds it.

Light imports only: the Claude Code hook writes the marker on every tool call.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Final

from flightlog.home import private_dir, write_private_file

__all__ = ["clear_active", "current_trace", "format_traceparent", "parse_traceparent", "write_active"]

_TRACEPARENT: Final = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """Return (trace_id, span_id) of a version-00 W3C traceparent, or None if it is not one
    (all-zero ids are invalid too)."""
    match = _TRACEPARENT.match((value or "").strip().lower())
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return match.group(1), match.group(2)


def format_traceparent(trace_id: str, span_id: str, sampled: bool = True) -> str:
    """Return the W3C traceparent header value for a span."""
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def _marker(home: Path, root: Path) -> Path:
    key = hashlib.sha256(os.path.realpath(root).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return home / "active" / f"{key}.json"


def write_active(home: Path, root: Path, info: dict[str, Any]) -> None:
    """Mark `info` (trace_id, span_id, agent_id, model, session_id) as the active trace of the
    workspace at `root` (atomic replace, 0600)."""
    path = _marker(home, root)
    private_dir(path.parent)
    # rewritten on every tool call and meaningless after a crash: atomic, not fsynced
    write_private_file(path, json.dumps({**info, "root": os.path.realpath(root)}).encode(), durable=False)


def clear_active(home: Path, root: Path) -> None:
    _marker(home, root).unlink(missing_ok=True)


def current_trace(home: Path, path: Path, environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Return the active trace for work at `path`: from TRACEPARENT (`{"trace_id", "span_id",
    "source": "traceparent"}`) or from the marker of `path` or its nearest marked parent (the
    marker's fields plus `"source": "marker"`); None when no trace is active."""
    env = os.environ if environ is None else environ
    ids = parse_traceparent(env.get("TRACEPARENT"))
    if ids is not None:
        return {"trace_id": ids[0], "span_id": ids[1], "source": "traceparent"}
    real = Path(os.path.realpath(path))
    for folder in (real, *real.parents):
        try:
            info = json.loads(_marker(home, folder).read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and parse_traceparent(
            format_traceparent(str(info.get("trace_id")), str(info.get("span_id")))
        ):
            return {**info, "source": "marker"}
    return None
