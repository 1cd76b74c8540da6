"""Shared fixtures: a fresh data directory, a runner for the real `flightlog` CLI and a real
collector on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import Server, start_server

VECTORS = Path(__file__).parent / "vectors"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "flightlog-home"


@pytest.fixture
def server(home: Path) -> Iterator[Server]:
    """A real `flightlog serve` on HOME (a free loopback port), stopped after the test."""
    started = start_server(home)
    yield started
    started.stop()


@pytest.fixture
def flightlog(home: Path) -> CliRunner:
    """Run `python -m flightlog --home HOME ARGS…` as a user would; returns the finished process."""

    def run(*args: str, input: str | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTLOG_")}
        proc = subprocess.run(
            [sys.executable, "-m", "flightlog", "--home", str(home), *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    return run


def make_event(n: int, trace_id: str = TRACE, **overrides: Any) -> dict[str, Any]:
    """A valid producer event; `n` varies span id, type and payload."""
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("prompt", {"text": f"please fix failing test number {n}"}),
        (
            "tool_call",
            {"tool_name": "Bash", "tool_call_id": f"toolu_{n}", "input": {"command": "ls"}},
        ),
        ("shell", {"command": f"pytest -k case{n}", "cwd": "/repo", "exit_code": n % 2}),
        ("file_op", {"op": "patch", "file_path": f"src/mod{n}.py", "diff": f"+line {n}\n"}),
    ]
    kind, payload = kinds[n % len(kinds)]
    event: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": f"{n + 1:016x}",
        "parent_span_id": None if n == 0 else f"{1:016x}",
        "type": kind,
        "timestamp": f"2026-11-24T17:00:{n % 60:02d}.{n % 1000:03d}Z",
        "agent_id": "claude-code",
        "session_id": "session-1",
        "payload": payload,
    }
    event.update(overrides)
    return event


def jsonl(events: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)
