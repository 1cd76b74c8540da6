"""Agent Trace records: which lines each agent conversation wrote, derived from recorded diffs.

Format: Agent Trace 0.1.0, Cursor's open specification for AI code attribution
(https://agent-trace.dev/), as read from repository cursor/agent-trace, README.md sections 6
and Appendix A at commit 59729334942d0c9c4ee1bc325ffb564a2d7d6afc (CC BY 4.0; its inline JSON
Schema is vendored in tests/vectors/agent-trace/). One record, as `flightlog export --format
agent-trace` writes it (one record per line, as the spec's reference implementation appends
records to a JSONL file; the spec leaves storage to implementations)::

    {"version": "0.1.0",
     "id": "0b6c3f3e-52c6-5b43-9f0a-5d1c2c6b8e61",
     "timestamp": "2026-11-24T17:00:03.000000Z",
     "vcs": {"type": "git", "revision": "9fceb02d0ae598e95dc970b74767f19372d61af8"},
     "tool": {"name": "claude-code"},
     "files": [{"path": "src/app.py",
                "conversations": [{"contributor": {"type": "ai", "model_id": "anthropic/claude-sonnet-4-5"},
                                   "ranges": [{"start_line": 3, "end_line": 7}]}]}],
     "metadata": {"dev.flightlog": {"trace_id": "4bf9…", "session_id": "s1", "agent_ids": ["claude-code"],
                                    "revision_from": "git_op"}}}

What the spec requires (field names exactly as written there): `version`, `id` (UUID),
`timestamp` (RFC 3339) and `files`; each file `path` (relative to the repository root) and
`conversations`; each conversation `ranges` (`url`, `contributor`, `related` optional); each
range `start_line` and `end_line` (1-indexed, inclusive; `content_hash` and a per-range
`contributor` optional); a contributor `type` in human|ai|mixed|unknown (`model_id` optional, at
most 250 characters, models.dev "provider/model"); `vcs` (optional) needs `type` in
git|jj|hg|svn and `revision`; `tool` {name, version} and `metadata` (reverse-domain keys) are
optional. Line numbers refer to the file at the recorded revision. The spec text says version
0.1.0 (pattern X.Y.Z since upstream PR #12); the generated schemas/trace-record.json at commit
33e849428e0214edcadd7ced5052b7258e636b4f still has the older X.Y pattern (upstream issue #10):
we follow the text.

Mapping from flightlog events (given in ledger order):

- A conversation is one `trace_id` within one `session_id`; it becomes one record when its
  `file_op` events attribute at least one line. Its `id` is a UUIDv5 of the pair, so exporting
  again gives the same id.
- Lines: each `file_op` diff (unified; a blob reference is resolved with `load_blob`) is applied
  in order to the lines the conversation already wrote in that file: context lines keep their
  attribution and move with the hunks, removed lines lose it, `+` lines are attributed to the
  op's model. A pure deletion adds no range. Ranges are the runs of consecutive attributed lines
  at the end of the conversation. Where positions become unknown (a diff that does not parse,
  a patch without a diff, a `checksum_before` that is not the previous `checksum_after`: the
  file changed in between) the earlier lines of that file are dropped rather than misplaced.
  `delete` drops the file; `rename` moves its lines from `old_path`.
- Contributor: type "ai"; `model_id` from the op's own `model`, else the latest `model_call`
  model of the trace before it, else the trace's first one: "provider/name".
- `vcs.revision`: the last `git_op` commit in the trace, else a 40/64-hex
  `payload.context.git_head` of a prompt event (the base the edits were made on; metadata
  `revision_from` says which), else no `vcs`.
- `tool.name` is the agent (`agent_id`) of the first file op, as the spec's reference
  implementation names the coding agent; its version is unknown and left out (optional).
- Paths: absolute paths under a `git_op` `repo` path are made relative to it; others as recorded.
"""

from __future__ import annotations

import re
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from flightlog.events import normalize_timestamp

__all__ = ["AGENT_TRACE_VERSION", "added_line_ranges", "agent_trace_records"]

AGENT_TRACE_VERSION: Final = "0.1.0"
"""The Agent Trace specification version written in every record."""

_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://flightlog.dev/agent-trace")
_HUNK_RE: Final = re.compile(r"^@@ -([0-9]+)(?:,([0-9]+))? \+([0-9]+)(?:,([0-9]+))? @@")
_REVISION_RE: Final = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_MAX_MODEL_ID: Final = 250  # the spec's maxLength for contributor.model_id
_RELEVANT: Final = frozenset({"prompt", "model_call", "file_op", "git_op"})

LoadBlob = Callable[[str], bytes]
Lines = dict[int, str | None]  # line number in the current file -> model_id that wrote it


class _BadDiff(ValueError):
    """A diff that is not a well-formed single-file unified diff."""


@dataclass(frozen=True)
class _Hunk:
    begin: int  # first old line the hunk covers (for a pure insertion: the line it goes before)
    old_count: int
    new_begin: int
    new_count: int
    ops: str  # one of " ", "-", "+" per hunk line


