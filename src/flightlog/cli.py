"""The `flightlog` command line. User errors print one line and exit non-zero; no tracebacks."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import click

from flightlog.cli_common import open_ledger, store_summary
from flightlog.errors import FlightlogError
from flightlog.home import resolve_home
from flightlog.ledger.verify import verify_ledger
from flightlog.pipeline import Pipeline
from flightlog.redact import Redactor
from flightlog.render import trace_tree

__all__ = ["main"]


def _emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


def _emit_proof(data: dict[str, Any], heading: str, as_json: bool) -> None:
    """Print a proof record as JSON, or as a heading and its numbered hashes."""
    if as_json:
        _emit_json(data)
        return
    click.echo(heading)
    for i, h in enumerate(data["proof"]):
        click.echo(f"  {i}: {h}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: $FLIGHTLOG_HOME, else ~/.flightlog).",
)
@click.version_option(package_name="flightlog")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """flightlog: the flight recorder for autonomous coding agents.

    Events go in through one write path (validate, redact, append to a tamper-evident
    RFC 6962 ledger with signed checkpoints) and come out as traces, proofs and exports.
    """
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


def _read_lines(source: str) -> Iterator[tuple[int, str]]:
    if source == "-":
        yield from enumerate(sys.stdin, 1)
        return
    try:
        with open(source, encoding="utf-8") as f:
            yield from enumerate(f, 1)
    except OSError as exc:
        raise click.ClickException(f"cannot read {source}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{source} is not UTF-8 text") from None


@cli.command()
@click.argument("source", metavar="FILE|-")
@click.option(
    "--rules",
    "rule_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Extra redaction rules (flightlog or .gitleaks.toml format); repeatable. "
    "Also read from $FLIGHTLOG_REDACT_RULES (paths separated by the OS path separator).",
)
@click.option("--source-kind", default="cli", show_default=True, help="Value of source.kind.")
@click.pass_context
def ingest(ctx: click.Context, source: str, rule_files: tuple[Path, ...], source_kind: str) -> None:
    """Store events from a JSON-lines FILE (or - for stdin) through the write path.

    Every line is validated against flightlog.event/v1 and redacted before anything is
    written. If any line is bad, each bad line is reported and nothing is stored.
    """
    env_rules = [Path(p) for p in os.environ.get("FLIGHTLOG_REDACT_RULES", "").split(os.pathsep) if p]
    files = [*env_rules, *rule_files]
    redactor = Redactor.from_files(files) if files else Redactor.default()
    raws: list[object] = []
    lines: list[int] = []
    bad: list[str] = []
    for n, line in _read_lines(source):
        if not line.strip():
            continue
        try:
            raws.append(json.loads(line))
            lines.append(n)
        except json.JSONDecodeError as exc:
            bad.append(f"line {n}: $: invalid JSON ({exc.msg} at column {exc.colno})")
    ledger = open_ledger(ctx, True)
    pipeline = Pipeline(ledger, redactor, source_kind=source_kind)
    good, rejected = pipeline.prepare_events(raws)
    bad.extend(f"line {lines[r.index]}: {r.field}: {r.reason}" for r in rejected)
    if bad:
        for message in sorted(bad, key=lambda m: int(m.split(":")[0][5:])):
            click.echo(message, err=True)
        raise click.ClickException(f"{len(bad)} bad line(s); nothing was stored")
    if not good:
        click.echo("no events in input; nothing stored", err=True)
        return
    click.echo(store_summary(ledger, good))


@cli.command()
@click.option("--key", "keys", multiple=True, help="Trust only this verifier key (repeatable).")
@click.option(
    "--checkpoint",
    "trusted",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A signed checkpoint kept elsewhere that the log must still match (repeatable).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only failures.")
@click.pass_context
def verify(ctx: click.Context, keys: tuple[str, ...], trusted: tuple[Path, ...], quiet: bool) -> None:
    """Recompute the ledger from its stored bytes and check every signature and proof.

    Exits 0 when intact; otherwise exits 6 naming the failed step and the first bad entry.
    """
    ledger = open_ledger(ctx)
    notes = [p.read_text("utf-8") for p in trusted]

    def progress(n: int) -> None:
        if not quiet and n % 100000 == 0:
            click.echo(f"  … {n} entries", err=True)

    report = verify_ledger(ledger, list(keys) or None, notes, progress)
    if not quiet:
        for step, detail in report.steps:
            click.echo(f"ok   {step:<14} {detail}")
        click.echo(f"intact: {report.entries} entries, {report.checkpoints} checkpoints")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def checkpoint(ctx: click.Context, as_json: bool) -> None:
    """Print the latest signed checkpoint note (issuing one if entries arrived since).

    stdout is exactly the signed note, so `flightlog checkpoint > kept.note` keeps one for
    `verify --checkpoint`; the verifier key goes to stderr.
    """
    record = open_ledger(ctx, None, existing=True).checkpoint_record()
    if as_json:
        _emit_json(record)
    else:
        click.echo(record["note"], nl=False)
        click.echo(f"verifier key: {record['verifier_key']}", err=True)  # stdout stays a note


@cli.group()
def proof() -> None:
    """Merkle proofs an auditor can check with any RFC 6962 implementation."""


@proof.command("inclusion")
@click.argument("ref", metavar="INDEX|EVENT_ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def proof_inclusion(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Prove that an entry is in the tree of the latest signed checkpoint."""
    ledger = open_ledger(ctx, None, existing=True)
    data = ledger.inclusion_record(ledger.resolve_index(ref))
    heading = f"entry {data['index']} ({data['event_id']}) in tree of size {data['size']}, root {data['root']}"
    _emit_proof(data, heading, as_json)


