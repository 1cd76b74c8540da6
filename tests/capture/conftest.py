"""Fixtures shared by the capture tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A small git work tree an agent works in (one ignored build folder)."""
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    (root / ".gitignore").write_text("build/\n")
    (root / "app.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "notes.txt").write_text("old notes\n")
    (root / "build").mkdir()
    (root / "build" / "out.bin").write_text("ignored\n")
    return root
