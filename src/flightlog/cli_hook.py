"""`flightlog hook …` (what agents run) and `flightlog spool …` (events waiting for the collector)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from flightlog.client import collector_url
from flightlog.home import resolve_home

if TYPE_CHECKING:
    from flightlog.pipeline import Pipeline

__all__ = ["hook_group", "spool_group"]


@click.group("hook")
def hook_group() -> None:
    """Commands that coding agents run on their hook events."""


@hook_group.command("claude-code")
@click.pass_context
def hook_claude_code(ctx: click.Context) -> None:
    """Record one Claude Code hook event (its JSON on stdin) and answer it.

    PreToolUse is checked against the Rego policies in $FLIGHTLOG_HOME/policies/ and the
    project's .flightlog/policies/ (decision in Claude Code's JSON protocol); events go to the
    collector at $FLIGHTLOG_URL (default http://127.0.0.1:4318), or to the spool when it is
    away. Any internal failure is logged to $FLIGHTLOG_HOME/logs/hook.log and exits 0.
    Install it with `flightlog install claude-code`.
    """
    from flightlog.capture.claude_hook import run_hook

    ctx.exit(run_hook(resolve_home(ctx.find_root().obj["home"])))


@click.group("spool")
def spool_group() -> None:
    """Events that clients could not send yet ($FLIGHTLOG_HOME/spool)."""


@spool_group.command("status")
@click.pass_context
def spool_status(ctx: click.Context) -> None:
    """Say how many batches and events are waiting."""
    from flightlog.spool import read_batch, spool_dir, spooled_files

    home = resolve_home(ctx.find_root().obj["home"])
    files = spooled_files(home)
    events = sum(len(read_batch(p)) for p in files)
    rejected = spool_dir(home) / "rejected"
    set_aside = len(list(rejected.glob("*.ndjson"))) if rejected.is_dir() else 0
    click.echo(f"{len(files)} batch(es), {events} event(s) waiting in {spool_dir(home)}")
    if set_aside:
        click.echo(f"{set_aside} batch(es) refused by the collector are in {rejected}")


@spool_group.command("flush")
@click.option(
    "--local",
    is_flag=True,
    help="Store the events straight into $FLIGHTLOG_HOME's ledger instead of sending them "
    "(when no collector runs there).",
)
@click.pass_context
def spool_flush(ctx: click.Context, local: bool) -> None:
    """Send waiting events to the collector at $FLIGHTLOG_URL, oldest first.

    Each batch is deleted once stored; sending one twice stores nothing twice (stable event ids).
    """
    from flightlog.spool import flush_spool, spooled_files

    home = resolve_home(ctx.find_root().obj["home"])
    if not spooled_files(home):
        click.echo("nothing waiting in the spool")
        return
    if local:
        from flightlog.cli_common import open_ledger
        from flightlog.pipeline import Pipeline

        pipeline = Pipeline(open_ledger(ctx, True), source_kind="spool")
        result = flush_spool(home, lambda events: _store_locally(pipeline, events), wait=True)
    else:
        result = flush_spool(home, wait=True)
    where = "the ledger" if local else collector_url()
    click.echo(f"sent {result.sent_events} event(s) in {result.sent_files} batch(es) to {where}")
    if result.rejected_files:
        click.echo(f"{result.rejected_files} batch(es) were refused and set aside: {result.stopped}", err=True)
    if result.left_files:
        raise click.ClickException(f"{result.left_files} batch(es) still waiting: {result.stopped}")


def _store_locally(pipeline: Pipeline, events: list[dict[str, Any]]) -> None:
    """Store a spooled batch in the ledger; a batch the pipeline refuses is set aside."""
    from flightlog.client import SendError

    good, bad = pipeline.prepare_batch(events)
    if bad:
        raise SendError(f"event {bad[0].index}: {bad[0].field}: {bad[0].reason}", retry=False)
    pipeline.ledger.append(good)
