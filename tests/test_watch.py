"""`flightlog watch`: the pure coalescing / rename / allowlist logic, the Watcher without an
observer, the real command end to end, and the collector's outside-allowlist metric."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flightlog.active import clear_active, write_active
from flightlog.capture.watch import (
    Allowlist,
    Attribution,
    Burst,
    Change,
    Content,
    Touch,
    Watcher,
    file_op_event,
    outside_allowlist_event,
    plan_changes,
)
from flightlog.events import validate_event
from tests.conftest import CliRunner, make_event
from tests.server.conftest import Server, start_server

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def t(n: int) -> Touch:
    return Touch(n, None)


def git_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


# ---- pure logic ---------------------------------------------------------------------------------


def test_allowlist_parse_and_allows(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    assert Allowlist.parse(tmp_path, []).folders == ("",)
    assert Allowlist.parse(tmp_path, ["."]).allows(".github/workflows/ci.yml")
    allow = Allowlist.parse(tmp_path, ["src", "docs/", str(tmp_path / "src")])
    assert allow.folders == ("docs", "src")
    assert allow.describe() == ["docs/", "src/"]
    assert allow.allows("src/a.py") and allow.allows("src/deep/b.py") and allow.allows("docs/x.md")
    assert not allow.allows("srcx/a.py") and not allow.allows(".github/workflows/ci.yml")
    assert not allow.allows("README.md")
    with pytest.raises(ValueError, match="not inside"):
        Allowlist.parse(tmp_path, ["../elsewhere"])


def test_burst_coalesces_and_settles() -> None:
    burst = Burst()
    assert not burst and not burst.settled(10**12, 1, 1)
    for n in range(5):  # an editor's save: several notifications for one path
        burst.touch("src/a.py", t(100 + n))
    assert list(burst.touched) == ["src/a.py"] and burst.touched["src/a.py"].at_ns == 104
    assert not burst.settled(150, quiet_ns=100, max_wait_ns=1000)
    assert burst.settled(204, quiet_ns=100, max_wait_ns=1000)
    for n in range(0, 2000, 50):  # never quiet: recorded anyway after max_wait
        burst.touch("src/b.py", t(200 + n))
    assert burst.settled(1200, quiet_ns=100, max_wait_ns=1000)


def test_plan_create_patch_delete_and_unchanged() -> None:
    paths = {p: t(1) for p in ("new.py", "mod.py", "gone.py", "same.py", "unknown.py", "temp.py")}
    before = {"mod.py": "sha256:1", "gone.py": "sha256:2", "same.py": "sha256:3", "unknown.py": None}
    after = {"new.py": "sha256:4", "mod.py": "sha256:5", "same.py": "sha256:3", "unknown.py": "sha256:6"}
    ops = [(c.op, c.path) for c in plan_changes(paths, {}, before, after)]
    # temp.py was created and removed within the burst; same.py was only touched
    assert ops == [("delete", "gone.py"), ("patch", "mod.py"), ("create", "new.py"), ("patch", "unknown.py")]


def test_plan_moves_become_renames() -> None:
    burst = Burst()
    burst.move("a.py", "b.py", t(1))
    burst.move("b.py", "c.py", t(2))  # a chain keeps its origin
    burst.move("d.py", "e.py", t(3))
    burst.touch("e.py", t(4))  # moved and edited: still a rename, with the new content
    paths = burst.expand(["a.py", "d.py"], ["c.py", "e.py"])
    changes = plan_changes(
        paths,
        burst.origins,
        {"a.py": "sha256:1", "d.py": "sha256:2"},
        {
            "c.py": "sha256:1",
            "e.py": "sha256:9",
        },
    )
    assert [(c.op, c.old_path, c.path) for c in changes] == [("rename", "a.py", "c.py"), ("rename", "d.py", "e.py")]
    assert changes[1].touch.at_ns == 4


def test_plan_editor_saves_are_patches_not_renames() -> None:
    burst = Burst()  # atomic save: write a temporary file, move it over the original
    burst.touch(".a.py.swp", t(1))
    burst.move(".a.py.swp", "a.py", t(2))
    burst.move("b.py", "b.py~", t(3))  # backup save: keep the old file aside, write a new one
    burst.touch("b.py", t(4))
    paths = burst.expand(["a.py", "b.py"], ["a.py", "b.py", "b.py~"])
    before = {"a.py": "sha256:1", "b.py": "sha256:2"}
    after = {"a.py": "sha256:3", "b.py": "sha256:4", "b.py~": "sha256:2"}
    ops = [(c.op, c.old_path, c.path) for c in plan_changes(paths, burst.origins, before, after)]
    assert ops == [("patch", None, "a.py"), ("patch", None, "b.py"), ("create", None, "b.py~")]


def test_folder_moves_and_deletes_expand_to_their_files() -> None:
    burst = Burst()
    burst.move("pkg", "lib", t(1), folder=True)
    burst.touch("old", t(2), folder=True)
    before = {"pkg/a.py": "sha256:1", "pkg/sub/b.py": "sha256:2", "old/x.py": "sha256:3", "keep.py": "sha256:4"}
    now = {"lib/a.py": "sha256:1", "lib/sub/b.py": "sha256:2", "keep.py": "sha256:4"}
    paths = burst.expand(before, now)
    assert "keep.py" not in paths
    ops = [(c.op, c.old_path, c.path) for c in plan_changes(paths, burst.origins, before, now)]
    assert ops == [
        ("rename", "pkg/a.py", "lib/a.py"),
        ("rename", "pkg/sub/b.py", "lib/sub/b.py"),
        ("delete", None, "old/x.py"),
    ]


def test_attribution_from_marker_traceparent_or_own() -> None:
    own = Attribution("1" * 32, None)
    assert Attribution.of(None, own) is own
    marker = {"trace_id": TRACE, "span_id": SPAN, "agent_id": "claude-code", "model": "m1", "session_id": "s"}
    who = Attribution.of({**marker, "source": "marker"}, own)
    assert (who.trace_id, who.parent_span_id, who.agent_id, who.model, who.session_id) == (
        TRACE,
        SPAN,
        "claude-code",
        "m1",
        "s",
    )
    bare = Attribution.of({"trace_id": TRACE, "span_id": SPAN, "source": "traceparent"}, own)
    assert (bare.agent_id, bare.model, bare.source) == ("unknown", None, "traceparent")


def test_events_are_schema_valid(tmp_path: Path) -> None:
    who = Attribution(TRACE, SPAN, "claude-code", "s", "m1", "marker")
    allow = Allowlist(("src",))
    old, new = b"a\n", b"a\nb\n"
    patch = file_op_event(
        Change("patch", "src/a.py", None, t(1)), who, tmp_path, Content(sha(old), old), Content(sha(new), new)
    )
    assert validate_event(patch)["payload"]["diff"].endswith("+b\n")
    assert patch["parent_span_id"] == SPAN and patch["model"] == {"name": "m1"}
    binary = file_op_event(
        Change("create", "x.bin", None, t(1)), who, tmp_path, Content(None, None), Content(sha(b"\0"), b"\0")
    )
    assert validate_event(binary)["payload"]["diff"] is None
    unknown = file_op_event(
        Change("patch", "big", None, t(1)), who, tmp_path, Content(None, None), Content(sha(b"x"), b"x")
    )
    assert unknown["payload"]["diff"] is None  # before content unknown: no made-up diff
    renamed = Change("rename", ".github/x.yml", "src/x.yml", t(1))
    event = file_op_event(renamed, who, tmp_path, Content(sha(old), old), Content(sha(old), old))
    assert event["payload"]["old_path"] == str(tmp_path / "src/x.yml") and event["payload"]["diff"] == ""
    error = validate_event(outside_allowlist_event(renamed, who, tmp_path, allow, event["span_id"]))
    assert error["type"] == "error" and error["status"] == "error" and error["parent_span_id"] == event["span_id"]
    assert error["payload"]["kind"] == "outside_allowlist" and error["payload"]["allowlist"] == ["src/"]
    assert error["payload"]["path"] == ".github/x.yml" and error["trace_id"] == TRACE


# ---- Watcher without an observer ------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = git_repo(tmp_path / "ws")
    (root / ".gitignore").write_text("build/\n")
    (root / "src").mkdir()
    (root / "src" / "keep.py").write_text("keep\n")
    return root


def make_watcher(repo: Path, home: Path, allow: list[str]) -> Watcher:
    watcher = Watcher(repo, home, Allowlist.parse(repo, allow), home / "watch" / "test", environ={})
    watcher.start()
    return watcher


def test_watcher_flush_ignores_and_attributes(repo: Path, home: Path) -> None:
    watcher = make_watcher(repo, home, ["src"])
    write_active(home, repo, {"trace_id": TRACE, "span_id": SPAN, "agent_id": "claude-code", "session_id": "s"})
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_bytes(b"\0obj")
    (repo / "src" / "keep.py").write_text("keep\nmore\n")
    (repo / ".git" / "scratch").write_text("x")
    for path in ("build/out.o", "src/keep.py", ".git/scratch", str(home / "x")):
        watcher.notice("modified", str(repo / path))
    recorded = watcher.flush()
    assert [(r.change.op, r.change.path, r.who.trace_id, r.outside) for r in recorded] == [
        ("patch", "src/keep.py", TRACE, False)
    ]
    clear_active(home, repo)
    (repo / "README.md").write_text("hi\n")
    watcher.notice("created", str(repo / "README.md"))
    (outside,) = watcher.flush()
    assert outside.outside and outside.who == watcher.own and len(outside.events) == 2
    assert not watcher.flush()


def test_watcher_never_looks_at_a_data_directory_inside_the_workspace(repo: Path) -> None:
    home = repo / "fl-home"
    (home / "blobs").mkdir(parents=True)
    (home / "blobs" / "ab").write_text("blob")
    watcher = make_watcher(repo, home, [])
    assert set(watcher.before) == {".gitignore", "src/keep.py"}
    (home / "ledger.db").write_text("db")
    watcher.notice("created", str(home / "ledger.db"))
    watcher.notice("created", str(home), folder=True)
    assert not watcher.burst and not watcher.flush()


def test_watcher_gitignore_change_is_not_a_deletion(repo: Path, home: Path) -> None:
    (repo / "gen.txt").write_text("generated\n")
    watcher = make_watcher(repo, home, [])
    with open(repo / ".gitignore", "a") as f:
        f.write("gen.txt\n")
    watcher.notice("modified", str(repo / ".gitignore"))
    watcher.notice("modified", str(repo / "gen.txt"))
    assert [(r.change.op, r.change.path) for r in watcher.flush()] == [("patch", ".gitignore")]


def test_watcher_reconcile_finds_unnoticed_changes(repo: Path, home: Path) -> None:
    watcher = make_watcher(repo, home, [])
    (repo / "src" / "keep.py").write_text("changed behind the observer's back\n")
    watcher.reconcile()
    (change,) = watcher.flush()
    assert change.change.op == "patch" and change.events[0]["payload"]["checksum_before"] == sha(b"keep\n")


# ---- end to end: the real command -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(out: Path, pattern: str, proc: subprocess.Popen[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = out.read_text()
        if re.search(pattern, text, re.M):
            return text
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError(f"no line matching {pattern!r} in:\n{out.read_text()}")


@pytest.fixture
def watch_proc(repo: Path, home: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTLOG_") and k != "TRACEPARENT"}
    env |= {"FLIGHTLOG_HOME": str(home), "FLIGHTLOG_URL": f"http://127.0.0.1:{_free_port()}"}
    out = repo.parent / "watch.out"
    with open(out, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flightlog", "watch", str(repo), "--allow", "src", "--debounce", "50"],
            stdout=f,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    try:
        yield proc, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_watch_end_to_end(
    repo: Path, home: Path, flightlog: CliRunner, watch_proc: tuple[subprocess.Popen[str], Path]
) -> None:
    proc, out = watch_proc
    (repo / "src" / "old.py").write_text("old\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    write_active(
        home,
        repo,
        {"trace_id": TRACE, "span_id": SPAN, "agent_id": "claude-code", "model": "m1", "session_id": "sess-1"},
    )
    _wait_for(out, r"^Ctrl-C", proc)
    src = repo / "src"
    (src / "a.py").write_text("one\n")
    _wait_for(out, r"create src/a\.py", proc)
    (src / "a.py").write_text("one\ntwo\n")
    _wait_for(out, r"patch  src/a\.py", proc)
    (src / "a.py").rename(src / "b.py")
    _wait_for(out, r"rename src/a\.py -> src/b\.py", proc)
    (src / "old.py").unlink()
    _wait_for(out, r"delete src/old\.py", proc)
    (src / "img.bin").write_bytes(b"\x89PNG\0\x01")
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_bytes(b"ignored")
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    _wait_for(out, r"create \.github/workflows/ci\.yml .* outside allowlist", proc)
    _wait_for(out, r"create src/img\.bin", proc)
    clear_active(home, repo)
    (src / "last.py").write_text("written just before the stop\n")  # not waited for: the stop must flush it
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    text = out.read_text()
    assert "Traceback" not in text and "stopped: 7 change(s) recorded" in text, text
    assert "build/" not in text

    events = [json.loads(line) for line in flightlog("export", "--format", "events", check=True).stdout.splitlines()]
    ops = {
        (e["payload"]["op"], os.path.relpath(e["payload"]["file_path"], repo)): e
        for e in events
        if e["type"] == "file_op"
    }
    assert set(ops) == {
        ("create", "src/a.py"),
        ("patch", "src/a.py"),
        ("rename", "src/b.py"),
        ("delete", "src/old.py"),
        ("create", "src/img.bin"),
        ("create", ".github/workflows/ci.yml"),
        ("create", "src/last.py"),
    }
    for key, event in ops.items():
        if key[1] == "src/last.py":  # after the marker was cleared: the watcher's own trace
            assert event["trace_id"] != TRACE and event["parent_span_id"] is None and event["agent_id"] == "unknown"
            continue
        assert (event["trace_id"], event["parent_span_id"]) == (TRACE, SPAN), key
        assert (event["agent_id"], event["session_id"], event["model"]["name"]) == ("claude-code", "sess-1", "m1")
    one, two = b"one\n", b"one\ntwo\n"
    create, patch = ops[("create", "src/a.py")]["payload"], ops[("patch", "src/a.py")]["payload"]
    assert (create["checksum_before"], create["checksum_after"]) == (None, sha(one))
    assert create["diff"] == "--- /dev/null\n+++ b/src/a.py\n@@ -0,0 +1 @@\n+one\n"
    assert (patch["checksum_before"], patch["checksum_after"]) == (sha(one), sha(two))
    assert patch["diff"] == "--- a/src/a.py\n+++ b/src/a.py\n@@ -1 +1,2 @@\n one\n+two\n"
    rename = ops[("rename", "src/b.py")]["payload"]
    assert rename["old_path"] == str(repo / "src" / "a.py")
    assert (rename["checksum_before"], rename["checksum_after"], rename["diff"]) == (sha(two), sha(two), "")
    delete = ops[("delete", "src/old.py")]["payload"]
    assert (delete["checksum_before"], delete["checksum_after"]) == (sha(b"old\n"), None)
    assert delete["diff"].endswith("-old\n")
    binary = ops[("create", "src/img.bin")]["payload"]
    assert (binary["checksum_after"], binary["diff"]) == (sha(b"\x89PNG\0\x01"), None)

    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1
    (error,) = errors
    workflow = ops[("create", ".github/workflows/ci.yml")]
    assert error["payload"]["kind"] == "outside_allowlist" and error["payload"]["path"] == ".github/workflows/ci.yml"
    assert error["payload"]["allowlist"] == ["src/"]
    assert (error["trace_id"], error["parent_span_id"]) == (TRACE, workflow["span_id"])
    assert not any("build" in json.dumps(e["payload"]) for e in events)
    assert not (home / "watch").exists() or not any((home / "watch").iterdir())  # the content cache is gone

    assert flightlog("verify").returncode == 0


def test_watch_refuses_an_allow_outside(repo: Path, flightlog: CliRunner) -> None:
    proc = flightlog("watch", str(repo), "--allow", "../other")
    assert proc.returncode == 2 and "not inside the watched folder" in proc.stderr


# ---- the collector's metric -----------------------------------------------------------------------


@pytest.fixture
def server(home: Path) -> Iterator[Server]:
    started = start_server(home)
    try:
        yield started
    finally:
        if started.proc.poll() is None:
            started.proc.kill()
            started.proc.wait(timeout=30)


def _counter(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


def test_outside_allowlist_metric_counts_stored_errors(server: Server) -> None:
    name = "flightlog_outside_allowlist_changes_total"
    assert _counter(httpx.get(server.url + "/metrics").text, name) == 0
    flagged: dict[str, Any] = {"kind": "outside_allowlist", "path": ".github/workflows/ci.yml", "allowlist": ["src/"]}
    events = [
        make_event(0, type="error", status="error", payload=flagged),
        make_event(1, type="error", status="error", payload={"kind": "something_else"}),
        make_event(2, type="error", status="error", payload={**flagged, "path": "Makefile"}),
    ]
    assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
    assert _counter(httpx.get(server.url + "/metrics").text, name) == 2
