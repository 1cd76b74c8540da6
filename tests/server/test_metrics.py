"""GET /metrics reflects what agents did, and every metric the shipped alerts use exists."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from flightlog.server import approvals_api, hooks
from flightlog.server.metrics import RECEIVING_SOURCES
from tests.conftest import make_event
from tests.server.conftest import Server

JSON, PB = "application/json", "application/x-protobuf"
ALERTS = Path(__file__).parent.parent.parent / "deploy" / "prometheus" / "alerts.yml"


def _value(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _series(text: str) -> set[str]:
    """The series of an exposition, without their values."""
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def _nanos(timestamp: str) -> str:
    return str(int(datetime.fromisoformat(timestamp).timestamp() * 1_000_000_000))


def _claude_telemetry(session: str, *records: tuple[str, str, dict[str, str]]) -> dict[str, Any]:
    """An OTLP/JSON logs request as Claude Code exports it: (event name, time, attributes)."""

    def attrs(values: dict[str, str]) -> list[dict[str, Any]]:
        return [{"key": k, "value": {"stringValue": v}} for k, v in values.items()]

    logs = [
        {
            "timeUnixNano": _nanos(at),
            "body": {"stringValue": f"claude_code.{name}"},
            "attributes": attrs({"event.name": name, "session.id": session, **extra}),
        }
        for name, at, extra in records
    ]
    scope = {"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": logs}
    return {
        "resourceLogs": [{"resource": {"attributes": attrs({"service.name": "claude-code"})}, "scopeLogs": [scope]}]
    }


def _hook(server: Server, event: str, session: str, cwd: Path, **fields: Any) -> httpx.Response:
    """POST one Claude Code hook event to the collector, as Claude Code's HTTP hook does."""
    data = {"session_id": session, "cwd": str(cwd), "hook_event_name": event, **fields}
    response = httpx.post(server.url + "/hooks/claude-code", json=data, timeout=30)
    assert response.status_code == 200, response.text
    return response


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def test_metrics_count_agent_signals(serve: Callable[..., Server]) -> None:
    server = serve()
    t0 = "2026-11-24T17:00:00.000Z"
    events = [
        make_event(0, type="prompt", payload={"text": "go"}, timestamp=t0),
        make_event(1, type="tool_call", payload={"tool_name": "Bash"}, timestamp="2026-11-24T17:00:02.000Z"),
        make_event(
            2, type="tool_call", payload={"tool_name": "Bash"}, status="error", timestamp="2026-11-24T17:00:04.000Z"
        ),
        make_event(3, type="git_op", payload={"op": "commit"}, timestamp="2026-11-24T17:00:05.000Z"),
        make_event(4, type="rollback", payload={}, timestamp="2026-11-24T17:00:06.000Z"),
        make_event(5, type="policy_evaluation", payload={}, status="denied", timestamp="2026-11-24T17:00:07.000Z"),
        make_event(
            6, type="tool_call", payload={"tool_name": "Bash"}, status="denied", timestamp="2026-11-24T17:00:07.500Z"
        ),
        # The session's next turn: it ends the first one, whose last event came 7.5 s after its prompt.
        make_event(7, type="prompt", payload={"text": "next"}, trace_id="f" * 32, timestamp="2026-11-24T17:01:00Z"),
    ]
    assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
    assert httpx.post(server.url + "/api/v1/events", json=[make_event(9, span_id="bad")]).status_code == 422
    assert httpx.post(server.url + "/api/v1/events", content=b"[{", headers={"content-type": JSON}).status_code == 400
    assert httpx.post(server.url + "/v1/traces", content=b"\xff", headers={"content-type": PB}).status_code == 400
    text = httpx.get(server.url + "/metrics").text
    assert _value(text, "flightlog_tool_calls_total") == 3
    assert _value(text, "flightlog_tool_failures_total") == 1
    assert _value(text, "flightlog_commits_total") == 1
    assert _value(text, "flightlog_rollbacks_total") == 1
    assert _value(text, "flightlog_turns_total") == 2
    assert _value(text, "flightlog_denied_actions_total") == 1  # the call, not also its evaluation
    assert _value(text, "flightlog_events_received_total") == 9
    assert _value(text, 'flightlog_events_rejected_total{reason="validation",source="api"}') == 1
    assert _value(text, 'flightlog_requests_refused_total{source="api",status="400"}') == 1
    assert _value(text, 'flightlog_requests_refused_total{source="otlp",status="400"}') == 1
    assert _value(text, "flightlog_action_latency_seconds_count") == 1  # one turn ended
    assert _value(text, "flightlog_action_latency_seconds_sum") == 7.5
    assert _value(text, "flightlog_ledger_entries") == 8
    deadline = time.monotonic() + 10  # the collector indexes what it stored right after the commit
    while _value(text, "flightlog_search_index_lag") > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        text = httpx.get(server.url + "/metrics").text
    assert _value(text, "flightlog_search_index_lag") == 0


