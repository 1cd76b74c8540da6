"""`flightlog exec -- CMD …`: run a command as a traced `shell` span and record the files it
changed.

1. Snapshot the workspace (the git work tree around the command's folder, else that folder).
2. Run the command with `TRACEPARENT` naming its span: stdin is the user's, stdout and stderr
   go to the user live and are also captured (head and tail, capped) for the event; redaction
   happens in the write path like for every other event.
3. Snapshot again, compare: one `file_op` per created, patched, deleted or renamed file, with
   checksums, unified diffs for text and `workspace_snapshot` = the snapshot from step 1, which
   `flightlog rollback` restores from.

Capture fails open: if a snapshot or the recording fails, the command still runs and its exit
code is still ours; a one-line warning says what was not recorded.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, Final

from flightlog.active import current_trace, format_traceparent
from flightlog.capture.claude_shape import iso_ms
from flightlog.capture.workspace import file_diff
from flightlog.errors import FlightlogError
from flightlog.ids import derive_id, stable_event_id
from flightlog.snapshot import Change, Snapshot, compare_snapshots, take_snapshot

__all__ = ["MAX_CAPTURE_BYTES", "RunResult", "exec_events", "run_command", "run_exec", "workspace_root"]

MAX_CAPTURE_BYTES: Final = 64 * 1024  # per stream kept for the event: the first and last halves
AGENT_ID: Final = "exec"
_FORWARDED: Final = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")


@dataclass
class RunResult:
    """How a command ended: `exit_code` as a shell reports it (128+N when killed by signal N)."""

    exit_code: int
    started_ns: int
    duration_ms: int
    stdout: str
    stderr: str


class _Capture:
    """Keeps the first and the last `limit // 2` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            del self.tail[: max(0, len(self.tail) - self.half)]

    def text(self) -> str:
        omitted = self.total - len(self.head) - len(self.tail)
        middle = f"\n…[{omitted} bytes not captured]…\n".encode() if omitted else b""
        return (bytes(self.head) + middle + bytes(self.tail)).decode("utf-8", "replace")


def _pump(source: BinaryIO, sink_fd: int, capture: _Capture) -> None:
    """Copy a child's output to our own fd as it comes, keeping a capped copy. If our side is
    closed (`flightlog exec -- yes | head`), stop reading so the child gets SIGPIPE as it
    would without us."""
    passing = True
    fd = source.fileno()
    while chunk := os.read(fd, 65536):
        capture.add(chunk)
        if passing:
            try:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(sink_fd, view) :]
            except BrokenPipeError:
                break
            except OSError:
                passing = False  # our stdout is gone some other way: keep capturing
    source.close()


def _terminal_delivers_sigint() -> bool:
    """True when we run in the foreground of a terminal: then Ctrl-C reaches the child (same
    process group) from the terminal itself, and forwarding it would deliver it twice."""
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
    return False


def run_command(argv: list[str], cwd: Path, env: dict[str, str], limit: int = MAX_CAPTURE_BYTES) -> RunResult:
    """Run `argv` in `cwd` with stdin inherited and output passed through live; return how it
    ended with up to `limit` bytes of each output stream. Signals we get (Ctrl-C, TERM, HUP)
    go to the child; we wait for it either way."""
    started_ns = time.time_ns()
    clock = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        message = f"flightlog exec: cannot run {argv[0]}: {exc.strerror}"
        print(message, file=sys.stderr)
        return RunResult(code, started_ns, 0, "", message + "\n")
    out, err = _Capture(limit), _Capture(limit)
    assert proc.stdout is not None and proc.stderr is not None  # both are PIPE above
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, sys.stdout.fileno(), out), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, sys.stderr.fileno(), err), daemon=True),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    for pump in pumps:
        pump.start()

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT and _terminal_delivers_sigint():
            return
        with contextlib.suppress(OSError):
            proc.send_signal(signum)

    previous: dict[int, Any] = {}
    for name in _FORWARDED:
        signum = getattr(signal, name, None)
        if signum is not None:
            with contextlib.suppress(ValueError, OSError):  # not the main thread: no forwarding
                previous[signum] = signal.signal(signum, forward)
    try:
        returncode = proc.wait()
        for pump in pumps:
            pump.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    duration_ms = round((time.perf_counter() - clock) * 1000)
    exit_code = 128 - returncode if returncode < 0 else returncode
    return RunResult(exit_code, started_ns, duration_ms, out.text(), err.text())


def workspace_root(cwd: Path) -> Path:
    """Return the git work tree containing `cwd`, else `cwd` itself."""
    try:
        out = subprocess.run(
            ["git", "-C", str(cwd), "rev-parse", "--show-toplevel"], capture_output=True, timeout=10, check=True
        ).stdout
        top = out.decode("utf-8", "surrogateescape").strip()
        if top:
            return Path(top)
    except (OSError, subprocess.SubprocessError):
        pass
    return cwd