def _parse_hunks(diff: str) -> list[_Hunk]:
    """Return the hunks of a unified diff, checked against their headers and each other."""
    lines = diff.split("\n")
    hunks: list[_Hunk] = []
    delta = 0
    i = 0
    while i < len(lines):
        m = _HUNK_RE.match(lines[i])
        i += 1
        if not m:
            continue  # file headers, "\ No newline at end of file", git extended headers
        old_start, new_start = int(m[1]), int(m[3])
        old_count = 1 if m[2] is None else int(m[2])
        new_count = 1 if m[4] is None else int(m[4])
        ops: list[str] = []
        o = n = 0
        while o < old_count or n < new_count:
            if i >= len(lines):
                raise _BadDiff("a hunk ends before its header's line counts")
            line = lines[i].removesuffix("\r")
            i += 1
            tag = line[:1]
            if tag == "\\":
                continue
            if tag in (" ", ""):  # "": a blank context line whose leading space was stripped
                o, n = o + 1, n + 1
            elif tag == "-":
                o += 1
            elif tag == "+":
                n += 1
            else:
                raise _BadDiff(f"unexpected line in a hunk: {line[:40]!r}")
            ops.append(tag or " ")
        if o != old_count or n != new_count:
            raise _BadDiff("a hunk's lines do not match its header")
        # A zero-length range names the line before it (the GNU diff convention).
        begin = old_start if old_count else old_start + 1
        new_begin = new_start if new_count else new_start + 1
        if hunks and begin < hunks[-1].begin + hunks[-1].old_count:
            raise _BadDiff("hunks overlap or are out of order")
        if new_begin != begin + delta:
            raise _BadDiff("a hunk's new start does not follow from the hunks before it")
        delta += new_count - old_count
        hunks.append(_Hunk(begin, old_count, new_begin, new_count, "".join(ops)))
    return hunks


def _apply(lines: Lines, hunks: list[_Hunk], model_id: str | None) -> Lines:
    """Return `lines` moved through `hunks`, plus every added line attributed to `model_id`."""
    inside: dict[int, int | None] = {}  # old line in a hunk -> its new line, None if removed
    ends: list[int] = []  # end (exclusive) of each hunk's old range
    shifts: list[int] = []  # cumulative line shift after each hunk
    added: list[int] = []
    delta = 0
    for h in hunks:
        o, n = h.begin, h.new_begin
        for op in h.ops:
            if op == " ":
                inside[o] = n
                o, n = o + 1, n + 1
            elif op == "-":
                inside[o] = None
                o += 1
            else:
                added.append(n)
                n += 1
        delta += h.new_count - h.old_count
        ends.append(h.begin + h.old_count)
        shifts.append(delta)
    out: Lines = {}
    for line, who in lines.items():
        if line in inside:
            moved = inside[line]
            if moved is not None:
                out[moved] = who
            continue
        k = bisect_right(ends, line)
        out[line + (shifts[k - 1] if k else 0)] = who
    for line in added:
        out[line] = model_id
    return out


def _runs(lines: Lines) -> list[tuple[int, int, str | None]]:
    """Return (start_line, end_line, model_id) for each run of consecutive lines by one model."""
    runs: list[tuple[int, int, str | None]] = []
    for line in sorted(lines):
        who = lines[line]
        if runs and runs[-1][1] == line - 1 and runs[-1][2] == who:
            runs[-1] = (runs[-1][0], line, who)
        else:
            runs.append((line, line, who))
    return runs


def added_line_ranges(diff: str) -> list[tuple[int, int]]:
    """Return the new-file line ranges (1-indexed, inclusive, adjacent ones merged) of the lines
    a unified diff adds or changes; raise ValueError if the diff is not well formed."""
    return [(start, end) for start, end, _ in _runs(_apply({}, _parse_hunks(diff), None))]


def _model_id(model: object) -> str | None:
    """Return "provider/name" (models.dev style) from an event's model, or None."""
    if not isinstance(model, dict):
        return None
    name, provider = model.get("name"), model.get("provider")
    if not isinstance(name, str) or not name:
        return None
    ident = f"{provider.lower()}/{name}" if isinstance(provider, str) and provider and "/" not in name else name
    return ident if len(ident) <= _MAX_MODEL_ID else None


