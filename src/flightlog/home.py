"""The data directory `$FLIGHTLOG_HOME` (default `~/.flightlog`) and private file writes."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from flightlog.errors import ConfigError

__all__ = ["ensure_home", "replace_file", "resolve_home", "write_private_file"]


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Return the data directory: `home` if given, else $FLIGHTLOG_HOME, else ~/.flightlog."""
    if home is not None:
        return Path(home).expanduser()
    env = os.environ.get("FLIGHTLOG_HOME")
    return Path(env).expanduser() if env else Path.home() / ".flightlog"


def ensure_home(home: Path) -> Path:
    """Create `home` with mode 0700 if missing and return it; refuse one others can write to."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = home.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot use data directory {home}: {exc.strerror}") from None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"data directory {home} is writable by others; chmod 700 it")
    return home


def private_dir(path: Path) -> Path:
    """Create `path` and every missing folder above it with mode 0700, and return it.
    `Path.mkdir(mode=0o700, parents=True)` gives the folders above the default mode (0755
    under the usual umask), which left the data directory itself 0755 when a hook call was the
    first thing to write in it."""
    if path.is_dir():
        return path
    missing: list[Path] = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by a parallel hook call
            folder.mkdir(mode=0o700)
    return path


def write_private_file(path: Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` atomically with mode 0600 and fsync it and its directory, so a
    crash leaves either the old file or the new one, never a partial one. `durable=False`
    skips the fsyncs for state that may be lost in a crash (never a partial file, still)."""
    replace_file(path, data, 0o600, durable)


def replace_file(path: Path, data: bytes, mode: int, durable: bool = True) -> None:
    """Write `data` to `path` atomically with permission bits exactly `mode` (the umask does not
    apply), fsyncing the file and its directory (unless not `durable`): a crash leaves the old
    file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 and widened only once complete, so a reader never sees a partial file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if mode != 0o600:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
