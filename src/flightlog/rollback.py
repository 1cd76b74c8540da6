"""`flightlog rollback TRACE_ID`: put back every file a trace changed as it was before the trace.

1. From the trace's `file_op` events (ledger order, then time), each path's state before its
   first change and after its last (`trace_history`, pure).
2. Plan (reads only): the content each path had before, from the snapshot the events name
   (`workspace_snapshot`) or from the blob of `checksum_before`; every file's current content
   must still be what the trace left (`checksum_after`), else the rollback is refused naming
   the files, unless forced.
3. Apply, all or nothing as far as a filesystem allows: every new content is first written to a
   temporary file beside its target and fsynced; only when all are staged are they renamed into
   place and the trace's new files deleted.
4. A `rollback` event, in a trace of its own, records what was done (`rollback_event`).

`--git` mode reverts the trace's commits instead (`flightlog.gitlink.revert_trace_commits`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flightlog.errors import BlobError, FlightlogError
from flightlog.ledger.blobs import BlobStore, blob_digest
from flightlog.snapshot import MODE_LINK, Entry, SnapshotError, load_snapshot

__all__ = [
    "PathHistory",
    "RollbackError",
    "RollbackPlan",
    "apply_plan",
    "git_commits",
    "local_changes",
    "plan_rollback",
    "rollback_event",
    "rollback_files",
    "trace_history",
]


class RollbackError(FlightlogError):
    """A rollback cannot be done (files changed since the trace, content not stored, a write
    failed); nothing was changed unless the message says otherwise."""

    exit_code = 8


@dataclass
class PathHistory:
    """One path a trace touched: its content digest before the trace (None: it did not exist)
    and after the trace's last change to it."""

    path: str
    workspace: str | None
    snapshot: str | None
    before: str | None
    after: str | None
    before_known: bool = True
    mode_before: int | None = None


@dataclass
class _Action:
    shown: str
    target: Path
    kind: str  # "restore" or "delete"
    digest: str | None = None
    content: bytes = b""
    mode: int = 0o100644
    tmp: Path | None = None


@dataclass
class RollbackPlan:
    """What a rollback would do: `actions` to take, paths already as they were (`unchanged`),
    and `conflicts` (changed since the trace) that block it unless forced."""

    actions: list[_Action] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    keep_dirs: dict[Path, set[str]] = field(default_factory=dict)

    def describe(self) -> list[str]:
        """One line per file: `restore PATH`, `delete PATH`."""
        return [f"{a.kind:8} {a.shown}" for a in self.actions]


# ---- 1. history (pure) ------------------------------------------------------------------


def _mode(value: object) -> int | None:
    if isinstance(value, str) and len(value) == 6:
        with contextlib.suppress(ValueError):
            return int(value, 8)
    return None


