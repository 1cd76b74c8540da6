"""`flightlog import claude-code|codex`: session files of real agents into the ledger, through
the same pipeline as `flightlog ingest` (no server needed). One unit (a session file with its
companions) is stored whole or not at all; a bad line is reported and skipped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from flightlog.capture.mapped import Mapped
from flightlog.cli_common import open_ledger
from flightlog.errors import FlightlogError
from flightlog.pipeline import Pipeline

__all__ = ["import_group"]

PATHS = click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))


@click.group("import")
def import_group() -> None:
    """Import session files that coding agents wrote (re-importing adds nothing)."""


@import_group.command("claude-code")
@PATHS
@click.pass_context
def import_claude_code(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Import Claude Code transcripts: files or folders (default: ~/.claude/projects, or
    $CLAUDE_CONFIG_DIR/projects).

    One trace per prompt, with model calls, tool calls paired with their results, edits as
    file_op events with their patch, and subagents nested under the call that started them.
    """
    from flightlog.capture import claude_transcript

    _run(
        ctx,
        claude_transcript.find_files(paths),
        claude_transcript.read_unit,
        "claude-code-transcript",
        skip_recorded_spans=True,
    )


@import_group.command("codex")
@PATHS
@click.pass_context
def import_codex(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Import Codex CLI rollouts: files or folders (default: $CODEX_HOME/sessions, or
    ~/.codex/sessions).

    One trace per turn; shell commands and apply_patch edits are recovered from the
    function and custom tool calls and paired with their outputs.
    """
    from flightlog.capture import codex

    _run(ctx, codex.find_files(paths), codex.read_unit, "codex-rollout")


def _run(
    ctx: click.Context,
    files: Sequence[Path],
    read_unit: Callable[[Path], Mapped],
    source_kind: str,
    skip_recorded_spans: bool = False,
) -> None:
    """Import `files`. With `skip_recorded_spans`, an event whose span already holds an event of
    the same type is left out: the Claude Code hook records the same spans (shared ids) with
    other timestamps, so a session the hook saw adds only what the hook cannot see."""
    if not files:
        raise click.ClickException("no session files found")
    ledger = open_ledger(ctx, True)
    pipeline = Pipeline(ledger, source_kind=source_kind)
    new = again = skipped = failed = 0
    with click.progressbar(files, label="importing", file=sys.stderr, show_pos=True, item_show_func=_name) as bar:
        for path in bar:
            try:
                mapped = read_unit(path)
            except (OSError, UnicodeDecodeError) as exc:
                click.echo(f"\n{path}: cannot read ({exc}); skipped", err=True)
                failed += 1
                continue
            for p in mapped.problems:
                click.echo(f"\n{p.path}:{p.line}: {p.reason}; line skipped", err=True)
            skipped += len(mapped.problems)
            events = mapped.events
            if skip_recorded_spans and events:
                seen = ledger.store.recorded_spans([str(e.get("trace_id")) for e in events])
                kept = [e for e in events if (e.get("span_id"), e.get("type")) not in seen]
                again += len(events) - len(kept)
                events = kept
            good, bad = pipeline.prepare_batch(events)
            if bad:
                for r in bad[:5]:
                    click.echo(f"\n{path}: event {r.index}: {r.field}: {r.reason}", err=True)
                click.echo(f"\n{path}: {len(bad)} event(s) could not be stored; file skipped", err=True)
                failed += 1
                continue
            if not good:
                continue
            try:
                ledger.append(good)
            except FlightlogError as exc:
                click.echo(f"\n{path}: {exc.message}; file skipped", err=True)
                failed += 1
                continue
            dup = sum(e.duplicate for e in good)
            new, again = new + len(good) - dup, again + dup
    cp = ledger.checkpoint() if ledger.size else None
    click.echo(
        f"imported {len(files) - failed} of {len(files)} file(s): {new} new event(s), {again} already stored, "
        f"{skipped} line(s) skipped" + (f"; checkpoint size {cp.size}" if cp else "")
    )
    if failed:
        ctx.exit(1)


def _name(path: Path | None) -> str | None:
    return path.name if path is not None else ""
