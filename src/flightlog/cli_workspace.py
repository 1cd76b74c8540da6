"""Commands of `flightlog` for workspace: see COMMANDS (`snapshot`, `exec`, `rollback`)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from flightlog.cli_common import open_ledger
from flightlog.home import ensure_home, resolve_home
from flightlog.snapshot import DEFAULT_EXCLUDES

__all__ = ["COMMANDS"]

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_EXCLUDE_HELP = (
    "Leave out files matching GLOB (repeatable; a GLOB without '/' matches any path component). "
    f"Always left out unless --no-default-excludes: {', '.join(DEFAULT_EXCLUDES)}."
)


def _home(ctx: click.Context) -> Path:
    return ensure_home(resolve_home(ctx.find_root().obj["home"]))


def _trace_id(value: str) -> str:
    trace_id = value.strip().lower()
    if not _TRACE_ID.match(trace_id) or set(trace_id) == {"0"}:
        raise click.BadParameter("must be a W3C trace id: 32 hex digits, not all zero")
    return trace_id


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


@click.command()
@click.argument("directory", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--exclude", "excludes", multiple=True, metavar="GLOB", help=_EXCLUDE_HELP)
@click.option("--no-default-excludes", is_flag=True, help="Do not leave out the usual secret files.")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot's id and counters as JSON.")
@click.pass_context
def snapshot(
    ctx: click.Context, directory: Path, excludes: tuple[str, ...], no_default_excludes: bool, as_json: bool
) -> None:
    """Snapshot the files of DIRECTORY (default: here) into the blob store and print its id.

    Files git ignores are left out (.gitignore), symlinks are kept as links and never followed.
    Incremental: a file whose size, mtime, inode and ctime are unchanged since the last snapshot
    of the same folder is not read again.
    """
    from flightlog.snapshot import snapshot_summary, take_snapshot

    snap = take_snapshot(directory, _home(ctx), excludes, default_excludes=not no_default_excludes)
    if as_json:
        click.echo(json.dumps(snapshot_summary(snap)))
        return
    click.echo(
        f"{snap.id}  {snap.files} files ({snap.cached} unchanged, {snap.hashed} read), "
        f"{_size(snap.new_bytes)} stored new, {snap.seconds:.3f} s"
    )
    if snap.skipped:
        shown = ", ".join(snap.skipped[:5]) + (" …" if len(snap.skipped) > 5 else "")
        click.echo(f"left out (too large, unreadable or behind a symlink): {shown}", err=True)


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--trace-id", default=None, help="Record into this trace (default: the active one, else a new one).")
@click.option(
    "--cwd",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Run the command in this folder (default: here).",
)
@click.option(
    "--exclude", "excludes", multiple=True, metavar="GLOB", help="Leave files matching GLOB out of the snapshots."
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(
    ctx: click.Context, trace_id: str | None, cwd: Path | None, excludes: tuple[str, ...], command: tuple[str, ...]
) -> None:
    """Run COMMAND as a traced shell span and record the files it changed.

    Usage: flightlog exec [OPTIONS] -- CMD ARGS…  The workspace (the git work tree around the
    folder) is snapshotted first; the command gets TRACEPARENT for its span, its output goes to
    you live and (capped, redacted) into the event; every file it created, changed, deleted or
    renamed becomes a file_op event with checksums and diffs. Exits with the command's exit code.
    """
    from flightlog.capture.exec_run import run_exec

    code = run_exec(
        list(command),
        cwd or Path.cwd(),
        _home(ctx),
        _trace_id(trace_id) if trace_id is not None else None,
        excludes,
    )
    sys.exit(code)  # not ctx.exit: the CLI runs click with standalone_mode=False, which drops it


@click.command()
@click.argument("trace_id")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--force", is_flag=True, help="Roll back even files changed since the trace (their changes are lost).")
@click.option("--git", "use_git", is_flag=True, help="Revert the trace's commits with new commits instead.")
@click.option(
    "--include-remote",
    is_flag=True,
    help="Also roll back file changes that another machine sent to the collector (left alone by default).",
)
@click.pass_context
def rollback(
    ctx: click.Context, trace_id: str, dry_run: bool, force: bool, use_git: bool, include_remote: bool
) -> None:
    """Undo what trace TRACE_ID did to files, and record a rollback event.

    Default: every file the trace changed gets its content (and mode) from before the trace, from
    the snapshot its file_op events name; files it created are deleted. Refuses, naming them, if
    any of those files changed since the trace, unless --force. All files are checked and
    staged before any is replaced. File changes another machine sent to the collector are left
    alone (they name that machine's files), unless --include-remote. --git: one revert commit
    per commit of the trace, newest first.
    """
    from flightlog.recorder import record
    from flightlog.rollback import RollbackError, local_changes, plan_rollback, rollback_event, trace_history

    trace_id = _trace_id(trace_id)
    home = _home(ctx)
    ledger = open_ledger(ctx)
    rows = ledger.store.trace_leaves(trace_id)
    if not rows:
        raise click.ClickException(f"no trace {trace_id} in {home}")
    events, elsewhere = local_changes(rows, {} if include_remote else ledger.store.remote_origins([i for i, _ in rows]))
    for path, origin in sorted(elsewhere.items()):
        click.echo(f"left alone: {path} (sent by {origin}; --include-remote rolls it back here)", err=True)
    new_trace = os.urandom(16).hex()
    if use_git:
        from flightlog.rollback import git_commits

        if elsewhere and not git_commits(events):
            raise click.ClickException(
                f"the commits of trace {trace_id} were sent by another machine; roll them back there"
                " (or --include-remote)"
            )
        _rollback_git(trace_id, new_trace, events, home, dry_run)
        return
    history = trace_history(events)
    if not history and elsewhere:
        raise click.ClickException(
            f"the file changes of trace {trace_id} were sent by another machine; roll them back there"
            " (or --include-remote)"
        )
    if not history:
        raise click.ClickException(f"trace {trace_id} changed no files (no file_op events); nothing to roll back")
    from flightlog.capture.exec_run import workspace_root

    plan = plan_rollback(history, home, workspace_root(Path.cwd()), force)
    if plan.conflicts and not force:
        raise RollbackError(
            f"not rolled back: {len(plan.conflicts)} file(s) changed since the trace: {', '.join(plan.conflicts)} "
            "(--force overwrites them)"
        )
    for line in plan.describe():
        click.echo(line)
    if dry_run:
        click.echo(f"dry run: {len(plan.actions)} file(s) would change, {len(plan.unchanged)} already as before")
        return
    if not plan.actions:
        click.echo("nothing to do: every file is already as it was before the trace")
        return
    from flightlog.rollback import apply_plan

    done = apply_plan(plan)
    payload = {"mode": "files", "files": done, "forced": bool(plan.conflicts), "overwritten": plan.conflicts}
    where = record([rollback_event(trace_id, new_trace, payload)], home)
    click.echo(f"rolled back {len(done)} file(s); rollback trace {new_trace} ({where})")


def _rollback_git(trace_id: str, new_trace: str, events: list[dict[str, Any]], home: Path, dry_run: bool) -> None:
    from flightlog.recorder import record
    from flightlog.rollback import git_commits, rollback_event

    repos = git_commits(events)
    if not repos:
        raise click.ClickException(f"trace {trace_id} made no commits (no git_op commit events)")
    if dry_run:
        for repo, commits in repos.items():
            for sha in reversed(commits):
                click.echo(f"revert   {sha[:12]} in {repo}")
        click.echo(f"dry run: {sum(map(len, repos.values()))} commit(s) would be reverted")
        return
    try:
        from flightlog.gitlink import revert_trace_commits
    except ImportError:
        raise click.ClickException("rollback --git is not available in this build (no flightlog.gitlink)") from None
    made: list[dict[str, Any]] = []
    try:
        for repo, commits in repos.items():
            reverts = revert_trace_commits(Path(repo), commits, trace_id, new_trace)
            made.append({"repo": repo, "reverted": commits, "commits": reverts})
            for sha in reverts:
                click.echo(f"{sha[:12]}  revert commit in {repo}")
    except Exception:
        if made:  # an earlier repository's reverts are made: they must not go unrecorded
            record([rollback_event(trace_id, new_trace, {"mode": "git", "repos": made, "incomplete": True})], home)
        raise
    where = record([rollback_event(trace_id, new_trace, {"mode": "git", "repos": made})], home)
    click.echo(f"made {sum(len(m['commits']) for m in made)} revert commit(s); rollback trace {new_trace} ({where})")


COMMANDS: list[click.Command] = [snapshot, exec_, rollback]
