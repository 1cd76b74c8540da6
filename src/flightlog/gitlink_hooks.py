"""What flightlog's git hooks do (`flightlog hook git-prepare-commit-msg`, `… git-post-commit`).

- prepare-commit-msg: while a trace is active for the work tree (`flightlog.active`), add the
  trailers `Flightlog-Trace-Id`, `Flightlog-Agent` and `Flightlog-Model` to the message with
  `git interpret-trailers`; never to a message that already names a trace (an amend, a revert
  made by `flightlog rollback --git`), nor to one that is still blank or an untouched template
  (git would then commit the trailers alone instead of aborting an empty message).
- post-commit: when the new commit names a trace in its trailer, or a trace is active, record a
  `git_op` event (op "commit") in that trace, under the active span when it is that trace's.

Agent and model: the Claude Code marker's, else $FLIGHTLOG_AGENT_ID / $FLIGHTLOG_MODEL, else the
latest ones recorded in the trace; a trailer whose value is unknown is left out.

Both fail open: any failure is one line in $FLIGHTLOG_HOME/logs/git-hook.log and a warning on
stderr, and the hook exits 0 (the shell script around it ignores our status as well).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from flightlog.active import current_trace
from flightlog.capture.gitinfo import git_head
from flightlog.gitlink import commit_info, git, repo_root
from flightlog.gitlink_text import (
    AGENT_TRAILER,
    MODEL_TRAILER,
    TRACE_TRAILER,
    clean_value,
    commit_event,
    message_is_blank,
    parse_trailers,
    trace_of,
    trailer_value,
)
from flightlog.home import private_dir

__all__ = ["post_commit", "prepare_commit_msg", "run_git_hook"]

LOG_NAME = "git-hook.log"


def run_git_hook(home: Path, name: str, args: list[str]) -> int:
    """Run hook `name` ("prepare-commit-msg" or "post-commit") with git's arguments; return 0
    always, logging any failure (fail open: a commit never waits on flightlog's health)."""
    try:
        if name == "prepare-commit-msg":
            prepare_commit_msg(home, Path.cwd(), args)
        else:
            post_commit(home, Path.cwd())
    except Exception as exc:  # capture never breaks the program it watches
        where = _log_failure(home, name, exc)
        sys.stderr.write(f"flightlog: the {name} hook failed; the commit is not affected (see {where})\n")
    return 0


def prepare_commit_msg(home: Path, cwd: Path, args: list[str]) -> bool:
    """Add our trailers to the message file args[0] when a trace is active; return True if added."""
    if not args:
        raise ValueError("git passed no message file")
    source = args[1] if len(args) > 1 else ""
    active = current_trace(home, cwd)
    if active is None or source == "template":
        return False
    message = Path(args[0])
    text = message.read_text("utf-8", errors="surrogateescape")
    comment = git(cwd, "config", "--get", "core.commentChar", check=False).stdout.strip()
    if message_is_blank(text, comment if len(comment) == 1 else "#"):
        return False
    present = parse_trailers(git(cwd, "interpret-trailers", "--parse", str(message)).stdout)
    if trailer_value(present, TRACE_TRAILER):
        return False
    agent, model = _who(home, active)
    trailers = [(TRACE_TRAILER, str(active["trace_id"])), (AGENT_TRAILER, agent), (MODEL_TRAILER, model)]
    argv = ["interpret-trailers", "--in-place"]
    for key, value in trailers:
        if value:
            argv += ["--trailer", f"{key}: {value}"]
    git(cwd, *argv, str(message))
    return True


def post_commit(home: Path, cwd: Path) -> dict[str, Any] | None:
    """Record the commit just made as a `git_op` event in its trace; return the event, or None
    when the commit names no trace and none is active."""
    info = commit_info(cwd)
    active = current_trace(home, cwd)
    trace_id = trace_of(info.trailers) or (str(active["trace_id"]) if active else None)
    if trace_id is None:
        return None
    same = active is not None and active["trace_id"] == trace_id
    agent, model = _who(home, active if same and active else {"trace_id": trace_id})
    agent = clean_value(trailer_value(info.trailers, AGENT_TRAILER)) or agent or "git"
    model = clean_value(trailer_value(info.trailers, MODEL_TRAILER)) or model
    branch, _ = git_head(cwd)
    event = commit_event(
        trace_id=trace_id,
        parent_span_id=str(active["span_id"]) if same and active else None,
        agent_id=agent,
        model=model,
        session_id=clean_value(active.get("session_id")) if same and active else None,
        commit=info.commit,
        parents=info.parents,
        timestamp=info.timestamp,
        commit_ms=info.unix_ms,
        repo=str(repo_root(cwd)),
        branch=branch,
        subject=info.subject,
        trailers=info.trailers,
        files=info.files,
        amends=info.amends,
    )
    from flightlog.recorder import record  # the ledger's imports only when there is a commit to record

    record([event], home)
    return event


def _who(home: Path, active: dict[str, Any]) -> tuple[str | None, str | None]:
    """Return (agent, model) of the active trace: the marker's, else the environment's, else
    the latest recorded in the trace."""
    agent = clean_value(active.get("agent_id")) or clean_value(os.environ.get("FLIGHTLOG_AGENT_ID"))
    model = clean_value(active.get("model")) or clean_value(os.environ.get("FLIGHTLOG_MODEL"))
    if agent is None or model is None:
        seen_agent, seen_model = recorded_identity(home, str(active["trace_id"]))
        agent, model = agent or seen_agent, model or seen_model
    return agent, model


def recorded_identity(home: Path, trace_id: str) -> tuple[str | None, str | None]:
    """Return the latest agent id and model name recorded in a trace of the local ledger
    (None, None when there is no ledger or no such trace)."""
    from flightlog.errors import FlightlogError
    from flightlog.ledger.log import Ledger

    if not (home / "ledger.db").is_file():
        return None, None
    try:
        ledger = Ledger.open(home, False)
        try:
            leaves = ledger.store.trace_leaves(trace_id)
        finally:
            ledger.close()
    except (FlightlogError, sqlite3.Error, OSError):
        return None, None  # the trailers that need no ledger are still worth adding
    agent = model = None
    for _, leaf in reversed(leaves):
        event = json.loads(leaf)
        agent = agent or clean_value(event.get("agent_id"))
        name = event.get("model", {}).get("name") if isinstance(event.get("model"), dict) else None
        model = model or clean_value(name)
        if agent and model:
            break
    return agent, model


def _log_failure(home: Path, name: str, exc: Exception) -> Path:
    """Append one line about a failed hook run to logs/git-hook.log (never the message text)."""
    path = home / "logs" / LOG_NAME
    try:
        private_dir(path.parent)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        detail = str(getattr(exc, "message", exc)).replace("\n", " ")[:500]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(f"{stamp} {name} {type(exc).__name__}: {detail}\n")
    except OSError:
        pass  # nowhere to log: the warning on stderr is all we can give
    return path