def test_alert_rules_use_only_exported_metrics(serve: Callable[..., Server]) -> None:
    server = serve()
    text = httpx.get(server.url + "/metrics").text
    exported = set(re.findall(r"^# TYPE (\S+) (\S+)", text, re.M))
    names = set()
    for name, kind in exported:
        names.add(name)
        if kind == "counter":
            names.add(name + "_total")
        if kind == "histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
    used = set(re.findall(r"\b(flightlog_[a-z_]+)", ALERTS.read_text()))
    assert used and used <= names, used - names


def test_latency_runs_to_the_end_of_the_turns_last_event(serve: Callable[..., Server]) -> None:
    server = serve()
    # A tool call started 1 s in and ran 3 s: the turn's last event ends 4 s after the prompt,
    # though a shell event was stamped later (2 s in).
    first = [
        make_event(0, type="prompt", payload={"text": "go"}, timestamp="2026-11-24T17:00:00Z"),
        make_event(1, payload={"tool_name": "Bash"}, timestamp="2026-11-24T17:00:01Z", duration_ms=3000),
        make_event(2, type="shell", payload={"command": "ls"}, timestamp="2026-11-24T17:00:02Z"),
        make_event(3, type="prompt", payload={"text": "next"}, trace_id="f" * 32, timestamp="2026-11-24T17:01:00Z"),
    ]
    assert httpx.post(server.url + "/api/v1/events", json=first).status_code == 200
    text = httpx.get(server.url + "/metrics").text
    assert _value(text, "flightlog_action_latency_seconds_count") == 1
    assert _value(text, "flightlog_action_latency_seconds_sum") == 4.0
    # Claude Code's telemetry stamps a record when it is emitted, after the model call it reports:
    # the turn ends at the api_request record (5 s), not 4 s after it.
    telemetry = _claude_telemetry(
        "s-telemetry",
        ("user_prompt", "2026-11-24T18:00:00Z", {"prompt.id": "p-1"}),
        ("api_request", "2026-11-24T18:00:05Z", {"prompt.id": "p-1", "duration_ms": "4000"}),
        ("user_prompt", "2026-11-24T18:01:00Z", {"prompt.id": "p-2"}),
    )
    assert httpx.post(server.url + "/v1/logs", json=telemetry).status_code == 200
    text = httpx.get(server.url + "/metrics").text
    assert _value(text, "flightlog_action_latency_seconds_count") == 2
    assert _value(text, "flightlog_action_latency_seconds_sum") == 9.0


def test_stop_hook_ends_the_turn_when_it_reaches_the_collector(serve: Callable[..., Server], tmp_path: Path) -> None:
    server = serve()
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    session, first, second = "s-stop", "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"

    def latency() -> tuple[float, float]:
        text = httpx.get(server.url + "/metrics").text
        return _value(text, "flightlog_action_latency_seconds_count"), _value(
            text, "flightlog_action_latency_seconds_sum"
        )

    # A turn of prompt and answer only: it lasts until the Stop hook.
    started = time.time()
    _hook(server, "UserPromptSubmit", session, workspace, prompt="explain", prompt_id=first)
    time.sleep(0.3)
    _hook(server, "Stop", session, workspace, prompt_id=first, stop_hook_active=False)
    count, total = latency()
    assert count == 1 and total >= 0.3

    # Telemetry comes in batches, after the Stop hook: the ended turn stays as it was measured.
    telemetry = _claude_telemetry(
        session,
        ("user_prompt", _iso(started), {"prompt.id": first}),
        ("api_request", _iso(started + 0.2), {"prompt.id": first, "duration_ms": "150"}),
    )
    assert httpx.post(server.url + "/v1/logs", json=telemetry).status_code == 200
    assert latency() == (1, total)

    # A Bash call whose hook input says it ran 2 s: the turn lasts at least as long.
    _hook(server, "UserPromptSubmit", session, workspace, prompt="run it", prompt_id=second)
    call = {"tool_name": "Bash", "tool_input": {"command": "true"}, "tool_use_id": "toolu_b1", "prompt_id": second}
    _hook(server, "PreToolUse", session, workspace, **call)
    response = {"stdout": "", "stderr": "", "interrupted": False}
    _hook(server, "PostToolUse", session, workspace, **call, tool_response=response, duration_ms=2000)
    _hook(server, "Stop", session, workspace, prompt_id=second, stop_hook_active=False)
    count, total2 = latency()
    assert count == 2 and total2 - total >= 2.0


