"""What a hostile or careless Claude Code hook input must not do to the collector: escape the
session's state folder, leave secrets on disk, make the collector read its own files for a
client on another machine, or have a secret quoted back in a policy answer."""

from __future__ import annotations

import json
import os
import secrets
import socket
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from flightlog.capture.claude_hook import process
from tests.conftest import CliRunner
from tests.server.conftest import Server, start_server

SESSION = "0e9f3b1c-6a2d-4c7e-8f10-2b3c4d5e6f70"
OTHER = "5d1c2b3a-4e5f-4a6b-9c8d-7e6f5a4b3c2d"
REMOTE = {"x-forwarded-for": "203.0.113.9"}  # honoured from loopback only: poses as another machine


def _token() -> str:
    """A GitHub token the shipped rules recognise (random: a repetitive one is too low in entropy)."""
    return "ghp_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))


def _needles(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, json.dumps(secret)[1:-1].encode()]


def _files_holding(home: Path, secret: str) -> list[str]:
    return [
        str(p.relative_to(home))
        for p in sorted(home.rglob("*"))
        if p.is_file() and any(n in p.read_bytes() for n in _needles(secret))
    ]


def _hook(home: Path, root: Path, event: str, session: str = SESSION, **fields: Any) -> Any:
    data = {"session_id": session, "cwd": str(root), "hook_event_name": event, **fields}
    return process(data, home, str(root))


# --- 1. the session's state folder ---------------------------------------------------------------


def _state_folders(home: Path) -> set[Path]:
    base = home / "hooks" / "claude-code"
    return {p for p in base.iterdir() if p.is_dir()} if base.is_dir() else set()


def test_a_dot_dot_session_cannot_remove_other_sessions_state(home: Path, workspace: Path, server: Server) -> None:
    kept = {"session_id": OTHER, "cwd": str(workspace), "tool_name": "Read", "tool_use_id": "toolu_keep"}
    pre = httpx.post(server.url + "/hooks/claude-code", json={**kept, "hook_event_name": "PreToolUse"}, timeout=30)
    assert pre.status_code == 200
    state = home / "hooks" / "claude-code" / OTHER / "tool-toolu_keep.json"
    assert state.is_file()
    for odd in ("..", ".", "../..", "../" + OTHER, "/", ""):
        end = {"session_id": odd, "cwd": str(workspace), "hook_event_name": "SessionEnd"}
        assert httpx.post(server.url + "/hooks/claude-code", json=end, timeout=30).status_code == 200
        assert state.is_file(), odd


def test_a_remote_client_cannot_end_a_local_session_of_the_same_id(
    home: Path, workspace: Path, server: Server, flightlog: CliRunner
) -> None:
    kept = {"session_id": OTHER, "cwd": str(workspace), "tool_name": "Read", "tool_use_id": "toolu_keep"}
    assert (
        httpx.post(server.url + "/hooks/claude-code", json={**kept, "hook_event_name": "PreToolUse"}).status_code == 200
    )
    state = home / "hooks" / "claude-code" / OTHER / "tool-toolu_keep.json"
    token = flightlog("tokens", "create", "--role", "ingest", check=True).stdout.split()[-1]
    end = {"session_id": OTHER, "cwd": str(workspace), "hook_event_name": "SessionEnd"}
    remote = {**REMOTE, "authorization": f"Bearer {token}"}
    assert httpx.post(server.url + "/hooks/claude-code", json=end, headers=remote).status_code == 200
    assert state.is_file()


