"""A data directory inside the agent's workspace is never read by the workspace scans."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from flightlog.capture.workspace import list_files, without_homes
from tests.conftest import make_event
from tests.server.conftest import start_server

SESSION = "5e55e55e-0000-4000-8000-000000000001"


def test_only_the_callers_home_is_left_out(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "x.py").write_text("x = 1\n")
    (root / "src" / "ledger.lock").touch()  # an agent cannot hide a folder with a marker
    (root / ".flightlog" / "policies").mkdir(parents=True)
    (root / ".flightlog" / "policies" / "tools.rego").write_text("package x\n")  # project code
    home = root / "data"
    (home / "blobs").mkdir(parents=True)
    for i in range(30):  # more files than the scan's limit below: left out before it counts
        (home / "blobs" / f"b{i}").write_text("x")
    assert list_files(root, 10, home=home) == [".flightlog/policies/tools.rego", "src/ledger.lock", "src/x.py"]
    assert without_homes(["a", "data/x", "database/y"], "data") == ["a", "database/y"]


def test_the_callers_home_is_left_out_whatever_git_ignores(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    home = root / ".flightlog"
    (home / "spool").mkdir(parents=True)
    (home / "spool" / "batch.ndjson").write_text("{}\n")  # a command hook's home: no ledger.lock
    (home / "ledger.lock").touch()
    (root / "a.txt").write_text("hello\n")
    (root / ".gitignore").write_text("*.lock\n")  # hides the marker from git's list
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "i"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    assert list_files(root, home=home) == [".gitignore", "a.txt"]
    assert list_files(root, home=root) == []  # the workspace is the home itself
    assert list_files(root, home=tmp_path / "elsewhere") == [".flightlog/spool/batch.ndjson", ".gitignore", "a.txt"]


def _hook(url: str, root: Path, event: str, **fields: Any) -> None:
    data = {"session_id": SESSION, "cwd": str(root), "hook_event_name": event, "transcript_path": "", **fields}
    assert httpx.post(url + "/hooks/claude-code", json=data, timeout=30).status_code == 200


def test_a_home_inside_the_workspace_loses_no_acknowledged_event(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "readme.txt").write_text("hi\n")
    home = root / "data"  # not a git work tree: the scan walks every folder
    server = start_server(home)
    try:
        events = [make_event(i, type="prompt", payload={"text": f"before {i}"}) for i in range(10)]
        assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
        _hook(server.url, root, "UserPromptSubmit", prompt="run it", prompt_id="p-1")
        _hook(server.url, root, "PreToolUse", tool_name="Bash", tool_input={"command": "ls"}, tool_use_id="t1")
        (root / "readme.txt").write_text("changed\n")
        _hook(server.url, root, "PostToolUse", tool_name="Bash", tool_input={"command": "ls"}, tool_use_id="t1")
        # A second process using the ledger meanwhile (it must not take the live WAL away).
        cli = [sys.executable, "-m", "flightlog", "--home", str(home), "traces"]
        assert subprocess.run(cli, capture_output=True, text=True, timeout=60).returncode == 0
        more = [make_event(i, type="prompt", payload={"text": f"after {i}"}) for i in range(10, 20)]
        assert httpx.post(server.url + "/api/v1/events", json=more).status_code == 200
        acked = httpx.get(server.url + "/healthz").json()["entries"]
        trace = httpx.get(server.url + "/api/v1/traces", params={"session": SESSION}).json()["traces"]
    finally:
        server.stop(signal.SIGKILL)
    assert trace, "the hook's turn was recorded"
    key = (home / "keys" / "signing.key").read_bytes()
    assert all(p.read_bytes() != key for p in (home / "blobs").rglob("*") if p.is_file())
    out = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), "verify"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{acked} entries" in out.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), "show", trace[0]["trace_id"], "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "readme.txt" in shown and "data/" not in shown  # the workspace's change, not the home's