@proof.command("consistency")
@click.argument("old", type=int)
@click.argument("new", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def proof_consistency(ctx: click.Context, old: int, new: int | None, as_json: bool) -> None:
    """Prove that the tree of size OLD is a prefix of the tree of size NEW (default: latest)."""
    ledger = open_ledger(ctx, None, existing=True)
    if new is None:
        new = ledger.checkpoint().size
    path = ledger.prove_consistency(old, new)
    data = {
        "size1": old,
        "size2": new,
        "root1": ledger.root(old).hex(),
        "root2": ledger.root(new).hex(),
        "proof": [h.hex() for h in path],
    }
    _emit_proof(data, f"{old} -> {new}: root1 {data['root1']} root2 {data['root2']}", as_json)


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["leaves", "events", "agent-trace"]),
    default="leaves",
    show_default=True,
    help="leaves: index, event id and base64 of the exact leaf bytes; events: the events as JSON; "
    "agent-trace: one Agent Trace 0.1.0 record per conversation (the files and lines agents wrote).",
)
@click.pass_context
def export(ctx: click.Context, fmt: str) -> None:
    """Write the log as JSON lines for auditors and other tools: one line per entry, or with
    --format agent-trace one attribution record per conversation that changed files."""
    ledger = open_ledger(ctx)
    out = sys.stdout
    if fmt == "agent-trace":
        from flightlog.agent_trace import agent_trace_records

        events = (json.loads(leaf) for _, _, leaf, _ in ledger.store.iter_entries())
        for record in agent_trace_records(events, ledger.blobs.get):
            out.write(json.dumps(record) + "\n")
        return
    for index, event_id, leaf, _ in ledger.store.iter_entries():
        if fmt == "leaves":
            row: dict[str, Any] = {
                "index": index,
                "event_id": event_id,
                "leaf": base64.b64encode(leaf).decode(),
            }
            out.write(json.dumps(row) + "\n")
        else:
            out.write(bytes(leaf).decode("utf-8") + "\n")


@cli.group("keys")
def keys_group() -> None:
    """The log's Ed25519 signing keys."""


@keys_group.command("list")
@click.pass_context
def keys_list(ctx: click.Context) -> None:
    """List every key the log has used, newest last."""
    ledger = open_ledger(ctx, None)
    if ledger.writable:
        ledger.keys.private_key()  # the first key is made on first use
    for k in ledger.keys.keys():  # noqa: SIM118 - KeyRing.keys, not a dict
        state = f"retired {k.retired}" if k.retired else "active"
        click.echo(f"{k.verifier_key}  created {k.created}  {state}")


@keys_group.command("rotate")
@click.pass_context
def keys_rotate(ctx: click.Context) -> None:
    """Retire the signing key (its public key is kept) and sign the tree with a new one."""
    ledger = open_ledger(ctx, True)
    cp = ledger.rotate_key()
    click.echo(f"new key {ledger.keys.active_verifier_key()}; checkpoint size {cp.size} signed")


@keys_group.command("export")
@click.pass_context
def keys_export(ctx: click.Context) -> None:
    """Print the public verifier keys (one per line) for auditors: never private keys."""
    ledger = open_ledger(ctx, None)
    if ledger.writable:
        ledger.keys.private_key()
    for vkey in ledger.keys.verifier_keys():
        click.echo(vkey)


@cli.command()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1), help="How many traces, newest first.")
@click.pass_context
def traces(ctx: click.Context, limit: int) -> None:
    """List recent traces."""
    rows = open_ledger(ctx).store.traces(limit)
    if not rows:
        click.echo("no traces yet")
    for trace_id, count, first, last, agents in rows:
        click.echo(f"{trace_id}  {count:>5} events  {first[:19]} → {last[11:19]}  {agents}")


_SAY_INDEXING: Final = 10_000  # entries behind the search index before `search` reports progress
_SEARCH_LIMIT: Final = 10_000  # events one `search` prints at most: its hits and snippets are held in memory