def test_the_command_hook_keeps_a_dot_dot_session_inside_its_folder(home: Path, workspace: Path) -> None:
    _hook(home, workspace, "PreToolUse", OTHER, tool_name="Read", tool_use_id="toolu_keep")
    state = home / "hooks" / "claude-code" / OTHER / "tool-toolu_keep.json"
    with socket.socket() as closed:  # a port nobody listens on: the hook works offline
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTLOG_", "CLAUDE_"))}
    env |= {"FLIGHTLOG_HOME": str(home), "FLIGHTLOG_URL": url}
    end = json.dumps({"session_id": "..", "cwd": str(workspace), "hook_event_name": "SessionEnd"})
    proc = subprocess.run(
        [sys.executable, "-m", "flightlog", "hook", "claude-code"],
        input=end,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert state.is_file()


@pytest.mark.parametrize(
    "ids",
    [
        ("..", "__"),
        (".", "_"),
        ("a.b", "a_b"),
        ("a/b", "a_b"),
        ("Session-A", "session-a"),  # one folder on a case-insensitive file system
        ("x" * 80 + "1", "x" * 80 + "2"),  # equal once cut to a length
    ],
)
def test_different_session_ids_get_different_folders_inside_the_hook_folder(
    home: Path, workspace: Path, ids: tuple[str, str]
) -> None:
    base = (home / "hooks" / "claude-code").resolve()
    folders = []
    for session in ids:
        before = _state_folders(home)
        _hook(home, workspace, "SessionStart", session, model="claude-sonnet-4-5")
        (made,) = _state_folders(home) - before
        assert made.resolve().parent == base and made.name not in ("", ".", "..")
        folders.append(made)
    assert len(set(folders)) == 2
    # Ending one session leaves the other's state alone.
    _hook(home, workspace, "SessionEnd", ids[0])
    assert not folders[0].exists() and (folders[1] / "session.json").is_file()


def test_a_plain_session_id_names_its_folder(home: Path, workspace: Path) -> None:
    _hook(home, workspace, "SessionStart", SESSION, model="claude-sonnet-4-5")
    assert (home / "hooks" / "claude-code" / SESSION / "session.json").is_file()


# --- 2. secrets in the hook's state -----------------------------------------------------------------


def test_hook_state_holds_no_secret_even_when_no_post_comes(home: Path, workspace: Path) -> None:
    token, in_url, in_model = _token(), _token(), _token()
    _hook(home, workspace, "SessionStart", model=f"claude-sonnet-4-5 {in_model}", source="startup")
    _hook(home, workspace, "UserPromptSubmit", prompt="open an issue", prompt_id="p-1")
    for use_id, tool, tool_input in (
        ("toolu_1", "mcp__github__create_issue", {"github_token": token, "title": "bug"}),
        ("toolu_2", "WebFetch", {"url": f"https://api.github.com/user?access_token={in_url}", "prompt": "read"}),
    ):
        _hook(home, workspace, "PreToolUse", tool_name=tool, tool_input=tool_input, tool_use_id=use_id)
    assert list((home / "hooks" / "claude-code" / SESSION).glob("tool-*.json"))  # state was kept
    for secret in (token, in_url, in_model):
        assert _files_holding(home, secret) == []

    # What reads that state still works: Stop records the unfinished calls, saying what was masked,
    # and the policy evaluations that abstained on them (kept for a Post that never came).
    stop = _hook(home, workspace, "Stop")
    calls = {e["payload"]["tool_call_id"]: e for e in stop.events if e["type"] == "tool_call"}
    assert set(calls) == {"toolu_1", "toolu_2"}
    evaluations = [e for e in stop.events if e["type"] == "policy_evaluation"]
    assert sorted(e["parent_span_id"] for e in evaluations) == sorted(c["span_id"] for c in calls.values())
    assert calls["toolu_1"]["payload"]["input"]["title"] == "bug"
    assert "[REDACTED:" in calls["toolu_1"]["payload"]["input"]["github_token"]
    assert calls["toolu_2"]["payload"]["input"]["url"].startswith("https://api.github.com/user?access_token=[REDACTED:")
    assert {r["path"] for r in calls["toolu_1"]["redactions"]} == {"$['payload']['input']['github_token']"}
    assert {r["path"] for r in calls["toolu_2"]["redactions"]} == {"$['payload']['input']['url']"}
    assert all(token not in json.dumps(e) and in_url not in json.dumps(e) for e in stop.events)


def test_a_secret_past_the_first_megabyte_of_an_input_is_masked_too(home: Path, workspace: Path) -> None:
    token = _token()
    content = "x" * 1_100_000 + f"\nGITHUB_TOKEN={token}\n"
    _hook(home, workspace, "UserPromptSubmit", prompt="write it", prompt_id="p-1")
    _hook(
        home,
        workspace,
        "PreToolUse",
        tool_name="Write",
        tool_input={"file_path": "big.txt", "content": content},
        tool_use_id="toolu_9",
    )
    assert list((home / "hooks" / "claude-code" / SESSION).glob("tool-*.json"))
    assert _files_holding(home, token) == []


def test_a_post_after_a_masked_pre_records_the_call_and_its_policy_evaluation(home: Path, workspace: Path) -> None:
    token = _token()
    call: dict[str, Any] = {
        "tool_name": "mcp__github__create_issue",
        "tool_input": {"github_token": token},
        "tool_use_id": "toolu_p",
    }
    assert _hook(home, workspace, "PreToolUse", **call).events == []  # abstained: kept for Post
    assert _files_holding(home, token) == []
    post = _hook(home, workspace, "PostToolUse", **call, tool_response={"number": 7})
    assert [e["type"] for e in post.events] == ["policy_evaluation", "tool_call"]
    assert post.events[1]["payload"]["output"] == {"number": 7}
    assert post.events[0]["parent_span_id"] == post.events[1]["span_id"]
    assert not list((home / "hooks" / "claude-code" / SESSION).glob("tool-*.json"))


# --- 3. a client on another machine ------------------------------------------------------------------


def test_a_remote_client_cannot_make_the_collector_read_its_own_files(
    home: Path, tmp_path: Path, flightlog: CliRunner
) -> None:
    private = tmp_path / "collector-only"  # a directory of the collector's machine
    private.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(private)], check=True)
    marker = "collector-private-" + secrets.token_hex(8)
    (private / "notes.txt").write_text(f"{marker}\n")
    token = flightlog("tokens", "create", "--role", "ingest", check=True).stdout.split()[-1]
    server = start_server(home)
    try:

        def send(event: str, headers: dict[str, str], **fields: Any) -> httpx.Response:
            data = {"session_id": SESSION, "cwd": str(private), "hook_event_name": event, "prompt_id": "p-1"}
            answer = httpx.post(
                server.url + "/hooks/claude-code",
                json={**data, **fields},
                headers={"authorization": f"Bearer {token}", **headers},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            return answer

        def session(headers: dict[str, str], n: int) -> None:
            send("SessionStart", headers, model="claude-sonnet-4-5", source="startup")
            send("UserPromptSubmit", headers, prompt="tidy up")
            notes = str(private / "notes.txt")
            for use_id, tool, tool_input in (
                (f"toolu_{n}b", "Bash", {"command": "true"}),
                (f"toolu_{n}e", "Edit", {"file_path": notes, "old_string": "x", "new_string": "y"}),
            ):
                send("PreToolUse", headers, tool_name=tool, tool_input=tool_input, tool_use_id=use_id)
                with open(private / "notes.txt", "a") as f:
                    f.write(f"{marker} {use_id}\n")
                send("PostToolUse", headers, tool_name=tool, tool_input=tool_input, tool_use_id=use_id)

        session(REMOTE, 1)
        assert _files_holding(home, marker) == []
        assert not (home / "active").is_dir() or not list((home / "active").iterdir())
        events = [
            e["event"]
            for t in httpx.get(server.url + "/api/v1/traces", timeout=10).json()["traces"]
            for e in httpx.get(f"{server.url}/api/v1/traces/{t['trace_id']}", timeout=10).json()["events"]
        ]
        calls = {e["payload"]["tool_call_id"] for e in events if e["type"] == "tool_call"}
        assert calls == {"toolu_1b", "toolu_1e"}  # the events are recorded all the same
        assert not [e for e in events if e["type"] == "file_op"]
        (prompt,) = [e for e in events if e["type"] == "prompt"]
        assert prompt["payload"]["context"]["git_branch"] is None

        # The same calls from this machine do read the workspace (what makes the check above mean something).
        session({}, 2)
        assert _files_holding(home, marker)
    finally:
        server.stop()


# --- 4. answers ------------------------------------------------------------------------------------------


def test_a_deny_reason_never_quotes_a_secret(home: Path, workspace: Path, server: Server) -> None:
    token = _token()
    data = {"tool_name": "Bash", "tool_input": f"curl -H 'authorization: token {token}' x", "tool_use_id": "toolu_s"}
    answer = _hook(home, workspace, "PreToolUse", **data).output
    assert answer["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert token not in json.dumps(answer) and "[REDACTED:" in answer["hookSpecificOutput"]["permissionDecisionReason"]
    http = {"session_id": OTHER, "cwd": str(workspace), "hook_event_name": "PreToolUse", **data}
    reply = httpx.post(server.url + "/hooks/claude-code", json=http, timeout=30)
    assert reply.status_code == 200 and reply.json()["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert token not in reply.text
    assert _files_holding(home, token) == []
