"""The `flightlog` executable. The Claude Code hook runs on every tool call, so it is dispatched
here before click and the ledger are imported (they cost more than Python's own start)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["hook", "claude-code"] and not {"-h", "--help"} & set(argv):
        from flightlog.capture.claude_hook import run_hook

        raise SystemExit(run_hook())
    from flightlog.cli import main as cli_main

    cli_main()