@cli.command()
@click.argument("words", nargs=-1, required=True)
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(1, _SEARCH_LIMIT),
    help="How many events, newest first.",
)
@click.pass_context
def search(ctx: click.Context, words: tuple[str, ...], limit: int) -> None:
    """Find events containing every one of WORDS (full text over redacted events)."""
    from flightlog.index import SearchIndex, check_query

    check_query(" ".join(words))  # before a backlog is indexed, not after
    ledger = open_ledger(ctx)
    index = SearchIndex(ledger.store.path)
    try:
        for _ in range(2):  # again when the search found the index damaged and made it anew
            behind = ledger.size - index.indexed
            if behind > _SAY_INDEXING:  # e.g. a deleted index.db over a large ledger: say why it waits
                click.echo(f"indexing {behind:,} entries for search first…", err=True)
            while index.catch_up_step():
                if behind > _SAY_INDEXING:
                    click.echo(f"  {index.indexed:,} / {ledger.size:,}", err=True)
            hits = index.search(" ".join(words), limit)
            if index.indexed >= ledger.size:
                break
    finally:
        index.close()
    if not hits:
        click.echo("no matches")
    for hit in hits:
        snippet = " ".join(hit.snippet.split())
        click.echo(f"#{hit.index} {hit.trace_id} {hit.type:<12} {snippet}")


@cli.command()
@click.argument("trace_id")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON lines.")
@click.pass_context
def show(ctx: click.Context, trace_id: str, as_json: bool) -> None:
    """Show one trace as a tree of its events."""
    rows = open_ledger(ctx).store.trace_leaves(trace_id.lower())
    if not rows:
        raise click.ClickException(f"no trace {trace_id}")
    if as_json:
        for _, leaf in rows:
            click.echo(leaf.decode("utf-8"))
        return
    click.echo(f"trace {trace_id} ({len(rows)} events)")
    for line in trace_tree([(i, json.loads(leaf)) for i, leaf in rows]):
        click.echo(line)


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but loopback needs tokens.",
)
@click.option(
    "--port",
    default=4318,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (4318 is OTLP/HTTP's).",
)
@click.option(
    "--home",
    "serve_home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (overrides the global --home).",
)
@click.option(
    "--max-body-bytes",
    default=16 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest request body, after gzip decompression.",
)
@click.option(
    "--max-event-bytes",
    default=1024 * 1024,
    show_default=True,
    type=click.IntRange(256),
    help="Largest single event on /api/v1/events.",
)
@click.option(
    "--max-pending-events",
    default=100_000,
    show_default=True,
    type=click.IntRange(1),
    help="Events accepted but not yet committed; past it requests get 503 + Retry-After (and a request of "
    "more events than this, 413).",
)
@click.option(
    "--max-pending-bytes",
    default=64 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1024),
    help="Request bytes being prepared or committed; past it requests get 503 + Retry-After (one request "
    "is always taken when nothing else waits).",
)
@click.option(
    "--anonymous-loopback/--require-tokens",
    default=True,
    show_default=True,
    help="Let clients on 127.0.0.1/::1 in without a token.",
)
@click.option(
    "--export-otlp",
    default=None,
    metavar="URL",
    help="Also forward every stored event as an OTLP span to this /v1/traces URL (Jaeger, Tempo, Phoenix…), "
    "from the ledger's end when the URL is new, resuming where it stopped after a restart.",
)
@click.option(
    "--export-header",
    "export_headers",
    multiple=True,
    metavar="KEY=VALUE",
    help="A header for --export-otlp requests, e.g. 'Authorization=Bearer …' (repeatable; or k1=v1,k2=v2 "
    "with %-encoded values, as in OTEL_EXPORTER_OTLP_HEADERS). For a secret, prefer $FLIGHTLOG_EXPORT_HEADERS "
    "in that form: command lines are visible to other users.",
)
@click.option(
    "--policy-url",
    default=None,
    metavar="URL",
    envvar="FLIGHTLOG_POLICY_URL",
    help="Decide gated actions with this OPA server (REST data API) instead of in process.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    serve_home: Path | None,
    max_body_bytes: int,
    max_event_bytes: int,
    max_pending_events: int,
    max_pending_bytes: int,
    anonymous_loopback: bool,
    export_otlp: str | None,
    export_headers: tuple[str, ...],
    policy_url: str | None,
) -> None:
    """Run the collector: OTLP/HTTP receiver, events API and query API.

    Stops cleanly on SIGINT/SIGTERM: requests in flight finish, every acknowledged event is
    durable, and a final checkpoint is signed.
    """
    import uvicorn  # the server stack is loaded only for this command

    from flightlog.ledger.log import Ledger
    from flightlog.server.app import ServerSettings, create_app
    from flightlog.server.export import check_endpoint, parse_headers

    try:
        export_otlp = check_endpoint(export_otlp) if export_otlp else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--export-otlp") from None
    try:
        headers = parse_headers(export_headers)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--export-header") from None
    if headers and not export_otlp:
        raise click.UsageError("--export-header needs --export-otlp")
    # Read only for an export: a token kept in a shell profile must not stop a plain serve.
    if export_otlp and (from_env := os.environ.get("FLIGHTLOG_EXPORT_HEADERS", "").strip()):
        try:
            headers = {**parse_headers([from_env]), **headers}
        except ValueError as exc:
            raise click.UsageError(f"$FLIGHTLOG_EXPORT_HEADERS: {exc}") from None
    home = resolve_home(serve_home or ctx.obj["home"])
    if home.is_dir() and (mode := home.stat().st_mode & 0o777) & 0o077:  # made by someone else: ours are 0700
        click.echo(f"warning: {home} is open to other users (mode {mode:o}); chmod 700 it", err=True)
    try:  # refuse a ledger in use with its one-line reason, before the server stack starts
        Ledger(home).close()
    except FlightlogError as exc:
        raise click.ClickException(str(exc)) from None
    settings = ServerSettings(
        max_body_bytes=max_body_bytes,
        max_event_bytes=max_event_bytes,
        max_pending_events=max_pending_events,
        max_pending_bytes=max_pending_bytes,
        anonymous_loopback=anonymous_loopback,
        export_otlp=export_otlp,
        export_headers=headers,
        policy_url=policy_url,
    )
    config = uvicorn.Config(create_app(home, settings), host=host, port=port, log_level="warning")

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                # The bound address, not the asked one: --port 0 lets the system choose.
                bound = self.servers[0].sockets[0].getsockname() if self.servers else (host, port)
                where = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
                click.echo(
                    f"flightlog listening on http://{where}:{bound[1]} (web UI /, OTLP /v1/traces /v1/logs, "
                    "API /api/v1, Claude Code hooks /hooks/claude-code)"
                )
                click.echo(f"data in {home}")

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # A clean stop is a success: exit 0 instead of re-raising the signal afterwards.
            self._captured_signals.clear()

    server = _Server(config)
    server.run()
    if not server.started:
        raise click.ClickException(f"could not listen on {host}:{port} (in use or not allowed?)")
    click.echo("stopped; every acknowledged event is committed and the last checkpoint signed")


