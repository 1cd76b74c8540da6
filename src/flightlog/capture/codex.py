"""Codex CLI rollout files (`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`) → flightlog events.

Each line is `{"timestamp", "type", "payload"}`; the format is internal to Codex and drifts, so
every field is optional here and nothing unexpected raises. Trace shape (mirrors
`claude_shape`, with its own seed prefixes `flightlog-codex-…`):

- One trace per turn. A turn opens at an `event_msg` `user_message` (the clean prompt; the
  harness-injected user `message` items — AGENTS.md, `<environment_context>` — are not
  prompts). Rollouts without any `user_message` (old builds) fall back to user messages that do
  not start with a tag. The turn's `turn_context` may come just before or just after its
  prompt: a turn takes the context that was waiting for it, else the next one that arrives.
  Trace key: the context's `turn_id` when present, else the prompt's line number.
- `prompt` is the root span: `{"text", "context": {"cwd", "approval_policy",
  "sandbox_policy", "git"}}`. Items before the first prompt go to a per-session trace with
  no root.
- `model_call` per assistant `message`, child of the prompt; `response` holds the text and a
  short reasoning summary (the `reasoning` items since the previous reply). `usage` is the
  `last_token_usage` of the first `token_count` after the reply; a token_count with no reply
  since the previous one (a request that only called tools) is not attributed.
- `tool_call` per `function_call` / `custom_tool_call` / `local_shell_call` / `web_search_call`,
  paired with its `*_output` by `call_id`; unpaired → status "unset". Shell-like calls
  (`shell`, `container.exec`, `shell_command`, `exec_command`, `local_shell_call`) get a `shell`
  child; apply_patch (a custom tool call, or a shell command running it) gets one `file_op`
  child per file (see `codex_patch`).
- Exit codes come from the output text: `{"output", "metadata": {"exit_code"}}` JSON (older
  builds), `Exit code: N` headers (newer shell tools) or `Process exited with code N`
  (`exec_command`); Extended-mode `exec_command_end` / `patch_apply_end` events, when present,
  add exit code and separate stdout/stderr. Otherwise stdout is the output (Codex merges the two
  streams) and stderr is null.
- Kept as `error` events: `event_msg` `error`/`stream_error`/`turn_aborted` (status "error")
  and every unknown item type (status "unset", `{"message": "unrecognised rollout item type
  '<t>'", "raw": <payload>}`, with `<t>` like `event_msg/undo_completed`).
- Skipped as bookkeeping: `session_meta` and `turn_context` (folded into the events above),
  `compacted`, user/developer/system `message` items, `ghost_snapshot`, `compaction`,
  `compaction_summary`, and the `event_msg`s that repeat response items or only mark time:
  agent_message, agent_reasoning*, task/turn started/complete, token_count (folded into usage),
  item_completed, context_compacted, entered/exited_review_mode, *_begin, mcp_tool_call_end.

A line that is not UTF-8 JSON (or nests deeper than 64) is a Problem and skipped. Integers
beyond ±2^53 and non-finite numbers are kept as their source text (RFC 8785 cannot hold them).
Ids are derived from the session id, call ids and line numbers (rollouts are append-only, so a
line keeps its number), which makes a re-import store nothing new.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from flightlog.capture.codex_patch import Patch, find_patch, parse_patch
from flightlog.capture.mapped import Mapped, Problem
from flightlog.errors import ValidationError
from flightlog.events import normalize_timestamp
from flightlog.ids import derive_id, stable_event_id

__all__ = ["AGENT_ID", "SOURCE_KIND", "find_files", "map_rollout", "read_unit"]

AGENT_ID: Final = "codex"
SOURCE_KIND: Final = "codex-rollout"
MAX_LINE_BYTES: Final = 64 * 1024 * 1024
_MAX_DEPTH: Final = 64
_MAX_SAFE: Final = 2**53 - 1
_SUMMARY_CHARS: Final = 2000
_EPOCH: Final = "1970-01-01T00:00:00.000000Z"
_TIMESTAMP: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_TAGGED: Final = re.compile(r"\s*(<[A-Za-z_][\w-]*[\s>]|# AGENTS\.md)")  # harness-injected context
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
_SKIP_ITEMS: Final = frozenset({"session_meta", "turn_context", "compacted"})
_SKIP_RESPONSES: Final = frozenset({"ghost_snapshot", "compaction", "compaction_summary"})
_SKIP_EVENTS: Final = frozenset({
    "agent_message", "agent_reasoning", "agent_reasoning_raw_content", "agent_reasoning_section_break",
    "task_complete", "turn_complete", "item_completed", "context_compacted", "entered_review_mode",
    "exited_review_mode", "exec_command_begin", "patch_apply_begin", "mcp_tool_call_begin", "mcp_tool_call_end",
})  # fmt: skip
_CALLS: Final = frozenset({"function_call", "custom_tool_call", "local_shell_call"})
_OUTPUTS: Final = frozenset({"function_call_output", "custom_tool_call_output", "local_shell_call_output"})
_INJECTED_KINDS: Final = frozenset({"user_instructions", "environment_context"})


# --- files ---------------------------------------------------------------------------------


def find_files(paths: tuple[Path, ...]) -> list[Path]:
    """Return the rollout files to import, sorted: each file given, and every `rollout-*.jsonl`
    under each folder given. With no paths: `$CODEX_HOME` (default `~/.codex`) `sessions` and
    `archived_sessions`."""
    if not paths:
        home = Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")
        paths = tuple(p for p in (home / "sessions", home / "archived_sessions") if p.is_dir())
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("rollout-*.jsonl") if p.is_file())
        elif path.is_file():
            found.add(path)
    return sorted(found)


def read_unit(path: Path) -> Mapped:
    """Return the events of one rollout file and the lines that had to be skipped."""
    with path.open("rb") as f:
        lines = f.read().split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    fallback = path.stem.removeprefix("rollout-")
    return map_rollout(lines, str(path), fallback)


# --- lines ---------------------------------------------------------------------------------


def _parse_int(text: str) -> int | str:
    if len(text) > 20:
        return text
    n = int(text)
    return n if -_MAX_SAFE <= n <= _MAX_SAFE else text


def _parse_float(text: str) -> float | str:
    x = float(text)
    return x if math.isfinite(x) else text


def _too_deep(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def _load(raw: bytes) -> Any:
    """Return the JSON value of one line; raise ValueError naming why it cannot be used."""
    if len(raw) > MAX_LINE_BYTES:
        raise ValueError(f"line is {len(raw)} bytes, over {MAX_LINE_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    return _loads(text)


def _loads(text: str) -> Any:
    """Return the JSON value of `text` in a form the ledger can store; raise ValueError naming
    why it cannot be used. Also used for JSON nested in strings (tool arguments, outputs)."""
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=str)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"not JSON ({str(exc).split(':')[0]})") from None
    if text.count("[") + text.count("{") > _MAX_DEPTH and _too_deep(value):
        raise ValueError(f"JSON nested deeper than {_MAX_DEPTH}")
    if _SURROGATE_ESCAPE.search(text):  # RFC 8785 (and UTF-8) cannot hold a lone surrogate
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("holds an unpaired UTF-16 surrogate") from None
    return value


def _timestamp(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > 40 or not _TIMESTAMP.fullmatch(value):
        return None
    try:
        return normalize_timestamp(value)
    except (ValidationError, ValueError, OverflowError):
        return None


def _unix_ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(content: object) -> str | None:
    """Return the text of message content or tool output: a string, or the `text` of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts) if parts else None
    if isinstance(content, dict):  # {content, success} in some builds
        return _text(content.get("content"))
    return None


