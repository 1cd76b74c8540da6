"""Signed approvals end to end: an agent session scripted through `flightlog hook claude-code`
is denied a write to ~/.ssh, asked for approval on terraform/main.tf, refuses a forged approval
(unknown key) and one by the wrong role, and proceeds after `flightlog approve`; every step is
in the trace. Plus the checks of `approvals.check_approval` one by one."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flightlog import approvals
from tests.conftest import CliRunner
from tests.server.conftest import Server

SESSION = "a9f0c4e2-7b1d-4c3e-8f5a-6b7c8d9e0f1a"


def _env(home: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTLOG_", "CLAUDE_"))}
    return env | {"FLIGHTLOG_HOME": str(home), "FLIGHTLOG_URL": url, **extra}


def _hook(home: Path, root: Path, url: str, event: str, **fields: Any) -> subprocess.Popen[str]:
    data = {"session_id": SESSION, "cwd": str(root), "hook_event_name": event, "prompt_id": "p-1", **fields}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flightlog", "hook", "claude-code"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(home, url, CLAUDE_PROJECT_DIR=str(root), FLIGHTLOG_APPROVAL_WAIT="30"),
        cwd=root,
    )
    proc.hook_input = json.dumps(data)  # type: ignore[attr-defined]
    return proc


def _answer(proc: subprocess.Popen[str]) -> str | None:
    out, err = proc.communicate(proc.hook_input, timeout=60)  # type: ignore[attr-defined]
    assert proc.returncode == 0 and "Traceback" not in err, err
    return json.loads(out)["hookSpecificOutput"]["permissionDecision"] if out.strip() else None


def _approve(home: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), "approve", *args],
        capture_output=True,
        text=True,
        env=_env(home, url),
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _forge(home: Path, request: dict[str, Any]) -> None:
    """An approval claiming to be alice's, signed with a key that is not hers."""
    record = {
        "kind": "policy_approval",
        "policy_event_id": request["event_id"],
        "action_digest": request["action_digest"],
        "approver": "alice",
        "role": "infra",
        "nonce": "f" * 32,
        "issued_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires_at": (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "context": "human",
    }
    key = Ed25519PrivateKey.generate()
    record["public_key"] = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    record["signature"] = base64.b64encode(key.sign(approvals.format_statement(record))).decode()
    inbox = home / "approvals" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / f"{request['event_id']}.{record['nonce']}.json").write_text(json.dumps(record))


