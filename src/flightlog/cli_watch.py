"""Commands of `flightlog` for watch: see COMMANDS."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

import click

from flightlog.capture.watch import DEFAULT_DEBOUNCE_MS, Allowlist, Notice, Recorded, Watcher, observe
from flightlog.client import collector_url
from flightlog.errors import FlightlogError
from flightlog.home import ensure_home, resolve_home
from flightlog.recorder import record

__all__ = ["COMMANDS"]

_MAX_BATCH_EVENTS: Final = 500  # one record() call; a `git checkout` of thousands of files is split


def _batches(recorded: list[Recorded]) -> Iterator[list[Recorded]]:
    batch: list[Recorded] = []
    size = 0
    for item in recorded:
        if batch and size + len(item.events) > _MAX_BATCH_EVENTS:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += len(item.events)
    if batch:
        yield batch


def _line(item: Recorded, where: str) -> str:
    change, who = item.change, item.who
    when = datetime.fromtimestamp(change.touch.at_ns / 1e9).strftime("%H:%M:%S")
    shown = f"{change.old_path} -> {change.path}" if change.old_path else change.path
    flag = "  ! outside allowlist" if item.outside else ""
    return f"{when} {change.op:<6} {shown}  trace {who.trace_id[:8]} ({who.agent_id}) -> {where}{flag}"


def _store(recorded: list[Recorded], home: Path) -> int:
    """Record the events of `recorded` and print one line per change; return how many changes
    were stored. A refused batch is reported and skipped: the watcher keeps watching."""
    stored = 0
    for batch in _batches(recorded):
        events = [event for item in batch for event in item.events]
        try:
            where = record(events, home)
        except FlightlogError as exc:
            click.echo(f"flightlog watch: {len(batch)} change(s) not recorded: {exc.message}", err=True)
            continue
        for item in batch:
            click.echo(_line(item, where))
        stored += len(batch)
    return stored


@click.command("watch")
@click.argument("directory", required=False, default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="DIR",
    help="A folder (relative to DIRECTORY) where changes are expected; repeatable. A change elsewhere is "
    "recorded plus an `error` event (payload.kind outside_allowlist). Default: all of DIRECTORY.",
)
@click.option(
    "--debounce",
    type=click.IntRange(10, 60_000),
    default=DEFAULT_DEBOUNCE_MS,
    show_default=True,
    metavar="MS",
    help="Record once the workspace has been quiet this long (an editor's save is a burst of "
    "notifications); a burst is recorded after 10x this at the latest.",
)
@click.pass_context
def watch(ctx: click.Context, directory: Path, allow: tuple[str, ...], debounce: int) -> None:
    """Record file changes in DIRECTORY (default: the current one) as `file_op` events while an
    agent works there, until Ctrl-C or SIGTERM.

    Each change joins the trace active when it happened ($TRACEPARENT, else the Claude Code
    session working in DIRECTORY), as a child of the active span; changes made while none is
    active go to one trace of the watcher's own. Files git ignores and .git/ are skipped. Moves
    become renames; diffs are kept for small text files. Events go to the collector at
    $FLIGHTLOG_URL when it answers, else to the local ledger, else to the spool. Watching cannot
    block a change: for that, use policy in the Claude Code hooks.
    """
    home = ensure_home(resolve_home(ctx.find_root().obj["home"]))
    try:
        allowlist = Allowlist.parse(directory, allow)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow") from None
    cache_dir = home / "watch" / f"{os.getpid()}"
    notices: queue.Queue[Notice] = queue.Queue()
    stopped = threading.Event()
    watcher = Watcher(directory, home, allowlist, cache_dir)
    stop_observer = observe(watcher.root, notices.put, stopped)
    try:
        try:
            files = watcher.start()
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"watching {watcher.root} ({files} files; git-ignored files and .git/ skipped)")
        click.echo(f"allowed: {', '.join(allowlist.describe())}")
        click.echo(f"events go to the collector at {collector_url()}, else the ledger in {home}, else its spool")
        click.echo("Ctrl-C or SIGTERM stops after recording what is pending")
        _loop(watcher, notices, stopped, stop_observer, home, debounce)
    finally:
        stopped.set()
        stop_observer()
        shutil.rmtree(cache_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            cache_dir.parent.rmdir()  # only if no other watcher uses it


def _loop(
    watcher: Watcher,
    notices: queue.Queue[Notice],
    stopped: threading.Event,
    stop_observer: Callable[[], None],
    home: Path,
    debounce: int,
) -> None:
    """Record settled bursts until stopped; then stop the observer, take what it had queued,
    add what a rescan finds it missed, and record all of it."""
    quiet_ns, max_wait_ns = debounce * 1_000_000, 10 * debounce * 1_000_000
    main = threading.current_thread() is threading.main_thread()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    previous: Any = signal.signal(signal.SIGTERM, on_term) if main else None
    total = 0
    try:
        while not stopped.is_set():
            try:
                watcher.notice(*notices.get(timeout=0.05))
                while True:
                    watcher.notice(*notices.get_nowait())
            except queue.Empty:
                pass
            if watcher.due(quiet_ns, max_wait_ns):
                total += _store(watcher.flush(), home)
    except KeyboardInterrupt:
        pass
    finally:
        stopped.set()
        if main:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the last flush short
        stop_observer()
        try:
            while True:
                watcher.notice(*notices.get_nowait())
        except queue.Empty:
            pass
        watcher.reconcile()
        total += _store(watcher.flush(), home)
        if main:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, signal.default_int_handler)
    click.echo(f"stopped: {total} change(s) recorded")


COMMANDS: list[click.Command] = [watch]