# --- records -------------------------------------------------------------------------------


@dataclass
class _Turn:
    prompt_line: int | None = None
    prompt_ts: str = _EPOCH
    text: str = ""
    context: dict[str, Any] | None = None
    turn_id: str | None = None
    trace_id: str = ""
    prompt_span: str | None = None


@dataclass
class _Reply:
    turn: _Turn
    line: int
    ts: str
    text: str
    reasoning: str | None
    model: str | None
    usage: dict[str, Any] | None = None


@dataclass
class _Call:
    turn: _Turn
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
class _Note:
    turn: _Turn
    line: int
    ts: str
    message: str
    raw: Any
    status: str


@dataclass
class _State:
    session_id: str
    version: str | None = None
    provider: str | None = None
    git: Any = None
    model: str | None = None
    cwd: str | None = None
    turns: list[_Turn] = field(default_factory=list)
    current: _Turn | None = None
    session_turn: _Turn | None = None
    waiting: dict[str, Any] | None = None  # a turn_context whose prompt has not come yet
    announced: str | None = None  # turn id of a turn_started seen since the last prompt
    reasoning: list[str] = field(default_factory=list)
    unbilled: _Reply | None = None
    records: list[_Reply | _Call | _Note] = field(default_factory=list)
    calls: dict[str, list[_Call]] = field(default_factory=dict)  # by call_id, in order

    def open_call(self, call_id: object) -> _Call | None:
        """Return the first call with this id that has no output yet."""
        return next((c for c in self.calls.get(_str(call_id) or "", ()) if not c.done), None)

    def turn(self) -> _Turn:
        if self.current is not None:
            return self.current
        if self.session_turn is None:
            self.session_turn = _Turn()
        return self.session_turn