def test_every_labelled_series_exists_from_the_start(serve: Callable[..., Server], tmp_path: Path) -> None:
    """A counter that appears at 1 is no rise to rate() or increase(): after a restart, the first
    refused requests, rejects and stored events would go unseen by the alert rules."""
    assert {hooks.SOURCE, approvals_api.SOURCE} <= set(RECEIVING_SOURCES)
    server = serve()
    before = httpx.get(server.url + "/metrics").text
    for series in (
        'flightlog_requests_refused_total{source="api",status="400"}',
        'flightlog_requests_refused_total{source="otlp",status="415"}',
        'flightlog_events_rejected_total{reason="validation",source="api"}',
        'flightlog_events_rejected_total{reason="decode",source="otlp"}',
        'flightlog_events_received_total{source="claude-code-hook"}',
        'flightlog_events_stored_total{source="otlp",type="tool_call"}',
        'flightlog_agent_outputs_invalid_total{source="otlp"}',
    ):
        assert series + " 0.0" in before.splitlines(), series
    url = server.url + "/api/v1/events"
    assert httpx.post(url, content=b"[{", headers={"content-type": JSON}).status_code == 400
    assert httpx.post(url, content=b"[]", headers={"content-type": "text/plain"}).status_code == 415
    assert httpx.post(url, json=[make_event(0), make_event(1, span_id="bad")]).status_code == 422
    assert httpx.post(url, json=[make_event(n) for n in range(4)]).status_code == 200
    assert httpx.post(server.url + "/v1/traces", content=b"\xff", headers={"content-type": PB}).status_code == 400
    assert httpx.post(server.url + "/v1/logs", content=b"{}", headers={"content-type": "text/plain"}).status_code == 415
    _hook(server, "UserPromptSubmit", "s-series", tmp_path, prompt="hi", prompt_id="p-series")
    after = httpx.get(server.url + "/metrics").text
    assert _series(after) <= _series(before), _series(after) - _series(before)
    assert _value(after, 'flightlog_requests_refused_total{source="api",status="400"}') == 1
    assert _value(after, 'flightlog_events_rejected_total{reason="batch",source="api"}') == 1
    assert _value(after, 'flightlog_events_stored_total{source="claude-code-hook",type="prompt"}') == 1


def test_hallucination_rate_counts_tool_calls_that_do_not_fit_the_tool(serve: Callable[..., Server]) -> None:
    server = serve()
    at, prompt = "2026-11-24T17:00:00Z", {"prompt.id": "p-1"}
    telemetry = _claude_telemetry(
        "s-tools",
        (
            "tool_result",
            at,
            {
                **prompt,
                "tool_name": "Edit",
                "tool_use_id": "toolu_1",
                "success": "false",
                "error": "InputValidationError: Edit failed due to the following issue:\n"
                "The required parameter `old_string` is missing",
            },
        ),
        # A command that failed, quoting the words in its output: the call itself fit the tool.
        (
            "tool_result",
            at,
            {
                **prompt,
                "tool_name": "Bash",
                "tool_use_id": "toolu_2",
                "success": "false",
                "error": "Exit code 1\nInputValidationError: in test_parser.py",
            },
        ),
        ("tool_result", at, {**prompt, "tool_name": "Read", "tool_use_id": "toolu_3", "success": "true"}),
    )
    assert httpx.post(server.url + "/v1/logs", json=telemetry).status_code == 200
    calls = [
        # as a Claude Code transcript records a call to a tool that does not exist
        make_event(
            1,
            status="error",
            payload={
                "tool_name": "Frobnicate",
                "error": "<tool_use_error>Error: No such tool available: Frobnicate</tool_use_error>",
            },
        ),
        # as a Codex rollout records arguments that do not parse
        make_event(
            5,
            status="error",
            payload={"tool_name": "shell", "error": "failed to parse function arguments: missing field `command`"},
        ),
        make_event(9, status="ok", payload={"tool_name": "Bash"}),
    ]
    assert httpx.post(server.url + "/api/v1/events", json=calls).status_code == 200
    # A producer's event that fails flightlog's schema is not an agent output.
    assert httpx.post(server.url + "/api/v1/events", json=[make_event(13, span_id="bad")]).status_code == 422
    text = httpx.get(server.url + "/metrics").text
    assert _value(text, 'flightlog_agent_outputs_checked_total{source="otlp"}') == 3
    assert _value(text, 'flightlog_agent_outputs_invalid_total{source="otlp"}') == 1
    assert _value(text, 'flightlog_agent_outputs_checked_total{source="api"}') == 3
    assert _value(text, 'flightlog_agent_outputs_invalid_total{source="api"}') == 2
    assert _value(text, "flightlog_tool_failures_total") == 4