@cli.group("tokens")
def tokens_group() -> None:
    """API tokens for the collector (roles: ingest, read, approve, admin)."""


@tokens_group.command("create")
@click.option("--role", required=True, type=click.Choice(["ingest", "read", "approve", "admin"]))
@click.option("--name", default="", help="A label to recognise it by.")
@click.pass_context
def tokens_create(ctx: click.Context, role: str, name: str) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from flightlog.home import ensure_home
    from flightlog.server.auth import TokenStore

    token, secret = TokenStore(ensure_home(resolve_home(ctx.obj["home"]))).create(role, name)
    click.echo(secret)
    click.echo(f"token {token.token_id} ({role}) created; it is not shown again", err=True)


@tokens_group.command("list")
@click.pass_context
def tokens_list(ctx: click.Context) -> None:
    """List tokens (id, role, name, created); secrets are never shown."""
    from flightlog.server.auth import TokenStore

    for t in TokenStore(resolve_home(ctx.obj["home"])).tokens():
        click.echo(f"{t.token_id}  {t.role:<8} {t.created}  {t.name}")


@tokens_group.command("revoke")
@click.argument("token_id")
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke a token by id; takes effect at once, also on a running server."""
    from flightlog.server.auth import TokenStore

    if not TokenStore(resolve_home(ctx.obj["home"])).revoke(token_id):
        raise click.ClickException(f"no token {token_id}")
    click.echo(f"revoked {token_id}")


def _register() -> None:
    """Commands that live in their own modules (each loads its heavy parts only when run)."""
    from flightlog import cli_git, cli_policy, cli_watch, cli_workspace
    from flightlog.cli_hook import hook_group, spool_group
    from flightlog.cli_import import import_group
    from flightlog.cli_install import install_group, uninstall_group

    for group in (import_group, install_group, uninstall_group, hook_group, spool_group):
        cli.add_command(group)
    for command in (*cli_workspace.COMMANDS, *cli_git.COMMANDS, *cli_watch.COMMANDS, *cli_policy.COMMANDS):
        cli.add_command(command)
    for command in cli_policy.KEYS_COMMANDS:
        keys_group.add_command(command)
    for command in cli_git.HOOK_COMMANDS:
        hook_group.add_command(command)


_register()


def main() -> None:
    """Run the CLI; turn flightlog errors into one line on stderr and their exit code."""
    try:
        cli(standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except FlightlogError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # a data directory the user may read but not write, a full disk, …
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(1)
