"""`flightlog blame`: which trace, prompt, agent and model last wrote each line of a file.

1. `git blame --porcelain` gives each line's last commit (or "not committed yet"; a file git
   does not track is all uncommitted).
2. A commit is tied to a trace by its `Flightlog-Trace-Id` trailer, else by a recorded
   `git_op` event for that commit; agent and model come from its trailers, else from the trace.
3. An uncommitted line is tied to the newest recorded `file_op` of this file whose diff added a
   line with exactly its text (each added line accounts for one line of the file).
4. The prompt is the trace's last `prompt` event before the commit's `git_op` (or the
   `file_op`), else the trace's last prompt.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flightlog.gitlink import GitError, git, repo_root
from flightlog.gitlink_text import (
    AGENT_TRAILER,
    MODEL_TRAILER,
    BlameLine,
    added_lines,
    clean_value,
    parse_blame_porcelain,
    parse_trailers,
    trace_of,
    trailer_value,
)
from flightlog.ledger.log import Ledger

__all__ = ["blame_file"]

_MAX_FILE = 64 * 1024 * 1024


@dataclass
class _Recorded:
    """The events of the ledger that bear on one file."""

    commits: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # sha -> (index, git_op)
    file_ops: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # in ledger order
    traces: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)  # cache


def blame_file(path: Path, first: int | None, last: int | None, ledger: Ledger | None) -> list[BlameLine]:
    """Return a BlameLine for each line of `path` (or lines first..last, 1-indexed) as it is in
    the work tree. Without a ledger only commit trailers are used. GitError on a missing or
    binary file, a line out of range, or a failing `git blame`."""
    path = Path(os.path.abspath(path))
    lines = _read_lines(path)
    first = first or 1
    last = last or max(len(lines), 1)
    if not lines:
        raise GitError(f"{path} is empty")
    if not 1 <= first <= last <= len(lines):
        raise GitError(f"{path} has {len(lines)} line(s); there is no line {last if first <= len(lines) else first}")
    root, rows = _blame_rows(path, first, last, lines)
    trailers = _trailers(root, {sha for _, sha, _ in rows if sha}) if root else {}
    recorded = _scan(ledger, path, root) if ledger is not None else _Recorded()
    out: list[BlameLine] = []
    for number, sha, text in rows:
        row = BlameLine(number, text.removesuffix("\r"), sha)
        if sha:
            _attribute_commit(row, trailers.get(sha, []), recorded, ledger)
        out.append(row)
    _attribute_uncommitted([r for r in out if r.commit is None], recorded, ledger)
    return out


def _read_lines(path: Path) -> list[str]:
    try:
        if path.stat().st_size > _MAX_FILE:
            raise GitError(f"{path} is larger than {_MAX_FILE // (1024 * 1024)} MiB")
        data = path.read_bytes()
    except IsADirectoryError:
        raise GitError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise GitError(f"cannot read {path}: {exc.strerror}") from None
    if b"\0" in data[:8192]:
        raise GitError(f"{path} is a binary file")
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _blame_rows(
    path: Path, first: int, last: int, lines: list[str]
) -> tuple[Path | None, list[tuple[int, str | None, str]]]:
    """Return (work tree root or None, [(line, commit or None, text)])."""
    uncommitted: list[tuple[int, str | None, str]] = [(n, None, lines[n - 1]) for n in range(first, last + 1)]
    try:
        root = repo_root(path.parent)
    except GitError:
        return None, uncommitted
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    proc = git(root, "blame", "--porcelain", "-L", f"{first},{last}", "--", rel, check=False)
    if proc.returncode == 0:
        return root, parse_blame_porcelain(proc.stdout)
    if git(root, "ls-files", "--error-unmatch", "--", rel, check=False).returncode != 0:
        return root, uncommitted  # a file git does not track: nothing of it is committed
    if git(root, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0:
        return root, uncommitted  # no commit yet
    raise GitError(f"git blame failed for {path}: {proc.stderr.strip().splitlines()[-1:] or 'no message'}")


def _trailers(root: Path, shas: set[str]) -> dict[str, list[tuple[str, str]]]:
    """Return each commit's trailers (one `git log` for all of them)."""
    if not shas:
        return {}
    proc = git(
        root,
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "--format=%H%x00%(trailers:only,unfold)%x1e",
        input="\n".join(shas),
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for record in proc.stdout.split("\x1e"):
        sha, sep, block = record.strip("\n").partition("\0")
        if sep:
            out[sha] = parse_trailers(block)
    return out


def _scan(ledger: Ledger, path: Path, root: Path | None) -> _Recorded:
    """One pass over the ledger for commit `git_op`s and this file's `file_op`s."""
    real = os.path.realpath(path)
    rel = os.path.relpath(real, os.path.realpath(root)) if root else None
    found = _Recorded()
    for index, _, leaf, _ in ledger.store.iter_entries():
        if b'"git_op"' not in leaf and b'"file_op"' not in leaf:
            continue  # cheap test before parsing
        event = json.loads(leaf)
        payload = event.get("payload") or {}
        if event.get("type") == "git_op" and isinstance(payload.get("commit"), str):
            found.commits[payload["commit"]] = (index, event)
        elif event.get("type") == "file_op" and payload.get("op") in ("create", "patch", "rename"):
            name = payload.get("file_path")
            if isinstance(name, str) and (os.path.realpath(name) == real if os.path.isabs(name) else name == rel):
                found.file_ops.append((index, event))
    return found


def _attribute_commit(row: BlameLine, pairs: list[tuple[str, str]], recorded: _Recorded, ledger: Ledger | None) -> None:
    known = recorded.commits.get(row.commit or "")
    trace = trace_of(pairs)
    if trace:
        row.via = "trailer"
    elif known:
        trace, row.via = known[1]["trace_id"], "git_op"
    if not trace:
        return
    row.trace_id = trace
    row.agent = clean_value(trailer_value(pairs, AGENT_TRAILER))
    row.model = clean_value(trailer_value(pairs, MODEL_TRAILER))
    at = known[0] if known and known[1]["trace_id"] == trace else None
    _fill_from_trace(row, recorded, ledger, at, known[1] if known else None)


def _attribute_uncommitted(rows: list[BlameLine], recorded: _Recorded, ledger: Ledger | None) -> None:
    """Give each uncommitted line to the newest recorded diff of this file that added its text."""
    pending = list(rows)
    for index, event in reversed(recorded.file_ops):
        if not pending:
            return
        diff = _text(event["payload"].get("diff"), ledger)
        if not diff:
            continue
        added = Counter(added_lines(diff))
        left: list[BlameLine] = []
        for row in pending:
            if added[row.text] > 0:
                added[row.text] -= 1
                row.trace_id, row.via = event["trace_id"], "file_op"
                _fill_from_trace(row, recorded, ledger, index, event)
            else:
                left.append(row)
        pending = left


def _fill_from_trace(
    row: BlameLine, recorded: _Recorded, ledger: Ledger | None, at: int | None, event: dict[str, Any] | None
) -> None:
    """Fill the row's missing agent, model and prompt from the trace's events up to index `at`."""
    if event is not None:
        row.agent = row.agent or clean_value(event.get("agent_id"))
        row.model = row.model or _model_name(event)
    if ledger is None or row.trace_id is None:
        return
    events = recorded.traces.get(row.trace_id)
    if events is None:
        events = [(i, json.loads(leaf)) for i, leaf in ledger.store.trace_leaves(row.trace_id)]
        recorded.traces[row.trace_id] = events
    before = [e for i, e in events if at is None or i <= at] or [e for _, e in events]
    for past in reversed(before):
        if row.prompt is None and past.get("type") == "prompt":
            row.prompt = _text((past.get("payload") or {}).get("text"), ledger)
        row.model = row.model or _model_name(past)
        row.agent = row.agent or clean_value(past.get("agent_id"))
        if row.prompt is not None and row.model and row.agent:
            return


def _model_name(event: dict[str, Any]) -> str | None:
    model = event.get("model")
    return clean_value(model.get("name")) if isinstance(model, dict) else None


def _text(value: object, ledger: Ledger | None) -> str | None:
    """A payload text field, reading a `{"blob": digest}` reference from the blob store."""
    if isinstance(value, str):
        return value
    if ledger is not None and isinstance(value, dict) and isinstance(value.get("blob"), str):
        try:
            return ledger.blobs.get(value["blob"]).decode("utf-8", "replace")
        except Exception:  # a missing blob only costs this one text; verify reports it
            return None
    return None
