"""Codex CLI rollout files (`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`) → flightlog events.

Each line is `{"timestamp", "type", "payload"}`; the format is internal to Codex and drifts, so
every field is optional here and nothing unexpected raises. This module reads the lines into
turns, replies, calls and notes; `codex_events` derives their ids and builds the events.

- One trace per turn. A turn opens at an `event_msg` `user_message` (the clean prompt; the
  harness-injected user `message` items — AGENTS.md, `<environment_context>` — are not
  prompts). Rollouts without any `user_message` (old builds) fall back to user messages that do
  not start with a tag. The turn's `turn_context` may come just before or just after its
  prompt: a turn takes the context that was waiting for it, else the next one that arrives.
  Trace key: the context's `turn_id` when present, else the prompt's line number.
- The prompt is the root span. Items before the first prompt go to a per-session trace with
  no root.
- A `model_call` per assistant `message`, with the `reasoning` items since the previous reply as
  its summary. Its usage is the `last_token_usage` of the first `token_count` after the reply;
  a token_count with no reply since the previous one (a request that only called tools) is
  not attributed.
- A `tool_call` per `function_call` / `custom_tool_call` / `local_shell_call` /
  `web_search_call`, paired with its `*_output` by `call_id`; unpaired → status "unset".
- Kept as `error` events: `event_msg` `error`/`stream_error`/`turn_aborted` (status "error")
  and every unknown item type (status "unset", `{"message": "unrecognised rollout item type
  '<t>'", "raw": <payload>}`, with `<t>` like `event_msg/undo_completed`).
- Skipped as bookkeeping: `session_meta` and `turn_context` (folded into the events above),
  `compacted`, user/developer/system `message` items, `ghost_snapshot`, `compaction`,
  `compaction_summary`, and the `event_msg`s that repeat response items or only mark time:
  agent_message, agent_reasoning*, task/turn started/complete, token_count (folded into usage),
  item_completed, context_compacted, entered/exited_review_mode, *_begin, mcp_tool_call_end.

A line that is not UTF-8 JSON (or nests deeper than 64) is a Problem and skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from flightlog.capture.codex_events import (
    EPOCH,
    SUMMARY_CHARS,
    Call,
    Emitter,
    Note,
    Reply,
    Turn,
    as_dict,
    as_str,
    call_events,
    content_text,
    error_event,
    loads,
    model_call_event,
    prompt_event,
    prompt_span_id,
    turn_trace_id,
)
from flightlog.capture.jsonlines import lenient_timestamp
from flightlog.capture.mapped import Mapped, Problem

__all__ = ["find_files", "map_rollout", "read_unit"]

MAX_LINE_BYTES: Final = 64 * 1024 * 1024
_TAGGED: Final = re.compile(r"\s*(<[A-Za-z_][\w-]*[\s>]|# AGENTS\.md)")  # harness-injected context
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


def _load(raw: bytes) -> Any:
    """Return the JSON value of one line; raise ValueError naming why it cannot be used."""
    if len(raw) > MAX_LINE_BYTES:
        raise ValueError(f"line is {len(raw)} bytes, over {MAX_LINE_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    return loads(text)


# --- records -------------------------------------------------------------------------------


@dataclass
class _State:
    session_id: str
    version: str | None = None
    provider: str | None = None
    git: Any = None
    model: str | None = None
    cwd: str | None = None
    turns: list[Turn] = field(default_factory=list)
    current: Turn | None = None
    session_turn: Turn | None = None
    waiting: dict[str, Any] | None = None  # a turn_context whose prompt has not come yet
    announced: str | None = None  # turn id of a turn_started seen since the last prompt
    reasoning: list[str] = field(default_factory=list)
    unbilled: Reply | None = None
    records: list[Reply | Call | Note] = field(default_factory=list)
    calls: dict[str, list[Call]] = field(default_factory=dict)  # by call_id, in order

    def open_call(self, call_id: object) -> Call | None:
        """Return the first call with this id that has no output yet."""
        return next((c for c in self.calls.get(as_str(call_id) or "", ()) if not c.done), None)

    def turn(self) -> Turn:
        if self.current is not None:
            return self.current
        if self.session_turn is None:
            self.session_turn = Turn()
        return self.session_turn


def map_rollout(lines: Sequence[bytes], path: str, fallback_session: str) -> Mapped:
    """Return the events of a rollout given as its raw lines (without newlines); `path` names
    the file in problems and `fallback_session` is the session id when no session_meta has one."""
    mapped = Mapped(lines=len(lines))
    items: list[tuple[int, str, dict[str, Any]]] = []
    last_ts = EPOCH
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
        last_ts = lenient_timestamp(value.get("timestamp")) or last_ts
        items.append((number, last_ts, value))
    meta = next((as_dict(v.get("payload")) for _, _, v in items if v.get("type") == "session_meta"), {})
    session = as_str(meta.get("id"))
    state = _State(session if session and len(session) <= 256 else fallback_session[:256] or "unknown")
    state.version, state.provider = as_str(meta.get("cli_version")), as_str(meta.get("model_provider"))
    state.git, state.cwd = meta.get("git"), as_str(meta.get("cwd"))
    has_prompts = any(
        v.get("type") == "event_msg" and as_dict(v.get("payload")).get("type") == "user_message" for _, _, v in items
    )
    for number, ts, value in items:
        _read_item(state, number, ts, value, has_prompts)
    mapped.events.extend(_render(state))
    return mapped


def _read_item(state: _State, line: int, ts: str, item: dict[str, Any], has_prompts: bool) -> None:
    kind, payload = _type(item), item.get("payload")
    body = as_dict(payload)
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
    state.records.append(Note(state.turn(), line, ts, message, raw, status))


def _turn_context(state: _State, ctx: dict[str, Any]) -> None:
    state.model = as_str(ctx.get("model")) or state.model
    state.cwd = as_str(ctx.get("cwd")) or state.cwd
    turn_id = as_str(ctx.get("turn_id"))
    cur = state.current
    if cur is not None and turn_id is not None and turn_id == cur.turn_id:
        return  # repeated within its own turn
    if cur is not None and cur.context is None and (turn_id is None or turn_id != state.announced):
        cur.context, cur.turn_id = ctx, cur.turn_id or turn_id  # came right after its prompt
        return
    state.waiting = ctx


def _open_turn(state: _State, line: int, ts: str, text: str) -> None:
    ctx = state.waiting
    turn = Turn(line, ts, text, ctx, as_str(ctx.get("turn_id")) if ctx else None)
    turn.turn_id = turn.turn_id or state.announced
    state.turns.append(turn)
    state.current, state.waiting, state.announced = turn, None, None
    state.reasoning, state.unbilled = [], None


def _event_msg(state: _State, line: int, ts: str, body: dict[str, Any], sub: str | None) -> None:
    if sub == "user_message":
        if as_str(body.get("kind")) not in _INJECTED_KINDS:
            _open_turn(state, line, ts, as_str(body.get("message")) or "")
    elif sub in ("task_started", "turn_started"):
        state.announced = as_str(body.get("turn_id")) or state.announced
    elif sub == "token_count":
        # {"info": {"last_token_usage": {...}, "total_token_usage": {...}}}; very old builds
        # put the counts straight in the payload
        last = as_dict(as_dict(body.get("info")).get("last_token_usage") if "info" in body else body)
        usage = {k: v for k, v in last.items() if type(v) in (int, float)}
        if usage and state.unbilled is not None:
            state.unbilled.usage, state.unbilled = usage, None
    elif sub in ("exec_command_end", "patch_apply_end"):
        # Extended persistence: exit code and separate streams, for the latest call of that id
        # (the end event may come before or after the output item)
        same_id = state.calls.get(as_str(body.get("call_id")) or "")
        if same_id:
            call = same_id[-1]
            code = body.get("exit_code")
            call.exit_code = code if type(code) is int else call.exit_code
            call.stdout, call.stderr = as_str(body.get("stdout")), as_str(body.get("stderr"))
            call.success = body.get("success") if isinstance(body.get("success"), bool) else None
    elif sub in ("error", "stream_error"):
        _note(state, line, ts, as_str(body.get("message")) or f"codex {sub}", body, "error")
    elif sub == "turn_aborted":
        _note(state, line, ts, f"turn aborted ({as_str(body.get('reason')) or 'no reason given'})", body, "error")
    elif sub not in _SKIP_EVENTS:
        _note(state, line, ts, f"unrecognised rollout item type 'event_msg/{sub}'", body, "unset")


def _response_item(state: _State, line: int, ts: str, body: dict[str, Any], sub: str | None, has_prompts: bool) -> None:
    if sub == "message":
        text = content_text(body.get("content")) or ""
        if body.get("role") == "assistant":
            reasoning = "\n".join(state.reasoning) or None
            if reasoning and len(reasoning) > SUMMARY_CHARS:
                reasoning = reasoning[: SUMMARY_CHARS - 1] + "…"
            reply = Reply(state.turn(), line, ts, text, reasoning, state.model)
            state.reasoning, state.unbilled, state.waiting = [], reply, None
            state.records.append(reply)
        elif body.get("role") == "user" and not has_prompts and not _TAGGED.match(text):
            _open_turn(state, line, ts, text)
    elif sub == "reasoning":
        summary = content_text(body.get("summary"))  # summary parts; encrypted content is not kept
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
    call_id = as_str(body.get("call_id")) or as_str(body.get("id"))
    if sub == "local_shell_call":
        name, given = "local_shell", body.get("action")
    elif sub == "web_search_call":
        name, given = "web_search", body.get("action")
    else:
        name = as_str(body.get("name")) or "unknown"
        given = body.get("input") if sub == "custom_tool_call" else body.get("arguments")
    if sub == "function_call" and isinstance(given, str):
        with contextlib.suppress(ValueError):  # else keep the string the model sent
            given = loads(given)
    key = call_id if call_id and call_id not in state.calls else f"line-{line}"
    call = Call(state.turn(), line, ts, key, name, call_id, given, state.cwd)
    if sub == "web_search_call":  # no output item: the call's own status is the result
        call.done, call.output_ts = True, ts
        call.success = {"completed": True, "failed": False}.get(str(body.get("status")))
    if call_id:
        state.calls.setdefault(call_id, []).append(call)
    state.waiting = None
    state.records.append(call)


# --- events --------------------------------------------------------------------------------


def _render(state: _State) -> list[dict[str, Any]]:
    """Return the events of every record, each turn's prompt first (records are in line order)."""
    out = Emitter(state.session_id, state.version)
    seen: set[str] = set()
    for turn in state.turns:
        key = turn.turn_id or str(turn.prompt_line)
        if key in seen:  # a repeated turn id must not merge two turns
            key = f"{key}#{turn.prompt_line}"
        seen.add(key)
        turn.trace_id = turn_trace_id(state.session_id, key)
        turn.prompt_span = prompt_span_id(turn.trace_id)
    if state.session_turn is not None:
        state.session_turn.trace_id = turn_trace_id(state.session_id, "session")
    waiting = list(reversed(state.turns))
    events: list[dict[str, Any]] = []
    for record in state.records:
        while waiting and record.line > (waiting[-1].prompt_line or 0):
            events.append(prompt_event(out, waiting.pop(), state.cwd, state.git))
        if isinstance(record, Reply):
            events.append(model_call_event(out, record, state.provider))
        elif isinstance(record, Note):
            events.append(error_event(out, record))
        else:
            events.extend(call_events(out, record))
    events.extend(prompt_event(out, turn, state.cwd, state.git) for turn in reversed(waiting))
    return events
