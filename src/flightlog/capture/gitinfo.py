"""Facts about a git work tree read straight from `.git`: a git subprocess would cost more than
the rest of a hook call."""

from __future__ import annotations

import contextlib
from pathlib import Path

__all__ = ["git_head"]


def git_head(cwd: Path) -> tuple[str | None, str | None]:
    """Return (branch, HEAD commit) by reading .git directly: a git subprocess per prompt would
    cost more than the rest of the hook."""
    for folder in (cwd, *cwd.parents):
        dot_git = folder / ".git"
        try:
            if dot_git.is_file():
                text = dot_git.read_text().strip()
                dot_git = (folder / text.removeprefix("gitdir:").strip()).resolve()
            head = (dot_git / "HEAD").read_text().strip()
        except OSError:
            continue
        if not head.startswith("ref: "):
            return None, head or None
        ref = head[5:]
        branch = ref.removeprefix("refs/heads/")
        common = dot_git
        with contextlib.suppress(OSError):  # a linked worktree keeps its refs in the main .git
            common = (dot_git / (dot_git / "commondir").read_text().strip()).resolve()
        for base in (dot_git, common):
            try:
                return branch, (base / ref).read_text().strip()
            except OSError:
                continue
        try:
            for line in (common / "packed-refs").read_text().splitlines():
                if line.endswith(" " + ref):
                    return branch, line.split(" ", 1)[0]
        except OSError:
            pass
        return branch, None
    return None, None
