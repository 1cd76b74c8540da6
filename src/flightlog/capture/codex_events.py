"""Codex rollout records → flightlog events: the records `codex` reads, the ids derived from
them and the events built from them.

Ids are derived from the session id, call ids and line numbers with seed prefixes
`flightlog-codex-…` (rollouts are append-only, so a line keeps its number), which makes a
re-import store nothing new. Trace shape (mirrors `claude_shape`):

- `prompt` is the root span of a turn: `{"text", "context": {"cwd", "approval_policy",
  "sandbox_policy", "git"}}`.
- `model_call` per assistant reply, child of the prompt; `response` holds the text and a short
  reasoning summary, `usage` the reply's `last_token_usage`.
- `tool_call` per call, with status "unset" when it has no output. Shell-like calls (`shell`,
  `container.exec`, `shell_command`, `exec_command`, `local_shell_call`) get a `shell` child;
  apply_patch (a custom tool call, or a shell command running it) gets one `file_op` child per
  file (see `codex_patch`).
- Exit codes come from the output text: `{"output", "metadata": {"exit_code"}}` JSON (older
  builds), `Exit code: N` headers (newer shell tools) or `Process exited with code N`
  (`exec_command`); Extended-mode `exec_command_end` / `patch_apply_end` events, when present,
  add exit code and separate stdout/stderr. Otherwise stdout is the output (Codex merges the two
  streams) and stderr is null.
- `error` per kept rollout item that is not one of the above: `{"message", "raw"}`.

JSON nested in rollout lines or strings is read by `loads`: integers beyond ±2^53 and
non-finite numbers are kept as their source text (RFC 8785 cannot hold them).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from flightlog.capture.codex_patch import Patch, find_patch, parse_patch
from flightlog.capture.jsonlines import MAX_DEPTH, SURROGATE_ESCAPE, load_json
from flightlog.ids import derive_id, stable_event_id

__all__ = [
    "AGENT_ID",
    "EPOCH",
    "SOURCE_KIND",
    "SUMMARY_CHARS",
    "Call",
    "Emitter",
    "Note",
    "Reply",
    "Turn",
    "as_dict",
    "as_str",
    "call_events",
    "content_text",
    "error_event",
    "loads",
    "model_call_event",
    "prompt_event",
    "prompt_span_id",
    "turn_trace_id",
]

AGENT_ID: Final = "codex"
SOURCE_KIND: Final = "codex-rollout"
EPOCH: Final = "1970-01-01T00:00:00.000000Z"
SUMMARY_CHARS: Final = 2000
_SHELL_TOOLS: Final = frozenset({"shell", "container.exec", "shell_command", "exec_command", "local_shell"})
# Codex answers some failures with plain text and no exit code; these openings mark them.
_FAILURE_PREFIXES: Final = (
    "apply_patch verification failed", "failed to parse function arguments", "execution error",
    "exec command rejected", "aborted",
)  # fmt: skip
_EXEC_HEADER: Final = re.compile(
    r"(?:Chunk ID: .*|Wall time: (?P<wall>[\d.]+) seconds|Exit code: (?P<exit>-?\d{1,9})"
    r"|Process exited with code (?P<exit2>-?\d{1,9})|Process running with session ID .*"
    r"|Total output lines: \d+|Original token count: \d+)"
)


# --- values --------------------------------------------------------------------------------


def _too_deep(value: Any) -> bool:
    # Not `jsonlines.too_deep`: this counts scalars as a level (root 0), so an empty innermost
    # array/object at level 65 passes here; kept so what Codex imports accept does not change.
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def loads(text: str) -> Any:
    """Return the JSON value of `text` in a form the ledger can store; raise ValueError naming
    why it cannot be used. Also used for JSON nested in strings (tool arguments, outputs)."""
    try:
        value = load_json(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"not JSON ({str(exc).split(':')[0]})") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(value):
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH}")
    if SURROGATE_ESCAPE.search(text):  # RFC 8785 (and UTF-8) cannot hold a lone surrogate
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("holds an unpaired UTF-16 surrogate") from None
    return value


def _unix_ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def content_text(content: object) -> str | None:
    """Return the text of message content or tool output: a string, or the `text` of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts) if parts else None
    if isinstance(content, dict):  # {content, success} in some builds
        return content_text(content.get("content"))
    return None


# --- records -------------------------------------------------------------------------------


