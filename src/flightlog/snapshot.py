"""Workspace snapshots: every file's content as a blob in the ledger's blob store, and a manifest
per snapshot (path, mode, sha256, size) stored as a blob too. A snapshot's id is the digest of
its manifest, so equal trees have equal ids and an event that names one pins the whole tree.

Taking a snapshot is incremental, like git's index: a stat cache per workspace remembers each
file's (size, mtime_ns, ino, ctime_ns, mode) and digest, and a file whose stat is unchanged is
not read again. The file list is git's (`.gitignore` respected; `capture.workspace.list_files`)
minus excludes: DEFAULT_EXCLUDES keep the usual secret files out (their content would otherwise
land in the blob store unredacted), and callers add their own globs. Symlinks are recorded as
links (mode 120000, the target as content), never read through, and a file is never read through
a symlinked folder, so nothing outside the workspace gets in.

Manifest wire format (canonical JSON: sorted keys, no spaces, ASCII, entries sorted by path):

    {"entries":[{"mode":"100644","path":"src/a.py","sha256":"9f86…","size":4}],
     "format":"flightlog.snapshot/v1"}
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from flightlog.capture.workspace import list_files
from flightlog.errors import BlobError, FlightlogError
from flightlog.home import ensure_home
from flightlog.ledger.blobs import BlobStore, blob_digest
from flightlog.snapshot_io import BlobBatch, PrivateIndex, StatCache, WorkspaceReader

__all__ = [
    "DEFAULT_EXCLUDES",
    "Change",
    "Entry",
    "ExcludeMatcher",
    "Snapshot",
    "SnapshotError",
    "compare_snapshots",
    "format_manifest",
    "load_snapshot",
    "parse_manifest",
    "snapshot_summary",
    "take_snapshot",
]

FORMAT: Final = "flightlog.snapshot/v1"
MODE_LINK: Final = 0o120000
MAX_ENTRIES: Final = 1_000_000
MAX_MANIFEST_BYTES: Final = 256 * 1024 * 1024
MAX_SNAPSHOT_FILES: Final = 500_000  # the file list of a workspace we agree to walk
MAX_FILE_BYTES: Final = 256 * 1024 * 1024  # larger files are left out of a snapshot (reported)

# Secret-bearing files kept out by default (override with `--no-default-excludes`). A pattern
# without "/" matches any path component, like a .gitignore line; `id_rsa*` and friends rather
# than `id_*`, which would also drop source files such as `id_utils.py`.
DEFAULT_EXCLUDES: Final = (
    ".env*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".pgpass",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    "credentials.json",
)

_MODE_RE: Final = re.compile(r"^1[02]0[0-7]{3}$")
_HEX_RE: Final = re.compile(r"^[0-9a-f]{64}$")


class SnapshotError(FlightlogError):
    """A snapshot cannot be taken or read (too many files, a bad manifest, a missing blob)."""

    exit_code = 7


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of a snapshot: `mode` is git-style (0o100644, 0o100755, 0o120000 for a link),
    `sha256` the hex digest of the content (a link's content is its target)."""

    path: str
    mode: int
    sha256: str
    size: int

    @property
    def digest(self) -> str:
        """The `sha256:<hex>` name of the content in the blob store and in events."""
        return "sha256:" + self.sha256

    @property
    def is_link(self) -> bool:
        return self.mode == MODE_LINK


class Snapshot:
    """A taken or loaded snapshot: its id, entries by path, and what taking it cost (counters are
    zero for a loaded one). `hashed` files were read; `cached` ones were trusted from the stat
    cache without reading; `via_index` means git's check against flightlog's private index found
    nothing changed, so the last snapshot was the answer (its entries load on first use)."""

    def __init__(
        self,
        id: str,
        entries: dict[str, Entry] | None,
        root: Path | None = None,
        *,
        home: Path | None = None,
        files: int = 0,
    ) -> None:
        self.id = id
        self.root = root
        self._entries = entries
        self._home = home
        self._files = files
        self.hashed = 0
        self.cached = 0
        self.excluded = 0
        self.new_blobs = 0
        self.new_bytes = 0
        self.seconds = 0.0
        self.skipped: list[str] = []
        self.via_index = False

    @property
    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            if self._home is None:
                raise SnapshotError(f"snapshot {self.id}: entries not loaded")
            self._entries = load_snapshot(self._home, self.id).entries
        return self._entries

    @property
    def files(self) -> int:
        return self._files if self._entries is None else len(self._entries)


