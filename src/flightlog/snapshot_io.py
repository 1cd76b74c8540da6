"""The I/O under `flightlog.snapshot`: the per-workspace stat cache, batched blob writes,
reading a workspace file without following symlinks out of it, and the private git index that
answers "has anything changed?" for a git work tree.

The private index is the fast path of a repeated snapshot in a git work tree.

Checking 10,000 files' stats one `os.lstat` at a time costs Python about as long as git takes
for a whole `git add -A && git write-tree`. So for a git work tree, flightlog keeps an index
of its own (`$FLIGHTLOG_HOME/snapshots/index/<key>.idx`, never the repository's), holding every
file of the last snapshot with its stat, filled by `git update-index --info-only` (which hashes
without writing objects into the repository). One `git ls-files --modified --deleted --others`
against it then answers in C, with git's own racy-timestamp rules, whether anything changed.
If nothing did, and nothing that decides the file list changed either (the repository's index,
its exclude files and config, our settings: "guards"), the last snapshot is the answer.

It only ever accelerates: any doubt (output, an error, a guard changed) means the full scan in
`flightlog.snapshot`, which then brings this index up to date. The index is updated *before*
the scan reads contents, so if a file changes in between, the index holds the older stat and
the next check reports it: it never hides a change.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from flightlog.home import private_dir
from flightlog.ledger.blobs import BlobStore

__all__ = ["RACY_NS", "BlobBatch", "PrivateIndex", "StatCache", "WorkspaceReader", "snapshot_roots"]

# How close to the moment it was read a file's mtime may be before its cached digest is not
# trusted: filesystems stamp mtimes at a coarse tick (Linux: a jiffy; HFS+ 1 s; FAT 2 s), so a
# file rewritten within the tick it was read in keeps the same stat. Such files are read again
# next time (git calls them "racily clean").
RACY_NS: Final = 2_000_000_000
_SYNC_EACH_BELOW: Final = 32  # fewer new blobs than this: fsync each; more: one sync for all

StatKey = tuple[int, int, int, int, int]  # size, mtime_ns, ino, ctime_ns, mode


class StatCache:
    """What each file's stat and digest were when last read, for one workspace root.

    Stored as `$FLIGHTLOG_HOME/snapshots/stat/<sha256(root)[:16]>.json`. It is derived data and
    written without fsync: losing it costs one full re-read. Its digests name blobs that were
    made durable before it was saved, and flightlog never deletes blobs, so a trusted entry's
    content is always in the store."""

    racy_ns = RACY_NS

    def __init__(self, path: Path, root: str, entries: dict[str, list[object]]) -> None:
        self.path = path
        self.root = root
        self.entries = entries
        self.changed = False

    @classmethod
    def load(cls, home: Path, root: Path) -> StatCache:
        key = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        path = home / "snapshots" / "stat" / f"{key}.json"
        entries: dict[str, list[object]] = {}
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(path.read_bytes())
            if isinstance(doc, dict) and doc.get("version") == 1 and doc.get("root") == str(root):
                found = doc.get("entries")
                entries = found if isinstance(found, dict) else {}
        return cls(path, str(root), entries)

    def lookup(self, name: str, key: StatKey) -> str | None:
        """Return the remembered hex digest of `name` if its stat is still `key`, else None."""
        known = self.entries.get(name)
        if known is None or len(known) != 6 or not isinstance(known[5], str):
            return None
        if (known[0], known[1], known[2], known[3], known[4]) != key:
            return None
        return known[5]

    def remember(self, name: str, key: StatKey, sha: str | None) -> None:
        """Record `name`'s stat and digest; None means "read it again next time"."""
        self.entries[name] = [*key, sha]
        self.changed = True

    def save(self, keep: set[str]) -> None:
        """Write the cache (only the paths in `keep`) if anything changed; never raises: a cache
        that cannot be written only makes the next snapshot slower."""
        if len(keep) != len(self.entries):
            self.entries = {k: v for k, v in self.entries.items() if k in keep}
            self.changed = True
        # Written even empty the first time: it also says this home snapshotted the root
        # (`snapshot_roots`), which an empty new project must be as well.
        if not self.changed and self.path.exists():
            return
        doc = {"version": 1, "root": self.root, "entries": self.entries}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            for folder in (self.path.parent.parent, self.path.parent):  # both private, not just the last
                folder.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, separators=(",", ":"))
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()