def map_rollout(lines: Sequence[bytes], path: str, fallback_session: str) -> Mapped:
    """Return the events of a rollout given as its raw lines (without newlines); `path` names
    the file in problems and `fallback_session` is the session id when no session_meta has one."""
    mapped = Mapped(lines=len(lines))
    items: list[tuple[int, str, dict[str, Any]]] = []
    last_ts = _EPOCH
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            value = _load(raw)
        except ValueError as exc:
            mapped.problems.append(Problem(path, number, str(exc)))
            continue
        if not isinstance(value, dict):
            mapped.problems.append(Problem(path, number, "not a JSON object"))
            continue
        last_ts = _timestamp(value.get("timestamp")) or last_ts
        items.append((number, last_ts, value))
    meta = next((_dict(v.get("payload")) for _, _, v in items if v.get("type") == "session_meta"), {})
    session = _str(meta.get("id"))
    state = _State(session if session and len(session) <= 256 else fallback_session[:256] or "unknown")
    state.version, state.provider = _str(meta.get("cli_version")), _str(meta.get("model_provider"))
    state.git, state.cwd = meta.get("git"), _str(meta.get("cwd"))
    has_prompts = any(
        v.get("type") == "event_msg" and _dict(v.get("payload")).get("type") == "user_message" for _, _, v in items
    )
    for number, ts, value in items:
        _read_item(state, number, ts, value, has_prompts)
    mapped.events.extend(_render(state))
    return mapped


def _read_item(state: _State, line: int, ts: str, item: dict[str, Any], has_prompts: bool) -> None:
    kind, payload = _type(item), item.get("payload")
    body = _dict(payload)
    sub = _type(body)
    if kind == "turn_context":
        _turn_context(state, body)
    elif kind in _SKIP_ITEMS:
        return
    elif kind == "event_msg":
        _event_msg(state, line, ts, body, sub)
    elif kind == "response_item":
        _response_item(state, line, ts, body, sub, has_prompts)
    else:
        message = f"unrecognised rollout item type '{kind}'" if kind is not None else "rollout line has no type"
        _note(state, line, ts, message, item if payload is None else payload, "unset")


def _type(value: dict[str, Any]) -> str | None:
    """Return the `type` of an item as text (a set lookup must not meet a list or an object)."""
    kind = value.get("type")
    return kind if isinstance(kind, str) or kind is None else json.dumps(kind)[:40]


def _note(state: _State, line: int, ts: str, message: str, raw: Any, status: str) -> None:
    state.waiting = None
    state.records.append(_Note(state.turn(), line, ts, message, raw, status))


def _turn_context(state: _State, ctx: dict[str, Any]) -> None:
    state.model = _str(ctx.get("model")) or state.model
    state.cwd = _str(ctx.get("cwd")) or state.cwd
    turn_id = _str(ctx.get("turn_id"))
    cur = state.current
    if cur is not None and turn_id is not None and turn_id == cur.turn_id:
        return  # repeated within its own turn
    if cur is not None and cur.context is None and (turn_id is None or turn_id != state.announced):
        cur.context, cur.turn_id = ctx, cur.turn_id or turn_id  # came right after its prompt
        return
    state.waiting = ctx


def _open_turn(state: _State, line: int, ts: str, text: str) -> None:
    ctx = state.waiting
    turn = _Turn(line, ts, text, ctx, _str(ctx.get("turn_id")) if ctx else None)
    turn.turn_id = turn.turn_id or state.announced
    state.turns.append(turn)
    state.current, state.waiting, state.announced = turn, None, None
    state.reasoning, state.unbilled = [], None


