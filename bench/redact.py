"""Benchmark flightlog.redact on ~1 KB agent events.

Prints the median time of `Redactor.redact_value` per event (µs) and events/s for: a clean
event with no keyword of any rule, a clean event whose text mentions keywords (key, token,
password, ...) but holds no secret, and an event with secrets. Writes bench/results/redact.json.

Run from the repository root: `.venv/bin/python bench/redact.py` (add `src` to PYTHONPATH if
flightlog is not installed).
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from flightlog.redact import Redactor

RESULTS = Path(__file__).resolve().parent / "results" / "redact.json"
ROUNDS = 15
PER_ROUND = 2000


def clean_event() -> dict[str, Any]:
    """Return a ~1 KB tool-call event whose strings contain no keyword of any default rule."""
    return {
        "schema": "flightlog.event/v1",
        "id": "01J9Z3K8Q4W6T2M5N7P9R1S3V5",
        "ts": "2025-01-02T10:00:00.123456Z",
        "session": "c0a8012e-6f3b-4d7a-9e21-5b8c4d2f1a90",
        "agent": "claude-code",
        "type": "tool_call",
        "payload": {
            "tool": "Bash",
            "input": {
                "command": "cd /home/dev/project && python -m pytest -q tests/test_parser.py",
                "description": "Run the parser unit tests",
                "timeout": 120000,
            },
            "output": {
                "stdout": (
                    "....................................................    [ 87%]\n"
                    "........                                                [100%]\n"
                    "60 passed in 1.42s\n"
                ),
                "stderr": "",
                "exit_code": 0,
            },
            "cwd": "/home/dev/project",
            "files": ["src/parser/lexer.py", "src/parser/grammar.py", "tests/test_parser.py"],
            "note": (
                "The lexer now handles nested comments and raw strings; the grammar change "
                "removes the left recursion in expressions, which fixed the slow case on "
                "long inputs. Next I will run the full suite and update the changelog."
            ),
        },
        "model": "claude-sonnet-4",
        "usage": {"input": 18234, "output": 412},
        "parent": "01J9Z3K8Q4W6T2M5N7P9R1S3V4",
    }


def keyword_event() -> dict[str, Any]:
    """Return a ~1 KB clean event whose text mentions rule keywords but holds no secret."""
    event = clean_event()
    payload = event["payload"]
    payload["tool"] = "Read"
    payload["input"] = {"file_path": "/home/dev/project/src/auth/session.py"}
    payload["output"] = {
        "content": (
            "def refresh(session, store):\n"
            "    token = store.get_token(session.user_id)\n"
            "    for key, value in session.items():\n"
            "        if key == 'password':\n"
            "            continue\n"
            "    api_key = os.environ['SERVICE_API_KEY']\n"
            "    return token\n"
        ),
    }
    payload["note"] = (
        "The session code reads the API key from the environment and never logs the token or "
        "the password; the secret store is only used by refresh()."
    )
    return event


def secret_event() -> dict[str, Any]:
    """Return a ~1 KB event with three secrets in a shell command and tool output."""
    event = clean_event()
    payload = event["payload"]
    payload["input"]["command"] = (
        "export GITHUB_TOKEN=ghp_" + "4gN5ZrUA6qQUbFKqpk7oBFcxkJNDpZURxWlm && "  # split: not a real token
        "curl -u deploy:Mo3GDz!4XXCL@b https://registry.example.com/v2/_catalog"
    )
    aws_key_id = "AKIA" + "LCFMAHYX2NCEWTW2"  # generated; split so secret scanners skip this file
    payload["output"]["stdout"] = f"export AWS_ACCESS_KEY_ID={aws_key_id}\n" + payload["output"]["stdout"]
    return event


def measure(redactor: Redactor, event: dict[str, Any]) -> dict[str, float]:
    """Return the median µs per redact_value call over ROUNDS rounds of PER_ROUND calls."""
    redact = redactor.redact_value
    for _ in range(200):
        redact(event)
    rounds = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(PER_ROUND):
            redact(event)
        rounds.append((time.perf_counter_ns() - start) / PER_ROUND / 1000)
    median = statistics.median(rounds)
    return {
        "median_us": round(median, 2),
        "min_us": round(min(rounds), 2),
        "events_per_s": round(1e6 / median),
        "bytes": len(json.dumps(event)),
    }


def main() -> None:
    start = time.perf_counter()
    redactor = Redactor.default()
    load_ms = (time.perf_counter() - start) * 1000
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "rules": len(redactor.rule_ids),
        "load_default_ms": round(load_ms, 1),
    }
    _, found = redactor.redact_value(secret_event())
    if len(found) != 3:
        raise SystemExit(f"expected 3 redactions in the secret event, got {found}")
    for name, event in (
        ("clean", clean_event()),
        ("clean_with_keywords", keyword_event()),
        ("with_secrets", secret_event()),
    ):
        results[name] = measure(redactor, event)
        row = results[name]
        print(
            f"{name:20} {row['bytes']:5d} B  median {row['median_us']:7.2f} µs/event  "
            f"{row['events_per_s']:>9,} events/s"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote bench/results/{RESULTS.name}")


if __name__ == "__main__":
    main()
