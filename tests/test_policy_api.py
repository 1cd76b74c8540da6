"""`/api/v1/approvals` on a real collector: an approval signed on the approver's machine is
accepted and delivered to the waiting ask; wrong role, another action, expired, forged, the
agent's own identity and replays are refused, recorded as `error` events and counted by
`flightlog_approval_bypass_attempts_total`; `flightlog approve --url` goes through it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flightlog import approvals
from tests.conftest import CliRunner
from tests.server.conftest import Server, start_server
from tests.server.test_metrics import _value

EVENT = "0196a3c1-0000-7000-8000-00000000abcd"


def _pending() -> dict[str, Any]:
    """A request as the hook's ask writes it."""
    return {
        "event_id": EVENT,
        "action_digest": "sha256:" + "ab" * 32,
        "roles": ["infra"],
        "reason": "infrastructure file",
        "rules": ["infra-file"],
        "tool_name": "Write",
        "agent_id": "claude-code",
        "session_id": "s-1",
        "trace_id": "1" * 32,
        "span_id": "2" * 16,
        "created": "2026-01-01T00:00:00Z",
    }


@pytest.fixture
def approver_home(tmp_path: Path) -> Path:
    """The approver's machine: their private keys; the collector only gets approvers.json."""
    mine = tmp_path / "approver-home"
    approvals.create_approver(mine, "alice", "infra")
    approvals.create_approver(mine, "mallory", "dev")
    approvals.create_approver(mine, "claude-code", "infra")
    return mine


@pytest.fixture
def server(home: Path, approver_home: Path) -> Iterator[Server]:
    (home / "approvers").mkdir(parents=True)
    shutil.copy(approver_home / "approvers" / "approvers.json", home / "approvers" / "approvers.json")
    approvals.write_request(home, _pending())
    started = start_server(home)
    yield started
    started.stop()


def _post(server: Server, approval: dict[str, Any], event_id: str = EVENT, **kw: Any) -> httpx.Response:
    return httpx.post(server.url + "/api/v1/approvals", json={"event_id": event_id, "approval": approval}, **kw)


def test_approvals_api_accepts_a_signed_approval_and_refuses_bypasses(
    home: Path, approver_home: Path, server: Server
) -> None:
    assert not list(home.glob("approvers/*.key"))  # the collector holds no private key
    listed = httpx.get(server.url + "/api/v1/approvals").json()["pending"]
    assert [r["event_id"] for r in listed] == [EVENT]
    request = _pending()
    sign = approvals.sign_approval

    good = sign(approver_home, "alice", request)
    accepted = _post(server, good)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["approved"] is True
    (delivered,) = approvals.inbox(home, EVENT)
    assert delivered[1] == good
    assert _post(server, good).json()["reason"] == "approval replayed"  # before the ask consumed it
    assert approvals.check_approval(home, good, request) is None  # the ask consumes it
    delivered[0].unlink()
    assert _post(server, good).json()["reason"] == "approval replayed"  # and after

    forged = {**sign(approver_home, "mallory", request), "approver": "alice", "role": "infra"}
    forged["public_key"] = good["public_key"]
    other = sign(approver_home, "alice", {**request, "action_digest": "sha256:" + "cd" * 32})
    refused = {
        "wrong role: mallory is dev, the action needs infra": sign(approver_home, "mallory", request),
        "approval is for another action": other,
        "approval expired": sign(approver_home, "alice", request, ttl=0),
        "approval by the agent's own identity": sign(approver_home, "alice", request, context="agent"),
        "signature does not verify": forged,
        "malformed approval": {"approver": "alice"},
    }
    for why, approval in refused.items():
        answer = _post(server, approval)
        assert answer.status_code == 422, (why, answer.text)
        assert answer.json()["reason"] == why
        assert answer.json()["error"] == f"approval refused: {why} (recorded as an approval-bypass attempt)"
        stored = httpx.get(f"{server.url}/api/v1/events/{answer.json()['event_id']}").json()["event"]
        assert stored["type"] == "error" and stored["status"] == "denied"
        assert stored["payload"]["kind"] == "approval_bypass_attempt" and stored["payload"]["reason"] == why
        assert stored["parent_span_id"] == request["span_id"]
    own = sign(approver_home, "claude-code", request)
    assert _post(server, own).json()["reason"] == "approval by the agent's own identity"

    approval_event = httpx.get(f"{server.url}/api/v1/events/{accepted.json()['event_id']}").json()["event"]
    assert approval_event["type"] == "approval" and approval_event["payload"]["signature"] == good["signature"]
    assert approval_event["trace_id"] == request["trace_id"]

    assert _post(server, good, event_id="0196a3c1-0000-7000-8000-00000000ffff").status_code == 404
    assert httpx.post(server.url + "/api/v1/approvals", content=b"{nope").status_code == 400
    assert httpx.post(server.url + "/api/v1/approvals", json={"event_id": EVENT}).status_code == 400
    metrics = httpx.get(server.url + "/metrics").text
    bypasses = 2 + len(refused) + 1  # two replays, the table, the agent's own key
    assert _value(metrics, "flightlog_approval_bypass_attempts_total") == bypasses
    assert _value(metrics, "flightlog_denied_actions_total") == bypasses  # refusals are denied events too


