"""The pure half of git linkage: the hook scripts we write, commit trailers, `git blame
--porcelain` and `git diff-tree -z` output, and the `git_op` events (no subprocess, no files).

Trailers (git-interpret-trailers(1)), added to commits made while a trace is active::

    Flightlog-Trace-Id: 4bf92f3577b34da6a3ce929d0e0e4736
    Flightlog-Agent: claude-code
    Flightlog-Model: claude-sonnet-4-5

and to the revert commits of `flightlog rollback --git`::

    Flightlog-Trace-Id: <the rollback's trace>
    Flightlog-Reverts-Trace: <the trace rolled back>
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from flightlog.ids import derive_id, stable_event_id

__all__ = [
    "AGENT_TRAILER",
    "CHAIN_SUFFIX",
    "HOOK_MARK",
    "HOOK_NAMES",
    "MODEL_TRAILER",
    "NULL_SHA",
    "REVERTS_TRAILER",
    "TRACE_TRAILER",
    "BlameLine",
    "added_lines",
    "clean_value",
    "commit_event",
    "format_hook_script",
    "is_our_hook",
    "message_is_blank",
    "parse_blame_porcelain",
    "parse_name_status",
    "parse_trailers",
    "trace_of",
    "trailer_value",
    "trailers_dict",
]

TRACE_TRAILER: Final = "Flightlog-Trace-Id"
AGENT_TRAILER: Final = "Flightlog-Agent"
MODEL_TRAILER: Final = "Flightlog-Model"
REVERTS_TRAILER: Final = "Flightlog-Reverts-Trace"

HOOK_NAMES: Final = ("prepare-commit-msg", "post-commit")
CHAIN_SUFFIX: Final = ".pre-flightlog"  # the hook that was there before ours, kept runnable
HOOK_MARK: Final = "# flightlog-git-hook v1"  # second line of every hook script we write

_TRACE_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_SHA: Final = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_BLAME_HEADER: Final = re.compile(r"^([0-9a-f]{40}(?:[0-9a-f]{24})?) ([0-9]+) ([0-9]+)(?: ([0-9]+))?$")
_TRAILER_LINE: Final = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*)\s*:\s?(.*)$")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]+")
NULL_SHA: Final = "0" * 40


def format_hook_script(name: str, argv: Sequence[str]) -> bytes:
    """Return the POSIX shell script we install as git hook `name`: it runs the hook it chained
    (kept beside it as `<name>.pre-flightlog`) first, then `argv hook git-<name> "$@"`.

    A chained prepare-commit-msg that fails still stops the commit (its status is the hook's);
    flightlog's own part never does: its failures are ignored here and logged by flightlog.

    >>> print(format_hook_script("post-commit", ["/opt/my venv/bin/flightlog"]).decode())
    #!/bin/sh
    # flightlog-git-hook v1
    # Written by `flightlog install git-hooks`; `flightlog uninstall git-hooks` removes it and puts
    # back the hook that was here before (kept meanwhile as post-commit.pre-flightlog, run first).
    status=0
    chained="$(dirname "$0")/post-commit.pre-flightlog"
    if [ -x "$chained" ]; then
        "$chained" "$@" || status=$?
    fi
    '/opt/my venv/bin/flightlog' hook git-post-commit "$@" </dev/null || :
    exit "$status"
    <BLANKLINE>
    """
    if name not in HOOK_NAMES:
        raise ValueError(f"not a hook flightlog installs: {name}")
    ours = f'{shlex.join(argv)} hook git-{name} "$@" </dev/null || :'
    if name == "prepare-commit-msg":  # the chained hook may veto the commit; then we add nothing
        run = ['    "$chained" "$@" || exit $?', "fi", ours, "exit 0"]
    else:  # the commit exists whatever the chained hook says: record it
        run = ['    "$chained" "$@" || status=$?', "fi", ours, 'exit "$status"']
    lines = [
        "#!/bin/sh",
        HOOK_MARK,
        "# Written by `flightlog install git-hooks`; `flightlog uninstall git-hooks` removes it and puts",
        f"# back the hook that was here before (kept meanwhile as {name}{CHAIN_SUFFIX}, run first).",
        "status=0",
        f'chained="$(dirname "$0")/{name}{CHAIN_SUFFIX}"',
        'if [ -x "$chained" ]; then',
        *run,
    ]
    return ("\n".join(lines) + "\n").encode()


def is_our_hook(data: bytes) -> bool:
    """Return True when a hook file's bytes are a script `format_hook_script` wrote."""
    return data.startswith(b"#!") and data.split(b"\n", 2)[1:2] == [HOOK_MARK.encode()]


def message_is_blank(text: str, comment_char: str = "#") -> bool:
    """Return True when a commit message holds nothing but blank and comment lines (git would
    abort such a commit; trailers added to it would turn it into a commit)."""
    return all(not line.strip() or line.startswith(comment_char) for line in text.splitlines())


def parse_trailers(text: str) -> list[tuple[str, str]]:
    """Return (key, value) for each `Key: value` line of a trailer block, as printed by
    `git interpret-trailers --parse` or `%(trailers:only,unfold)`, in order."""
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _TRAILER_LINE.match(line)
        if match:
            pairs.append((match.group(1), match.group(2).strip()))
    return pairs


def trailer_value(pairs: Sequence[tuple[str, str]], key: str) -> str | None:
    """Return the first value of trailer `key` (case-insensitive, as git compares keys)."""
    return next((v for k, v in pairs if k.lower() == key.lower() and v), None)


def trace_of(pairs: Sequence[tuple[str, str]]) -> str | None:
    """Return the trace id a commit's trailers name, if it is a valid W3C trace id."""
    value = (trailer_value(pairs, TRACE_TRAILER) or "").lower()
    return value if _TRACE_ID.match(value) and set(value) != {"0"} else None


def clean_value(value: object) -> str | None:
    """Return `value` as a one-line trailer value (control characters become spaces), or None."""
    if not isinstance(value, str):
        return None
    text = _CONTROL.sub(" ", value).strip()
    return text[:200] or None


def trailers_dict(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Return trailers as an object: key → value, or → list of values for a repeated key."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    return out


def parse_name_status(raw: str) -> list[dict[str, str]]:
    """Return [{"status", "path"(, "old_path")}] from `git diff-tree -r -z --name-status` output
    (renames and copies carry a score, e.g. R100, and two paths)."""
    fields = raw.split("\0")
    files: list[dict[str, str]] = []
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i]
        if status[:1] in ("R", "C") and i + 2 < len(fields):
            files.append({"status": status[:1], "path": fields[i + 2], "old_path": fields[i + 1]})
            i += 3
        elif i + 1 < len(fields):
            files.append({"status": status[:1], "path": fields[i + 1]})
            i += 2
        else:
            break
    return files


@dataclass
class BlameLine:
    """Who last wrote one line of a file: its commit (None: not committed yet) and, when
    flightlog knows, the trace, agent, model and prompt behind it."""

    line: int
    text: str
    commit: str | None
    trace_id: str | None = None
    agent: str | None = None
    model: str | None = None
    prompt: str | None = None
    via: str | None = None  # what tied the line to its trace: "trailer", "git_op" or "file_op"

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "text": self.text,
            "commit": self.commit,
            "trace_id": self.trace_id,
            "agent": self.agent,
            "model": self.model,
            "prompt": self.prompt,
            "via": self.via,
        }


