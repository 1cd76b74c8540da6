"""Commands of `flightlog` for policy and approvals: see COMMANDS (`policy test|eval|check`,
`approve`) and KEYS_COMMANDS (`keys create --approver`, `keys approvers`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from flightlog.home import resolve_home

__all__ = ["COMMANDS", "KEYS_COMMANDS"]

_AGENT_ENV = ("CLAUDECODE", "CODEX_SANDBOX")  # set by agents in the shells they run


def _home(ctx: click.Context) -> Path:
    return resolve_home(ctx.find_root().obj["home"])


def _workspace(workspace: Path | None) -> Path:
    return (workspace or Path.cwd()).absolute()


@click.group("policy")
def policy_group() -> None:
    """Policy as code: the built-in pack plus your Rego (see docs/policy.md)."""


@policy_group.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--workspace", type=click.Path(file_okay=False, path_type=Path), default=None, help="Default: cwd.")
@click.option("--no-pack", is_flag=True, help="Leave out the built-in pack and its tests.")
@click.pass_context
def policy_test(ctx: click.Context, paths: tuple[Path, ...], workspace: Path | None, no_pack: bool) -> None:
    """Run the Rego tests (`test_*` rules) of the pack and of your policies; exit 1 on a failure.

    PATHS (files or folders of *.rego) replace your policy folders when given.
    """
    from flightlog.policy_tests import run_tests

    home = _home(ctx)
    results = run_tests(home, _workspace(workspace), list(paths), pack=not no_pack)
    if not results:
        raise click.ClickException("no Rego tests found (rules named test_*)")
    failed = 0
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        failed += not result.passed
        detail = f" ({result.error})" if result.error else ""
        click.echo(f"{mark} {result.file}: {result.rule}{detail}")
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise SystemExit(1)  # ctx.exit loses the code under standalone_mode=False


@policy_group.command("eval")
@click.option("--input", "input_file", required=True, metavar="FILE", help="Input document or hook JSON ('-': stdin).")
@click.option("--workspace", type=click.Path(file_okay=False, path_type=Path), default=None, help="Default: cwd.")
@click.pass_context
def policy_eval(ctx: click.Context, input_file: str, workspace: Path | None) -> None:
    """Explain the decision for one action: the decision, and every rule that spoke.

    FILE is a policy input document (with "action"), or a Claude Code PreToolUse hook JSON
    (with "tool_name" and "tool_input"), which is turned into one as the hook would.
    """
    from flightlog.policy_stage import decide, policy_files

    home = _home(ctx)
    data = _read_json(input_file)
    root = _workspace(workspace)
    document = data if isinstance(data.get("action"), dict) else _hook_document(data, root)
    files = policy_files(home, root)
    decision = decide(document, files)
    findings = _findings(document, files) if decision.engine != "opa" else []  # OPA's are its own
    out = {**decision.to_payload(), "findings": findings, "input": document}
    click.echo(json.dumps(out, indent=2, sort_keys=True))


@policy_group.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workspace", type=click.Path(file_okay=False, path_type=Path), default=None, help="Default: cwd.")
@click.option("--fail-on-ask", is_flag=True, help="Exit 1 on ask as well as on deny.")
@click.pass_context
def policy_check(ctx: click.Context, paths: tuple[Path, ...], workspace: Path | None, fail_on_ask: bool) -> None:
    """Evaluate the policies against files or diffs (conftest style); exit 1 on any deny.

    Each file is checked as a write of its content; a unified diff (*.diff, *.patch, or text
    starting with "diff --git"/"---") as a write of each file it changes, with the added lines.
    """
    from flightlog.policy_stage import decide, policy_files

    home = _home(ctx)
    root = _workspace(workspace)
    files = policy_files(home, root)
    worst = "allow"
    for path in paths:
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"cannot read {path}: {exc}") from None
        for target, content in _writes(path, text, root):
            document = _hook_document(
                {"tool_name": "Write", "tool_input": {"file_path": target, "content": content}}, root
            )
            decision = decide(document, files)
            verdict = "allow" if decision.decision == "abstain" else decision.decision
            rules = f" [{', '.join(decision.rules)}]" if decision.rules else ""
            reason = f": {decision.reason}" if decision.decision != "abstain" else ""
            click.echo(f"{verdict:5} {target}{rules}{reason}")
            if verdict == "deny" or (verdict == "ask" and worst == "allow"):
                worst = verdict
    if worst == "deny" or (worst == "ask" and fail_on_ask):
        raise SystemExit(1)  # ctx.exit loses the code under standalone_mode=False


@click.command("approve")
@click.argument("event_id", required=False)
@click.option("--approver", default=None, help="Approver name (default: the only registered approver).")
@click.option("--ttl", type=click.IntRange(0, 86400), default=600, show_default=True, help="Seconds it stays valid.")
@click.option(
    "--url",
    default=None,
    metavar="URL",
    help="Send through this collector's approvals API (default: $FLIGHTLOG_URL when a collector answers).",
)
@click.pass_context
def approve(ctx: click.Context, event_id: str | None, approver: str | None, ttl: int, url: str | None) -> None:
    """Approve the action of an `ask` (its policy_evaluation EVENT_ID) with a signed approval.

    Without EVENT_ID, lists the pending requests. The approval is signed here, with the
    approver's key, and sent to the collector's /api/v1/approvals (token: $FLIGHTLOG_TOKEN, role
    approve) when one answers, else dropped into this data directory's inbox. An approval that
    is refused (wrong role, another action, made from inside an agent) is recorded as an
    approval-bypass attempt.
    """
    from flightlog import approvals

    home = _home(ctx)
    api = url.rstrip("/") if url else _local_collector()
    if event_id is None:
        pending = _api_call("GET", api)["pending"] if api else approvals.pending_requests(home)
        for r in pending:
            click.echo(
                f"{r['event_id']}  {r.get('tool_name')}  needs {', '.join(r.get('roles') or [])}: {r.get('reason')}"
            )
        if not pending:
            click.echo("no pending approval requests")
        return
    # the collector's request when it holds one (its hook path asked); else this directory's
    remote = next((r for r in _api_call("GET", api)["pending"] if r.get("event_id") == event_id), None) if api else None
    request = remote if remote is not None or url else approvals.read_request(home, event_id)
    if request is None:
        where = f" at {api}" if url else ""
        raise click.ClickException(f"no pending approval request {event_id}{where} (the ask is over or never was)")
    known = approvals.approvers(home)
    if approver is None:
        if len(known) != 1:
            raise click.ClickException("say which approver with --approver NAME")
        approver = next(iter(known))
    context = "agent" if any(os.environ.get(name) for name in _AGENT_ENV) else "human"
    signed = approvals.sign_approval(home, approver, request, ttl, context)
    if api and remote is not None:
        _api_call("POST", api, {"event_id": event_id, "approval": signed})
        where = f"the collector at {api}"
    else:
        where = _approve_locally(home, request, signed)
    click.echo(
        f"approved {event_id} as {approver} ({signed['role']}), valid until {signed['expires_at']}; recorded in {where}"
    )


def _approve_locally(home: Path, request: dict[str, Any], signed: dict[str, Any]) -> str:
    """Check, deliver to this data directory's inbox and record (no collector answers)."""
    from flightlog import approvals
    from flightlog.recorder import record

    why = approvals.check_approval(home, signed, request, consume=False)
    if why is not None:
        record([approvals.refusal_event(request, signed, why)], home)
        raise click.ClickException(f"approval refused: {why} (recorded as an approval-bypass attempt)")
    approvals.deliver(home, signed)
    return record([approvals.approval_event(request, signed)], home)