def test_approvals_api_needs_the_approve_role(home: Path, approver_home: Path, flightlog: CliRunner) -> None:
    (home / "approvers").mkdir(parents=True)
    shutil.copy(approver_home / "approvers" / "approvers.json", home / "approvers" / "approvers.json")
    approvals.write_request(home, _pending())
    tokens = {
        role: flightlog("tokens", "create", "--role", role, check=True).stdout.split()[-1]
        for role in ("read", "approve", "ingest")
    }
    server = start_server(home, "--require-tokens")
    try:
        good = approvals.sign_approval(approver_home, "alice", _pending())
        assert _post(server, good).status_code == 401
        for role in ("read", "ingest"):
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            assert _post(server, good, headers=headers).status_code == 403
            assert httpx.get(server.url + "/api/v1/approvals", headers=headers).status_code == 403
        headers = {"Authorization": f"Bearer {tokens['approve']}"}
        assert _post(server, good, headers=headers).status_code == 200
    finally:
        server.stop()


def _approve(approver_home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTLOG_", "CLAUDE"))}
    proc = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(approver_home), "approve", *args],
        capture_output=True,
        text=True,
        env=clean | {"FLIGHTLOG_URL": "http://127.0.0.1:9"} | env,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_flightlog_approve_sends_through_the_api(home: Path, approver_home: Path, server: Server) -> None:
    listed = _approve(approver_home, "--url", server.url)
    assert listed.returncode == 0 and EVENT in listed.stdout and "needs infra" in listed.stdout
    wrong = _approve(approver_home, EVENT, "--approver", "mallory", "--url", server.url)
    assert wrong.returncode == 1 and "approval refused: wrong role" in wrong.stderr
    inside = _approve(approver_home, EVENT, "--approver", "alice", FLIGHTLOG_URL=server.url, CLAUDECODE="1")
    assert inside.returncode == 1 and "agent's own identity" in inside.stderr
    assert not (home / "approvals" / "inbox").exists() and not (approver_home / "approvals" / "inbox").exists()
    done = _approve(approver_home, EVENT, "--approver", "alice", FLIGHTLOG_URL=server.url)  # found by $FLIGHTLOG_URL
    assert done.returncode == 0, done.stderr
    assert f"recorded in the collector at {server.url}" in done.stdout
    ((_, record),) = approvals.inbox(home, EVENT)
    assert (
        record is not None and record["approver"] == "alice" and record["action_digest"] == _pending()["action_digest"]
    )
    missing = _approve(approver_home, "0196a3c1-0000-7000-8000-00000000ffff", "--url", server.url)
    assert missing.returncode == 1 and "no pending approval request" in missing.stderr
    metrics = httpx.get(server.url + "/metrics").text
    assert _value(metrics, "flightlog_approval_bypass_attempts_total") == 2
    events = httpx.get(f"{server.url}/api/v1/traces/{'1' * 32}").json()["events"]
    assert sorted(e["event"]["type"] for e in events) == ["approval", "error", "error"]
