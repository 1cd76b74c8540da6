"""`flightlog install|uninstall claude-code`: flightlog's hooks (and optionally Claude Code's
telemetry settings) written into, or taken out of, a Claude Code settings.json; and
`flightlog install|uninstall git-hooks`: flightlog's git hooks in a repository (the file work is
`flightlog.gitlink.install_hooks` / `uninstall_hooks`).

The edit itself is `flightlog.capture.claude_install`; this module reads and writes the file:
a backup of the previous bytes before every change, an atomic replace keeping the file's mode,
the file's own indentation, and the exact original bytes back when an uninstall returns the
file to what the backup holds.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from flightlog.capture import claude_install as ci
from flightlog.client import DEFAULT_URL
from flightlog.errors import ConfigError
from flightlog.home import replace_file

__all__ = ["install_group", "uninstall_group"]

BACKUP_SUFFIX = ".flightlog-backup"
_BOM = b"\xef\xbb\xbf"


@click.group("install")
def install_group() -> None:
    """Connect a coding agent to flightlog (undo with `flightlog uninstall`)."""


@click.group("uninstall")
def uninstall_group() -> None:
    """Take flightlog out of a coding agent's settings, leaving everything else as it was."""


def _where(f: Callable[..., None]) -> Callable[..., None]:
    """The options both commands share: which settings file, and whether to write it."""
    f = click.option("--dry-run", is_flag=True, help="Print the resulting settings.json; write nothing.")(f)
    f = click.option(
        "--user",
        is_flag=True,
        help="Use the user settings: $CLAUDE_CONFIG_DIR/settings.json, else ~/.claude/settings.json.",
    )(f)
    f = click.option(
        "--project",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=None,
        metavar="DIR",
        help="Use DIR/.claude/settings.json (default: the current directory's).",
    )(f)
    return f


URL_OPTION = click.option(
    "--url",
    envvar="FLIGHTLOG_URL",
    default=DEFAULT_URL,
    show_default=True,
    show_envvar=True,
    help="The flightlog collector's base URL, for the command hooks ($FLIGHTLOG_URL in the settings' env when "
    "not the default), the telemetry settings and --transport http.",
)


@install_group.command("claude-code")
@_where
@click.option(
    "--telemetry",
    is_flag=True,
    help="Also make Claude Code export its OpenTelemetry events and spans (beta) to flightlog (settings env).",
)
@click.option(
    "--transport",
    type=click.Choice(["command", "http"]),
    default="command",
    show_default=True,
    help="command: Claude Code runs this flightlog per event (works with the collector down: spool). "
    "http: Claude Code POSTs each event to the collector at --url (~2 ms instead of ~36 ms a call; "
    "the collector must run on this machine, and while it is down nothing is recorded or gated).",
)
@URL_OPTION
def install_claude_code(
    project: Path | None, user: bool, dry_run: bool, telemetry: bool, transport: str, url: str
) -> None:
    """Hook `flightlog hook claude-code` into Claude Code's settings.json.

    Adds one handler to each of SessionStart, UserPromptSubmit, PreToolUse, PostToolUse,
    PostToolUseFailure, Notification, Stop, SubagentStart, SubagentStop, PreCompact and
    SessionEnd, running this flightlog by its absolute path (or, with --transport http, posting
    to the collector; SessionStart stays a command). Other settings and hooks are kept; the
    previous file is kept as settings.json.flightlog-backup; installing again changes nothing.
    """
    file = _read(_settings_path(project, user), user)
    command = ci.hook_command(_flightlog_argv())
    url = _check_url(url).rstrip("/")
    env = ci.telemetry_env(url) if telemetry else {}
    if url != DEFAULT_URL:  # the command hooks find the collector by $FLIGHTLOG_URL, like telemetry by its env
        env = {**env, "FLIGHTLOG_URL": url}
    # What the file held before flightlog: the backup of a first install, or the file itself now.
    before = _pre_install(file.path) if ci.hooked_events(file.settings) else file.settings
    http_url = _check_url(url).rstrip("/") + ci.HTTP_PATH if transport == "http" else None

    def change(settings: dict[str, Any]) -> dict[str, Any]:
        settings = ci.add_hooks(settings, command, http_url)
        block = settings.get("env")
        if url == DEFAULT_URL and isinstance(block, dict) and "FLIGHTLOG_URL" in block:
            # installed again for the default collector: an earlier --url of ours must not
            # linger (a value the file had before flightlog was installed is given back)
            settings = ci.remove_env(settings, {"FLIGHTLOG_URL": block["FLIGHTLOG_URL"]}, before)
        return ci.add_env(settings, env) if env else settings

    new = _edit(file, change)
    if not _write(file, new, dry_run):
        _say(f"flightlog is already installed in {file.path}; nothing changed", dry_run)
        return
    _say(f"hooked {len(ci.HOOK_EVENTS)} events in {file.path}: {', '.join(ci.HOOK_EVENTS)}", dry_run)
    notes = [f"telemetry → {url}"] if telemetry else []
    if file.raw is not None:
        notes.append(f"previous file kept as {_backup_path(file.path).name}")
    if new.get("disableAllHooks") is True:
        notes.append("note: this file sets disableAllHooks, so Claude Code runs no hooks")
    if notes:
        _say("; ".join(notes), dry_run)