def _text(value: object, load_blob: LoadBlob) -> str | None:
    """Return a payload text field, reading a `{"blob": digest}` reference from the blob store."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("blob"), str):
        return load_blob(value["blob"]).decode("utf-8", "replace")
    return None


def _relative(path: str, root: str | None) -> str:
    if root and path.startswith(root + "/"):
        return path[len(root) + 1 :]
    return path


@dataclass
class _Conversation:
    session_id: str | None
    trace_id: str
    events: list[dict[str, Any]] = field(default_factory=list)


def _revision(conv: _Conversation) -> tuple[str, str] | None:
    """Return (revision, where it came from) for a conversation, or None."""
    for event in reversed(conv.events):
        commit = event["payload"].get("commit") if event["type"] == "git_op" else None
        if isinstance(commit, str) and _REVISION_RE.match(commit):
            return commit, "git_op"
    for event in conv.events:
        context = event["payload"].get("context") if event["type"] == "prompt" else None
        head = context.get("git_head") if isinstance(context, dict) else None
        if isinstance(head, str) and _REVISION_RE.match(head):
            return head, "prompt.context.git_head"
    return None


def _record(conv: _Conversation, load_blob: LoadBlob) -> dict[str, Any] | None:
    """Return the Agent Trace record of one conversation, or None if it attributes no line."""
    root = None
    for event in conv.events:
        repo = event["payload"].get("repo") if event["type"] == "git_op" else None
        if isinstance(repo, str) and repo.startswith("/"):
            root = repo.rstrip("/")
    fallback_model = next((_model_id(e.get("model")) for e in conv.events if e["type"] == "model_call"), None)
    latest_model: str | None = None
    files: dict[str, Lines] = {}
    checksums: dict[str, str] = {}
    agents: list[str] = []
    timestamp = None
    for event in conv.events:
        kind, payload = event["type"], event["payload"]
        if kind == "model_call":
            latest_model = _model_id(event.get("model")) or latest_model
            continue
        if kind == "git_op":
            timestamp = event["timestamp"]
        if kind != "file_op":
            continue
        timestamp = event["timestamp"]
        if event["agent_id"] not in agents:
            agents.append(event["agent_id"])
        path = _relative(payload["file_path"], root)
        op = payload["op"]
        if op == "delete":
            files.pop(path, None)
            checksums.pop(path, None)
            continue
        if op == "rename" and isinstance(payload.get("old_path"), str):
            old = _relative(payload["old_path"], root)
            files[path] = files.pop(old, {})
            if old in checksums:
                checksums[path] = checksums.pop(old)
        lines = {} if op == "create" else files.get(path, {})
        before = payload.get("checksum_before")
        if before and checksums.get(path, before) != before:
            lines = {}  # the file changed between this conversation's edits: old positions unknown
        diff = _text(payload.get("diff"), load_blob)
        model = _model_id(event.get("model")) or latest_model or fallback_model
        hunks: list[_Hunk] = []
        known = op == "rename"  # a rename without hunks moves the file unchanged
        if diff is not None:
            try:
                hunks = _parse_hunks(diff)
                known = known or bool(hunks) or not diff.strip()
            except _BadDiff:
                known = False
        # Without a readable diff what changed is unknown, so where earlier lines went is too.
        files[path] = _apply(lines, hunks, model) if known else {}
        after = payload.get("checksum_after")
        if after:
            checksums[path] = after
        else:
            checksums.pop(path, None)
    entries = [
        {"path": path, "conversations": [_conversation(lines)]} for path, lines in sorted(files.items()) if lines
    ]
    if not entries or timestamp is None:
        return None
    record: dict[str, Any] = {
        "version": AGENT_TRACE_VERSION,
        "id": str(uuid.uuid5(_NAMESPACE, f"{conv.session_id or ''}\n{conv.trace_id}")),
        "timestamp": normalize_timestamp(timestamp),
    }
    meta: dict[str, Any] = {"trace_id": conv.trace_id, "session_id": conv.session_id, "agent_ids": agents}
    revision = _revision(conv)
    if revision:
        record["vcs"] = {"type": "git", "revision": revision[0]}
        meta["revision_from"] = revision[1]
    record["tool"] = {"name": agents[0]}
    record["files"] = entries
    record["metadata"] = {"dev.flightlog": meta}
    return record


def _contributor(model_id: str | None) -> dict[str, str]:
    return {"type": "ai", "model_id": model_id} if model_id else {"type": "ai"}


def _conversation(lines: Lines) -> dict[str, Any]:
    """Return one file's conversation entry: one contributor, or one per range when models differ."""
    runs = _runs(lines)
    models = {who for _, _, who in runs}
    if len(models) == 1:
        ranges: list[dict[str, Any]] = [{"start_line": s, "end_line": e} for s, e, _ in runs]
        return {"contributor": _contributor(models.pop()), "ranges": ranges}
    ranges = [{"start_line": s, "end_line": e, "contributor": _contributor(who)} for s, e, who in runs]
    return {"contributor": {"type": "ai"}, "ranges": ranges}


def agent_trace_records(events: Iterable[dict[str, Any]], load_blob: LoadBlob) -> list[dict[str, Any]]:
    """Return one Agent Trace 0.1.0 record per conversation (trace within a session) whose file
    ops attribute at least one line, in order of each conversation's first event.

    `events` are stored flightlog.event/v1 events in ledger order; `load_blob(digest)` returns a
    blob's bytes (it may raise, e.g. BlobError for a missing blob: nothing is guessed)."""
    conversations: dict[tuple[str | None, str], _Conversation] = {}
    for event in events:
        if event.get("type") not in _RELEVANT:
            continue
        key = (event.get("session_id"), event["trace_id"])
        conv = conversations.get(key)
        if conv is None:
            conv = conversations[key] = _Conversation(*key)
        conv.events.append(event)
    records = (_record(conv, load_blob) for conv in conversations.values())
    return [r for r in records if r is not None]
