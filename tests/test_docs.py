"""Docs generated from code stay in step with it."""

from __future__ import annotations

from pathlib import Path

from flightlog._internal.clidoc import render_cli_reference

ROOT = Path(__file__).parent.parent


def test_cli_reference_is_current() -> None:
    written = (ROOT / "docs" / "cli.md").read_text("utf-8")
    assert written == render_cli_reference(), "run: python -m flightlog._internal.clidoc > docs/cli.md"


def test_readme_commands_match_ci() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    first = readme.split("\n## ", 1)[0]
    assert "bash scripts/run" in first and "bash scripts/test" in first
    assert "bash scripts/test" in (ROOT / ".ci" / "run").read_text("utf-8")
