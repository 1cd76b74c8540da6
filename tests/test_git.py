"""Git linkage end to end in real temporary repositories: hooks installed and removed (chaining
what was there), trailers and git_op events for commits made in a trace, `flightlog branch`,
`flightlog blame`, and the revert commits of `flightlog rollback --git`.

git runs with HOME in tmp_path, no system config and identity from the environment, so the
user's own git configuration is neither read nor touched.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flightlog.active import format_traceparent, write_active
from flightlog.gitlink import RevertConflictError, hooks_dir, install_hooks, revert_trace_commits
from flightlog.gitlink_text import (
    format_hook_script,
    is_our_hook,
    message_is_blank,
    parse_blame_porcelain,
    parse_name_status,
    parse_trailers,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TRAILERS = ("Flightlog-Trace-Id", "Flightlog-Agent", "Flightlog-Model")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    out = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTLOG_", "GIT_", "TRACEPARENT"))}
    out.update(
        HOME=str(user_home),
        XDG_CONFIG_HOME=str(user_home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Ada Tester",
        GIT_AUTHOR_EMAIL="ada@example.invalid",
        GIT_COMMITTER_NAME="Ada Tester",
        GIT_COMMITTER_EMAIL="ada@example.invalid",
        FLIGHTLOG_URL="http://127.0.0.1:9",  # nothing listens: events go to the local ledger
    )
    return out


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "flightlog-home"


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, env, "init", "-q", "-b", "main")
    (path / "app.py").write_text("def hello():\n    return 1\n")
    (path / "old.txt").write_text("to be deleted\n")
    git(path, env, "add", "-A")
    git(path, env, "commit", "-q", "-m", "initial")
    return path


def git(cwd: Path, env: dict[str, str], *args: str, extra: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env={**env, **(extra or {})}, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def fl(
    home: Path, env: dict[str, str], *args: str, cwd: Path | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def events(home: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    proc = fl(home, env, "export", "--format", "events")
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def ingest(home: Path, env: dict[str, str], *evs: dict[str, Any]) -> None:
    proc = fl(home, env, "ingest", "-", input="".join(json.dumps(e) + "\n" for e in evs))
    assert proc.returncode == 0, proc.stderr


def event(trace: str, span: str, kind: str, payload: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "trace_id": trace,
        "span_id": span,
        "type": kind,
        "timestamp": "2026-11-24T17:00:00Z",
        "agent_id": "claude-code",
        "session_id": "s1",
        "model": {"provider": "anthropic", "name": "claude-sonnet-4-5"},
        "payload": payload,
        **more,
    }


def trailers_of(repo: Path, env: dict[str, str], rev: str = "HEAD") -> list[tuple[str, str]]:
    """A commit's trailers as `git interpret-trailers --parse` reads them."""
    message = git(repo, env, "log", "-1", "--format=%B", rev)
    proc = subprocess.run(
        ["git", "interpret-trailers", "--parse"], cwd=repo, env=env, input=message, capture_output=True, text=True
    )
    return parse_trailers(proc.stdout)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), stat.S_IMODE(p.lstat().st_mode)) for p in sorted(folder.iterdir())}


def work_tree(repo: Path, env: dict[str, str]) -> str:
    """The tree id of everything in the work tree (tracked or not), without moving the index."""
    index = repo / ".git" / "flightlog-test-index"
    extra = {"GIT_INDEX_FILE": str(index)}
    git(repo, env, "add", "-A", extra=extra)
    tree = git(repo, env, "write-tree", extra=extra).strip()
    index.unlink()
    return tree


# --- hooks: install, chain, uninstall --------------------------------------------------------


