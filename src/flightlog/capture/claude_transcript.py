"""Claude Code session transcripts (`~/.claude/projects/<project>/<session-id>.jsonl`) →
flightlog producer events, in the trace shape of `claude_shape`: the live hook derives the
same trace and span ids, so both land in the same traces. Event ids come from the span, the
event type and the line's timestamp, so re-importing a file stores nothing twice.

One import unit is a session file plus its subagent files `<session-id>/subagents/agent-*.jsonl`.

- A turn starts at a real prompt: a `user` line whose content is a string or text/image
  blocks, not a tool result, not `isMeta`, `isCompactSummary`, `isVisibleInTranscriptOnly`
  or `isSidechain`, and not Claude Code's "[Request interrupted by user…]" marker. Its trace
  is `turn_trace_id(session, promptId or the line's uuid)`. Other lines join the turn of their
  `parentUuid`, else of the latest prompt, else a session-level trace (key "session").
- `prompt`, one per turn; `model_call`, one per assistant `message.id` (lines of one response
  merged; thinking kept as its length only); `tool_call`, one per `tool_use` or
  `server_tool_use` block, paired with the `tool_result` of the same id (a result whose call
  is not in the unit is dropped); `file_op` for successful Write/Edit/MultiEdit/NotebookEdit;
  `shell` for Bash/PowerShell. Payloads: see `claude_transcript_build`.
- Subagents nest under the Task/Agent tool span that started them, in its trace. A subagent
  file is matched by the `agentId` in that call's result (file `agent-<agentId>.jsonl`); an
  inline sidechain (v1.x, `isSidechain: true`) by its first user message, which is the
  prompt Claude Code passed: the earliest unclaimed Task/Agent call whose `input.prompt` is the
  same text (whitespace-trimmed), else — inline only — the one Task/Agent call still waiting
  for its result, if there is exactly one. An unmatched subagent (e.g. a compaction agent)
  lands in the session-level trace. Subagent files make no prompt events.
- `system` lines with subtype `api_error` or level `error` become `error` events (status
  error); other `system` lines (compact boundaries, hook summaries, turn durations, …) and the
  bookkeeping types in `IGNORED_TYPES` are not imported. Any other line type is kept as an
  `error` event with status unset, its message naming the type and the line under
  `payload.raw` (keys only when the line is over 256 KiB).
- Events of lines that have no uuid (unknown types, `system` errors) get a span derived from
  the session and the line's sha256, so a re-import still maps to the same ids.
- Unreadable lines are `Problem`s (see `claude_transcript_lines`); a line without a timestamp
  in a file that has none is one too. A line uuid seen before in the unit (a copy) is skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from flightlog.capture import claude_shape as shape
from flightlog.capture.claude_transcript_build import file_op_payload, shell_payload, text_of
from flightlog.capture.claude_transcript_lines import (
    Line,
    as_dict,
    as_str,
    blocks,
    is_prompt,
    ms_between,
    read_lines,
)
from flightlog.capture.mapped import Mapped, Problem
from flightlog.ids import derive_id

__all__ = ["IGNORED_TYPES", "SOURCE_KIND", "default_root", "find_files", "read_unit"]

SOURCE_KIND: Final = "claude-code-transcript"
IGNORED_TYPES: Final = frozenset(
    {
        "summary",  # session title / compaction summary: not an action
        "file-history-snapshot",  # undo bookkeeping; the edits themselves are file_op events
        "queue-operation",  # a queued prompt shows up again as a user line when it is sent
        "progress",  # subagent streaming; the subagent file holds the same messages
        "last-prompt",
        "pr-link",
        "saved_hook_context",
        "attachment",
        "custom-title",
        "ai-title",
        "agent-name",
        "mode",
    }
)
_RAW_CAP: Final = 256 * 1024


def default_root() -> Path:
    """Return where Claude Code keeps transcripts: $CLAUDE_CONFIG_DIR/projects, else ~/.claude/projects."""
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(config) if config else Path.home() / ".claude") / "projects"


def find_files(paths: tuple[Path, ...]) -> list[Path]:
    """Return the sorted session files under `paths` (files, or folders searched for `*.jsonl`);
    with no paths, those under `default_root()` ([] when it does not exist). Subagent files are
    never units of their own: a subagent file given by name stands for its session file."""
    if not paths:
        root = default_root()
        if not root.is_dir():
            return []
        paths = (root,)
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(f for f in path.rglob("*.jsonl") if "subagents" not in f.relative_to(path).parts[:-1])
        elif path.parent.name == "subagents":
            session_dir = path.parent.parent
            main = session_dir.parent / f"{session_dir.name}.jsonl"
            if main.is_file():
                found.add(main)
        else:
            found.add(path)
    return sorted(f for f in found if f.is_file())


def read_unit(path: Path) -> Mapped:
    """Return the events of one session file and its subagent files, and the lines skipped.
    Raises OSError only when a file cannot be read at all."""
    problems: list[Problem] = []
    lines = read_lines(path, problems)
    companions = [(p, read_lines(p, problems)) for p in sorted((path.parent / path.stem / "subagents").glob("*.jsonl"))]
    count = len(lines) + sum(len(c) for _, c in companions) + len(problems)  # every non-blank line read
    mapper = _Mapper(path.stem[:256] or "unknown", problems)
    for line in lines:
        mapper.main_line(line)
    mapper.subagents(companions)
    return Mapped(mapper.finish(), problems, count)


# --- mapping -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    """Where a line's events go: its trace, and the span its top-level events hang under."""

    trace_id: str
    parent: str | None


