"""What an importer makes of one source file: the events, and the lines it had to skip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Mapped", "Problem"]


@dataclass(frozen=True)
class Problem:
    """A line that was skipped: the file, its 1-based line number and why (never its content)."""

    path: str
    line: int
    reason: str


@dataclass
class Mapped:
    """Schema-v1 producer events made from one import unit (a session file and its companions)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lines: int = 0
