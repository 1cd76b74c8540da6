"""The one trace shape of a Claude Code session, shared by the live hook and the transcript
importer so that both (and Claude Code's own OTLP telemetry) land on the same ids.

- One trace per turn (user prompt). With a prompt id (hooks v2.1.196+, transcript `promptId`)
  the trace id is the one the OTLP log mapping derives, so telemetry joins the same trace;
  without one, the turn's key is whatever the producer has (the transcript's prompt line uuid,
  or the hook's own turn counter).
- The prompt event is the root span. Each tool call is a child of it (or, inside a subagent,
  of the Task/Agent tool call that started the subagent), keyed by `tool_use_id`.
- `file_op` and `shell` events are children of their tool call; model calls are children of
  the prompt.
- Event ids are derived from the span and the event kind, so a retried send or a re-import
  stores nothing twice.

Light imports only: the hook loads this on every tool call.
"""

from __future__ import annotations

import time

from flightlog.ids import derive_id, stable_event_id, unix_ms

__all__ = [
    "AGENT_ID",
    "EDIT_TOOLS",
    "SHELL_TOOLS",
    "SUBAGENT_TOOLS",
    "event_id",
    "file_span_id",
    "iso_ms",
    "model_span_id",
    "prompt_span_id",
    "shell_span_id",
    "tool_span_id",
    "turn_trace_id",
]

AGENT_ID = "claude-code"
EDIT_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})
SHELL_TOOLS = frozenset({"Bash", "PowerShell"})
SUBAGENT_TOOLS = frozenset({"Task", "Agent"})


def turn_trace_id(session_id: str, turn_key: str) -> str:
    """The trace of one turn; `turn_key` is the prompt id when there is one.

    Must stay equal to the derivation in capture/otlp_map.py (`log_to_event`)."""
    return derive_id(f"flightlog-trace:{session_id}:{turn_key}", 16)


def prompt_span_id(trace_id: str) -> str:
    return derive_id(f"flightlog-claude-prompt:{trace_id}", 8)


def tool_span_id(session_id: str, tool_use_id: str) -> str:
    return derive_id(f"flightlog-claude-tool:{session_id}:{tool_use_id}", 8)


def model_span_id(session_id: str, message_id: str) -> str:
    return derive_id(f"flightlog-claude-model:{session_id}:{message_id}", 8)


def shell_span_id(tool_span: str) -> str:
    return derive_id(f"flightlog-claude-shell:{tool_span}", 8)


def file_span_id(tool_span: str, path: str) -> str:
    return derive_id(f"flightlog-claude-file:{tool_span}:{path}", 8)


def event_id(span_id: str, kind: str, timestamp: str) -> str:
    """The event id of the `kind` event (its type, or e.g. "policy") of a span; `timestamp` is
    RFC 3339 and only sets the id's time bits."""
    return stable_event_id(f"flightlog-claude-event:{span_id}:{kind}", unix_ms(timestamp))


def iso_ms(unix_ns: int) -> str:
    """RFC 3339 UTC with microseconds, the form the ledger stores (time.strftime: datetime costs
    a millisecond to import on the hook's path)."""
    seconds, rest = divmod(unix_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"