def _local_collector() -> str | None:
    """$FLIGHTLOG_URL (or the default local collector) when a flightlog collector answers there."""
    from flightlog.client import collector_url

    base = collector_url().rstrip("/")
    try:
        health = _http("GET", base + "/healthz", None, timeout=1.0)[1]
    except OSError:
        return None
    return base if isinstance(health, dict) and health.get("status") == "ok" else None


def _api_call(method: str, base: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call /api/v1/approvals on the collector at `base`; return the JSON answer of a 200.
    Raises ClickException with the collector's message otherwise."""
    try:
        status, answer = _http(method, base + "/api/v1/approvals", body, timeout=10.0)
    except OSError as exc:
        raise click.ClickException(f"cannot reach the collector at {base}: {exc}") from None
    if status == 200 and isinstance(answer, dict):
        return answer
    message = answer.get("error") if isinstance(answer, dict) else None
    raise click.ClickException(str(message or f"the collector at {base} answered HTTP {status}"))


def _http(method: str, url: str, body: dict[str, Any] | None, timeout: float) -> tuple[int, Any]:
    """(status, JSON body or None) of one request, with $FLIGHTLOG_TOKEN as the bearer token."""
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise click.ClickException(f"the collector URL must be http(s): {url}")
    headers = {"Accept": "application/json"}
    if token := os.environ.get("FLIGHTLOG_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            status, raw = answer.status, answer.read(1024 * 1024)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(1024 * 1024)
    try:
        return status, json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return status, None


@click.command("create")
@click.option("--approver", required=True, help="Approver name.")
@click.option("--role", required=True, help="Role the approver approves for (e.g. infra, maintainer).")
@click.pass_context
def keys_create(ctx: click.Context, approver: str, role: str) -> None:
    """Create an approver's Ed25519 key (approvers/NAME.key, mode 0600) with a role."""
    from flightlog.approvals import create_approver
    from flightlog.home import ensure_home

    created = create_approver(ensure_home(_home(ctx)), approver, role)
    click.echo(f"approver {created.name} (role {created.role}) ed25519:{created.public_key}")


@click.command("approvers")
@click.pass_context
def keys_approvers(ctx: click.Context) -> None:
    """List the approvers: name, role, public key."""
    from flightlog.approvals import approvers

    for a in approvers(_home(ctx)).values():
        click.echo(f"{a.name}\t{a.role}\ted25519:{a.public_key}\t{a.created}")


# --- helpers -------------------------------------------------------------------------------------


def _read_json(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8")
        data = json.loads(text)
    except OSError as exc:
        raise click.ClickException(f"cannot read {source}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise click.ClickException(f"{source} is not JSON") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{source} is not a JSON object")
    return data


def _hook_document(data: dict[str, Any], root: Path) -> dict[str, Any]:
    from flightlog.policy_stage import build_input

    cwd = str(data.get("cwd") or root)
    return build_input(
        agent_id=str(data.get("agent_id") or "claude-code"),
        tool_name=str(data.get("tool_name") or ""),
        tool_input=data.get("tool_input") or {},
        user=os.environ.get("USER"),
        session_id=data.get("session_id") if isinstance(data.get("session_id"), str) else None,
        root=str(root),
        cwd=cwd,
        trace_id="0" * 32,
        span_id="0" * 16,
    )


def _findings(document: dict[str, Any], files: list[Path]) -> list[Any]:
    from flightlog.policy_stage import _engine, error_line

    try:
        engine, _ = _engine(files)
        engine.set_input_json(json.dumps(document))
        result = json.loads(engine.eval_query_as_json("data.flightlog.pack.effective"))["result"]
    except Exception as exc:  # the decision above already says "policy error"
        return [{"error": error_line(exc)}]
    value = result[0]["expressions"][0]["value"] if result else []
    return sorted(value, key=lambda f: (f.get("decision", ""), f.get("rule", ""))) if isinstance(value, list) else []


def _writes(path: Path, text: str, root: Path) -> list[tuple[str, str]]:
    """(file written, content) pairs: the file itself, or each file of a unified diff."""
    if not (path.suffix in (".diff", ".patch") or text.startswith(("diff --git", "--- "))):
        return [(str(path.absolute()), text)]
    found: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("+++ "):
            name = line[4:].split("\t")[0].strip()
            current = None if name == "/dev/null" else str(root / (name[2:] if name.startswith("b/") else name))
            if current is not None:
                found.setdefault(current, [])
        elif current is not None and line.startswith("+"):
            found[current].append(line[1:])
    return [(name, "\n".join(lines) + "\n") for name, lines in found.items()]


COMMANDS: list[click.Command] = [policy_group, approve]
KEYS_COMMANDS: list[click.Command] = [keys_create, keys_approvers]  # added under `flightlog keys`