def _diff(home: Path, change: Change) -> str | None:
    from flightlog.ledger.blobs import BlobStore

    before, after = change.before, change.after
    if (before is not None and before.is_link) or (after is not None and after.is_link):
        return None
    store = BlobStore(home / "blobs")
    try:
        old = store.get(before.digest) if before is not None else None
        new = store.get(after.digest) if after is not None else None
    except FlightlogError:
        return None
    return file_diff(change.path, old, new)


def exec_events(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    agent_id: str,
    session_id: str | None,
    argv: list[str],
    cwd: Path,
    root: Path,
    result: RunResult,
    pre: Snapshot | None,
    changes: list[Change],
    diffs: dict[str, str | None],
) -> list[dict[str, Any]]:
    """Return the producer events of one exec: the `shell` span, then a `file_op` child per
    change. Event ids derive from the span, so a re-sent batch stores nothing twice."""
    start_ms = result.started_ns // 1_000_000
    end_ns = result.started_ns + result.duration_ms * 1_000_000

    def envelope(kind: str, span: str, parent: str | None, ts_ns: int, key: str) -> dict[str, Any]:
        return {
            "event_id": stable_event_id(f"flightlog-exec:{trace_id}:{span}:{kind}:{key}", start_ms),
            "trace_id": trace_id,
            "span_id": span,
            "parent_span_id": parent,
            "type": kind,
            "timestamp": iso_ms(ts_ns),
            "agent_id": agent_id,
            "session_id": session_id,
        }

    shell = envelope("shell", span_id, parent_span_id, result.started_ns, "")
    shell["duration_ms"] = result.duration_ms
    shell["status"] = "ok" if result.exit_code == 0 else "error"
    shell["payload"] = {
        "command": shlex.join(argv),
        "argv": argv,
        "cwd": str(cwd),
        "exit_code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "workspace": str(root),
        "workspace_snapshot": pre.id if pre is not None else None,
    }
    events = [shell]
    for change in changes:
        before, after = change.before, change.after
        event = envelope("file_op", derive_id(f"flightlog-exec-file:{span_id}:{change.path}", 8), span_id, end_ns, "")
        event["status"] = "ok"
        event["payload"] = {
            "op": change.op,
            "file_path": change.path,
            "old_path": change.old_path,
            "checksum_before": before.digest if before is not None else None,
            "checksum_after": after.digest if after is not None else None,
            "mode_before": f"{before.mode:06o}" if before is not None else None,
            "mode_after": f"{after.mode:06o}" if after is not None else None,
            "diff": diffs.get(change.path),
            "workspace": str(root),
            "workspace_snapshot": pre.id if pre is not None else None,
        }
        events.append(event)
    return events


def _warn(what: str, exc: BaseException) -> None:
    reason = exc.message if isinstance(exc, FlightlogError) else (getattr(exc, "strerror", None) or str(exc))
    print(f"flightlog exec: {what}: {reason}", file=sys.stderr)


def run_exec(
    argv: list[str],
    cwd: Path,
    home: Path,
    trace_id: str | None = None,
    excludes: tuple[str, ...] = (),
) -> int:
    """Snapshot, run `argv` in `cwd` as a traced shell span, record it and the files it changed;
    return the command's exit code (recording problems are warnings, never a different code)."""
    from flightlog.recorder import record

    cwd = Path(os.path.realpath(cwd))
    root = workspace_root(cwd)
    active = None if trace_id is not None else current_trace(home, cwd)
    parent: str | None = None
    if trace_id is None and active is not None:
        trace_id, parent = str(active["trace_id"]), str(active["span_id"])
    trace_id = trace_id or os.urandom(16).hex()
    span_id = os.urandom(8).hex()
    agent_id = str(active.get("agent_id") or AGENT_ID) if active else AGENT_ID
    session_id = str(active["session_id"]) if active and active.get("session_id") else None

    pre: Snapshot | None = None
    try:
        pre = take_snapshot(root, home, excludes)
    except (FlightlogError, OSError) as exc:
        _warn("no snapshot before the command, file changes not recorded", exc)

    env = dict(os.environ)
    env["TRACEPARENT"] = format_traceparent(trace_id, span_id)
    env["FLIGHTLOG_HOME"] = str(home)  # nested flightlog-aware tools record to the same place
    result = run_command(argv, cwd, env)

    changes: list[Change] = []
    diffs: dict[str, str | None] = {}
    if pre is not None:
        try:
            post = take_snapshot(root, home, excludes)
            changes = compare_snapshots(pre.entries, post.entries)
            diffs = {c.path: _diff(home, c) for c in changes if c.op != "rename"}
        except (FlightlogError, OSError) as exc:
            _warn("no snapshot after the command, file changes not recorded", exc)
    events = exec_events(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        agent_id=agent_id,
        session_id=session_id,
        argv=argv,
        cwd=cwd,
        root=root,
        result=result,
        pre=pre,
        changes=changes,
        diffs=diffs,
    )
    try:
        record(events, home)
    except (FlightlogError, OSError) as exc:
        _warn(f"trace {trace_id} not recorded", exc)
    return result.exit_code
