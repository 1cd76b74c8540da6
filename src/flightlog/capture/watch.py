"""`flightlog watch`: a workspace's file changes while an agent runs, as `file_op` events in the
trace that was active when each change happened.

Three layers, so everything but the last is testable without watchdog:
- pure: `Burst` coalesces notifications until the workspace is quiet, `plan_changes` turns a
  settled burst plus the before/after digests into changes (moves become `rename`), `Allowlist`
  says which folders changes may touch, `file_op_event` / `outside_allowlist_event` build events;
- `Watcher` keeps the workspace's before-state (digests, and small files' contents in a
  `ContentCache` for diffs) and turns a settled burst into events (reads files, no watchdog);
- `observe` is the watchdog edge: notifications in, `Watcher.notice` out.

Attribution: each change joins the trace `flightlog.active.current_trace` gives for its path at
the moment it was noticed (TRACEPARENT, else the Claude Code session's marker); the active span
is the parent. Changes made while no trace is active go to one trace of the watcher's own per
watch session (agent "unknown": the watcher cannot tell who made them), so a session's stray
changes read as one timeline.

Relevance: a path counts if `list_files` (git's view: tracked and untracked, minus ignored;
re-listed at each flush, so .gitignore edits apply at once) lists it, or if it was in the
before-state (a deletion). `.git/` and the data directory are never looked at.

A change outside the allowlist (a folder list, default the whole workspace) also yields an
`error` event, `payload.kind = "outside_allowlist"`, child of the file op's span: the watcher
cannot block a change, it can only make it visible (and counted by the collector's metrics).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from flightlog.active import current_trace
from flightlog.capture.workspace import MAX_CACHED_BYTES, ContentCache, Stat, changes, file_diff, list_files, scan
from flightlog.ids import derive_id, new_event_id
from flightlog.ledger.blobs import blob_digest

__all__ = [
    "AGENT_UNKNOWN",
    "DEFAULT_DEBOUNCE_MS",
    "SOURCE_KIND",
    "Allowlist",
    "Attribution",
    "Burst",
    "Change",
    "Content",
    "Notice",
    "Recorded",
    "Touch",
    "Watcher",
    "file_op_event",
    "observe",
    "outside_allowlist_event",
    "plan_changes",
]

DEFAULT_DEBOUNCE_MS: Final = 300
SOURCE_KIND: Final = "watch"
AGENT_UNKNOWN: Final = "unknown"
_HASH_CHUNK: Final = 1024 * 1024

Trace = dict[str, Any]


# ---- pure core ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowlist:
    """Folders (workspace-relative, POSIX, no trailing slash; "" is the whole workspace) where
    changes are expected."""

    folders: tuple[str, ...] = ("",)

    @classmethod
    def parse(cls, root: Path, values: Iterable[str]) -> Allowlist:
        """Return the allowlist of folder arguments (relative to `root`, or absolute inside it);
        none given means the whole workspace. Raises ValueError for a folder outside `root`."""
        folders: list[str] = []
        real_root = os.path.realpath(root)
        for value in values:
            full = os.path.realpath(os.path.join(real_root, value))
            rel = os.path.relpath(full, real_root)
            if rel == os.pardir or rel.startswith(os.pardir + os.sep):
                raise ValueError(f"--allow {value}: not inside the watched folder")
            folders.append("" if rel == os.curdir else Path(rel).as_posix())
        return cls(tuple(sorted(set(folders))) or ("",))

    def allows(self, path: str) -> bool:
        """Return whether workspace-relative `path` lies in one of the folders."""
        return any(not f or path == f or path.startswith(f + "/") for f in self.folders)

    def describe(self) -> list[str]:
        return [f + "/" if f else "./" for f in self.folders]


@dataclass(frozen=True)
class Touch:
    """When a path was last noticed changing, and the trace active then (None: no trace)."""

    at_ns: int
    trace: Trace | None


def _under(folder: str, names: Iterable[str]) -> list[str]:
    prefix = folder + "/"
    return [n for n in names if n.startswith(prefix)]


@dataclass
class Burst:
    """Notifications not yet settled, coalesced per path (an editor's save is several)."""

    touched: dict[str, Touch] = field(default_factory=dict)
    folders: dict[str, Touch] = field(default_factory=dict)  # created/deleted folders: look inside
    origins: dict[str, str] = field(default_factory=dict)  # moved path -> its path before the burst
    folder_moves: list[tuple[str, str, Touch]] = field(default_factory=list)
    first_ns: int = 0
    last_ns: int = 0

    def __bool__(self) -> bool:
        return bool(self.touched or self.folders or self.folder_moves)

    def _stamp(self, at_ns: int) -> None:
        if not self:
            self.first_ns = at_ns
        self.last_ns = max(self.last_ns, at_ns)

    def touch(self, path: str, touch: Touch, folder: bool = False) -> None:
        """Note that `path` (a file, or with `folder` a folder's contents) changed."""
        self._stamp(touch.at_ns)
        (self.folders if folder else self.touched)[path] = touch

    def move(self, src: str, dest: str, touch: Touch, folder: bool = False) -> None:
        """Note a move; chains (a -> b -> c) keep the first path as the origin."""
        self._stamp(touch.at_ns)
        if folder:
            self.folder_moves.append((src, dest, touch))
            return
        self.origins[dest] = self.origins.pop(src, src)
        self.touched[src] = self.touched.get(src, touch)
        self.touched[dest] = touch

    def settled(self, now_ns: int, quiet_ns: int, max_wait_ns: int) -> bool:
        """Return whether the burst is due: quiet for `quiet_ns`, or older than `max_wait_ns`
        (so a workspace that never goes quiet is still recorded)."""
        return bool(self) and (now_ns - self.last_ns >= quiet_ns or now_ns - self.first_ns >= max_wait_ns)

    def expand(self, before: Iterable[str], now: Iterable[str]) -> dict[str, Touch]:
        """Return every file path the burst may have changed, with its touch: touched files,
        the files of moved folders, and what `before` or `now` holds under touched folders."""
        before, now = list(before), list(now)
        paths = dict(self.touched)
        for src, dest, touch in self.folder_moves:
            for name in _under(src, before):
                moved = dest + name[len(src) :]
                self.origins.setdefault(moved, self.origins.pop(name, name))
                paths.setdefault(name, touch)
                paths[moved] = touch
            for name in _under(dest, now):
                paths.setdefault(name, touch)
        for folder, touch in self.folders.items():
            for name in (*_under(folder, before), *_under(folder, now)):
                paths.setdefault(name, touch)
        return paths


@dataclass(frozen=True)
class Change:
    """One file change: `op` create|patch|delete|rename; `old_path` only for rename."""

    op: str
    path: str
    old_path: str | None
    touch: Touch


def plan_changes(
    paths: Mapping[str, Touch],
    origins: Mapping[str, str],
    before: Mapping[str, str | None],
    after: Mapping[str, str],
) -> list[Change]:
    """Return the changes among `paths`, sorted by path. `before` holds the relevant files
    before the burst (digest, None when unknown), `after` the relevant files now (digest).
    A moved file whose origin is gone and whose new path exists is a rename (content may have
    changed too); otherwise a file absent before is created, absent now deleted, and a differing
    digest a patch. A path in neither (ignored, or created and removed in the burst) is nothing."""
    found: list[Change] = []
    done: set[str] = set()
    for dest, src in sorted(origins.items()):
        if src != dest and src in before and src not in after and dest in after and src not in done:
            found.append(Change("rename", dest, src, paths.get(dest) or paths[src]))
            done.update((src, dest))
    for path in sorted(set(paths) - done):
        was, now = path in before, path in after
        if not was and now:
            found.append(Change("create", path, None, paths[path]))
        elif was and not now:
            found.append(Change("delete", path, None, paths[path]))
        elif was and now and (before[path] is None or before[path] != after[path]):
            found.append(Change("patch", path, None, paths[path]))
    return sorted(found, key=lambda c: c.path)


@dataclass(frozen=True)
class Attribution:
    """Whose trace a change joins: ids plus what is known of the agent."""

    trace_id: str
    parent_span_id: str | None
    agent_id: str = AGENT_UNKNOWN
    session_id: str | None = None
    model: str | None = None
    source: str = SOURCE_KIND  # "traceparent", "marker", or the watcher's own trace

    @classmethod
    def of(cls, trace: Trace | None, own: Attribution) -> Attribution:
        """Return the attribution of an active trace (`current_trace`'s answer), or `own`."""
        if trace is None:
            return own
        model, agent, session = trace.get("model"), trace.get("agent_id"), trace.get("session_id")
        return cls(
            trace_id=str(trace["trace_id"]),
            parent_span_id=str(trace["span_id"]),
            agent_id=agent if isinstance(agent, str) and agent else AGENT_UNKNOWN,
            session_id=session if isinstance(session, str) else None,
            model=model if isinstance(model, str) and model else None,
            source=str(trace.get("source") or "marker"),
        )


@dataclass(frozen=True)
class Content:
    """A file's digest and, when small enough to keep, its bytes (None: absent or not kept)."""

    digest: str | None
    data: bytes | None


def _timestamp(at_ns: int) -> str:
    when = datetime.fromtimestamp(at_ns // 1000 / 1e6, tz=UTC)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _envelope(who: Attribution, span: str, parent: str | None, kind: str, at_ns: int) -> dict[str, Any]:
    return {
        "event_id": new_event_id(),
        "trace_id": who.trace_id,
        "span_id": span,
        "parent_span_id": parent,
        "type": kind,
        "timestamp": _timestamp(at_ns),
        "agent_id": who.agent_id,
        "session_id": who.session_id,
        "model": {"name": who.model} if who.model else None,
        "source": {"kind": SOURCE_KIND, "version": None},
        "user_context": {"user_id": os.environ.get("USER") or os.environ.get("LOGNAME"), "host": socket.gethostname()},
    }


def file_op_event(change: Change, who: Attribution, root: Path, before: Content, after: Content) -> dict[str, Any]:
    """Return the `file_op` event of a change: absolute `file_path` / `old_path` (as the Claude
    Code hook records them), checksums, and a diff labelled with the workspace-relative path
    (None when either side is binary, too large, or its content was not kept)."""
    before_known = change.op == "create" or before.data is not None
    after_known = change.op == "delete" or after.data is not None
    diff = file_diff(change.path, before.data, after.data) if before_known and after_known else None
    span = derive_id(f"flightlog-watch-file:{who.trace_id}:{change.path}:{change.touch.at_ns}:{new_event_id()}", 8)
    event = _envelope(who, span, who.parent_span_id, "file_op", change.touch.at_ns)
    event["status"] = "ok"
    event["payload"] = {
        "op": change.op,
        "file_path": str(root / change.path),
        "old_path": str(root / change.old_path) if change.old_path else None,
        "checksum_before": before.digest,
        "checksum_after": after.digest,
        "diff": diff,
        "detected_by": SOURCE_KIND,
    }
    return event


def outside_allowlist_event(
    change: Change, who: Attribution, root: Path, allowlist: Allowlist, file_span: str
) -> dict[str, Any]:
    """Return the `error` event flagging a change outside the allowlist, child of the file op's
    span. Its `payload.kind` is "outside_allowlist" (what the collector's metric counts)."""
    span = derive_id(f"flightlog-watch-outside:{file_span}", 8)
    event = _envelope(who, span, file_span, "error", change.touch.at_ns)
    event["status"] = "error"
    shown = f"{change.old_path} -> {change.path}" if change.old_path else change.path
    event["payload"] = {
        "kind": "outside_allowlist",
        "message": f"{change.op} {shown} is outside the allowed folders {', '.join(allowlist.describe())}",
        "op": change.op,
        "path": change.path,
        "old_path": change.old_path,
        "workspace": str(root),
        "allowlist": allowlist.describe(),
    }
    return event


# ---- before-state and flushes (files, no watchdog) -------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One change as the CLI shows it, and its events (file_op, maybe an outside_allowlist error)."""

    change: Change
    who: Attribution
    outside: bool
    events: list[dict[str, Any]]


def _read(path: Path) -> tuple[Stat, Content] | None:
    """Return the stat and content of a regular file (bytes kept only if small), None if it is
    not one (absent, a folder, a symlink)."""
    try:
        st = os.lstat(path)
        if st.st_mode & 0o170000 != 0o100000:
            return None
        with open(path, "rb") as f:
            if st.st_size <= MAX_CACHED_BYTES:
                data = f.read()
                return (len(data), st.st_mtime_ns), Content(blob_digest(data), data)
            h = hashlib.sha256()
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
            return (st.st_size, st.st_mtime_ns), Content("sha256:" + h.hexdigest(), None)
    except OSError:
        return None


class Watcher:
    """The before-state of one workspace and the burst of changes not yet recorded.

    Not thread-safe: one thread calls `notice`, `flush` and `reconcile` (the observer's thread
    only queues notifications)."""

    def __init__(
        self,
        root: Path,
        home: Path,
        allowlist: Allowlist,
        cache_dir: Path,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        import time

        self.root = Path(os.path.realpath(root))
        self.home = home
        self.allowlist = allowlist
        self.cache = ContentCache(cache_dir)
        self.environ = dict(os.environ if environ is None else environ)
        self.clock = clock or time.time_ns
        started = self.clock()
        seed = f"flightlog-watch:{self.root}:{os.getpid()}:{started}"
        session = "watch-" + derive_id(seed + ":session", 8)
        self.own = Attribution(derive_id(seed, 16), None, AGENT_UNKNOWN, session, None, SOURCE_KIND)
        self.burst = Burst()
        self.before: dict[str, str | None] = {}
        self.stats: dict[str, Stat] = {}
        self._skip = [os.path.realpath(home), os.path.realpath(cache_dir)]
        inside = (Path(os.path.relpath(s, self.root)).as_posix() for s in self._skip)
        self._skip_names = tuple(rel + "/" for rel in inside if not rel.startswith(".."))  # a data dir in the workspace

    def _listed(self) -> list[str] | None:
        names = list_files(self.root, home=self.home)
        return None if names is None else [n for n in names if not n.startswith(self._skip_names)]

    def start(self) -> int:
        """Read the workspace's before-state and return how many files it holds. Raises
        ValueError when git lists too many files to watch."""
        names = self._listed()
        if names is None:
            raise ValueError(f"{self.root} holds too many files to watch; watch a subfolder")
        for name in names:
            self._remember(name, _read(self.root / name))
        return len(self.before)

    def _remember(self, name: str, read: tuple[Stat, Content] | None) -> None:
        if read is None:
            self.before.pop(name, None)
            self.stats.pop(name, None)
            return
        self.stats[name], content = read
        self.before[name] = content.digest
        if content.data is not None:
            self.cache.keep(content.data)

    def relative(self, path: str) -> str | None:
        """Return `path` relative to the workspace, or None for paths never looked at (outside
        it, under .git/, or in the data directory)."""
        full = os.path.abspath(path)
        if any(full == s or full.startswith(s + os.sep) for s in self._skip):
            return None
        rel = os.path.relpath(full, self.root)
        if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
            return None
        rel = Path(rel).as_posix()
        return None if ".git" in rel.split("/") else rel

    def notice(self, kind: str, src: str, dest: str | None = None, folder: bool = False) -> None:
        """Take one notification (`kind` created|modified|closed|deleted|moved; absolute
        paths); the trace active now is the one the change joins."""
        rel_src = self.relative(src)
        rel_dest = self.relative(dest) if dest else None
        target = rel_dest or rel_src
        if target is None:
            return
        trace = current_trace(self.home, self.root / target, self.environ)
        touch = Touch(self.clock(), trace)
        if kind == "moved" and rel_src and rel_dest:
            self.burst.move(rel_src, rel_dest, touch, folder)
            return
        for rel in (rel_src, rel_dest):
            if rel is not None:
                self.burst.touch(rel, touch, folder)

    def due(self, quiet_ns: int, max_wait_ns: int) -> bool:
        return self.burst.settled(self.clock(), quiet_ns, max_wait_ns)

    def reconcile(self) -> None:
        """Add to the burst every file whose stat differs from the before-state (what the
        observer missed: changes just before a stop, or an overflowed kernel queue)."""
        names = self._listed()
        if names is None:
            return
        touch = Touch(self.clock(), None)
        for _, name in changes(self.stats, scan(self.root, names)):
            if name not in self.burst.touched:
                trace = current_trace(self.home, self.root / name, self.environ)
                self.burst.touch(name, Touch(touch.at_ns, trace))

    def flush(self) -> list[Recorded]:
        """Turn the burst into recorded changes and make the present the new before-state."""
        burst, self.burst = self.burst, Burst()
        if not burst:
            return []
        listed = self._listed()
        now_names = set(listed) if listed is not None else set(self.before) | set(burst.touched)
        paths = burst.expand(self.before, now_names)
        before: dict[str, str | None] = {}
        reads: dict[str, tuple[Stat, Content]] = {}
        for path in paths:
            if path not in now_names and path not in self.before:
                continue  # ignored, or gone again within the burst
            read = _read(self.root / path)
            if path not in now_names and read is not None:
                self.before.pop(path)  # ignored from now on (.gitignore changed): not a deletion
                self.stats.pop(path, None)
            if path in self.before:
                before[path] = self.before[path]
            if read is not None and path in now_names:
                reads[path] = read
        after = {path: content for path, (_, content) in reads.items()}
        planned = plan_changes(paths, burst.origins, before, {p: c.digest or "" for p, c in after.items()})
        recorded = [self._record(change, before, after) for change in planned]
        for path in paths:  # what was read becomes the before-state: a later write is a later change
            self._remember(path, reads.get(path))
        if listed is not None and any(p == ".gitignore" or p.endswith("/.gitignore") for p in paths):
            for name in now_names - set(self.before) - set(paths):
                self._remember(name, _read(self.root / name))  # newly un-ignored files join quietly
        return recorded

    def _record(self, change: Change, before: Mapping[str, str | None], after: Mapping[str, Content]) -> Recorded:
        old = change.old_path or change.path
        sha = before.get(old) if old in before else None
        old_content = Content(sha, self.cache.content(sha) if sha else None)
        new_content = after.get(change.path, Content(None, None))
        who = Attribution.of(change.touch.trace, self.own)
        event = file_op_event(change, who, self.root, old_content, new_content)
        events = [event]
        outside = not self.allowlist.allows(change.path) or (
            change.old_path is not None and not self.allowlist.allows(change.old_path)
        )
        if outside:
            events.append(outside_allowlist_event(change, who, self.root, self.allowlist, event["span_id"]))
        return Recorded(change, who, outside, events)


# ---- the watchdog edge -------------------------------------------------------------------------

Notice = tuple[str, str, str | None, bool]  # (kind, src, dest, is folder)
_KINDS: Final = frozenset({"created", "modified", "closed", "deleted", "moved"})


def observe(root: Path, put: Callable[[Notice], None], stopped: threading.Event) -> Callable[[], None]:
    """Start a watchdog observer on `root` (recursive) that passes each relevant notification to
    `put` from its own thread; watches are in place when this returns. Returns the function that
    stops it and waits for its thread."""
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    def text(path: bytes | str) -> str:
        return os.fsdecode(path)

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.event_type not in _KINDS:
                return
            if event.is_directory and event.event_type in ("modified", "closed"):
                return  # a folder's own mtime: its files report for themselves
            dest = text(event.dest_path) if event.event_type == "moved" else None
            put((event.event_type, text(event.src_path), dest, event.is_directory))

    observer = Observer()
    observer.schedule(Handler(), str(root), recursive=True)
    observer.start()

    def stop() -> None:  # idempotent: the CLI stops it before its last flush and again on the way out
        if observer.is_alive():
            observer.stop()
            observer.join(timeout=10)

    return stop
