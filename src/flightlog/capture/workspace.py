"""Workspace files around an agent's action: a cheap stat scan (git's file list, so .gitignore
is respected), what changed between two scans, and diffs.

Claude Code's own checkpoints only see its edit tools; a shell command that rewrites files
leaves no trace there. Comparing a scan before the command with one after finds those
changes. To diff them, small text files are kept in a content-addressed cache per session
(under `$FLIGHTLOG_HOME`, mode 0700) and refreshed only for files whose stat changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from flightlog.home import private_dir, write_private_file
from flightlog.ledger.blobs import blob_digest

__all__ = [
    "MAX_FILES",
    "ContentCache",
    "Stat",
    "changes",
    "file_diff",
    "list_files",
    "scan",
    "without_homes",
]

MAX_FILES: Final = 20_000  # past this a workspace is not scanned (too slow for a hook)
MAX_CACHED_BYTES: Final = 256 * 1024  # files larger than this are hashed but not kept for diffs
MAX_DIFF_BYTES: Final = 1024 * 1024
Stat = tuple[int, int]  # (size, mtime_ns)


def list_files(root: Path, max_files: int = MAX_FILES, *, home: Path) -> list[str] | None:
    """Return the workspace's files relative to `root` (tracked and untracked, minus ignored,
    minus the caller's data directory `home` if it is inside), or None when there are more than
    `max_files` (snapshots allow more than a hook's scan)."""
    import subprocess  # only shell calls scan; the other hook paths skip its import cost

    inside = _relative_home(root, home)

    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            timeout=10,
            check=True,
        ).stdout
        names = without_homes(sorted({n for n in out.decode("utf-8", "surrogateescape").split("\0") if n}), inside)
    except (OSError, subprocess.SubprocessError):
        names = _walk(root, max_files, inside)  # leaves the home out as it walks
    return None if len(names) > max_files else names


def _relative_home(root: Path, home: Path) -> str | None:
    # `home` as a "/"-separated path inside `root` ("" for root itself), or None when outside.
    rel = os.path.relpath(os.path.realpath(home), os.path.realpath(root))
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return "" if rel == os.curdir else rel.replace(os.sep, "/")


# The caller's home inside a workspace (say `--home ./.flightlog`, not gitignored) must never be
# read by a scan: reading and closing the ledger's files from the collector's own process drops
# SQLite's POSIX locks on them, after which another process deleted the live WAL and
# acknowledged events were lost; and the signing key, spool and hook state would be copied into
# snapshots. It is known by its path, whatever .gitignore says. Not by a marker file: an agent
# could make one to hide a folder's changes; and not every `.flightlog` folder: a workspace's
# own `.flightlog/policies/` is project code, and an agent changing it must show.


def without_homes(names: list[str], home: str | None) -> list[str]:
    """`names` (relative paths, "/"-separated) minus the files inside `home` (relative too; ""
    is the whole workspace; None: not inside it)."""
    if home is None:
        return names
    if home == "":
        return []
    return [n for n in names if not n.startswith(home + "/")]


SKIPPED_DIRS: Final = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".cache",
        ".idea",
        ".flightlog-home",
    }
)


def _walk(root: Path, max_files: int, home: str | None) -> list[str]:
    """Files under a folder that is not a git work tree, minus version-control, virtualenv and
    cache folders (SKIPPED_DIRS). Other hidden folders are kept: `.github/workflows/` is exactly
    what an auditor wants to see change. A symlink to a folder is listed as a file, as git lists
    it: it is not entered, and callers that lstat see it for what it is."""
    names: list[str] = []
    if home == "":
        return names
    for folder, dirs, files in os.walk(root):  # os.walk does not follow symlinked folders
        rel = os.path.relpath(folder, root)
        # The home is left out here, not after: a big one would fill `max_files` first.
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and (d if rel == "." else f"{rel}/{d}") != home]
        links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        dirs[:] = [d for d in dirs if d not in links]
        names.extend(f if rel == "." else f"{rel}/{f}" for f in (*files, *links))
        if len(names) > max_files:
            break
    return sorted(names)


def scan(root: Path, names: Iterable[str]) -> dict[str, Stat]:
    """Return {path: (size, mtime_ns)} for the regular files among `names` (symlinks and
    vanished files are left out)."""
    stats: dict[str, Stat] = {}
    for name in names:
        try:
            st = os.lstat(root / name)
        except OSError:
            continue
        if st.st_mode & 0o170000 == 0o100000:  # S_ISREG without importing stat
            stats[name] = (st.st_size, st.st_mtime_ns)
    return stats


def changes(before: dict[str, Stat], after: dict[str, Stat]) -> list[tuple[str, str]]:
    """Return [(op, path)] for files created, patched (size or mtime changed) or deleted."""
    found = [
        ("create" if name not in before else "patch", name) for name, st in after.items() if before.get(name) != st
    ]
    found.extend(("delete", name) for name in before if name not in after)
    return sorted(found, key=lambda change: change[1])


def file_diff(path: str, before: bytes | None, after: bytes | None) -> str | None:
    """Return a unified diff of one file (None for binary or very large content; a creation
    diffs against /dev/null, a deletion to it)."""
    texts: list[list[str]] = []
    for data in (before, after):
        if data is None:
            texts.append([])
            continue
        if len(data) > MAX_DIFF_BYTES or b"\0" in data:
            return None
        try:
            texts.append(data.decode("utf-8").splitlines(keepends=True))
        except UnicodeDecodeError:
            return None
    import difflib  # only when a diff is made

    old = "/dev/null" if before is None else f"a/{path}"
    new = "/dev/null" if after is None else f"b/{path}"
    lines = difflib.unified_diff(texts[0], texts[1], old, new)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


class ContentCache:
    """Small files' contents by digest, with the stat each path had when it was read."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.index_path = folder / "index.json"
        try:
            loaded = json.loads(self.index_path.read_text())
            self.index: dict[str, list[object]] = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            self.index = {}

    def refresh(self, root: Path, stats: dict[str, Stat], budget: int = 64 * 1024 * 1024) -> None:
        """Read every file whose stat differs from the one remembered, within `budget` bytes,
        and save the index."""
        private_dir(self.folder)
        changed = False
        for name, (size, mtime) in stats.items():
            known = self.index.get(name)
            if known is not None and known[:2] == [size, mtime]:
                continue
            if size > budget:
                continue
            try:
                data = (root / name).read_bytes()
            except OSError:
                continue
            budget -= len(data)
            sha = blob_digest(data)
            if len(data) <= MAX_CACHED_BYTES:
                self._store(sha, data)
            self.index[name] = [size, mtime, sha]
            changed = True
        if changed:
            # a cache: losing it in a crash only means reading the files again
            write_private_file(self.index_path, json.dumps(self.index).encode(), durable=False)

    def recall(self, name: str) -> tuple[str | None, bytes | None]:
        """Return (digest, content) of `name` as last read; content is None if not kept."""
        known = self.index.get(name)
        if known is None or not isinstance(known[2], str):
            return None, None
        return known[2], self.content(known[2])

    def keep(self, data: bytes) -> str:
        """Store `data` (whatever its size) and return its digest."""
        sha = blob_digest(data)
        private_dir(self.folder)
        self._store(sha, data)
        return sha

    def content(self, sha: str) -> bytes | None:
        try:
            return (self.folder / sha.removeprefix("sha256:")).read_bytes()
        except OSError:
            return None

    def _store(self, sha: str, data: bytes) -> None:
        path = self.folder / sha.removeprefix("sha256:")
        if path.exists():
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