def _event_msg(state: _State, line: int, ts: str, body: dict[str, Any], sub: str | None) -> None:
    if sub == "user_message":
        if _str(body.get("kind")) not in _INJECTED_KINDS:
            _open_turn(state, line, ts, _str(body.get("message")) or "")
    elif sub in ("task_started", "turn_started"):
        state.announced = _str(body.get("turn_id")) or state.announced
    elif sub == "token_count":
        # {"info": {"last_token_usage": {...}, "total_token_usage": {...}}}; very old builds
        # put the counts straight in the payload
        last = _dict(_dict(body.get("info")).get("last_token_usage") if "info" in body else body)
        usage = {k: v for k, v in last.items() if type(v) in (int, float)}
        if usage and state.unbilled is not None:
            state.unbilled.usage, state.unbilled = usage, None
    elif sub in ("exec_command_end", "patch_apply_end"):
        # Extended persistence: exit code and separate streams, for the latest call of that id
        # (the end event may come before or after the output item)
        same_id = state.calls.get(_str(body.get("call_id")) or "")
        if same_id:
            call = same_id[-1]
            code = body.get("exit_code")
            call.exit_code = code if type(code) is int else call.exit_code
            call.stdout, call.stderr = _str(body.get("stdout")), _str(body.get("stderr"))
            call.success = body.get("success") if isinstance(body.get("success"), bool) else None
    elif sub in ("error", "stream_error"):
        _note(state, line, ts, _str(body.get("message")) or f"codex {sub}", body, "error")
    elif sub == "turn_aborted":
        _note(state, line, ts, f"turn aborted ({_str(body.get('reason')) or 'no reason given'})", body, "error")
    elif sub not in _SKIP_EVENTS:
        _note(state, line, ts, f"unrecognised rollout item type 'event_msg/{sub}'", body, "unset")


def _response_item(state: _State, line: int, ts: str, body: dict[str, Any], sub: str | None, has_prompts: bool) -> None:
    if sub == "message":
        text = _text(body.get("content")) or ""
        if body.get("role") == "assistant":
            reasoning = "\n".join(state.reasoning) or None
            if reasoning and len(reasoning) > _SUMMARY_CHARS:
                reasoning = reasoning[: _SUMMARY_CHARS - 1] + "…"
            reply = _Reply(state.turn(), line, ts, text, reasoning, state.model)
            state.reasoning, state.unbilled, state.waiting = [], reply, None
            state.records.append(reply)
        elif body.get("role") == "user" and not has_prompts and not _TAGGED.match(text):
            _open_turn(state, line, ts, text)
    elif sub == "reasoning":
        summary = _text(body.get("summary"))  # summary parts; encrypted content is not kept
        if summary:
            state.reasoning.append(summary)
    elif sub in _CALLS or sub == "web_search_call":
        _call(state, line, ts, body, sub)
    elif sub in _OUTPUTS:
        call = state.open_call(body.get("call_id"))
        if call is None:
            _note(state, line, ts, "tool output with no matching call", body, "unset")
        else:
            call.done, call.output, call.output_ts = True, body.get("output"), ts
    elif sub not in _SKIP_RESPONSES:
        _note(state, line, ts, f"unrecognised rollout item type 'response_item/{sub}'", body, "unset")


def _call(state: _State, line: int, ts: str, body: dict[str, Any], sub: str) -> None:
    call_id = _str(body.get("call_id")) or _str(body.get("id"))
    if sub == "local_shell_call":
        name, given = "local_shell", body.get("action")
    elif sub == "web_search_call":
        name, given = "web_search", body.get("action")
    else:
        name = _str(body.get("name")) or "unknown"
        given = body.get("input") if sub == "custom_tool_call" else body.get("arguments")
    if sub == "function_call" and isinstance(given, str):
        with contextlib.suppress(ValueError):  # else keep the string the model sent
            given = _loads(given)
    key = call_id if call_id and call_id not in state.calls else f"line-{line}"
    call = _Call(state.turn(), line, ts, key, name, call_id, given, state.cwd)
    if sub == "web_search_call":  # no output item: the call's own status is the result
        call.done, call.output_ts = True, ts
        call.success = {"completed": True, "failed": False}.get(str(body.get("status")))
    if call_id:
        state.calls.setdefault(call_id, []).append(call)
    state.waiting = None
    state.records.append(call)


# --- events --------------------------------------------------------------------------------