@uninstall_group.command("claude-code")
@_where
@URL_OPTION
def uninstall_claude_code(project: Path | None, user: bool, dry_run: bool, url: str) -> None:
    """Remove flightlog's hooks from Claude Code's settings.json.

    Only flightlog's handlers go, and the groups and lists that held nothing else. Telemetry
    env entries are removed while they still point at --url and hold the values install set.
    When the file is back to what it was before install, its original bytes are restored.
    """
    file = _read(_settings_path(project, user), user)
    before = _pre_install(file.path)
    events = ci.hooked_events(file.settings)
    new = _edit(file, lambda s: ci.remove_hooks(s, before))
    env = file.settings.get("env")
    ours = ci.telemetry_env(url)
    endpoint = ours["OTEL_EXPORTER_OTLP_ENDPOINT"]
    # The telemetry entries are ours only while they send to flightlog.
    if isinstance(env, dict) and env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == endpoint:
        new = ci.remove_env(new, ours, before)
    new = ci.remove_env(new, {"FLIGHTLOG_URL": url.rstrip("/")}, before)  # only while it still names --url
    if not _write(file, new, dry_run):
        _say(f"flightlog is not installed in {file.path}; nothing changed", dry_run)
        return
    what = [f"{len(events)} events"] if events else []
    if new.get("env") != env:
        what.append("the telemetry and collector settings")
    _say(f"removed flightlog from {' and '.join(what)} in {file.path}", dry_run)
    _say(f"previous file kept as {_backup_path(file.path).name}", dry_run)


@install_group.command("git-hooks")
@click.argument("repo", type=click.Path(exists=True, file_okay=False, path_type=Path), required=False)
@click.pass_context
def install_git_hooks(ctx: click.Context, repo: Path | None) -> None:
    """Add flightlog's prepare-commit-msg and post-commit hooks to REPO (default: the current
    directory's repository).

    Commits made while a trace is active get Flightlog-Trace-Id, Flightlog-Agent and
    Flightlog-Model trailers, and every commit naming a trace is recorded in it as a git_op event.
    The hooks go where git runs them (core.hooksPath respected; worktrees share them). A hook
    already there is renamed to <name>.pre-flightlog and run first by ours; `flightlog uninstall
    git-hooks` puts it back. Our part never blocks a commit: failures are logged to
    $FLIGHTLOG_HOME/logs/git-hook.log. Installing again changes nothing.
    """
    from flightlog.gitlink import install_hooks

    argv = _flightlog_argv()
    home = ctx.find_root().obj.get("home")
    if home is not None:  # an explicit --home is where the hooks record too
        argv += ["--home", os.path.abspath(home)]
    for path, what in install_hooks((repo or Path.cwd()).absolute(), argv):
        click.echo(f"{path}: {what}")


@uninstall_group.command("git-hooks")
@click.argument("repo", type=click.Path(exists=True, file_okay=False, path_type=Path), required=False)
def uninstall_git_hooks(repo: Path | None) -> None:
    """Remove flightlog's git hooks from REPO (default: the current directory's repository),
    putting back the hooks they chained, byte for byte."""
    from flightlog.gitlink import uninstall_hooks

    for path, what in uninstall_hooks((repo or Path.cwd()).absolute()):
        click.echo(f"{path}: {what}")


# --- the settings file -----------------------------------------------------------------------


@dataclass(frozen=True)
class _SettingsFile:
    path: Path  # as the user knows it
    target: Path  # what is written: a symlinked settings.json (dotfiles) stays a symlink
    raw: bytes | None  # None when the file does not exist yet
    settings: dict[str, Any]
    mode: int  # permission bits to write with
    dir_mode: int  # for .claude/ when it is missing


def _settings_path(project: Path | None, user: bool) -> Path:
    if user and project is not None:
        raise click.UsageError("use either --project or --user, not both")
    if user:
        config = os.environ.get("CLAUDE_CONFIG_DIR")
        base = Path(config).expanduser() if config else Path.home() / ".claude"
        return base / "settings.json"
    return (project or Path.cwd()).absolute() / ".claude" / "settings.json"


