"""Commands of `flightlog` for git: see COMMANDS (`branch`, `blame`) and HOOK_COMMANDS (what
the hooks of `flightlog install git-hooks` run, under `flightlog hook`)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import click

from flightlog.home import resolve_home

__all__ = ["COMMANDS", "HOOK_COMMANDS"]

_LINE_SUFFIX = re.compile(r"^(.*):([0-9]+)(?:-([0-9]+))?$")


def _home(ctx: click.Context) -> Path:
    return resolve_home(ctx.find_root().obj["home"])


@click.command("branch")
@click.argument("name")
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="The repository (default: the current directory's).",
)
@click.pass_context
def branch(ctx: click.Context, name: str, repo: Path | None) -> None:
    """Create branch NAME for an agent task and switch to it (the PR-first flow).

    The branch is recorded as a `git_op` event (op "branch") in the active trace (TRACEPARENT,
    or the agent session working in the repository), else in a new trace whose id is printed on
    stdout; commits made with TRACEPARENT set to the printed traceparent join that trace.
    """
    from flightlog.active import current_trace, format_traceparent
    from flightlog.gitlink import create_branch, repo_root
    from flightlog.gitlink_text import clean_value
    from flightlog.recorder import record

    home = _home(ctx)
    root = repo_root((repo or Path.cwd()).absolute())
    active = current_trace(home, root)
    start = create_branch(root, name)
    trace_id = str(active["trace_id"]) if active else os.urandom(16).hex()
    span_id = os.urandom(8).hex()
    event = {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": str(active["span_id"]) if active else None,
        "type": "git_op",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "agent_id": clean_value((active or {}).get("agent_id"))
        or clean_value(os.environ.get("FLIGHTLOG_AGENT_ID"))
        or "flightlog",
        "session_id": clean_value((active or {}).get("session_id")),
        "source": {"kind": "cli"},
        "payload": {"op": "branch", "repo": str(root), "ref": f"refs/heads/{name}", "branch": name, "commit": start},
    }
    where = record([event], home)
    click.echo(trace_id)
    joined = "joined the active trace" if active else "new trace"
    click.echo(f"switched to new branch {name} ({joined}; recorded in the {where})", err=True)
    if not active:
        click.echo(f"to record commits in it: export TRACEPARENT={format_traceparent(trace_id, span_id)}", err=True)


@click.command("blame")
@click.argument("target", metavar="FILE[:LINE]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per line of the file.")
@click.pass_context
def blame(ctx: click.Context, target: str, as_json: bool) -> None:
    """Show which trace, prompt, agent and model last wrote each line of FILE (or line LINE,
    or lines START-END).

    Committed lines are traced through their commit's Flightlog-Trace-Id trailer (or a recorded
    git_op event); uncommitted lines through the recorded diffs (file_op events) of FILE. Lines
    flightlog knows nothing about show "-".
    """
    from flightlog.errors import LedgerError
    from flightlog.gitlink_blame import blame_file

    path, first, last = _split_target(target)
    try:
        from flightlog.cli_common import open_ledger

        ledger = open_ledger(ctx)
    except LedgerError:
        ledger = None  # no ledger yet: commit trailers still answer
    rows = blame_file(path, first, last, ledger)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in rows], indent=2, ensure_ascii=False))
        return
    table = [
        (
            str(r.line),
            (r.commit or "")[:10] or "uncommitted",
            r.trace_id or "-",
            r.agent or "-",
            r.model or "-",
            _short(r.prompt, 40) if r.prompt else "-",
            _short(r.text, 60),
        )
        for r in rows
    ]
    head = ("LINE", "COMMIT", "TRACE", "AGENT", "MODEL", "PROMPT", "TEXT")
    widths = [max(len(row[i]) for row in [head, *table]) for i in range(len(head) - 1)]
    for row in [head, *table]:
        cells = [row[0].rjust(widths[0])] + [c.ljust(w) for c, w in zip(row[1:-1], widths[1:], strict=True)]
        click.echo(("  ".join(cells) + "  " + row[-1]).rstrip())


def _split_target(target: str) -> tuple[Path, int | None, int | None]:
    """FILE, FILE:LINE or FILE:START-END (a FILE whose own name ends so wins)."""
    match = _LINE_SUFFIX.match(target)
    if match is None or os.path.exists(target):
        return Path(target), None, None
    first = int(match.group(2))
    last = int(match.group(3)) if match.group(3) else first
    if first < 1 or last < first:
        raise click.BadParameter(f"bad line range in {target!r}", param_hint="FILE[:LINE]")
    return Path(match.group(1)), first, last


def _short(text: str, width: int) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1] + "…"


@click.command("git-prepare-commit-msg", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def hook_prepare_commit_msg(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Add Flightlog-Trace-Id, -Agent and -Model trailers to the commit message when a trace
    is active (git's prepare-commit-msg hook; never fails the commit)."""
    from flightlog.gitlink_hooks import run_git_hook

    ctx.exit(run_git_hook(_home(ctx), "prepare-commit-msg", list(args)))


@click.command("git-post-commit", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def hook_post_commit(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Record the new commit as a git_op event in its trace (git's post-commit hook; failures
    go to $FLIGHTLOG_HOME/logs/git-hook.log)."""
    from flightlog.gitlink_hooks import run_git_hook

    ctx.exit(run_git_hook(_home(ctx), "post-commit", list(args)))


COMMANDS: list[click.Command] = [branch, blame]
HOOK_COMMANDS: list[click.Command] = [hook_prepare_commit_msg, hook_post_commit]  # added under `flightlog hook`