@dataclass(frozen=True, slots=True)
class Change:
    """One file difference between two snapshots: `op` is create, patch, delete or rename
    (`old_path` set; a delete and a create of the same content)."""

    op: str
    path: str
    before: Entry | None
    after: Entry | None
    old_path: str | None = None


# ---- manifest format (pure) -------------------------------------------------------------


def _check_path(path: str) -> None:
    if not path or path.startswith("/") or "\0" in path:
        raise SnapshotError(f"manifest: bad path {path[:80]!r}")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise SnapshotError(f"manifest: path is not normalized: {path[:80]!r}")


def format_manifest(entries: Iterable[Entry]) -> bytes:
    """Return the canonical manifest bytes for `entries` (sorted by path; paths must be unique
    and relative, without `.` or `..` components)."""
    rows = sorted(entries, key=lambda e: e.path)
    seen: str | None = None
    for entry in rows:
        _check_path(entry.path)
        if entry.path == seen:
            raise SnapshotError(f"manifest: duplicate path {entry.path[:80]!r}")
        seen = entry.path
    doc = {
        "entries": [{"mode": f"{e.mode:06o}", "path": e.path, "sha256": e.sha256, "size": e.size} for e in rows],
        "format": FORMAT,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def parse_manifest(data: bytes) -> dict[str, Entry]:
    """Return the entries of a manifest by path; accept only the canonical form that
    `format_manifest` writes, within size and count caps."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise SnapshotError("manifest: too large")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise SnapshotError("manifest: not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or set(doc) != {"entries", "format"}:
        raise SnapshotError(f"manifest: not a {FORMAT} document")
    rows = doc["entries"]
    if not isinstance(rows, list) or len(rows) > MAX_ENTRIES:
        raise SnapshotError("manifest: entries must be a list within the cap")
    entries: dict[str, Entry] = {}
    for row in rows:
        if not isinstance(row, dict) or set(row) != {"mode", "path", "sha256", "size"}:
            raise SnapshotError("manifest: bad entry")
        mode, path, sha, size = row["mode"], row["path"], row["sha256"], row["size"]
        if not (isinstance(mode, str) and _MODE_RE.match(mode)):
            raise SnapshotError(f"manifest: bad mode {str(mode)[:20]!r}")
        if not (isinstance(sha, str) and _HEX_RE.match(sha)):
            raise SnapshotError("manifest: bad sha256")
        if type(size) is not int or size < 0:
            raise SnapshotError("manifest: bad size")
        if not isinstance(path, str):
            raise SnapshotError("manifest: bad path")
        entries[path] = Entry(path, int(mode, 8), sha, size)
    if format_manifest(entries.values()) != data:  # catches order, duplicates, spacing, escapes
        raise SnapshotError("manifest: not in canonical form")
    return entries


# ---- comparing (pure) -------------------------------------------------------------------


def compare_snapshots(before: Mapping[str, Entry], after: Mapping[str, Entry]) -> list[Change]:
    """Return the changes from `before` to `after`, sorted by path. A deleted and a created file
    with the same content (and kind) become one rename; when several match, they pair in path
    order."""
    created = sorted(p for p in after if p not in before)
    deleted = sorted(p for p in before if p not in after)
    by_content: dict[tuple[str, bool], list[str]] = {}
    for path in deleted:
        by_content.setdefault((before[path].sha256, before[path].is_link), []).append(path)
    changes: list[Change] = []
    renamed: set[str] = set()
    for path in created:
        sources = by_content.get((after[path].sha256, after[path].is_link))
        if sources:
            old = sources.pop(0)
            renamed.add(old)
            changes.append(Change("rename", path, before[old], after[path], old))
        else:
            changes.append(Change("create", path, None, after[path]))
    changes.extend(Change("delete", p, before[p], None) for p in deleted if p not in renamed)
    changes.extend(
        Change("patch", p, before[p], after[p])
        for p in after
        if p in before and (before[p].sha256 != after[p].sha256 or before[p].mode != after[p].mode)
    )
    return sorted(changes, key=lambda c: (c.path, c.op))


# ---- excludes (pure) --------------------------------------------------------------------


class ExcludeMatcher:
    """Decides whether a relative path is excluded: a glob without "/" matches any component of
    the path (so `node_modules` drops the whole folder), one with "/" matches the path from the
    root or any folder prefix of it."""

    def __init__(self, patterns: Iterable[str]) -> None:
        names = [p.strip("/") for p in patterns if p.strip("/") and "/" not in p.strip("/")]
        paths = [p.strip("/") for p in patterns if "/" in p.strip("/")]
        self._name = re.compile("|".join(fnmatch.translate(p) for p in names)) if names else None
        self._path = re.compile("|".join(fnmatch.translate(p) for p in paths)) if paths else None
        self._folders: dict[str, bool] = {}

    def excluded(self, path: str) -> bool:
        folder, _, name = path.rpartition("/")
        if self._name is not None and self._name.match(name):
            return True
        if self._path is not None and self._path.match(path):
            return True
        return bool(folder) and self._folder_excluded(folder)

    def _folder_excluded(self, folder: str) -> bool:
        known = self._folders.get(folder)
        if known is None:  # folders repeat across thousands of files: decide each once
            known = self.excluded(folder)
            self._folders[folder] = known
        return known


# ---- taking and loading (I/O) -----------------------------------------------------------


def take_snapshot(
    root: Path,
    home: Path,
    excludes: Iterable[str] = (),
    *,
    default_excludes: bool = True,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> Snapshot:
    """Snapshot the workspace at `root` into `home`'s blob store and return it. Every blob it
    names is durable before the manifest is stored; the caches are saved last."""
    started = time.perf_counter()
    ensure_home(home)
    real = Path(os.path.realpath(root))
    if not real.is_dir():
        raise SnapshotError(f"not a folder: {root}")
    patterns = (*DEFAULT_EXCLUDES, *excludes) if default_excludes else tuple(excludes)
    store = BlobStore(home / "blobs")
    index = PrivateIndex.open(home, real, patterns, json.dumps([FORMAT, sorted(set(patterns)), max_file_bytes]))
    if index is not None:
        known = index.unchanged()
        if known is not None and store.path(known[0]).exists():
            snap = Snapshot(known[0], None, real, home=home, files=known[1])
            snap.cached, snap.via_index = known[1], True
            snap.seconds = time.perf_counter() - started
            return snap
    names = list_files(real, MAX_SNAPSHOT_FILES, home=home)
    if names is None:
        raise SnapshotError(f"{root} has more than {MAX_SNAPSHOT_FILES} files; exclude some with --exclude")
    cache = StatCache.load(home, real)
    snap = Snapshot("", {}, real)
    scan_ns = time.time_ns()
    pending = _stat_pass(snap, names, ExcludeMatcher(patterns), cache, max_file_bytes)
    if index is not None:  # before reading: see snapshot_io on why this order hides no change
        listed = set(snap.entries).union(p[0] for p in pending)
        rebuild = index.needs_rebuild() or not cache.entries
        refresh = sorted(listed) if rebuild else [p[0] for p in pending]
        index.update(refresh, [p for p in cache.entries if p not in listed], rebuild)
    batch = BlobBatch(store)
    try:
        _read_pass(snap, pending, cache, batch, WorkspaceReader(real), scan_ns)
        batch.finish()
    except BaseException:
        batch.abort()
        raise
    manifest = format_manifest(snap.entries.values())
    before = store.path(blob_digest(manifest)).exists()
    snap.id = store.put(manifest)
    if not before:
        snap.new_blobs += 1
        snap.new_bytes += len(manifest)
    cache.save(set(snap.entries))
    if index is not None:
        index.save(snap.id, len(snap.entries))
    snap.seconds = time.perf_counter() - started
    return snap


_Pending = tuple[str, tuple[int, int, int, int, int], int]  # name, stat key, mode


def _stat_pass(
    snap: Snapshot, names: list[str], matcher: ExcludeMatcher, cache: StatCache, max_file_bytes: int
) -> list[_Pending]:
    """Fill `snap.entries` with the files whose stat the cache vouches for; return the others
    (to be read), in order."""
    base = str(snap.root) + os.sep
    entries = snap.entries
    pending: list[_Pending] = []
    for name in names:
        if matcher.excluded(name):
            snap.excluded += 1
            continue
        try:
            st = os.lstat(base + name)
        except OSError:  # vanished since git listed it
            continue
        if stat.S_ISREG(st.st_mode):
            mode = 0o100000 | (st.st_mode & 0o777)
        elif stat.S_ISLNK(st.st_mode):
            mode = MODE_LINK
        else:  # folders (submodules), sockets, devices: not workspace content
            continue
        key = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, mode)
        sha = cache.lookup(name, key)
        if sha is not None:
            snap.cached += 1
            entries[name] = Entry(name, mode, sha, st.st_size)
        elif mode != MODE_LINK and st.st_size > max_file_bytes:
            snap.skipped.append(name)
        else:
            pending.append((name, key, mode))
    return pending


def _read_pass(
    snap: Snapshot,
    pending: list[_Pending],
    cache: StatCache,
    batch: BlobBatch,
    reader: WorkspaceReader,
    scan_ns: int,
) -> None:
    """Read, hash and queue the blobs of the `pending` files; remember them in the cache."""
    for name, key, mode in pending:
        data = reader.read(name, mode == MODE_LINK)
        if data is None:  # unreadable, replaced by something else, or under a symlinked folder
            snap.skipped.append(name)
            continue
        sha = hashlib.sha256(data).hexdigest()
        snap.hashed += 1
        if batch.add("sha256:" + sha, data):
            snap.new_blobs += 1
            snap.new_bytes += len(data)
        # A file whose mtime is this close to the moment it was listed might change again
        # within the same timestamp tick: keep it out of the trusted cache (git's "racy" rule).
        racy = len(data) != key[0] or key[1] >= scan_ns - cache.racy_ns
        cache.remember(name, key, None if racy else sha)
        snap.entries[name] = Entry(name, mode, sha, len(data))


def load_snapshot(home: Path, snapshot_id: str) -> Snapshot:
    """Return the snapshot named `snapshot_id` (`sha256:<hex>`) from `home`'s blob store; raise
    SnapshotError if its manifest is missing or not a manifest (BlobError if it is corrupt)."""
    try:
        data = BlobStore(home / "blobs").get(snapshot_id)
    except BlobError as exc:
        raise SnapshotError(f"snapshot {snapshot_id}: {exc.message}") from None
    return Snapshot(snapshot_id, parse_manifest(data))


def snapshot_summary(snap: Snapshot) -> dict[str, Any]:
    """The counters of a taken snapshot as a JSON-ready dict."""
    return {
        "id": snap.id,
        "files": snap.files,
        "hashed": snap.hashed,
        "cached": snap.cached,
        "excluded": snap.excluded,
        "skipped": snap.skipped,
        "new_blobs": snap.new_blobs,
        "new_bytes": snap.new_bytes,
        "seconds": round(snap.seconds, 4),
        "via_index": snap.via_index,
    }
