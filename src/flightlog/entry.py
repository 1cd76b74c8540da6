"""The `flightlog` executable. Hooks run on every tool call or commit, so they are dispatched
here before click and the ledger are imported (those cost more than Python's own start)."""

from __future__ import annotations

import sys

__all__ = ["main"]

_GIT_HOOKS = {"git-prepare-commit-msg": "prepare-commit-msg", "git-post-commit": "post-commit"}


def main() -> None:
    argv = sys.argv[1:]
    home = None
    if argv[:1] == ["--home"] and len(argv) > 2:
        home, argv = argv[1], argv[2:]
    elif argv[:1] and argv[0].startswith("--home="):
        home, argv = argv[0].removeprefix("--home="), argv[1:]
    if argv[:1] == ["hook"] and len(argv) > 1 and not {"-h", "--help"} & set(argv[1:2]):
        if argv[1] == "claude-code" and len(argv) == 2:
            from flightlog.capture.claude_hook_client import run

            raise SystemExit(run(home))
        if argv[1] in _GIT_HOOKS and "--help" not in argv:
            from flightlog.gitlink_hooks import run_git_hook
            from flightlog.home import resolve_home

            raise SystemExit(run_git_hook(resolve_home(home), _GIT_HOOKS[argv[1]], argv[2:]))
    from flightlog.cli import main as cli_main

    cli_main()