@dataclass
class Turn:
    """One turn: its prompt and turn_context; `trace_id` and `prompt_span` are set when it is rendered."""

    prompt_line: int | None = None
    prompt_ts: str = EPOCH
    text: str = ""
    context: dict[str, Any] | None = None
    turn_id: str | None = None
    trace_id: str = ""
    prompt_span: str | None = None


@dataclass
class Reply:
    """An assistant message, with the reasoning summary before it and the usage billed after it."""

    turn: Turn
    line: int
    ts: str
    text: str
    reasoning: str | None
    model: str | None
    usage: dict[str, Any] | None = None


@dataclass
class Call:
    """A tool call, with its output once paired by `call_id`."""

    turn: Turn
    line: int
    ts: str
    key: str
    name: str
    call_id: str | None
    input: Any
    cwd: str | None
    done: bool = False
    output: Any = None
    output_ts: str | None = None
    exit_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    success: bool | None = None


@dataclass
class Note:
    """A kept rollout item that becomes an `error` event."""

    turn: Turn
    line: int
    ts: str
    message: str
    raw: Any
    status: str


# --- events --------------------------------------------------------------------------------


@dataclass
class Emitter:
    """Builds producer events for one session; ids are derived so a re-import repeats them."""

    session_id: str
    version: str | None
    source: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.source = {"kind": SOURCE_KIND, "version": self.version}

    def event(
        self,
        turn: Turn,
        span: str,
        parent: str | None,
        kind: str,
        ts: str,
        payload: dict[str, Any],
        status: str = "ok",
        duration_ms: int | None = None,
        model: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "event_id": stable_event_id(f"flightlog-codex-event:{span}:{kind}", _unix_ms(ts)),
            "trace_id": turn.trace_id,
            "span_id": span,
            "parent_span_id": parent,
            "type": kind,
            "timestamp": ts,
            "agent_id": AGENT_ID,
            "session_id": self.session_id,
            "status": status,
            "payload": payload,
            "source": self.source,
        }
        if duration_ms is not None:
            ev["duration_ms"] = duration_ms
        if model is not None:
            ev["model"] = model
        return ev

    def span(self, kind: str, key: str) -> str:
        return derive_id(f"flightlog-codex-{kind}:{self.session_id}:{key}", 8)


def turn_trace_id(session_id: str, turn_key: str) -> str:
    """The trace of one turn; `turn_key` is the turn id, else the prompt's line number, else
    `session` for the items before the first prompt."""
    return derive_id(f"flightlog-codex-trace:{session_id}:{turn_key}", 16)


def prompt_span_id(trace_id: str) -> str:
    """The root span of a turn's trace."""
    return derive_id(f"flightlog-codex-prompt:{trace_id}", 8)


def prompt_event(out: Emitter, turn: Turn, cwd: str | None, git: Any) -> dict[str, Any]:
    """Return the prompt event of `turn`; `cwd` and `git` are the session's, used when the
    turn's context has no cwd."""
    ctx = turn.context or {}
    context = {
        "cwd": as_str(ctx.get("cwd")) or cwd,
        "approval_policy": ctx.get("approval_policy"),
        "sandbox_policy": ctx.get("sandbox_policy"),
        "git": git,
    }
    span = turn.prompt_span or out.span("prompt", str(turn.prompt_line))
    return out.event(turn, span, None, "prompt", turn.prompt_ts, {"text": turn.text, "context": context})


def model_call_event(out: Emitter, reply: Reply, provider: str | None) -> dict[str, Any]:
    """Return the model_call event of an assistant reply, child of its turn's prompt."""
    turn = reply.turn
    response = {"text": reply.text, "reasoning_summary": reply.reasoning}
    payload: dict[str, Any] = {"response": response, "usage": reply.usage}
    model = {"provider": provider, "name": reply.model}
    span = out.span("model", str(reply.line))
    return out.event(turn, span, turn.prompt_span, "model_call", reply.ts, payload, model=model)


def error_event(out: Emitter, note: Note) -> dict[str, Any]:
    """Return the error event of a kept item that maps to nothing else, child of its turn's prompt."""
    turn = note.turn
    payload = {"message": note.message, "raw": note.raw}
    span = out.span("item", str(note.line))
    return out.event(turn, span, turn.prompt_span, "error", note.ts, payload, note.status)


