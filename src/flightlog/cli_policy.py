"""Commands of `flightlog` for policy and approvals: see COMMANDS (`policy test|eval|check`,
`approve`) and KEYS_COMMANDS (`keys create --approver`, `keys approvers`)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
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
    findings = _findings(document, files)
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
@click.pass_context
def approve(ctx: click.Context, event_id: str | None, approver: str | None, ttl: int) -> None:
    """Approve the action of an `ask` (its policy_evaluation EVENT_ID) with a signed approval.

    Without EVENT_ID, lists the pending requests. An approval that would be refused (wrong
    role, another action, made from inside an agent) is recorded as an approval-bypass attempt.
    """
    from flightlog import approvals
    from flightlog.recorder import record

    home = _home(ctx)
    if event_id is None:
        pending = approvals.pending_requests(home)
        for r in pending:
            click.echo(
                f"{r['event_id']}  {r.get('tool_name')}  needs {', '.join(r.get('roles') or [])}: {r.get('reason')}"
            )
        if not pending:
            click.echo("no pending approval requests")
        return
    request = approvals.read_request(home, event_id)
    if request is None:
        raise click.ClickException(f"no pending approval request {event_id} (the ask is over or never was)")
    known = approvals.approvers(home)
    if approver is None:
        if len(known) != 1:
            raise click.ClickException("say which approver with --approver NAME")
        approver = next(iter(known))
    context = "agent" if any(os.environ.get(name) for name in _AGENT_ENV) else "human"
    signed = approvals.sign_approval(home, approver, request, ttl, context)
    why = approvals.check_approval(home, signed, request, consume=False)
    if why is not None:
        record([_bypass_event(request, signed, why)], home)
        raise click.ClickException(f"approval refused: {why} (recorded as an approval-bypass attempt)")
    folder = home / "approvals" / "inbox"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    from flightlog.home import write_private_file

    write_private_file(folder / f"{event_id}.{signed['nonce']}.json", json.dumps(signed).encode())
    where = record([_approval_event(request, signed)], home)
    click.echo(
        f"approved {event_id} as {approver} ({signed['role']}), valid until {signed['expires_at']}; recorded in {where}"
    )


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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _approval_event(request: dict[str, Any], signed: dict[str, Any]) -> dict[str, Any]:
    from flightlog.ids import derive_id

    return {
        "trace_id": request["trace_id"],
        "span_id": derive_id(f"flightlog-approval:{signed['nonce']}", 8),
        "parent_span_id": request["span_id"],
        "type": "approval",
        "status": "ok",
        "timestamp": _now(),
        "agent_id": str(request.get("agent_id") or "unknown"),
        "session_id": request.get("session_id"),
        "user_context": {"user_id": signed["approver"], "role": signed["role"]},
        "payload": {**signed, "decision": "approved"},
    }


def _bypass_event(request: dict[str, Any], signed: dict[str, Any], why: str) -> dict[str, Any]:
    from flightlog.ids import derive_id

    return {
        "trace_id": request["trace_id"],
        "span_id": derive_id(f"flightlog-approval-refused:{signed['nonce']}", 8),
        "parent_span_id": request["span_id"],
        "type": "error",
        "status": "denied",
        "timestamp": _now(),
        "agent_id": str(request.get("agent_id") or "unknown"),
        "session_id": request.get("session_id"),
        "user_context": {"user_id": signed["approver"], "role": signed["role"]},
        "payload": {
            "kind": "approval_bypass_attempt",
            "message": f"approval refused: {why}",
            "reason": why,
            "approver": signed["approver"],
            "role": signed["role"],
            "policy_event_id": request["event_id"],
            "action_digest": signed["action_digest"],
        },
    }


COMMANDS: list[click.Command] = [policy_group, approve]
KEYS_COMMANDS: list[click.Command] = [keys_create, keys_approvers]  # added under `flightlog keys`