def test_install_chains_existing_hook_and_uninstall_restores_it(repo: Path, env: dict[str, str], home: Path) -> None:
    hooks = repo / ".git" / "hooks"
    ran = repo.parent / "user-hook-ran"
    user_hook = hooks / "post-commit"
    user_hook.write_bytes(f"#!/bin/sh\n# the user's own hook\necho ran >> '{ran}'\n".encode())
    user_hook.chmod(0o750)
    before = snapshot(hooks)

    out = fl(home, env, "install", "git-hooks", str(repo))
    assert out.returncode == 0, out.stderr
    assert "chaining the existing hook" in out.stdout
    assert is_our_hook((hooks / "post-commit").read_bytes())
    assert is_our_hook((hooks / "prepare-commit-msg").read_bytes())
    assert (hooks / "post-commit.pre-flightlog").read_bytes() == before["post-commit"][0]
    installed = snapshot(hooks)

    again = fl(home, env, "install", "git-hooks", str(repo))
    assert again.returncode == 0 and again.stdout.count("unchanged") == 2
    assert snapshot(hooks) == installed  # idempotent

    (repo / "app.py").write_text("def hello():\n    return 2\n")
    git(repo, env, "commit", "-q", "-am", "a human commit")
    assert ran.read_text() == "ran\n"  # the chained hook still runs

    out = fl(home, env, "uninstall", "git-hooks", str(repo))
    assert out.returncode == 0, out.stderr
    assert "restored the chained hook" in out.stdout
    assert snapshot(hooks) == before  # byte for byte, mode included; nothing of ours left
    assert "not installed" in fl(home, env, "uninstall", "git-hooks", str(repo)).stdout


def test_install_respects_core_hooks_path_and_worktrees(repo: Path, env: dict[str, str], home: Path) -> None:
    git(repo, env, "config", "core.hooksPath", ".githooks")
    out = fl(home, env, "install", "git-hooks", cwd=repo)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (repo / ".githooks").iterdir()) == ["post-commit", "prepare-commit-msg"]
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
    fl(home, env, "uninstall", "git-hooks", str(repo))
    assert list((repo / ".githooks").iterdir()) == []

    git(repo, env, "config", "--unset", "core.hooksPath")
    worktree = repo.parent / "wt"
    git(repo, env, "worktree", "add", "-q", str(worktree))
    assert hooks_dir(worktree) == repo / ".git" / "hooks"  # worktrees share the repository's hooks