def local_changes(
    rows: Sequence[tuple[int, bytes]], remote: Mapping[int, str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Split a trace's entries (index, leaf) into the events to roll back here and the file
    changes and commits another machine sent (path: who sent it; `remote` as `SqliteStore.remote_origins`
    gives it). Those name paths and earlier content of another machine's files, or planted ones:
    rolled back here they would write this machine's files."""
    events: list[dict[str, Any]] = []
    elsewhere: dict[str, str] = {}
    for index, leaf in rows:
        event = json.loads(leaf)
        if index in remote and event.get("type") in ("file_op", "git_op"):
            payload = event.get("payload")
            p = payload if isinstance(payload, dict) else {}
            # A file path, or a commit of a repository: both name this machine's files.
            name = p.get("file_path") if event["type"] == "file_op" else f"commit {p.get('commit')} in {p.get('repo')}"
            elsewhere[str(name)] = remote[index]
            continue
        events.append(event)
    return events, elsewhere


def trace_history(events: list[dict[str, Any]]) -> list[PathHistory]:
    """Return, per path the trace's file_op events touched, its state before the first and after
    the last change. `events` in ledger order; they are taken in timestamp order (stable)."""
    found: dict[tuple[str | None, str], PathHistory] = {}
    ops = [e for e in events if e.get("type") == "file_op" and isinstance(e.get("payload"), dict)]
    for event in sorted(ops, key=lambda e: str(e.get("timestamp", ""))):
        p = event["payload"]
        path, op = p.get("file_path"), p.get("op")
        if not isinstance(path, str) or not path:
            continue
        workspace = p.get("workspace") if isinstance(p.get("workspace"), str) else None
        snapshot = p.get("workspace_snapshot") if isinstance(p.get("workspace_snapshot"), str) else None
        before, after = p.get("checksum_before"), p.get("checksum_after")
        steps: list[tuple[str, str | None, str | None, bool, int | None]] = []
        if op == "create":
            steps.append((path, None, after, True, None))
        elif op == "delete":
            steps.append((path, before, None, before is not None, _mode(p.get("mode_before"))))
        elif op == "patch":
            steps.append((path, before, after, before is not None, _mode(p.get("mode_before"))))
        elif op == "rename" and isinstance(p.get("old_path"), str):
            steps.append((p["old_path"], before, None, before is not None, _mode(p.get("mode_before"))))
            steps.append((path, None, after, True, None))
        for name, was, now, known, mode in steps:
            key = (workspace, name)
            if key not in found:
                found[key] = PathHistory(name, workspace, snapshot, was, now, known, mode)
            else:
                found[key].after = now
    return list(found.values())


# ---- 2. plan (reads only) ---------------------------------------------------------------


def _current(path: Path) -> tuple[str | None, int | None] | str:
    """(digest, mode) of what is at `path` now, (None, None) if nothing; a string says why it
    cannot be compared (a folder, unreadable)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    try:
        if stat.S_ISLNK(st.st_mode):
            data = os.fsencode(os.readlink(path))
            return blob_digest(data), MODE_LINK
        if not stat.S_ISREG(st.st_mode):
            return "it is not a regular file now"
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        return "sha256:" + digest, 0o100000 | (st.st_mode & 0o777)
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"


def _inside(root: Path, rel: str) -> Path | None:
    """`root/rel` if `rel` stays inside `root` and no existing folder on the way is a symlink
    out of it; else None."""
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    real_root = os.path.realpath(root)
    target = Path(real_root, *parts)
    folder = target.parent
    while not folder.exists() and folder != Path(real_root):
        folder = folder.parent
    return target if _within(folder, root) else None


def _within(path: Path, root: Path) -> bool:
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def plan_rollback(
    history: list[PathHistory],
    home: Path,
    default_root: Path,
    force: bool = False,
    roots: Sequence[Path] | None = None,
) -> RollbackPlan:
    """Return what rolling back `history` would do. Raise RollbackError naming every path whose
    earlier content is unknown or unsafe to write; report paths changed since the trace as
    `conflicts` (the caller refuses unless `force`). With `roots`, every path must lie in one
    of them: the events name paths and content, and whoever may store events may name any."""
    store = BlobStore(home / "blobs")
    snapshots: dict[str, dict[str, Entry] | None] = {}
    plan = RollbackPlan()
    problems: list[str] = []
    for h in history:
        root = Path(h.workspace) if h.workspace else default_root
        target = Path(h.path) if os.path.isabs(h.path) else _inside(root, h.path)
        if target is None:
            problems.append(f"{h.path}: outside the workspace {root}")
            continue
        # Never scanned, so never a recorded change: planted (by the path or by the workspace;
        # any case, for case-insensitive file systems).
        if ".git" in (part.casefold() for part in Path(os.path.realpath(target)).parts):
            problems.append(f"{h.path}: inside .git, which flightlog never records")
            continue
        if roots is not None and not any(_within(target, r) for r in roots):
            problems.append(f"{h.path}: not in a workspace this collector snapshotted itself")
            continue
        if not h.before_known:
            problems.append(f"{h.path}: the trace did not record its content before the change")
            continue
        now = _current(target)
        if isinstance(now, str):
            problems.append(f"{h.path}: {now}")
            continue
        if now[0] != h.after:
            plan.conflicts.append(h.path)
            if not force:
                continue
        entry = None
        if h.snapshot is not None:
            if h.snapshot not in snapshots:
                try:
                    snapshots[h.snapshot] = load_snapshot(home, h.snapshot).entries
                except (SnapshotError, BlobError):
                    snapshots[h.snapshot] = None
            entries = snapshots[h.snapshot]
            if entries is not None:
                plan.keep_dirs.setdefault(root, {p.rpartition("/")[0] for p in entries})
                rel = os.path.relpath(target, os.path.realpath(root)) if os.path.isabs(h.path) else h.path
                found = entries.get(rel.replace(os.sep, "/"))
                entry = found if found is not None and found.digest == h.before else None
        mode = entry.mode if entry is not None else (h.mode_before or now[1] or 0o100644)
        if h.before is None:
            if now[0] is not None:
                plan.actions.append(_Action(h.path, target, "delete"))
            else:
                plan.unchanged.append(h.path)
            continue
        if now[0] == h.before and (now[1] == mode or entry is None):
            plan.unchanged.append(h.path)
            continue
        try:
            content = store.get(h.before)
        except BlobError:
            problems.append(f"{h.path}: its content before the trace ({h.before[:19]}…) is not stored")
            continue
        plan.actions.append(_Action(h.path, target, "restore", h.before, content, mode))
    if problems:
        raise RollbackError("cannot roll back: " + "; ".join(problems))
    return plan


# ---- 3. apply ---------------------------------------------------------------------------


def _stage(action: _Action, n: int) -> None:
    """Write `action`'s content to a temporary file in the nearest existing folder of its
    target (fsynced, final mode), so that applying it is one rename."""
    folder = action.target.parent
    while not folder.exists():
        folder = folder.parent
    tmp = folder / f".flightlog-rollback.{os.getpid()}.{n}.tmp"
    action.tmp = tmp
    if action.mode == MODE_LINK:
        os.symlink(os.fsdecode(action.content), tmp)
        return
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(action.content)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, action.mode & 0o7777)


def apply_plan(plan: RollbackPlan) -> list[str]:
    """Carry out `plan` and return the paths changed. Every write is staged first; if staging
    fails nothing is changed. A failure after that (rare: a rename or delete refused) names
    what was and was not done."""
    writes = [a for a in plan.actions if a.kind == "restore"]
    try:
        for n, action in enumerate(writes):
            _stage(action, n)
        for action in plan.actions:
            if action.kind == "delete" and not os.access(action.target.parent, os.W_OK):
                raise PermissionError(13, "Permission denied", str(action.target.parent))
    except OSError as exc:
        for action in writes:
            if action.tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(action.tmp)
        raise RollbackError(f"cannot write {exc.filename or 'a file'}: {exc.strerror}; nothing was changed") from None
    done: list[str] = []
    touched: set[Path] = set()
    try:
        for action in plan.actions:
            if action.kind == "restore" and action.tmp is not None:
                action.target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(action.tmp, action.target)
            else:
                os.unlink(action.target)
            touched.add(action.target.parent)
            done.append(action.shown)
    except OSError as exc:
        left = [a.shown for a in plan.actions if a.shown not in done]
        for action in writes:
            if action.tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(action.tmp)
        raise RollbackError(
            f"rollback stopped at {exc.filename}: {exc.strerror}; restored {', '.join(done) or 'nothing'}, "
            f"not restored {', '.join(left)}"
        ) from None
    for folder in touched:
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _prune_dirs(plan)
    return done


def _prune_dirs(plan: RollbackPlan) -> None:
    """Remove folders left empty by deleting the trace's new files, when the snapshot shows
    they did not hold files before the trace."""
    for action in plan.actions:
        if action.kind != "delete":
            continue
        for root, dirs in plan.keep_dirs.items():
            real_root = Path(os.path.realpath(root))
            folder = action.target.parent
            while folder != real_root and real_root in folder.parents:
                rel = folder.relative_to(real_root).as_posix()
                if any(d == rel or d.startswith(rel + "/") for d in dirs):
                    break
                try:
                    folder.rmdir()  # fails if not empty, which is what we want
                except OSError:
                    break
                folder = folder.parent


# ---- 4. events and git ------------------------------------------------------------------


def git_commits(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Return {repo: [commit, …]} of the trace's `git_op` commit events, oldest first."""
    found: dict[str, list[str]] = {}
    ops = [e for e in events if e.get("type") == "git_op" and isinstance(e.get("payload"), dict)]
    for event in sorted(ops, key=lambda e: str(e.get("timestamp", ""))):
        p = event["payload"]
        if p.get("op") == "commit" and isinstance(p.get("commit"), str) and isinstance(p.get("repo"), str):
            commits = found.setdefault(p["repo"], [])
            if p["commit"] not in commits:
                commits.append(p["commit"])
    return found


def rollback_event(original_trace: str, rollback_trace: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Return the producer event recording a rollback of `original_trace`, the root span of its
    own trace `rollback_trace`."""
    import time

    from flightlog.capture.claude_shape import iso_ms

    return {
        "trace_id": rollback_trace,
        "span_id": os.urandom(8).hex(),
        "type": "rollback",
        "timestamp": iso_ms(time.time_ns()),
        "agent_id": "flightlog",
        "status": "ok",
        "payload": {"original_trace_id": original_trace, **payload},
    }


def rollback_files(
    events: list[dict[str, Any]],
    home: Path,
    *,
    dry_run: bool = False,
    force: bool = False,
    actor: str | None = None,
    roots: Sequence[Path] | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Roll back the files of the trace whose `events` are given (for a caller that stores events
    itself, such as the collector's rollback route); return (what was or would be done, the
    `rollback` event to store — None on a dry run). Raises RollbackError when it may not;
    `roots` as for `plan_rollback`."""
    if not events:
        raise RollbackError("no such trace")
    trace_id = str(events[0]["trace_id"])
    plan = plan_rollback(trace_history(events), home, Path.cwd(), force, roots)
    if plan.conflicts and not force:
        raise RollbackError("changed since the trace: " + ", ".join(plan.conflicts))
    result: dict[str, Any] = {"mode": "files", "actions": plan.describe(), "unchanged": plan.unchanged}
    if dry_run:
        return result, None
    done = apply_plan(plan)
    new_trace = os.urandom(16).hex()
    payload = {"mode": "files", "files": done, "forced": bool(plan.conflicts), "actor": actor}
    result["rollback_trace_id"] = new_trace
    return result, rollback_event(trace_id, new_trace, payload)