def _read(path: Path, user: bool) -> _SettingsFile:
    target = path.resolve() if path.is_symlink() else path
    try:
        raw: bytes | None = target.read_bytes()
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        raw = None
        # User settings hold tokens and env for every project: private. Project settings are
        # meant to be committed and shared: the usual mode for a new file.
        mode = 0o600 if user else 0o666 & ~_umask()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    settings = _parse(raw, path) if raw is not None else {}
    return _SettingsFile(path, target, raw, settings, mode, 0o700 if user else 0o777)


def _parse(raw: bytes, path: Path) -> dict[str, Any]:
    """The settings object in `raw`; a blank file counts as `{}` (as left by `touch`)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; nothing written") from None
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); nothing written"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path} holds a JSON {type(value).__name__}, not an object; nothing written")
    return value


def _edit(file: _SettingsFile, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Apply `change` to the file's settings, naming the file in any error it raises."""
    try:
        return change(file.settings)
    except ConfigError as exc:
        raise ConfigError(f"{file.path}: {exc.message}; nothing written") from None


def _pre_install(path: Path) -> dict[str, Any] | None:
    """The backup's settings when they predate flightlog (no handler of ours): what uninstall
    may restore. Any other backup says nothing about the file before install."""
    try:
        settings = _parse(_backup_path(path).read_bytes(), path)
    except (OSError, ConfigError):
        return None
    return None if ci.hooked_events(settings) else settings


def _write(file: _SettingsFile, settings: dict[str, Any], dry_run: bool) -> bool:
    """Write `settings` unless they equal the file's (return False); keep the previous bytes as
    the backup first. With `dry_run`, print what would be written instead."""
    if _canonical(settings) == _canonical(file.settings):  # also: nothing to remove from no file
        if dry_run and file.raw is not None:
            click.echo(file.raw.decode("utf-8-sig"), nl=False)
        return False
    data = _dump(settings, file.raw)
    backup = _backup_path(file.path)
    try:
        kept = backup.read_bytes()
        # Back to what the backup holds (uninstall after install): its exact bytes, whatever
        # formatting the file had.
        if _canonical(_parse(kept, backup)) == _canonical(settings):
            data = kept
    except (OSError, ConfigError):
        pass
    if dry_run:
        click.echo(data.decode("utf-8-sig"), nl=False)
        return True
    try:
        file.target.parent.mkdir(mode=file.dir_mode, parents=True, exist_ok=True)
        if file.raw is not None:
            replace_file(backup, file.raw, file.mode)
        replace_file(file.target, data, file.mode)
    except OSError as exc:
        raise ConfigError(f"cannot write {exc.filename or file.path}: {exc.strerror}") from None
    return True


def _dump(settings: dict[str, Any], like: bytes | None) -> bytes:
    """`settings` as JSON in the style of `like` (indent, separators, newlines, BOM, escaping);
    two-space indent and a final newline for a new file."""
    text = like.decode("utf-8-sig", "replace") if like else ""
    body = text.replace("\r\n", "\n").strip()
    indent: str | None = "  "
    separators = (",", ": ")
    if body and "\n" not in body:
        indent = None
        separators = (", ", ": ") if '": ' in body else (",", ":")
    elif body:
        lines = body.split("\n")[1:]
        first = next((ln for ln in lines if ln.strip() and ln[0] in " \t"), "")
        indent = first[: len(first) - len(first.lstrip(" \t"))]
    ascii_only = bool(text) and text.isascii() and "\\u" in text
    out = json.dumps(settings, indent=indent, separators=separators, ensure_ascii=ascii_only)
    if like is None or text.endswith("\n"):
        out += "\n"
    if "\r\n" in text:
        out = out.replace("\n", "\r\n")
    data = out.encode("utf-8")
    return _BOM + data if like is not None and like.startswith(_BOM) else data


def _canonical(settings: object) -> str:
    # Type-strict comparison: 1, 1.0 and true are equal in Python but not in the file.
    return json.dumps(settings, sort_keys=True, ensure_ascii=False)


def _backup_path(path: Path) -> Path:
    return path.with_name(path.name + BACKUP_SUFFIX)


def _flightlog_argv() -> list[str]:
    """The absolute command that starts this flightlog, for a hook run with any PATH: the
    `flightlog` script of this Python's environment, else the one on PATH, else `python -m`."""
    here = shutil.which("flightlog", path=os.path.dirname(os.path.abspath(sys.executable)))
    exe = here or shutil.which("flightlog")
    if exe:
        return [os.path.abspath(exe)]
    return [os.path.abspath(sys.executable), "-m", "flightlog"]


def _check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--url must be an http:// or https:// URL, not {url!r}")
    return url


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _say(message: str, dry_run: bool) -> None:
    # In a dry run stdout is the resulting file, so the summary goes to stderr.
    click.echo(f"dry run: {message}" if dry_run else message, err=dry_run)