def test_denied_actions_count_the_agents_refusals_once(serve: Callable[..., Server], tmp_path: Path) -> None:
    server = serve()
    session, prompt_id = "s-denied", "33333333-3333-4333-8333-333333333333"
    _hook(server, "UserPromptSubmit", session, tmp_path, prompt="add my key", prompt_id=prompt_id)
    keys = str(Path.home() / ".ssh" / "authorized_keys")
    answer = _hook(
        server,
        "PreToolUse",
        session,
        tmp_path,
        tool_name="Write",
        tool_input={"file_path": keys, "content": "ssh-ed25519 AAAA"},
        tool_use_id="toolu_d1",
        prompt_id=prompt_id,
    ).json()
    assert answer["hookSpecificOutput"]["permissionDecision"] == "deny"  # the built-in policy pack

    def denied() -> float:
        return _value(httpx.get(server.url + "/metrics").text, "flightlog_denied_actions_total")

    assert denied() == 1  # the denied call, not also the policy evaluation that denied it
    at, attrs = _iso(time.time()), {"prompt.id": prompt_id, "tool_name": "Write"}
    telemetry = _claude_telemetry(
        session,
        # Claude Code reports the hook's deny again: the same tool call, not another refusal.
        ("tool_decision", at, {**attrs, "tool_use_id": "toolu_d1", "decision": "reject", "source": "hook"}),
        # The user refused at the permission prompt: only telemetry tells.
        ("tool_decision", at, {**attrs, "tool_use_id": "toolu_d2", "decision": "reject", "source": "user_reject"}),
        ("tool_decision", at, {**attrs, "tool_use_id": "toolu_d3", "decision": "accept", "source": "config"}),
    )
    assert httpx.post(server.url + "/v1/logs", json=telemetry).status_code == 200
    assert denied() == 2


def test_a_failed_turn_ends_too_and_refused_hook_and_approval_bodies_are_counted(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    server = serve()
    # StopFailure (an API error ended the turn) ends it as Stop does.
    _hook(server, "UserPromptSubmit", "s-fail", tmp_path, prompt="explain", prompt_id="p-fail")
    _hook(server, "StopFailure", "s-fail", tmp_path, prompt_id="p-fail", error="rate_limit")
    text = httpx.get(server.url + "/metrics").text
    assert _value(text, "flightlog_action_latency_seconds_count") == 1
    # Bodies the hook and approvals routes refuse show in the refused-requests signal.
    hook_url, approvals_url = server.url + "/hooks/claude-code", server.url + "/api/v1/approvals"
    assert httpx.post(hook_url, content=b"{not json", headers={"content-type": JSON}).status_code == 400
    assert httpx.post(hook_url, content=b"[]", headers={"content-type": JSON}).status_code == 400
    assert httpx.post(approvals_url, content=b'{"event_id": 1}', headers={"content-type": JSON}).status_code == 400
    text = httpx.get(server.url + "/metrics").text
    assert _value(text, 'flightlog_requests_refused_total{source="claude-code-hook",status="400"}') == 2
    assert _value(text, 'flightlog_requests_refused_total{source="approvals-api",status="400"}') == 1