def snapshot_roots(home: Path) -> list[Path]:
    """The workspaces this home has snapshotted itself (their stat caches name them): where its
    own captures (the hook on this machine, `exec`, `watch`) recorded file changes."""
    roots = []
    for path in sorted((home / "snapshots" / "stat").glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(path.read_bytes())
            if isinstance(doc, dict) and isinstance(doc.get("root"), str):
                roots.append(Path(doc["root"]))
    return roots


class BlobBatch:
    """New blobs of one snapshot, written without a per-file fsync and made durable together.

    Durability argument: each blob is written to a temporary name beside its final one, and
    only renamed into place after its bytes are on disk (`finish`: one `os.sync()` for all,
    then the renames, then another sync for the directory entries). A crash at any point leaves
    either no file under a blob's name or the complete file, never a partial one that a later
    snapshot would trust because the name exists; stray temporary files are harmless. The
    manifest naming these blobs is stored (fsynced) only after `finish` returns. For a handful
    of blobs, fsyncing each is cheaper than a whole-system sync, so small batches do that."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.pending: dict[str, tuple[Path, Path]] = {}

    def add(self, digest: str, data: bytes) -> bool:
        """Queue `data` (named `digest`); return True if it is new to the store."""
        if digest in self.pending:
            return False
        final = self.store.path(digest)
        if final.exists():
            return False
        tmp = final.with_name(f".{final.name}.{os.getpid()}.snap.tmp")
        try:
            private_dir(final.parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as exc:
            self.abort()
            from flightlog.errors import BlobError

            raise BlobError(f"cannot store blob {digest}: {exc.strerror}") from None
        self.pending[digest] = (tmp, final)
        return True

    def finish(self) -> None:
        """Make every queued blob durable under its name."""
        if not self.pending:
            return
        items = list(self.pending.values())
        self.pending = {}
        if len(items) < _SYNC_EACH_BELOW or not hasattr(os, "sync"):
            for tmp, _ in items:
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            for tmp, final in items:
                os.replace(tmp, final)
            for folder in {final.parent for _, final in items}:
                fd = os.open(folder, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            return
        _sync_fs(self.store.directory)
        for tmp, final in items:
            os.replace(tmp, final)
        _sync_fs(self.store.directory)

    def abort(self) -> None:
        """Remove the temporary files of blobs not yet finished."""
        for tmp, _ in self.pending.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.pending = {}


def _sync_fs(folder: Path) -> None:
    """Flush the filesystem holding `folder`: syncfs(2) where libc has it (Linux), so unrelated
    dirty data on other filesystems is not waited for; else a whole-system sync."""
    try:
        import ctypes

        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        os.sync()
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class WorkspaceReader:
    """Reads files of one workspace without leaving it: the last component is opened with
    O_NOFOLLOW (a symlink is read as its target string, never through), and a file under a
    folder whose real path is elsewhere (a symlinked folder) is refused."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._folders: dict[str, bool] = {}

    def _folder_inside(self, folder: str) -> bool:
        known = self._folders.get(folder)
        if known is None:
            full = os.path.join(self.root, folder)
            known = os.path.realpath(full) == full
            self._folders[folder] = known
        return known

    def read(self, name: str, is_link: bool) -> bytes | None:
        """Return a file's bytes (a link's target), or None if it cannot be read safely."""
        folder = name.rpartition("/")[0]
        if folder and not self._folder_inside(folder):
            return None
        full = os.path.join(self.root, name)
        try:
            if is_link:
                return os.fsencode(os.readlink(full))
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError:
            return None
        finally:
            os.close(fd)


def _stat_key(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


class PrivateIndex:
    """flightlog's own git index for one work tree root and one set of snapshot settings."""

    def __init__(self, home: Path, root: Path, patterns: Iterable[str], settings: str) -> None:
        key = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        self.folder = home / "snapshots" / "index"
        self.path = self.folder / f"{key}.idx"
        self.state_path = self.folder / f"{key}.json"
        self.root = root
        self.excludes = [f"--exclude={p}" for p in patterns]
        self.settings = settings

    @classmethod
    def open(cls, home: Path, root: Path, patterns: Iterable[str], settings: str) -> PrivateIndex | None:
        """Return the private index of `root` if `root` is the top of a git work tree."""
        return cls(home, root, patterns, settings) if (root / ".git").exists() else None

    def _git(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes] | None:
        env = {**os.environ, "GIT_INDEX_FILE": str(self.path), "GIT_OPTIONAL_LOCKS": "0"}
        try:
            return subprocess.run(
                ["git", "-c", "core.fsmonitor=false", "-C", str(self.root), *args],
                input=stdin,
                capture_output=True,
                env=env,
                timeout=120,
            )
        except (OSError, subprocess.SubprocessError):
            return None

    def _start(self, *args: str, output: bool = True) -> subprocess.Popen[bytes] | None:
        try:
            return subprocess.Popen(
                ["git", "-c", "core.fsmonitor=false", "-C", str(self.root), *args],
                stdout=subprocess.PIPE if output else subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "GIT_INDEX_FILE": str(self.path), "GIT_OPTIONAL_LOCKS": "0"},
            )
        except OSError:
            return None

    def unchanged(self) -> tuple[str, int] | None:
        """Return (snapshot id, file count) of the last snapshot if nothing in the work tree has
        changed since, else None."""
        try:
            state: Any = json.loads(self.state_path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or state.get("settings") != self.settings:
            return None
        if _stat_key(self.path) != state.get("index"):
            return None
        guards = state.get("guards")
        if not isinstance(guards, list) or any(_stat_key(Path(p)) != k for p, k in guards):
            return None
        # Two git processes at once rather than one `ls-files -m -d -o`: the check of the listed
        # files' stats and the search for new ones each take about half of its time.
        modified = self._start("diff-files", "--quiet", output=False)
        new = self._start("ls-files", "-z", "--others", "--exclude-standard", *self.excludes)
        if modified is None or new is None:
            for proc in (modified, new):
                if proc is not None:
                    proc.kill()
                    proc.communicate()
            return None
        try:
            listed, _ = new.communicate(timeout=120)
            modified.wait(timeout=120)
        except subprocess.TimeoutExpired:
            modified.kill()
            new.kill()
            modified.wait()
            new.communicate()
            return None
        if modified.returncode != 0 or new.returncode != 0 or listed:
            return None
        snapshot, files = state.get("snapshot"), state.get("files")
        return (snapshot, files) if isinstance(snapshot, str) and isinstance(files, int) else None

    def needs_rebuild(self) -> bool:
        return not (self.path.exists() and self.state_path.exists())

    def update(self, refresh: Iterable[str], remove: Iterable[str], rebuild: bool) -> None:
        """Bring the index to the files about to be read (`refresh`: added or re-stat'ed and
        re-hashed; `remove`: dropped). On any failure the index is dropped, which only turns
        the fast path off until the next full scan rebuilds it."""
        self.state_path.unlink(missing_ok=True)  # until save(): never trust a half-updated index
        if rebuild:
            self.path.unlink(missing_ok=True)
        try:
            for folder in (self.folder.parent, self.folder):
                folder.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            return
        gone = "\0".join(remove).encode("utf-8", "surrogateescape")
        fresh = "\0".join(refresh).encode("utf-8", "surrogateescape")
        steps = []
        if gone:
            steps.append((["update-index", "-z", "--force-remove", "--stdin"], gone))
        if fresh or rebuild:
            steps.append((["update-index", "-z", "--add", "--remove", "--info-only", "--stdin"], fresh))
        for args, data in steps:
            proc = self._git(*args, stdin=data)
            if proc is None or proc.returncode != 0:
                self.path.unlink(missing_ok=True)
                return

    def save(self, snapshot_id: str, files: int) -> None:
        """Remember `snapshot_id` as what the index describes, with the guards' stats now."""
        if not self.path.exists():
            return
        proc = self._git("rev-parse", "--absolute-git-dir")
        if proc is None or proc.returncode != 0:
            return
        git_dir = Path(proc.stdout.decode("utf-8", "surrogateescape").strip())
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "git"
        guard_paths = [
            git_dir / "index",  # the tracked-file list (git add, rm, commit)
            git_dir / "info" / "exclude",
            git_dir / "config",  # core.excludesFile and friends
            config / "ignore",
            config / "config",
            Path.home() / ".gitconfig",
        ]
        state = {
            "settings": self.settings,
            "snapshot": snapshot_id,
            "files": files,
            "index": _stat_key(self.path),
            "guards": [[str(p), _stat_key(p)] for p in guard_paths],
        }
        tmp = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(OSError):
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(state, f)
            os.replace(tmp, self.state_path)
