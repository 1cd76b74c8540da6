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
    error = answer.json()["error"]
    assert "not in a workspace this collector snapshotted itself" in error and "inside .git" in error
    assert not target.exists() and not (workspace / ".git" / "hooks" / "pre-commit").exists()


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
