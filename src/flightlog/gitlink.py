"""Git linkage: flightlog's git hooks put in and taken out, facts about commits, branches for
agent tasks, and the revert commits of `flightlog rollback --git` (every git subprocess call
lives here; the text formats are `flightlog.gitlink_text`).

Chaining: `install_hooks` moves a hook already in place aside as `<name>.pre-flightlog`
(a rename: bytes, mode, symlink and all) and writes ours, which runs it first with the same
arguments; `uninstall_hooks` deletes ours and renames the kept one back, so the hooks directory
is exactly as it was. The hooks directory is the one git uses: `core.hooksPath` if set, else
the common `.git/hooks` of the repository (shared by its worktrees).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flightlog.errors import FlightlogError
from flightlog.gitlink_text import (
    CHAIN_SUFFIX,
    HOOK_NAMES,
    REVERTS_TRAILER,
    TRACE_TRAILER,
    format_hook_script,
    is_our_hook,
    parse_name_status,
    parse_trailers,
)
from flightlog.home import replace_file

__all__ = [
    "CommitInfo",
    "GitError",
    "RevertConflictError",
    "commit_info",
    "create_branch",
    "git",
    "hooks_dir",
    "install_hooks",
    "repo_root",
    "revert_trace_commits",
    "uninstall_hooks",
]


class GitError(FlightlogError):
    """A git command failed, or a repository is not in a state flightlog can work with."""


class RevertConflictError(GitError):
    """Reverting a trace's commits conflicted; the repository was put back as it was."""

    def __init__(self, message: str, commit: str) -> None:
        super().__init__(message)
        self.commit = commit


def git(cwd: Path, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `git ARGS` in `cwd` and return the finished process; raise GitError (git's own
    first line of complaint) when it fails and `check` is set."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
        )
    except FileNotFoundError:
        raise GitError("git is not installed (no `git` on PATH)") from None
    except NotADirectoryError:
        raise GitError(f"{cwd} is not a directory") from None
    if check and proc.returncode != 0:
        raise GitError(f"git {args[0]} failed in {cwd}: {_complaint(proc.stderr)}")
    return proc


def _complaint(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("hint:")]
    return next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0] if lines else "no message")


