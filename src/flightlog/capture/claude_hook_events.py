"""What the Claude Code hook records: the per-session state folder and the events built from
hook input (tool calls, policy decisions, shell runs and the file changes they made).

Light imports only: this runs on every tool call.

The hook input is untrusted: a session's folder is one path component named by the session
id only when the id is plain (else by its digest), and what the state keeps of the input
passes the redactor first, as every other write does. A session that is not `local` (the
collector's HTTP hook called from another machine) reads nothing of the workspace: its paths
name the agent's machine, not ours.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Final

from flightlog._internal.jsonwalk import _walk_strings
from flightlog.capture import claude_shape as shape
from flightlog.capture.workspace import ContentCache, changes, file_diff, list_files, scan
from flightlog.home import private_dir, write_private_file
from flightlog.ids import derive_id
from flightlog.ledger.blobs import blob_digest
from flightlog.policy_input import may_hold_secret
from flightlog.secret_fields import is_secret_name

__all__ = [
    "MAX_INPUT_CHARS",
    "MAX_OUTPUT_CHARS",
    "SOURCE_KIND",
    "HookSession",
    "cap",
    "capture_before",
    "edit_changes",
    "log_failure",
    "redacted",
    "safe",
    "shell_event",
    "tool_call_event",
    "tool_fields",
    "trace_snapshot",
    "workspace_changes",
]

Event = dict[str, Any]
SOURCE_KIND: Final = "claude-code-hook"  # the source.kind of every event the hook records
MAX_OUTPUT_CHARS: Final = 256 * 1024  # tool output kept per string; the collector caps events at 1 MiB
MAX_INPUT_CHARS: Final = 512 * 1024
_EXIT_CODE: Final = re.compile(r"Exit code (\d+)")
# Names taken as they are; anything else is named by its digest, whose "." no plain name has, so
# no id can pick another's name. Session folders are lower case: a file system may ignore case.
_PLAIN_SESSION: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,79}")
_PLAIN_USE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,119}")


class HookSession:
    """The state folder of one Claude Code session and what every event shares. `local` says
    the agent runs on this machine, so its `cwd` and project directory may be read."""

    def __init__(self, home: Path, data: dict[str, Any], project_dir: str | None = None, local: bool = True) -> None:
        self.home = home
        self.local = local
        self.id = str(data.get("session_id") or "unknown-session")
        # Another machine's sessions get folders of their own: knowing a local session's id must
        # not let a remote client end it or mix into its state.
        name = _component(self.id, _PLAIN_SESSION) if local else "remote." + _digest(self.id)
        self.folder = home / "hooks" / "claude-code" / name
        self.now_ns = time.time_ns()
        self.timestamp = shape.iso_ms(self.now_ns)
        # Not this process's directory or environment for another machine's agent.
        self.cwd = str(data.get("cwd") or (os.getcwd() if local else ""))
        self.root = Path(project_dir or (os.environ.get("CLAUDE_PROJECT_DIR") if local else None) or self.cwd)

    def path(self, name: str) -> Path:
        return self.folder / name

    def load(self, name: str) -> dict[str, Any]:
        try:
            value = json.loads(self.path(name).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def save(self, name: str, value: dict[str, Any]) -> None:
        private_dir(self.folder)
        # Session state, not the record: a crash may lose it, so no fsync on every tool call.
        write_private_file(self.path(name), json.dumps(value).encode(), durable=False)

    def update(self, name: str, change: Any) -> dict[str, Any]:
        """Read-modify-write `name` under the session lock (hooks of one session run in parallel)."""
        private_dir(self.folder)
        fd = os.open(self.path(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            value = self.load(name)
            change(value)
            self.save(name, value)
            return value
        finally:
            os.close(fd)

    def cache(self) -> ContentCache:
        return ContentCache(self.folder / "files")

    def turn(self, data: dict[str, Any]) -> tuple[str, str]:
        """Return (trace_id, prompt span id) of the current turn."""
        prompt_id = data.get("prompt_id")
        key = self.load("turn.json").get("key", "session")
        # A turn whose UserPromptSubmit came without a prompt id keeps the key made then, even
        # if its tool calls carry one (else its calls would form a second trace).
        if isinstance(prompt_id, str) and prompt_id and not str(key).startswith("turn-"):
            key = prompt_id
        trace = shape.turn_trace_id(self.id, str(key))
        return trace, shape.prompt_span_id(trace)

    def envelope(self, trace: str, span: str, parent: str | None, kind: str, timestamp: str) -> Event:
        event: Event = {
            "event_id": shape.event_id(span, kind, timestamp),
            "trace_id": trace,
            "span_id": span,
            "parent_span_id": parent,
            "type": kind,
            "timestamp": timestamp,
            "agent_id": shape.AGENT_ID,
            "session_id": self.id,
            "source": {"kind": SOURCE_KIND, "version": None},
            "user_context": {"user_id": os.environ.get("USER") or os.environ.get("LOGNAME"), "host": host()},
        }
        model = self.model()
        if model:
            event["model"] = {"provider": "anthropic", "name": model}
        return event

    def model(self) -> str | None:
        """The model the session started with (SessionStart), if Claude Code said."""
        model = self.load("session.json").get("model")
        return model if isinstance(model, str) and model else None


def tool_fields(data: dict[str, Any]) -> tuple[str, Any, str]:
    tool = str(data.get("tool_name") or "unknown")
    tool_input = data.get("tool_input")
    use_id = data.get("tool_use_id")
    if not isinstance(use_id, str) or not use_id:
        # Builds before tool_use_id: Pre and Post of one call still carry the same input.
        use_id = "noid-" + derive_id(f"{tool}:{json.dumps(tool_input, sort_keys=True)}", 8)
    return tool, tool_input, use_id


def tool_call_event(s: HookSession, data: dict[str, Any], state: dict[str, Any], span: str, status: str) -> Event:
    tool, tool_input, use_id = tool_fields(data)
    started = state.get("started_ns")
    timestamp = shape.iso_ms(started) if isinstance(started, int) else s.timestamp
    event = s.envelope(state["trace"], span, state.get("parent"), "tool_call", timestamp)
    event["status"] = status
    duration = data.get("duration_ms")
    if isinstance(duration, int | float) and duration >= 0:
        event["duration_ms"] = duration
    elif isinstance(started, int) and status != "denied":
        event["duration_ms"] = round((s.now_ns - started) / 1e6, 3)
    payload: dict[str, Any] = {"tool_name": tool, "tool_call_id": use_id, "input": cap(tool_input, MAX_INPUT_CHARS)}
    if "tool_response" in data:
        payload["output"] = cap(data["tool_response"], MAX_OUTPUT_CHARS)
    if data.get("error") is not None:
        payload["error"] = cap(str(data["error"]), MAX_OUTPUT_CHARS)
    if data.get("agent_id"):
        payload["subagent"] = {"agent_id": data.get("agent_id"), "agent_type": data.get("agent_type")}
    event["payload"] = payload
    return event


def shell_event(s: HookSession, data: dict[str, Any], state: dict[str, Any], tool_span: str, failed: bool) -> Event:
    tool_input = mapping(data.get("tool_input"))
    response = mapping(data.get("tool_response"))
    span = shape.shell_span_id(tool_span)
    started = state.get("started_ns")
    event = s.envelope(state["trace"], span, tool_span, "shell", shape.iso_ms(started) if started else s.timestamp)
    exit_code: int | None = None
    if failed:
        match = _EXIT_CODE.search(str(data.get("error") or ""))
        exit_code = int(match.group(1)) if match else None
    elif not response.get("interrupted"):
        exit_code = 0
    event["status"] = "error" if failed else "ok"
    event["payload"] = {
        "command": cap(str(tool_input.get("command") or ""), MAX_INPUT_CHARS),
        "cwd": s.cwd,
        "exit_code": exit_code,
        "stdout": cap(response.get("stdout"), MAX_OUTPUT_CHARS) if isinstance(response.get("stdout"), str) else None,
        "stderr": cap(response.get("stderr"), MAX_OUTPUT_CHARS) if isinstance(response.get("stderr"), str) else None,
        "description": tool_input.get("description"),
        "interrupted": response.get("interrupted"),
    }
    return event


def capture_before(s: HookSession, tool: str, tool_input: Any, state: dict[str, Any]) -> None:
    """Keep what Post needs to see what the call changed, and make sure the trace has a
    workspace snapshot from before its first change (what `flightlog rollback` restores)."""
    if not s.local:
        return
    if tool in shape.EDIT_TOOLS or tool in shape.SHELL_TOOLS:
        state["snapshot"] = trace_snapshot(s, state["trace"])
    if tool in shape.EDIT_TOOLS:
        path = _edited_path(tool_input)
        if path is not None:
            try:
                state["before"][path] = s.cache().keep(Path(path).read_bytes())
            except FileNotFoundError:
                state["before"][path] = None
            except OSError:
                pass
    elif tool in shape.SHELL_TOOLS:
        names = list_files(s.root, home=s.home)
        if names is not None:
            stats = scan(s.root, names)
            s.cache().refresh(s.root, stats)
            state["stats"] = stats


def log_failure(home: Path, where: str, exc: BaseException) -> None:
    """One line per failure: when, which hook, the error's type and first line (no hook input)."""
    try:
        logs = home / "logs"
        private_dir(logs)
        message = str(exc).splitlines()[0][:300] if str(exc) else ""
        fd = os.open(logs / "hook.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(f"{shape.iso_ms(time.time_ns())} {where}: {type(exc).__name__}: {message}\n")
    except OSError:
        pass  # nowhere left to report; the agent still must not notice


def trace_snapshot(s: HookSession, trace: str) -> str | None:
    """Return the id of the snapshot taken before `trace` first changed anything, taking it now
    if this is that first change (incremental: only files whose stat changed are read)."""
    if not s.local:
        return None
    marks = s.load("snapshots.json")
    if isinstance(marks.get(trace), str):
        return str(marks[trace])
    from flightlog.snapshot import take_snapshot  # once per trace, not per tool call

    try:
        snapshot_id = take_snapshot(s.root, s.home).id
    except Exception as exc:  # a recorder must not stop the agent; the events say it is missing
        log_failure(s.home, "snapshot", exc)
        return None
    s.update("snapshots.json", lambda m: m.setdefault(trace, snapshot_id))
    return snapshot_id


def edit_changes(s: HookSession, state: dict[str, Any], tool_span: str) -> list[Event]:
    if not s.local:  # the state may be a local session's of the same id: its paths are ours
        return []
    events = []
    cache = s.cache()
    for path, before_sha in state.get("before", {}).items():
        before = cache.content(before_sha) if isinstance(before_sha, str) else None
        try:
            after: bytes | None = Path(path).read_bytes()
        except OSError:
            after = None
        event = _file_op(s, state, tool_span, path, _display_path(s, path), before_sha, before, after, "tool")
        if event is not None:
            events.append(event)
    return events


def workspace_changes(s: HookSession, state: dict[str, Any], tool_span: str) -> list[Event]:
    """file_op events for every file the shell command created, changed or deleted."""
    before_stats = state.get("stats")
    if not s.local or not isinstance(before_stats, dict):
        return []
    names = list_files(s.root, home=s.home)
    if names is None:
        return []
    after_stats = scan(s.root, names)
    before = {k: (v[0], v[1]) for k, v in before_stats.items()}
    cache = s.cache()
    events = []
    for _, name in changes(before, after_stats):
        before_sha, before_data = cache.recall(name) if name in before else (None, None)
        try:
            after: bytes | None = (s.root / name).read_bytes()
        except OSError:
            after = None
        event = _file_op(
            s, state, tool_span, str(s.root / name), name, before_sha, before_data, after, "workspace-scan"
        )
        if event is not None:
            events.append(event)
    cache.refresh(s.root, after_stats)
    return events


def _file_op(
    s: HookSession,
    state: dict[str, Any],
    tool_span: str,
    path: str,
    shown: str,
    before_sha: str | None,
    before: bytes | None,
    after: bytes | None,
    detected_by: str,
) -> Event | None:
    after_sha = blob_digest(after) if after is not None else None
    if before_sha == after_sha:
        return None
    op = "create" if before_sha is None else "delete" if after is None else "patch"
    span = shape.file_span_id(tool_span, path)
    event = s.envelope(state["trace"], span, tool_span, "file_op", s.timestamp)
    known_before = before if before_sha is not None else None
    diff = file_diff(shown, known_before, after) if (before_sha is None or before is not None) else None
    event["payload"] = {
        "op": op,
        "file_path": path,
        "checksum_before": before_sha,
        "checksum_after": after_sha,
        "diff": diff,
        "detected_by": detected_by,
        "workspace": str(s.root),
        "workspace_snapshot": state.get("snapshot"),
    }
    return event


def _edited_path(tool_input: Any) -> str | None:
    if not isinstance(tool_input, dict):
        return None
    path = tool_input.get("file_path") or tool_input.get("notebook_path")
    return path if isinstance(path, str) and os.path.isabs(path) else None


def _display_path(s: HookSession, path: str) -> str:
    try:
        return str(Path(path).relative_to(s.root))
    except ValueError:
        return path


def cap(value: Any, limit: int) -> Any:
    """`value` with every string longer than `limit` characters cut, saying how much was cut."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}…[{len(value) - limit} characters cut]"
    if isinstance(value, dict):
        return {k: cap(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [cap(v, limit) for v in value]
    return value


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def safe(use_id: str) -> str:
    """The part of a file name that stands for a tool call (see `_component`)."""
    return _component(use_id, _PLAIN_USE_ID)


def redacted(value: Any, path: str) -> tuple[Any, list[dict[str, str]]]:
    """Return (`value` with its secrets masked, the `redactions` records of an event holding it
    at `path`). For what the hook keeps on disk or says back: secrets never reach disk, and the
    pipeline cannot record what it no longer sees."""
    strings, named = _walk_strings([value], path, wanted=is_secret_name)
    if not named and not may_hold_secret(strings):
        return value, []  # nothing any rule could match: the redactor (tens of ms to load) stays unloaded
    from flightlog.redact import Redactor

    clean, found = Redactor.default().redact_value(value, path)
    return clean, [r.to_json() for r in found]


def _component(value: str, plain: re.Pattern[str]) -> str:
    """One path component for `value`, never "", "." or ".."; two values never share one."""
    if plain.fullmatch(value):
        return value
    return "id." + _digest(value)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def host() -> str:
    return os.uname().nodename