@dataclass
class _Use:
    line: Line
    ctx: _Ctx
    session: str
    tool_id: str
    given_id: str | None
    name: str
    input: Any


@dataclass
class _Result:
    line: Line
    output: Any
    error: str | None


@dataclass
class _Message:
    line: Line
    ctx: _Ctx
    session: str
    message_id: str | None
    texts: list[str] = field(default_factory=list)
    tool_ids: list[str] = field(default_factory=list)
    thinking: int = 0
    usage: dict[str, Any] | None = None
    stop_reason: str | None = None


class _Mapper:
    """Walks the lines of one unit in order; `finish` turns what it gathered into events."""

    def __init__(self, default_session: str, problems: list[Problem]) -> None:
        self.default_session = default_session
        self.problems = problems
        self.slots: list[tuple[str, Any]] = []  # ("event", dict) | ("model", key) | ("tool", id), in line order
        self.ctx_of: dict[str, _Ctx] = {}  # main-chain line uuid → its turn
        self.side_of: dict[str, _Ctx] = {}  # inline sidechain line uuid → its subagent
        self.current: _Ctx | None = None
        self.uses: dict[str, _Use] = {}
        self.results: dict[str, _Result] = {}
        self.messages: dict[tuple[str, str], _Message] = {}
        self.claimed: set[str] = set()  # Task/Agent calls that already have their subagent
        self.agent_task: dict[str, str] = {}  # agentId → the Task/Agent tool_use id that started it
        self.seen: set[str] = set()

    def _session(self, obj: dict[str, Any]) -> str:
        sid = obj.get("sessionId")
        return sid if isinstance(sid, str) and 0 < len(sid) <= 256 else self.default_session

    def _session_ctx(self, session: str) -> _Ctx:
        return _Ctx(shape.turn_trace_id(session, "session"), None)

    def _usable(self, line: Line) -> bool:
        uuid = line.obj.get("uuid")
        if isinstance(uuid, str):
            if uuid in self.seen:
                return False
            self.seen.add(uuid)
        if line.ts is None and not _ignored(line.obj.get("type")):
            self.problems.append(Problem(line.path, line.no, "no valid timestamp in the file"))
            return False
        return True

    def main_line(self, line: Line) -> None:
        """Map one line of the session file."""
        if not self._usable(line):
            return
        obj, session = line.obj, self._session(line.obj)
        uuid, parent = as_str(obj.get("uuid")), as_str(obj.get("parentUuid"))
        if obj.get("isSidechain") is True:
            ctx = self.side_of.get(parent or "") or self._claim(obj, inline=True) or self.current
            ctx = ctx or self._session_ctx(session)
            if uuid:
                self.side_of[uuid] = ctx
            self._map(line, ctx, session)
            return
        if is_prompt(obj):
            trace = shape.turn_trace_id(session, as_str(obj.get("promptId")) or uuid or line.key)
            ctx = self.current = _Ctx(trace, shape.prompt_span_id(trace))
            self._prompt(line, ctx, session)
        else:
            ctx = self.ctx_of.get(parent or "") or self.current or self._session_ctx(session)
        if uuid:
            self.ctx_of[uuid] = ctx
        self._map(line, ctx, session)

    def subagents(self, files: list[tuple[Path, list[Line]]]) -> None:
        """Map subagent files: those whose agentId a Task/Agent result names first (a subagent
        may start another, whose call is then known), then the rest by prompt text."""
        pending = list(files)
        while pending:
            pick = next((f for f in pending if self._task_of(f[0]) is not None), pending[0])
            pending.remove(pick)
            path, lines = pick
            task = self._task_of(path)
            first_user = next((ln.obj for ln in lines if ln.obj.get("type") == "user"), {})
            ctx = self._task_ctx(task) if task else self._claim(first_user, inline=False)
            for line in lines:
                if self._usable(line):
                    session = self._session(line.obj)
                    self._map(line, ctx or self._session_ctx(session), session)

    def _task_of(self, path: Path) -> str | None:
        task = self.agent_task.get(path.stem.removeprefix("agent-"))
        return task if task in self.uses and task not in self.claimed else None

    def _task_ctx(self, tool_id: str) -> _Ctx:
        self.claimed.add(tool_id)
        use = self.uses[tool_id]
        return _Ctx(use.ctx.trace_id, shape.tool_span_id(use.session, tool_id))

    def _claim(self, obj: dict[str, Any], inline: bool) -> _Ctx | None:
        """The Task/Agent call whose prompt is this subagent's first user message (module docstring)."""
        text = text_of(as_dict(obj.get("message")).get("content")) if obj.get("type") == "user" else None
        tasks = [u for u in self.uses.values() if u.name in shape.SUBAGENT_TOOLS and u.tool_id not in self.claimed]
        if text is not None:
            for use in tasks:
                prompt = as_dict(use.input).get("prompt")
                if isinstance(prompt, str) and prompt.strip() == text.strip():
                    return self._task_ctx(use.tool_id)
        waiting = [u for u in tasks if u.tool_id not in self.results]
        return self._task_ctx(waiting[0].tool_id) if inline and len(waiting) == 1 else None

    def _map(self, line: Line, ctx: _Ctx, session: str) -> None:
        kind = line.obj.get("type")
        if kind == "user":
            self._results(line)
        elif kind == "assistant":
            self._assistant(line, ctx, session)
        elif kind == "system":
            obj = line.obj
            if obj.get("subtype") == "api_error" or obj.get("level") == "error":
                message = as_str(obj.get("content")) or f"API error ({as_str(obj.get('subtype')) or 'system'})"
                self._line_event(line, ctx, session, "error", {"message": message, "raw": _raw(line)})
        elif not _ignored(kind):
            message = f"unrecognised transcript line type '{kind}'"
            self._line_event(line, ctx, session, "unset", {"message": message, "raw": _raw(line)})

    def _envelope(
        self, kind: str, ctx: _Ctx, span: str, parent: str | None, line: Line, session: str
    ) -> dict[str, Any]:
        ts = line.ts or ""
        return {
            "event_id": shape.event_id(span, kind, ts),
            "trace_id": ctx.trace_id,
            "span_id": span,
            "parent_span_id": parent,
            "type": kind,
            "timestamp": ts,
            "agent_id": shape.AGENT_ID,
            "session_id": session,
            "source": {"kind": SOURCE_KIND, "version": as_str(line.obj.get("version"))},
        }

    def _prompt(self, line: Line, ctx: _Ctx, session: str) -> None:
        obj = line.obj
        event = self._envelope("prompt", ctx, ctx.parent or "", None, line, session)
        event["status"] = "ok"
        event["payload"] = {
            "text": text_of(as_dict(obj.get("message")).get("content")) or "",
            "prompt_id": as_str(obj.get("promptId")),
            "context": {
                "cwd": as_str(obj.get("cwd")),
                "git_branch": as_str(obj.get("gitBranch")),
                "permission_mode": as_str(obj.get("permissionMode")),
                "claude_code_version": as_str(obj.get("version")),
            },
        }
        self.slots.append(("event", event))

    def _line_event(self, line: Line, ctx: _Ctx, session: str, status: str, payload: dict[str, Any]) -> None:
        span = derive_id(f"flightlog-claude-line:{session}:{line.key}", 8)
        event = self._envelope("error", ctx, span, ctx.parent, line, session)
        event["status"], event["payload"] = status, payload
        self.slots.append(("event", event))

    def _results(self, line: Line) -> None:
        found = [b for _, b in blocks(as_dict(line.obj.get("message"))) if b.get("type") == "tool_result"]
        for block in found:
            tool_id = as_str(block.get("tool_use_id"))
            if not tool_id or tool_id in self.results:
                continue
            content = block.get("content")
            # toolUseResult is per line; it can only be attributed when the line has one result.
            output = line.obj["toolUseResult"] if len(found) == 1 and "toolUseResult" in line.obj else content
            error = (
                (text_of(content) or as_str(output) or "tool call failed") if block.get("is_error") is True else None
            )
            self.results[tool_id] = _Result(line, output, error)
            agent = as_dict(output).get("agentId")
            if isinstance(agent, str):
                self.agent_task.setdefault(agent, tool_id)

    def _assistant(self, line: Line, ctx: _Ctx, session: str) -> None:
        message = as_dict(line.obj.get("message"))
        message_id = as_str(message.get("id"))
        key = (session, message_id or f"line:{line.key}")
        msg = self.messages.get(key)
        if msg is None:
            msg = self.messages[key] = _Message(line, ctx, session, message_id)
            self.slots.append(("model", key))
        for index, block in blocks(message):
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                msg.texts.append(block["text"])
            elif kind == "thinking" and isinstance(block.get("thinking"), str):
                msg.thinking += len(block["thinking"])
            elif kind in ("tool_use", "server_tool_use"):
                given = as_str(block.get("id")) or None
                tool_id = given or f"{line.key}#{index}"
                if tool_id not in self.uses:
                    name = as_str(block.get("name")) or "unknown"
                    self.uses[tool_id] = _Use(line, ctx, session, tool_id, given, name, block.get("input"))
                    self.slots.append(("tool", tool_id))
                    msg.tool_ids.append(tool_id)
            elif isinstance(kind, str) and kind.endswith("_tool_result") and as_str(block.get("tool_use_id")):
                self.results.setdefault(block["tool_use_id"], _Result(line, block.get("content"), None))
        usage = message.get("usage")
        msg.usage = usage if isinstance(usage, dict) else msg.usage
        msg.stop_reason = as_str(message.get("stop_reason")) or msg.stop_reason

    def finish(self) -> list[dict[str, Any]]:
        """Return the unit's events in line order, each event id once."""
        events: list[dict[str, Any]] = []
        for kind, ref in self.slots:
            if kind == "event":
                events.append(ref)
            elif kind == "model":
                events.append(self._model_event(self.messages[ref]))
            else:
                events.extend(self._tool_events(self.uses[ref]))
        unique: dict[str, dict[str, Any]] = {}
        for event in events:  # e.g. two prompt lines sharing a promptId: the first one stands
            unique.setdefault(event["event_id"], event)
        return list(unique.values())

    def _model_event(self, msg: _Message) -> dict[str, Any]:
        obj = msg.line.obj
        message = as_dict(obj.get("message"))
        span = shape.model_span_id(msg.session, msg.message_id or f"line:{msg.line.key}")
        event = self._envelope("model_call", msg.ctx, span, msg.ctx.parent, msg.line, msg.session)
        event["status"] = "error" if obj.get("isApiErrorMessage") is True else "ok"
        event["model"] = {"provider": "anthropic", "name": as_str(message.get("model"))}
        response: dict[str, Any] = {"text": "\n".join(msg.texts), "tool_use_ids": msg.tool_ids}
        if msg.thinking:
            response["thinking_chars"] = msg.thinking
        event["payload"] = {
            "request_id": as_str(obj.get("requestId")),
            "message_id": msg.message_id,
            "response": response,
            "usage": msg.usage,
            "stop_reason": msg.stop_reason,
        }
        return event

    def _tool_events(self, use: _Use) -> list[dict[str, Any]]:
        span = shape.tool_span_id(use.session, use.tool_id)
        result = self.results.get(use.tool_id)
        status = "unset" if result is None else "error" if result.error is not None else "ok"
        duration = ms_between(use.line.ts or "", result.line.ts or "") if result else None
        output, error = (result.output, result.error) if result else (None, None)
        call = self._envelope("tool_call", use.ctx, span, use.ctx.parent, use.line, use.session)
        call["status"], call["duration_ms"] = status, duration
        call["payload"] = {
            "tool_name": use.name,
            "tool_call_id": use.given_id,
            "input": use.input,
            "output": output,
            "error": error,
        }
        events = [call]
        cwd = as_str(use.line.obj.get("cwd"))
        if result is not None and status == "ok" and use.name in shape.EDIT_TOOLS:
            payload = file_op_payload(use.name, use.input, output, cwd)
            if payload is not None:
                file_span = shape.file_span_id(span, payload["file_path"])
                op = self._envelope("file_op", use.ctx, file_span, span, result.line, use.session)
                op["status"], op["payload"] = "ok", payload
                events.append(op)
        if use.name in shape.SHELL_TOOLS:
            shell = self._envelope("shell", use.ctx, shape.shell_span_id(span), span, use.line, use.session)
            shell["status"], shell["duration_ms"] = status, duration
            shell["payload"] = shell_payload(use.input, output, status, error, cwd)
            events.append(shell)
        return events


def _ignored(kind: object) -> bool:
    return isinstance(kind, str) and kind in IGNORED_TYPES  # `type` may be any JSON value, even a list


def _raw(line: Line) -> dict[str, Any]:
    """The line as kept under payload.raw: whole, or only its keys past _RAW_CAP (one huge
    line must not push the unit's events over the ledger's event size limit)."""
    if line.size <= _RAW_CAP:
        return line.obj
    return {"truncated": True, "bytes": line.size, "keys": sorted(line.obj)[:100]}