def repo_root(path: Path) -> Path:
    """Return the top of the work tree containing `path` (a directory); GitError if none."""
    proc = git(path, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise GitError(f"{path} is not inside a git work tree")
    return Path(proc.stdout.strip())


def hooks_dir(repo: Path) -> Path:
    """Return the directory git runs `repo`'s hooks from (`core.hooksPath` respected)."""
    proc = git(repo, "rev-parse", "--path-format=absolute", "--git-path", "hooks", check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise GitError(f"{repo} is not a git repository")
    return Path(proc.stdout.strip())


# --- hooks -----------------------------------------------------------------------------------


def install_hooks(repo: Path, argv: Sequence[str]) -> list[tuple[str, str]]:
    """Install our prepare-commit-msg and post-commit hooks (running `argv hook git-…`) into
    `repo`'s hooks directory and return (hook path, what happened) for each: "installed",
    "installed, chaining the existing hook", "updated" or "unchanged". Idempotent."""
    folder = hooks_dir(repo)
    done: list[tuple[str, str]] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in HOOK_NAMES:
            path, kept = folder / name, folder / (name + CHAIN_SUFFIX)
            script = format_hook_script(name, argv)
            current = _read_hook(path)
            if current is not None and is_our_hook(current):
                if current == script:
                    done.append((str(path), "unchanged"))
                else:
                    replace_file(path, script, 0o755)
                    done.append((str(path), "updated"))
                continue
            chained = os.path.lexists(path)
            if chained:
                if os.path.lexists(kept):
                    raise GitError(f"{kept} already exists; move it away, then install again")
                os.rename(path, kept)
            try:
                replace_file(path, script, 0o755)
            except OSError:
                if chained:
                    os.rename(kept, path)
                raise
            done.append((str(path), "installed, chaining the existing hook" if chained else "installed"))
    except OSError as exc:
        raise GitError(f"cannot write {exc.filename or folder}: {exc.strerror}") from None
    return done


def uninstall_hooks(repo: Path) -> list[tuple[str, str]]:
    """Remove our hooks from `repo`'s hooks directory, renaming the hooks they chained back into
    place; return (hook path, what happened): "removed", "restored the chained hook" or
    "not installed". A hook someone else wrote over ours is left alone."""
    folder = hooks_dir(repo)
    done: list[tuple[str, str]] = []
    try:
        for name in HOOK_NAMES:
            path, kept = folder / name, folder / (name + CHAIN_SUFFIX)
            current = _read_hook(path)
            if current is not None and not is_our_hook(current):
                done.append((str(path), "not installed"))
                continue
            if current is not None:
                path.unlink()
            if os.path.lexists(kept):
                os.rename(kept, path)
                done.append((str(path), "restored the chained hook"))
            else:
                done.append((str(path), "removed" if current is not None else "not installed"))
    except OSError as exc:
        raise GitError(f"cannot change {exc.filename or folder}: {exc.strerror}") from None
    return done


def _read_hook(path: Path) -> bytes | None:
    """The hook's bytes; None when there is none; b"" for a dangling symlink (not ours)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b"" if os.path.islink(path) else None


# --- commits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommitInfo:
    """What the post-commit hook records about one commit."""

    commit: str
    parents: list[str]
    timestamp: str  # committer date, RFC 3339
    unix_ms: int
    subject: str
    trailers: list[tuple[str, str]]
    files: list[dict[str, str]]
    amends: str | None = None  # the commit this one replaced (`git commit --amend`)


def commit_info(repo: Path, rev: str = "HEAD") -> CommitInfo:
    """Return the id, parents, committer date, subject, trailers and changed files (against the
    first parent) of commit `rev`."""
    shown = git(repo, "show", "-s", "--format=%H%x00%P%x00%cI%x00%ct%x00%s%x00%(trailers:only,unfold)", rev)
    sha, parents, date, seconds, subject, trailers = shown.stdout.split("\0", 5)
    parent_ids = parents.split()
    base = [parent_ids[0], sha] if parent_ids else ["--root", sha]
    diff = git(repo, "diff-tree", "-r", "-z", "--name-status", "-M", "--no-commit-id", *base)
    return CommitInfo(
        sha,
        parent_ids,
        date,
        int(seconds) * 1000,
        subject,
        parse_trailers(trailers),
        parse_name_status(diff.stdout),
        _amended(repo, sha) if rev == "HEAD" else None,
    )


def _amended(repo: Path, sha: str) -> str | None:
    """Return the commit HEAD was before, when the last reflog entry says HEAD (now `sha`) came
    from `git commit --amend`."""
    entry = git(repo, "reflog", "-1", "--format=%H%x00%gs", "HEAD", check=False).stdout
    head, _, action = entry.strip("\n").partition("\0")
    if head != sha or not action.startswith("commit (amend)"):
        return None
    before = git(repo, "rev-parse", "--verify", "-q", "HEAD@{1}", check=False).stdout.strip()
    return before if before and before != sha else None


def head_commit(repo: Path) -> str | None:
    """Return HEAD's commit id, or None on an unborn branch."""
    proc = git(repo, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    return proc.stdout.strip() or None


def create_branch(repo: Path, name: str) -> str | None:
    """Create branch `name` at HEAD and switch to it (uncommitted changes come along); return
    the commit it starts at (None on an unborn branch). GitError if the name is taken or bad."""
    if git(repo, "check-ref-format", "--branch", name, check=False).returncode != 0:
        raise GitError(f"{name!r} is not a valid branch name")
    if git(repo, "show-ref", "--verify", "-q", f"refs/heads/{name}", check=False).returncode == 0:
        raise GitError(f"a branch named {name!r} already exists in {repo}")
    git(repo, "switch", "-q", "-c", name)
    return head_commit(repo)


def revert_trace_commits(repo: Path, commits: list[str], original_trace: str, rollback_trace: str) -> list[str]:
    """Revert `commits` (a trace's commits, oldest first) in `repo` with one new commit each,
    newest first, and return the new commit ids in the order made.

    Each message is git's own ("Revert "<subject>"", "This reverts commit <sha>.") plus the
    trailers `Flightlog-Trace-Id: <rollback_trace>` and `Flightlog-Reverts-Trace:
    <original_trace>`. A commit whose changes are already undone makes no commit, nor does one
    that no branch contains any more (amended or rebased away: its successor, recorded too, is
    reverted instead). Merge commits are reverted against their first parent. Preconditions,
    checked: no uncommitted changes to tracked files, and every commit still on a branch is in
    HEAD's history. On a conflict (or any failure once
    changes began) the revert is aborted and the branch reset to where it was, and
    RevertConflictError (GitError) names the commit.
    """
    repo = repo_root(repo)
    start = head_commit(repo)
    if start is None:
        raise GitError(f"{repo} has no commits to revert")
    if git(repo, "status", "--porcelain", "--untracked-files=no").stdout.strip():
        raise GitError(f"{repo} has uncommitted changes; commit or stash them before rolling back")
    full: list[str] = []
    for commit in commits:
        proc = git(repo, "rev-parse", "--verify", "-q", f"{commit}^{{commit}}", check=False)
        sha = proc.stdout.strip()
        if proc.returncode != 0 or not sha:
            raise GitError(f"commit {commit} is not in {repo}")
        if git(repo, "merge-base", "--is-ancestor", sha, "HEAD", check=False).returncode == 0:
            full.append(sha)
        elif git(repo, "for-each-ref", "--count=1", "--contains", sha).stdout.strip():
            raise GitError(f"commit {sha[:12]} is not in the history of {repo}'s HEAD; check out its branch first")
        # else: on no branch at all (amended or rebased away): none of its changes are in any history
    made: list[str] = []
    for sha in reversed(full):
        try:
            if _revert_one(repo, sha, original_trace, rollback_trace):
                made.append(git(repo, "rev-parse", "HEAD").stdout.strip())
        except GitError as exc:
            _restore(repo, start)
            if isinstance(exc, RevertConflictError):
                raise
            raise GitError(f"reverting {sha[:12]} failed, {repo} is back as it was: {exc.message}") from None
    return made


def _revert_one(repo: Path, sha: str, original_trace: str, rollback_trace: str) -> bool:
    """Revert one commit as a new commit; False when there was nothing left to revert."""
    parents = git(repo, "show", "-s", "--format=%P", sha).stdout.split()
    mainline = ["-m", "1"] if len(parents) > 1 else []
    proc = git(repo, "revert", "--no-commit", "--no-edit", *mainline, sha, check=False)
    if proc.returncode != 0:
        conflicted = git(repo, "diff", "--name-only", "--diff-filter=U", check=False).stdout.split()
        what = f" in {', '.join(conflicted[:5])}" if conflicted else f": {_complaint(proc.stderr)}"
        _restore(repo, None)
        raise RevertConflictError(f"reverting commit {sha[:12]} conflicts{what}; nothing was changed in {repo}", sha)
    if git(repo, "diff", "--cached", "--quiet", check=False).returncode == 0:
        _restore(repo, None)  # already undone by a later commit: nothing to record
        return False
    subject = git(repo, "show", "-s", "--format=%s", sha).stdout.strip()
    message = f'Revert "{subject}"\n\nThis reverts commit {sha}.\n'
    message = git(
        repo,
        "interpret-trailers",
        "--trailer",
        f"{TRACE_TRAILER}: {rollback_trace}",
        "--trailer",
        f"{REVERTS_TRAILER}: {original_trace}",
        input=message,
    ).stdout
    git(repo, "commit", "-q", "--cleanup=verbatim", "-F", "-", input=message)
    return True


def _restore(repo: Path, start: str | None) -> None:
    """Abort a revert in progress and, with `start`, move the branch back there. The tree was
    clean before we began, so nothing of the user's is lost."""
    if git(repo, "revert", "--abort", check=False).returncode != 0:
        git(repo, "reset", "-q", "--merge", check=False)
    if start is not None and git(repo, "rev-parse", "HEAD").stdout.strip() != start:
        git(repo, "reset", "-q", "--keep", start)