def _exec_result(text: str | None) -> tuple[int | None, str | None, float | None]:
    """Return (exit code, output, wall seconds) read from a shell tool's output text; the whole
    text is the output when it has none of the known shapes."""
    if text is None:
        return None, None, None
    if text.startswith("{"):
        try:
            value = loads(text)
        except ValueError:
            value = None
        meta = as_dict(value).get("metadata")
        if isinstance(value, dict) and isinstance(value.get("output"), str) and isinstance(meta, dict):
            code, wall = meta.get("exit_code"), meta.get("duration_seconds")
            seconds = float(wall) if isinstance(wall, int | float) and not isinstance(wall, bool) else None
            return (code if type(code) is int else None), value["output"], seconds
    head, sep, rest = text.partition("\nOutput:\n")
    if not sep and text.endswith("\nOutput:"):
        head, sep = text[: -len("\nOutput:")], "\n"
    headers = head.split("\n") if sep else []
    matches = [_EXEC_HEADER.fullmatch(h) for h in headers[:8]]
    if not matches or len(headers) > 8 or not all(matches):
        return None, text, None
    code, seconds = None, None
    for m in matches:
        assert m is not None  # all() above
        found = m["exit"] or m["exit2"]
        code = int(found) if found else code
        seconds = float(m["wall"]) if m["wall"] else seconds
    return code, rest, seconds


def _shell_command(name: str, given: Any) -> tuple[str | list[str], str | None] | None:
    """Return (argv or script, workdir) of a shell-like call, or None when it has no command."""
    args = as_dict(given)
    command = args.get("cmd") if name == "exec_command" else args.get("command")
    workdir = as_str(args.get("working_directory") if name == "local_shell" else args.get("workdir"))
    if isinstance(command, list) and all(isinstance(a, str) for a in command):
        return list(command), workdir
    return (command, workdir) if isinstance(command, str) else None


def _status(call: Call, code: int | None, text: str | None) -> str:
    if not call.done:
        return "unset"
    failed = (
        (code is not None and code != 0)
        or call.success is False
        or (isinstance(call.output, dict) and call.output.get("success") is False)
        or (code is None and text is not None and text.lstrip().lower().startswith(_FAILURE_PREFIXES))
    )
    return "error" if failed else "ok"


def call_events(out: Emitter, call: Call) -> list[dict[str, Any]]:
    """Return the tool_call event of `call`, then its shell and file_op children."""
    turn = call.turn
    span = out.span("tool", call.key)
    shell = _shell_command(call.name, call.input) if call.name in _SHELL_TOOLS else None
    envelope: str | None = None
    if call.name == "apply_patch":
        envelope = call.input if isinstance(call.input, str) else as_str(as_dict(call.input).get("input"))
    elif shell is not None:
        envelope = find_patch(shell[0])
    patch = parse_patch(envelope) if envelope is not None else Patch()

    text = content_text(call.output)
    code, stdout, seconds = _exec_result(text)
    code = call.exit_code if call.exit_code is not None else code
    status = _status(call, code, text)
    error = None
    if status == "error":
        error = f"exit code {code}" if code else (text or "failed")[:SUMMARY_CHARS]
    duration = max(0, _unix_ms(call.output_ts) - _unix_ms(call.ts)) if call.output_ts is not None else None
    payload: dict[str, Any] = {
        "tool_name": call.name,
        "tool_call_id": call.call_id,
        "input": call.input,
        "output": call.output,
        "error": error,
    }
    if patch.error is not None:
        payload["patch_error"] = patch.error
    events = [out.event(turn, span, turn.prompt_span, "tool_call", call.ts, payload, status, duration)]
    if shell is not None:
        argv, workdir = shell
        shell_payload = {
            "command": argv if isinstance(argv, str) else shlex.join(argv),
            "cwd": workdir or call.cwd,
            "exit_code": code,
            "stdout": call.stdout if call.stdout is not None else stdout,
            "stderr": call.stderr,
        }
        shell_ms = round(seconds * 1000) if seconds is not None else duration
        shell_span = derive_id(f"flightlog-codex-shell:{span}", 8)
        events.append(out.event(turn, shell_span, span, "shell", call.ts, shell_payload, status, shell_ms))
    for index, change in enumerate(patch.changes):
        file_payload = {
            "op": change.op,
            "file_path": change.path,
            "old_path": change.old_path,
            "checksum_before": None,
            "checksum_after": change.checksum_after,
            "diff": change.diff,
            "workspace_snapshot": None,
        }
        file_span = derive_id(f"flightlog-codex-file:{span}:{index}:{change.path}", 8)
        events.append(out.event(turn, file_span, span, "file_op", call.ts, file_payload, status))
    return events