def test_an_ask_waits_for_a_signed_approval_and_refuses_forgeries(
    home: Path, tmp_path: Path, server: Server, flightlog: CliRunner
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    assert "role infra" in flightlog("keys", "create", "--approver", "alice", "--role", "infra", check=True).stdout
    flightlog("keys", "create", "--approver", "mallory", "--role", "dev", check=True)
    assert oct((home / "approvers" / "alice.key").stat().st_mode & 0o777) == "0o600"
    assert _answer(_hook(home, root, server.url, "UserPromptSubmit", prompt="set up the infra")) is None

    ssh = str(Path.home() / ".ssh" / "authorized_keys")
    denied = _hook(home, root, server.url, "PreToolUse", tool_name="Write", tool_use_id="toolu_1",
                   tool_input={"file_path": ssh, "content": "ssh-ed25519 AAAA"})  # fmt: skip
    assert _answer(denied) == "deny"

    tf = root / "terraform" / "main.tf"
    tf_input = {"file_path": str(tf), "content": 'resource "null_resource" "x" {}\n'}
    outcome: dict[str, Any] = {}

    def approver() -> None:
        deadline = time.monotonic() + 30
        while not (pending := approvals.pending_requests(home)) and time.monotonic() < deadline:
            time.sleep(0.05)
        request = pending[0]
        outcome["listed"] = _approve(home, server.url).stdout
        _forge(home, request)
        time.sleep(0.5)
        outcome["mallory"] = _approve(home, server.url, request["event_id"], "--approver", "mallory")
        outcome["alice"] = _approve(home, server.url, request["event_id"], "--approver", "alice")
        outcome["request"] = request

    helper = threading.Thread(target=approver)
    asked = _hook(home, root, server.url, "PreToolUse", tool_name="Write", tool_use_id="toolu_2", tool_input=tf_input)
    helper.start()
    assert _answer(asked) == "allow"
    helper.join(60)
    request = outcome["request"]
    assert request["event_id"] in outcome["listed"] and "infra" in outcome["listed"]
    assert outcome["mallory"].returncode != 0 and "wrong role" in outcome["mallory"].stderr
    assert outcome["alice"].returncode == 0, outcome["alice"].stderr
    tf.parent.mkdir()
    tf.write_text(tf_input["content"])
    done = _hook(home, root, server.url, "PostToolUse", tool_name="Write", tool_use_id="toolu_2",
                 tool_input=tf_input, tool_response={"success": True})  # fmt: skip
    assert _answer(done) is None
    assert not approvals.pending_requests(home)

    events = [json.loads(line) for line in flightlog("export", "--format", "events", check=True).stdout.splitlines()]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_type.setdefault(e["type"], []).append(e)
    assert len({e["trace_id"] for e in events}) == 1
    decisions = {e["payload"]["decision"]: e for e in by_type["policy_evaluation"]}
    assert decisions["deny"]["payload"]["rules"] == ["sensitive-path", "write-outside-workspace"]
    allowed = decisions["allow"]
    assert allowed["event_id"] == request["event_id"]
    assert allowed["payload"]["rules"] == ["infra-file"]
    assert allowed["payload"]["approvals"][0]["approver"] == "alice"
    (approval,) = by_type["approval"]
    assert approval["payload"]["approver"] == "alice" and approval["payload"]["role"] == "infra"
    assert approval["payload"]["action_digest"] == allowed["payload"]["input_digest"]
    assert approval["parent_span_id"] == allowed["parent_span_id"]
    refusals = sorted(e["payload"]["reason"] for e in by_type["error"])
    assert refusals == [
        "not signed with the key of approver alice",
        "wrong role: mallory is dev, the action needs infra",
    ]
    assert all(e["status"] == "denied" and e["payload"]["kind"] == "approval_bypass_attempt" for e in by_type["error"])
    calls = {e["payload"]["tool_call_id"]: e["status"] for e in by_type["tool_call"]}
    assert calls == {"toolu_1": "denied", "toolu_2": "ok"}
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    # the ssh write (its tool_call; not also the evaluation that denied it) and the two bypass attempts
    assert "flightlog_denied_actions_total 3.0" in metrics
    flightlog("verify", check=True)


def _request(home: Path) -> dict[str, Any]:
    approvals.create_approver(home, "alice", "infra")
    return {"event_id": "0196a3c1-aaaa-7bbb-8ccc-000000000001", "action_digest": "sha256:" + "ab" * 32,
            "roles": ["infra"], "agent_id": "claude-code"}  # fmt: skip


def test_every_check_refuses_what_it_should(home: Path) -> None:
    request = _request(home)
    good = approvals.sign_approval(home, "alice", request)
    assert approvals.check_approval(home, good, request, consume=False) is None
    other = {**request, "action_digest": "sha256:" + "cd" * 32}
    assert approvals.check_approval(home, good, other) == "approval is for another action"
    expired = approvals.sign_approval(home, "alice", request, ttl=0)
    assert approvals.check_approval(home, expired, request) == "approval expired"
    agent = approvals.sign_approval(home, "alice", request, context="agent")
    assert approvals.check_approval(home, agent, request) == "approval by the agent's own identity"
    tampered = {**good, "role": "admin"}
    assert approvals.check_approval(home, tampered, request) == "signature does not verify"
    assert approvals.check_approval(home, good, request) is None  # consumed now
    assert approvals.check_approval(home, good, request) == "approval replayed"
    approvals.create_approver(home, "claude-code", "infra")
    own = approvals.sign_approval(home, "claude-code", request)
    assert approvals.check_approval(home, own, request) == "approval by the agent's own identity"


def test_approve_inside_an_agent_is_refused_and_recorded(home: Path, flightlog: CliRunner) -> None:
    request = {**_request(home), "trace_id": "1" * 32, "span_id": "2" * 16, "session_id": "s"}
    approvals.write_request(home, request)
    proc = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), "approve", request["event_id"]],
        capture_output=True, text=True, timeout=60,
        env=_env(home, "http://127.0.0.1:9", CLAUDECODE="1"),
    )  # fmt: skip
    assert proc.returncode == 1 and "agent's own identity" in proc.stderr and "Traceback" not in proc.stderr
    assert not (home / "approvals" / "inbox").exists()


def test_keys_create_refuses_a_second_key_for_a_name(flightlog: CliRunner) -> None:
    flightlog("keys", "create", "--approver", "alice", "--role", "infra", check=True)
    again = flightlog("keys", "create", "--approver", "alice", "--role", "dev")
    assert again.returncode == 2 and again.stderr.strip().startswith("error: approver alice already exists")
    assert "alice\tinfra\ted25519:" in flightlog("keys", "approvers", check=True).stdout