def test_a_failing_flightlog_never_blocks_a_commit(repo: Path, env: dict[str, str], home: Path) -> None:
    hooks = repo / ".git" / "hooks"
    for name in ("prepare-commit-msg", "post-commit"):  # flightlog gone from where it was installed
        (hooks / name).write_bytes(format_hook_script(name, [str(repo.parent / "no-such" / "flightlog")]))
        (hooks / name).chmod(0o755)
    (repo / "app.py").write_text("x = 1\n")
    git(repo, env, "commit", "-q", "-am", "one", extra={"TRACEPARENT": format_traceparent(TRACE, SPAN)})

    # flightlog there but broken: its data directory is a file, so nothing can be recorded
    install_hooks(repo, [sys.executable, "-m", "flightlog"])
    home.write_text("not a directory\n")
    (repo / "app.py").write_text("x = 2\n")
    proc = subprocess.run(
        ["git", "commit", "-q", "-am", "two"],
        cwd=repo,
        env={**env, "TRACEPARENT": format_traceparent(TRACE, SPAN), "FLIGHTLOG_HOME": str(home)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert git(repo, env, "log", "-1", "--format=%s").strip() == "two"
    assert "the post-commit hook failed; the commit is not affected" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert home.read_text() == "not a directory\n"  # (and no log can be written there either)
    assert ("Flightlog-Trace-Id", TRACE) in trailers_of(repo, env)  # the part that needs no ledger still worked


# --- acceptance 2: trailers, git_op events, rollback --git -------------------------------------


def _agent_commits(repo: Path, env: dict[str, str], home: Path, extra: dict[str, str]) -> list[str]:
    """Two commits made in the trace: an edit, then a new file and a deletion."""
    (repo / "app.py").write_text("def hello():\n    return 'agent'\n")
    git(repo, env, "commit", "-q", "-am", "agent: change hello", extra=extra)
    (repo / "new.bin").write_bytes(b"\x00\x01binary\xff")
    (repo / "old.txt").unlink()
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "-m", "agent: add new.bin, drop old.txt", extra=extra)
    amended = git(repo, env, "rev-parse", "HEAD").strip()
    (repo / "notes.md").write_text("forgot this\n")
    git(repo, env, "add", "notes.md")
    git(repo, env, "commit", "-q", "--amend", "--no-edit", extra=extra)  # trailers are not added twice
    commits = git(repo, env, "rev-list", "--reverse", "HEAD~2..HEAD").split()
    op = next(e for e in events(home, env) if e["type"] == "git_op" and e["payload"]["commit"] == commits[1])
    assert op["payload"]["amends"] == amended
    return commits


def recorded_commits(home: Path, env: dict[str, str], trace: str) -> list[str]:
    """The trace's commits as recorded, oldest first (an amended-away one included)."""
    ops = [e for e in events(home, env) if e["trace_id"] == trace and e["type"] == "git_op"]
    return [e["payload"]["commit"] for e in ops if e["payload"]["op"] == "commit"]


def _check_commits(repo: Path, env: dict[str, str], home: Path, commits: list[str], agent: str, model: str) -> None:
    shown = git(repo, env, "log", "-2", "--format=%(trailers)")
    for sha in commits:
        pairs = trailers_of(repo, env, sha)
        assert pairs == [(TRAILERS[0], TRACE), (TRAILERS[1], agent), (TRAILERS[2], model)], pairs
    assert shown.count(f"Flightlog-Trace-Id: {TRACE}") == 2
    ops = {e["payload"]["commit"]: e for e in events(home, env) if e["type"] == "git_op" and e["trace_id"] == TRACE}
    assert set(commits) <= set(ops)
    first, second = ops[commits[0]], ops[commits[1]]
    assert first["parent_span_id"] == SPAN and first["agent_id"] == agent
    assert first["payload"]["op"] == "commit" and first["payload"]["branch"] == "main"
    assert first["payload"]["repo"] == str(repo) and first["payload"]["files"] == [{"status": "M", "path": "app.py"}]
    assert first["payload"]["trailers"]["Flightlog-Model"] == model
    assert second["payload"]["parents"] == [commits[0]]
    files = {(f["status"], f["path"]) for f in second["payload"]["files"]}
    assert files == {("A", "new.bin"), ("A", "notes.md"), ("D", "old.txt")}


def test_commit_in_a_traceparent_trace_and_revert(repo: Path, env: dict[str, str], home: Path) -> None:
    assert fl(home, env, "install", "git-hooks", str(repo)).returncode == 0
    ingest(home, env, event(TRACE, "1111111111111111", "prompt", {"text": "make hello say agent"}))
    pre_trace = work_tree(repo, env)
    commits = _agent_commits(repo, env, home, {"TRACEPARENT": format_traceparent(TRACE, SPAN)})
    # Agent and model are not in TRACEPARENT: they come from what the trace recorded.
    _check_commits(repo, env, home, commits, "claude-code", "claude-sonnet-4-5")
    assert work_tree(repo, env) != pre_trace

    rollback_trace = "a" * 32
    recorded = recorded_commits(home, env, TRACE)
    assert len(recorded) == 3 and recorded[0] == commits[0] and recorded[2] == commits[1]
    made = revert_trace_commits(repo, recorded, TRACE, rollback_trace)  # the amended-away commit is skipped
    assert len(made) == 2
    for sha, reverted in zip(made, reversed(commits), strict=True):
        pairs = trailers_of(repo, env, sha)
        assert ("Flightlog-Trace-Id", rollback_trace) in pairs and ("Flightlog-Reverts-Trace", TRACE) in pairs
        assert f"This reverts commit {reverted}." in git(repo, env, "log", "-1", "--format=%B", sha)
    log = git(repo, env, "log", "-2", "--format=%(trailers)")
    assert log.count(f"Flightlog-Reverts-Trace: {TRACE}") == 2 and log.count(rollback_trace) == 2
    assert work_tree(repo, env) == pre_trace
    reverts = [e for e in events(home, env) if e["trace_id"] == rollback_trace]
    assert {e["payload"]["commit"] for e in reverts} == set(made)  # the reverts are recorded in their trace


def test_commit_in_a_claude_code_session_trace(repo: Path, env: dict[str, str], home: Path) -> None:
    assert fl(home, env, "install", "git-hooks", str(repo)).returncode == 0
    info = {"trace_id": TRACE, "span_id": SPAN, "agent_id": "claude-code", "model": "claude-opus-4-1"}
    write_active(home, repo, {**info, "session_id": "sess-9"})
    commits = _agent_commits(repo, env, home, {})
    _check_commits(repo, env, home, commits, "claude-code", "claude-opus-4-1")
    op = next(e for e in events(home, env) if e["type"] == "git_op" and e["payload"]["commit"] == commits[0])
    assert op["session_id"] == "sess-9"


def test_no_trace_no_trailers(repo: Path, env: dict[str, str], home: Path) -> None:
    fl(home, env, "install", "git-hooks", str(repo))
    (repo / "app.py").write_text("human = True\n")
    git(repo, env, "commit", "-q", "-am", "human work")
    assert trailers_of(repo, env) == []
    assert not (home / "ledger.db").exists()


def test_rollback_cli_git(repo: Path, env: dict[str, str], home: Path) -> None:
    """`flightlog rollback TRACE --git` (rollback.py) on top of revert_trace_commits."""
    fl(home, env, "install", "git-hooks", str(repo))
    ingest(home, env, event(TRACE, "1111111111111111", "prompt", {"text": "make hello say agent"}))
    pre_trace = work_tree(repo, env)
    commits = _agent_commits(repo, env, home, {"TRACEPARENT": format_traceparent(TRACE, SPAN)})
    out = fl(home, env, "rollback", TRACE, "--git", cwd=repo)
    assert out.returncode == 0, out.stderr
    reverts = git(repo, env, "rev-list", f"{commits[-1]}..HEAD").split()
    assert len(reverts) == 2
    for sha in reverts:
        keys = dict(trailers_of(repo, env, sha))
        assert keys["Flightlog-Reverts-Trace"] == TRACE and keys["Flightlog-Trace-Id"] != TRACE
    assert work_tree(repo, env) == pre_trace
    assert any(e["type"] == "rollback" for e in events(home, env))


def test_revert_conflict_leaves_the_repo_as_it_was(repo: Path, env: dict[str, str], home: Path) -> None:
    fl(home, env, "install", "git-hooks", str(repo))
    commits = _agent_commits(repo, env, home, {"TRACEPARENT": format_traceparent(TRACE, SPAN)})
    (repo / "app.py").write_text("def hello():\n    return 'human rewrite'\n")
    git(repo, env, "commit", "-q", "-am", "human: rewrite hello")
    head, status = git(repo, env, "rev-parse", "HEAD"), git(repo, env, "status", "--porcelain")
    with pytest.raises(RevertConflictError, match=r"conflicts in app\.py; nothing was changed") as caught:
        revert_trace_commits(repo, commits, TRACE, "b" * 32)
    assert caught.value.commit == commits[0]
    assert git(repo, env, "rev-parse", "HEAD") == head  # the first revert (new.bin) was undone too
    assert git(repo, env, "status", "--porcelain") == status
    assert not (repo / ".git" / "REVERT_HEAD").exists() and not (repo / ".git" / "sequencer").exists()

    (repo / "app.py").write_text("dirty\n")
    with pytest.raises(Exception, match="uncommitted changes"):
        revert_trace_commits(repo, commits, TRACE, "b" * 32)


# --- branch --------------------------------------------------------------------------------


def test_branch_new_trace_and_active_trace(repo: Path, env: dict[str, str], home: Path) -> None:
    out = fl(home, env, "branch", "agent/task-1", "--repo", str(repo))
    assert out.returncode == 0, out.stderr
    trace = out.stdout.strip()
    assert len(trace) == 32 and int(trace, 16)
    assert "export TRACEPARENT=00-" + trace in out.stderr
    assert git(repo, env, "rev-parse", "--abbrev-ref", "HEAD").strip() == "agent/task-1"
    (op,) = [e for e in events(home, env) if e["trace_id"] == trace]
    assert op["type"] == "git_op" and op["payload"]["op"] == "branch"
    assert op["payload"]["ref"] == "refs/heads/agent/task-1" and op["payload"]["repo"] == str(repo)
    assert op["payload"]["commit"] == git(repo, env, "rev-parse", "HEAD").strip()

    joined = fl(home, {**env, "TRACEPARENT": format_traceparent(TRACE, SPAN)}, "branch", "agent/task-2", cwd=repo)
    assert joined.returncode == 0 and joined.stdout.strip() == TRACE
    (op,) = [e for e in events(home, env) if e["trace_id"] == TRACE]
    assert op["parent_span_id"] == SPAN

    taken = fl(home, env, "branch", "agent/task-1", "--repo", str(repo))
    assert taken.returncode != 0 and "already exists" in taken.stderr and len(taken.stderr.splitlines()) == 1
    bad = fl(home, env, "branch", "no..dots", "--repo", str(repo))
    assert bad.returncode != 0 and "not a valid branch name" in bad.stderr


# --- blame ---------------------------------------------------------------------------------


def test_blame_committed_and_uncommitted_agent_lines(repo: Path, env: dict[str, str], home: Path) -> None:
    fl(home, env, "install", "git-hooks", str(repo))
    ingest(home, env, event(TRACE, "1111111111111111", "prompt", {"text": "make hello say agent"}))
    (repo / "app.py").write_text("def hello():\n    return 'agent'\n")
    git(repo, env, "commit", "-q", "-am", "agent", extra={"TRACEPARENT": format_traceparent(TRACE, SPAN)})

    # Uncommitted edits: one line by an agent (recorded as a file_op in another trace), one by hand.
    other = "c" * 32
    diff = (
        "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,4 @@\n def hello():\n     return 'agent'\n"
        "+def bye():\n+    return 'bye'\n"
    )
    ingest(
        home,
        env,
        event(other, "2222222222222222", "prompt", {"text": "add a farewell"}),
        event(
            other,
            "3333333333333333",
            "file_op",
            {"op": "patch", "file_path": str(repo / "app.py"), "diff": diff},
            model={"provider": "openai", "name": "gpt-5-codex"},
            agent_id="codex",
        ),
    )
    (repo / "app.py").write_text("def hello():\n    return 'agent'\ndef bye():\n    return 'bye'\n# by hand\n")

    out = fl(home, env, "blame", "app.py", "--json", cwd=repo)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5]
    human, agent, bye, bye_body, by_hand = rows
    assert human["trace_id"] is None and human["commit"]  # from the initial commit, made by no agent
    assert agent["trace_id"] == TRACE and agent["via"] == "trailer"
    assert (agent["agent"], agent["model"], agent["prompt"]) == (
        "claude-code",
        "claude-sonnet-4-5",
        "make hello say agent",
    )
    for row in (bye, bye_body):
        assert row["commit"] is None and row["trace_id"] == other and row["via"] == "file_op"
        assert (row["agent"], row["model"], row["prompt"]) == ("codex", "gpt-5-codex", "add a farewell")
    assert by_hand["commit"] is None and by_hand["trace_id"] is None

    one = fl(home, env, "blame", f"{repo / 'app.py'}:2")
    assert one.returncode == 0, one.stderr
    lines = one.stdout.splitlines()
    assert lines[0].split() == ["LINE", "COMMIT", "TRACE", "AGENT", "MODEL", "PROMPT", "TEXT"]
    assert len(lines) == 2 and TRACE in lines[1] and "make hello say agent" in lines[1]

    # A file git does not track yet, recorded with a path relative to the repository.
    created = {
        "op": "create",
        "file_path": "untracked.py",
        "diff": "--- /dev/null\n+++ b/untracked.py\n@@ -0,0 +1 @@\n+def bye():\n",
    }
    ingest(home, env, event(other, "4444444444444444", "file_op", created, agent_id="codex"))
    (repo / "untracked.py").write_text("def bye():\n")
    new = json.loads(fl(home, env, "blame", "untracked.py", "--json", cwd=repo).stdout)
    assert new[0]["commit"] is None and new[0]["trace_id"] == other

    for bad in ("app.py:9", "missing.py"):
        proc = fl(home, env, "blame", bad, cwd=repo)
        assert proc.returncode != 0 and len(proc.stderr.splitlines()) == 1, proc.stderr