@dataclass
class _Emitter:
    """Builds producer events for one session; ids are derived so a re-import repeats them."""

    session_id: str
    source: dict[str, Any]

    def event(
        self,
        turn: _Turn,
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


def _render(state: _State) -> list[dict[str, Any]]:
    """Return the events of every record, each turn's prompt first (records are in line order)."""
    out = _Emitter(state.session_id, {"kind": SOURCE_KIND, "version": state.version})
    seen: set[str] = set()
    for turn in state.turns:
        key = turn.turn_id or str(turn.prompt_line)
        if key in seen:  # a repeated turn id must not merge two turns
            key = f"{key}#{turn.prompt_line}"
        seen.add(key)
        turn.trace_id = derive_id(f"flightlog-codex-trace:{state.session_id}:{key}", 16)
        turn.prompt_span = derive_id(f"flightlog-codex-prompt:{turn.trace_id}", 8)
    if state.session_turn is not None:
        state.session_turn.trace_id = derive_id(f"flightlog-codex-trace:{state.session_id}:session", 16)
    waiting = list(reversed(state.turns))
    events: list[dict[str, Any]] = []
    for record in state.records:
        while waiting and record.line > (waiting[-1].prompt_line or 0):
            events.append(_prompt_event(out, state, waiting.pop()))
        turn = record.turn
        if isinstance(record, _Reply):
            response = {"text": record.text, "reasoning_summary": record.reasoning}
            payload: dict[str, Any] = {"response": response, "usage": record.usage}
            model = {"provider": state.provider, "name": record.model}
            span = out.span("model", str(record.line))
            events.append(out.event(turn, span, turn.prompt_span, "model_call", record.ts, payload, model=model))
        elif isinstance(record, _Note):
            payload = {"message": record.message, "raw": record.raw}
            span = out.span("item", str(record.line))
            events.append(out.event(turn, span, turn.prompt_span, "error", record.ts, payload, record.status))
        else:
            events.extend(_call_events(out, record))
    events.extend(_prompt_event(out, state, turn) for turn in reversed(waiting))
    return events


def _prompt_event(out: _Emitter, state: _State, turn: _Turn) -> dict[str, Any]:
    ctx = turn.context or {}
    context = {
        "cwd": _str(ctx.get("cwd")) or state.cwd,
        "approval_policy": ctx.get("approval_policy"),
        "sandbox_policy": ctx.get("sandbox_policy"),
        "git": state.git,
    }
    span = turn.prompt_span or out.span("prompt", str(turn.prompt_line))
    return out.event(turn, span, None, "prompt", turn.prompt_ts, {"text": turn.text, "context": context})


def _exec_result(text: str | None) -> tuple[int | None, str | None, float | None]:
    """Return (exit code, output, wall seconds) read from a shell tool's output text; the whole
    text is the output when it has none of the known shapes."""
    if text is None:
        return None, None, None
    if text.startswith("{"):
        try:
            value = _loads(text)
        except ValueError:
            value = None
        meta = _dict(value).get("metadata")
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
    args = _dict(given)
    command = args.get("cmd") if name == "exec_command" else args.get("command")
    workdir = _str(args.get("working_directory") if name == "local_shell" else args.get("workdir"))
    if isinstance(command, list) and all(isinstance(a, str) for a in command):
        return list(command), workdir
    return (command, workdir) if isinstance(command, str) else None


def _status(call: _Call, code: int | None, text: str | None) -> str:
    if not call.done:
        return "unset"
    failed = (
        (code is not None and code != 0)
        or call.success is False
        or (isinstance(call.output, dict) and call.output.get("success") is False)
        or (code is None and text is not None and text.lstrip().lower().startswith(_FAILURE_PREFIXES))
    )
    return "error" if failed else "ok"


def _call_events(out: _Emitter, call: _Call) -> list[dict[str, Any]]:
    """Return the tool_call event of `call`, then its shell and file_op children."""
    turn = call.turn
    span = out.span("tool", call.key)
    shell = _shell_command(call.name, call.input) if call.name in _SHELL_TOOLS else None
    envelope: str | None = None
    if call.name == "apply_patch":
        envelope = call.input if isinstance(call.input, str) else _str(_dict(call.input).get("input"))
    elif shell is not None:
        envelope = find_patch(shell[0])
    patch = parse_patch(envelope) if envelope is not None else Patch()

    text = _text(call.output)
    code, stdout, seconds = _exec_result(text)
    code = call.exit_code if call.exit_code is not None else code
    status = _status(call, code, text)
    error = None
    if status == "error":
        error = f"exit code {code}" if code else (text or "failed")[:_SUMMARY_CHARS]
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
