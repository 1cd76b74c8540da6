"""The built-in pack against the 67 published cases (tests/vectors/policy-cases.jsonl), through
the hook path: every case as Claude Code's PreToolUse JSON into `claude_hook.process` (the
function the command hook and the collector's HTTP hook both run), and a sample of them through
spawned `flightlog hook claude-code` processes, which must answer the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flightlog.capture.claude_hook import process
from tests.conftest import VECTORS

CASES = [json.loads(line) for line in (VECTORS / "policy-cases.jsonl").read_text().splitlines() if line.strip()]
HOME_DIR = "/home/dev"
PROJECT = "/home/dev/project"

# Where the pack answers otherwise, and the one setting (settings.json) that gives the source's answer.
DISAGREEMENTS: dict[int, dict[str, Any] | None] = {
    37: {"tools": {"deny": ["WebFetch", "WebSearch"]}},  # a strict profile denies web access outright
    38: {"tools": {"ask": ["Bash"]}},  # the same profile puts every Bash call behind a prompt
    39: {"commands": {"deny": [{"argv": ["grep"], "reason": "use rg"}]}},  # one project's taste
    40: {"rules": {"rm-recursive-outside": {"decision": "ask"}}},  # Claude Code asks; others deny `rm -rf ~`
    58: {"rules": {"git-push-protected": {"decision": "deny"}}},  # one project denies, another asks
    66: None,  # tenant entitlements: needs data about principals, not a setting
}


def test_the_vectors_are_there() -> None:
    assert len(CASES) == 67


def hook_data(case: dict[str, Any]) -> dict[str, Any]:
    """A case as Claude Code's PreToolUse hook JSON. Cases from other agents' formats (no
    tool_input: `principal`, `resource`, `history`) carry those fields as the tool's input."""
    action = case["action"]
    tool_input = action.get("tool_input")
    if tool_input is None:
        tool_input = {k: v for k, v in action.items() if k not in ("tool_name", "cwd", "history")}
    elif "principal" in action:
        tool_input = {**tool_input, "principal": action["principal"]}
    return {
        "session_id": "policy-cases",
        "cwd": action.get("cwd") or PROJECT,
        "hook_event_name": "PreToolUse",
        "tool_name": action["tool_name"],
        "tool_input": tool_input,
        "tool_use_id": "toolu_case",
    }


def answer_of(output: dict[str, Any] | None) -> tuple[str, str]:
    """(allow|ask|deny, reason): answering nothing lets the call through, as a silent hook does."""
    if not output:
        return "allow", ""
    out = output["hookSpecificOutput"]
    return out["permissionDecision"], out["permissionDecisionReason"]


@pytest.fixture
def hook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", HOME_DIR)
    monkeypatch.setenv("FLIGHTLOG_APPROVAL_WAIT", "0")
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)


def decide_all(home: Path) -> list[tuple[str, str]]:
    return [answer_of(process(hook_data(c), home).output) for c in CASES]


@pytest.mark.usefixtures("hook_env")
def test_the_pack_agrees_with_at_least_90_percent_of_the_published_cases(home: Path) -> None:
    answers = decide_all(home)
    wrong = {i: a for i, (c, a) in enumerate(zip(CASES, answers, strict=True)) if a[0] != c["expected"]}
    for i, (got, reason) in sorted(wrong.items()):
        case = CASES[i]
        print(f"case {i}: expected {case['expected']}, pack says {got} ({reason or 'no rule objected'}); {case['why']}")
    agreement = 1 - len(wrong) / len(CASES)
    print(f"agreement {len(CASES) - len(wrong)}/{len(CASES)} = {agreement:.1%}")
    assert agreement >= 0.90
    assert set(wrong) == set(DISAGREEMENTS)  # a new disagreement is a regression, a fixed one an update
    assert not any("policy error" in reason for _, reason in answers)


@pytest.mark.usefixtures("hook_env")
@pytest.mark.parametrize("index", sorted(i for i, s in DISAGREEMENTS.items() if s is not None))
def test_each_disagreement_is_one_setting_away(home: Path, index: int) -> None:
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "settings.json").write_text(json.dumps(DISAGREEMENTS[index]))
    case = CASES[index]
    assert answer_of(process(hook_data(case), home).output)[0] == case["expected"]


@pytest.mark.usefixtures("hook_env")
def test_spawned_hooks_answer_as_the_in_process_path(home: Path) -> None:
    """Every sixth case through `flightlog hook claude-code`, one process per call."""
    expected = decide_all(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTLOG_", "CLAUDE_"))}
    env |= {"FLIGHTLOG_HOME": str(home), "FLIGHTLOG_URL": "http://127.0.0.1:9", "HOME": HOME_DIR}
    env["FLIGHTLOG_APPROVAL_WAIT"] = "0"
    for i in range(0, len(CASES), 6):
        proc = subprocess.run(
            [sys.executable, "-m", "flightlog", "hook", "claude-code"],
            input=json.dumps(hook_data(CASES[i])),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        got = answer_of(json.loads(proc.stdout) if proc.stdout.strip() else None)
        assert got == expected[i], (i, got, expected[i])