# --- pure parts ----------------------------------------------------------------------------


def test_pure_formats() -> None:
    script = format_hook_script("prepare-commit-msg", ["/opt/my venv/bin/flightlog"])
    assert is_our_hook(script) and not is_our_hook(b"#!/bin/sh\necho hi\n") and not is_our_hook(b"")
    assert b"'/opt/my venv/bin/flightlog' hook git-prepare-commit-msg \"$@\"" in script
    assert message_is_blank("\n# Please enter the commit message\n#\n")
    assert not message_is_blank("fix\n# comment\n")
    assert parse_name_status("M\0a b.py\0R095\0old\0new\0D\0gone\0") == [
        {"status": "M", "path": "a b.py"},
        {"status": "R", "path": "new", "old_path": "old"},
        {"status": "D", "path": "gone"},
    ]
    sha = "f" * 40
    porcelain = f"{sha} 1 1 2\nauthor x\nfilename f\n\tone\n{sha} 2 2\n\ttwo\n{'0' * 40} 3 3 1\n\tthree\n"
    assert parse_blame_porcelain(porcelain) == [(1, sha, "one"), (2, sha, "two"), (3, None, "three")]
    assert parse_trailers("Flightlog-Trace-Id: abc\nSigned-off-by: A <a@x>\n") == [
        ("Flightlog-Trace-Id", "abc"),
        ("Signed-off-by", "A <a@x>"),
    ]
