"""End to end, with the real CLI in a real git repository: `flightlog exec` records what a command
changed, and `flightlog rollback` puts the tree back byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flightlog.active import format_traceparent

SCRIPT = """
set -e
echo "hello from the child"
echo "TP=$TRACEPARENT"
echo "to stderr" >&2
printf 'line1\\nLINE2\\nline3\\n' > a.txt
printf '\\000\\001\\002new binary' > new.bin
printf 'fresh\\n' > new.txt
mkdir -p made/deeper && printf 'deep\\n' > made/deeper/x.txt
printf '\\377\\376' >> bin.dat
rm c.txt
mv old.txt moved.txt
exit 3
"""


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def tree_hash(repo: Path, tmp_path: Path) -> str:
    """`git add -A && git write-tree` on a throwaway index: the tree as it is on disk (contents,
    modes, symlinks), without touching the repository's own index."""
    index = tmp_path / "hash.index"
    index.unlink(missing_ok=True)
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    _git(repo, "add", "-A", env=env)
    return _git(repo, "write-tree", env=env).strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "a.txt").write_text("line1\nline2\nline3\n")
    (root / "c.txt").write_text("to be deleted\n")
    (root / "old.txt").write_text("to be renamed\n")
    (root / "bin.dat").write_bytes(bytes(range(256)))
    (root / "keep.txt").write_text("untouched\n")
    os.chmod(root / "keep.txt", 0o755)
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    return root