def parse_blame_porcelain(raw: str) -> list[tuple[int, str | None, str]]:
    """Return (final line number, commit or None when not committed yet, line text) for each
    line of `git blame --porcelain` output, in order."""
    out: list[tuple[int, str | None, str]] = []
    sha: str | None = None
    final = 0
    for line in raw.split("\n"):
        if line.startswith("\t"):
            out.append((final, None if sha == NULL_SHA else sha, line[1:]))
            continue
        match = _BLAME_HEADER.match(line)
        if match:
            sha, final = match.group(1), int(match.group(3))
    return out


def added_lines(diff: str) -> list[str]:
    """Return the text of each line a unified diff adds, without its `+` and line ending."""
    return [
        line[1:].removesuffix("\r") for line in diff.split("\n") if line.startswith("+") and not line.startswith("+++ ")
    ]


def commit_event(
    *,
    trace_id: str,
    parent_span_id: str | None,
    agent_id: str,
    model: str | None,
    session_id: str | None,
    commit: str,
    parents: Sequence[str],
    timestamp: str,
    commit_ms: int,
    repo: str,
    branch: str | None,
    subject: str,
    trailers: Sequence[tuple[str, str]],
    files: list[dict[str, str]],
    amends: str | None = None,
) -> dict[str, Any]:
    """Return the `git_op` event (op "commit") of one commit in `trace_id`; `amends` is the
    commit it replaced, if made by `git commit --amend`. Its ids come from the trace and the
    commit, so recording the same commit twice stores it once."""
    if not _SHA.match(commit):
        raise ValueError(f"not a commit id: {commit!r}")
    seed = f"flightlog git_op commit\0{trace_id}\0{commit}"
    return {
        "event_id": stable_event_id(seed, commit_ms),
        "trace_id": trace_id,
        "span_id": derive_id(seed, 8),
        "parent_span_id": parent_span_id,
        "type": "git_op",
        "timestamp": timestamp,
        "agent_id": agent_id,
        "session_id": session_id,
        "model": {"name": model} if model else None,
        "source": {"kind": "git-hook"},
        "payload": {
            "op": "commit",
            "repo": repo,
            "ref": f"refs/heads/{branch}" if branch else None,
            "branch": branch,
            "commit": commit,
            "parents": list(parents),
            "subject": subject,
            "trailers": trailers_dict(trailers),
            "files": files,
            "amends": amends,
        },
    }