def run(home: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTLOG_") and k != "TRACEPARENT"}
    proc = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def events(home: Path, cwd: Path) -> list[dict[str, Any]]:
    out = run(home, "export", "--format", "events", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def exec_script(
    home: Path, repo: Path, env: dict[str, str] | None = None
) -> tuple[str, subprocess.CompletedProcess[str]]:
    proc = run(home, "exec", "--", "sh", "-c", SCRIPT, cwd=repo)
    assert proc.returncode == 3, proc.stderr  # the command's own exit code
    shell = [e for e in events(home, repo) if e["type"] == "shell"][-1]
    return shell["trace_id"], proc


def test_exec_records_every_change_and_rollback_restores_the_tree(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    before_tree = tree_hash(repo, tmp_path)
    before = {p: (repo / p).read_bytes() for p in ("a.txt", "c.txt", "old.txt", "bin.dat")}
    trace, proc = exec_script(home, repo)
    assert "hello from the child" in proc.stdout and "to stderr" in proc.stderr  # passed through live

    got = [e for e in events(home, repo) if e["trace_id"] == trace]
    shell = next(e for e in got if e["type"] == "shell")
    p = shell["payload"]
    assert p["exit_code"] == 3 and p["cwd"] == os.path.realpath(repo) and p["command"].startswith("sh -c")
    assert "hello from the child" in p["stdout"] and "to stderr" in p["stderr"]
    assert f"TP={format_traceparent(trace, shell['span_id'])}" in p["stdout"]  # the child got its span
    assert shell["status"] == "error" and isinstance(shell["duration_ms"], int)

    ops = {e["payload"]["file_path"]: e for e in got if e["type"] == "file_op"}
    assert {k: v["payload"]["op"] for k, v in ops.items()} == {
        "a.txt": "patch",
        "bin.dat": "patch",
        "c.txt": "delete",
        "made/deeper/x.txt": "create",
        "moved.txt": "rename",
        "new.bin": "create",
        "new.txt": "create",
    }
    for e in ops.values():
        assert e["parent_span_id"] == shell["span_id"]
        assert e["payload"]["workspace_snapshot"] == p["workspace_snapshot"]
    a = ops["a.txt"]["payload"]
    assert a["checksum_before"] == sha(before["a.txt"]) and a["checksum_after"] == sha((repo / "a.txt").read_bytes())
    assert "-line2\n+LINE2\n" in a["diff"]
    b = ops["bin.dat"]["payload"]
    assert b["checksum_before"] == sha(before["bin.dat"]) and b["checksum_after"] == sha(
        (repo / "bin.dat").read_bytes()
    )
    assert b["diff"] is None  # binary: checksums only
    assert ops["new.bin"]["payload"]["diff"] is None
    assert ops["new.bin"]["payload"]["checksum_before"] is None
    assert ops["new.txt"]["payload"]["diff"].startswith("--- /dev/null\n+++ b/new.txt\n")
    c = ops["c.txt"]["payload"]
    assert (
        c["checksum_before"] == sha(before["c.txt"]) and c["checksum_after"] is None and "-to be deleted" in c["diff"]
    )
    r = ops["moved.txt"]["payload"]
    assert r["old_path"] == "old.txt" and r["checksum_before"] == r["checksum_after"] == sha(before["old.txt"])

    after_tree = tree_hash(repo, tmp_path)
    dry = run(home, "rollback", trace, "--dry-run", cwd=repo)
    assert dry.returncode == 0, dry.stderr
    assert "restore  a.txt" in dry.stdout and "delete   new.bin" in dry.stdout and "dry run" in dry.stdout
    assert tree_hash(repo, tmp_path) == after_tree  # nothing changed

    done = run(home, "rollback", trace, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert tree_hash(repo, tmp_path) == before_tree
    for name, data in before.items():
        assert (repo / name).read_bytes() == data
    assert not (repo / "made").exists()  # folders the trace created are gone too
    assert os.stat(repo / "keep.txt").st_mode & 0o777 == 0o755

    recorded = [e for e in events(home, repo) if e["type"] == "rollback"]
    assert len(recorded) == 1 and recorded[0]["trace_id"] != trace
    assert recorded[0]["payload"]["original_trace_id"] == trace and recorded[0]["payload"]["mode"] == "files"
    assert "a.txt" in recorded[0]["payload"]["files"]
    assert run(home, "verify", cwd=repo).returncode == 0

    again = run(home, "rollback", trace, cwd=repo)  # the files are no longer as the trace left them
    assert again.returncode != 0 and "changed since the trace" in again.stderr


def test_a_file_edited_after_the_trace_blocks_rollback(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    before_tree = tree_hash(repo, tmp_path)
    trace, _ = exec_script(home, repo)
    (repo / "new.txt").write_text("edited by a human afterwards\n")
    edited_tree = tree_hash(repo, tmp_path)

    refused = run(home, "rollback", trace, cwd=repo)
    assert refused.returncode != 0
    assert "new.txt" in refused.stderr and "--force" in refused.stderr
    assert refused.stderr.count("\n") == 1  # one line, no traceback
    assert tree_hash(repo, tmp_path) == edited_tree  # nothing changed
    assert not [e for e in events(home, repo) if e["type"] == "rollback"]

    dry = run(home, "rollback", trace, "--dry-run", "--force", cwd=repo)
    assert dry.returncode == 0 and tree_hash(repo, tmp_path) == edited_tree

    forced = run(home, "rollback", trace, "--force", cwd=repo)
    assert forced.returncode == 0, forced.stderr
    assert tree_hash(repo, tmp_path) == before_tree
    rollback = next(e for e in events(home, repo) if e["type"] == "rollback")["payload"]
    assert rollback["forced"] is True and rollback["overwritten"] == ["new.txt"]
    assert run(home, "verify", cwd=repo).returncode == 0


def test_exec_joins_the_active_trace(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    parent_trace, parent_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    env = {"TRACEPARENT": format_traceparent(parent_trace, parent_span)}
    proc = run(home, "exec", "--", "sh", "-c", "echo x > joined.txt", cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    got = events(home, repo)
    shell = next(e for e in got if e["type"] == "shell")
    assert shell["trace_id"] == parent_trace and shell["parent_span_id"] == parent_span
    assert [e["payload"]["file_path"] for e in got if e["type"] == "file_op"] == ["joined.txt"]

    named = run(home, "exec", "--trace-id", "a" * 32, "--cwd", str(repo), "--", "true", cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    assert any(e["trace_id"] == "a" * 32 and e["type"] == "shell" for e in events(home, repo))


def test_exec_and_rollback_errors_are_one_line(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    missing = run(home, "exec", "--", "no-such-command-xyz", cwd=repo)
    assert missing.returncode == 127 and "no-such-command-xyz" in missing.stderr
    unknown = run(home, "rollback", "b" * 32, cwd=repo)
    assert unknown.returncode != 0 and "no trace" in unknown.stderr
    bad = run(home, "rollback", "xyz", cwd=repo)
    assert bad.returncode != 0 and "32 hex" in bad.stderr
    shell = next(e for e in events(home, repo) if e["type"] == "shell")
    no_commits = run(home, "rollback", shell["trace_id"], "--git", cwd=repo)
    assert no_commits.returncode != 0 and "no commits" in no_commits.stderr


def test_rollback_git_reverts_the_trace_commits(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    trace = "c" * 32
    before_tree = tree_hash(repo, tmp_path)
    commits = []
    for n in (1, 2):
        (repo / f"agent{n}.txt").write_text(f"change {n}\n")
        _git(repo, "add", "-A")
        _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"agent change {n}")
        commits.append(_git(repo, "rev-parse", "HEAD").strip())
    lines = [
        {
            "trace_id": trace,
            "span_id": f"{n + 1:016x}",
            "type": "git_op",
            "timestamp": f"2026-11-24T17:00:0{n}.000Z",
            "agent_id": "claude-code",
            "payload": {"op": "commit", "repo": str(repo), "commit": sha},
        }
        for n, sha in enumerate(commits)
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), "ingest", "-"],
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("FLIGHTLOG_")},
    )
    assert proc.returncode == 0, proc.stderr

    dry = run(home, "rollback", trace, "--git", "--dry-run", cwd=repo)
    assert dry.returncode == 0 and commits[1][:12] in dry.stdout
    done = run(home, "rollback", trace, "--git", cwd=repo)
    assert done.returncode == 0, done.stderr
    rollback = next(e for e in events(home, repo) if e["type"] == "rollback")
    log = _git(repo, "log", "-2", "--format=%B%x00")
    assert f"Flightlog-Reverts-Trace: {trace}" in log and f"Flightlog-Trace-Id: {rollback['trace_id']}" in log
    assert rollback["payload"]["mode"] == "git" and rollback["payload"]["repos"][0]["reverted"] == commits
    assert tree_hash(repo, tmp_path) == before_tree
