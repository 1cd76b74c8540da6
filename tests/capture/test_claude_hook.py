"""`flightlog hook claude-code` driven exactly as Claude Code drives it: one process per hook
event, the hook JSON on stdin, against a real collector (or none, then the spool)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from flightlog.active import current_trace
from tests.conftest import CliRunner
from tests.server.conftest import Server, start_server

SESSION = "7f3e1c2a-5b6d-4e8f-9a0b-1c2d3e4f5a6b"
DENY_RM = """package flightlog
import rego.v1

decision := {"decision": "deny", "reason": "recursive delete is not allowed", "rules": ["no-rm-rf"]} if {
    input.action.tool_name == "Bash"
    contains(input.action.input.command, "rm -rf")
}
"""


class Agent:
    """Plays Claude Code: sends hook events and does what the tools would do in between."""

    def __init__(self, home: Path, root: Path, url: str) -> None:
        self.home, self.root, self.url = home, root, url
        self.n = 0
        self.prompt_id: str | None = None

    def hook(self, event: str, **fields: Any) -> subprocess.CompletedProcess[str]:
        data = {
            "session_id": SESSION,
            "transcript_path": str(self.home / "transcript.jsonl"),
            "cwd": str(self.root),
            "permission_mode": "default",
            "hook_event_name": event,
            **({"prompt_id": self.prompt_id} if self.prompt_id else {}),
            **fields,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTLOG_", "CLAUDE_"))}
        env |= {"FLIGHTLOG_HOME": str(self.home), "FLIGHTLOG_URL": self.url, "CLAUDE_PROJECT_DIR": str(self.root)}
        proc = subprocess.run(
            [sys.executable, "-m", "flightlog", "hook", "claude-code"],
            input=json.dumps(data),
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        return proc

    def prompt(self, text: str, prompt_id: str) -> None:
        self.prompt_id = prompt_id
        self.hook("UserPromptSubmit", prompt=text)

    def tool(self, name: str, tool_input: dict[str, Any], act: Any = None, response: Any = None) -> dict[str, Any]:
        """PreToolUse; if allowed, do the tool's work and send PostToolUse. Returns the decision."""
        self.n += 1
        use_id = f"toolu_{self.n:02d}"
        pre = self.hook("PreToolUse", tool_name=name, tool_input=tool_input, tool_use_id=use_id)
        answer = json.loads(pre.stdout) if pre.stdout.strip() else {}
        decision = answer.get("hookSpecificOutput", {}).get("permissionDecision")
        if decision == "deny":
            return answer
        if act is not None:
            act()
        self.hook(
            "PostToolUse",
            tool_name=name,
            tool_input=tool_input,
            tool_use_id=use_id,
            tool_response=response if response is not None else {"success": True},
            duration_ms=12,
        )
        return answer


def _script_session(agent: Agent, root: Path) -> None:
    """The acceptance session: start, prompt, Write, Edit, a Bash that changes files, a denied
    call, stop; then a second turn."""
    agent.hook("SessionStart", source="startup", model="claude-sonnet-4-5")
    agent.prompt("Fix add() and write a test", "11111111-1111-4111-8111-111111111111")
    test_file = root / "test_app.py"
    content = "from app import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    agent.tool(
        "Write",
        {"file_path": str(test_file), "content": content},
        act=lambda: test_file.write_text(content),
        response={"type": "create", "filePath": str(test_file), "content": content, "structuredPatch": []},
    )
    app = root / "app.py"
    agent.tool(
        "Edit",
        {"file_path": str(app), "old_string": "return a - b", "new_string": "return a + b"},
        act=lambda: app.write_text(app.read_text().replace("return a - b", "return a + b")),
    )
    command = "sed -i 's/old/new/' notes.txt && echo data > made_by_bash.txt && echo x > build/skip.txt"

    def run_bash() -> None:
        subprocess.run(command, shell=True, cwd=root, check=True)

    agent.tool(
        "Bash",
        {"command": command, "description": "update notes"},
        act=run_bash,
        response={"stdout": "", "stderr": "", "interrupted": False, "isImage": False},
    )
    denied = agent.tool("Bash", {"command": "rm -rf /tmp/everything"})
    assert denied["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert denied["hookSpecificOutput"]["permissionDecisionReason"] == "recursive delete is not allowed"
    agent.hook("Stop", stop_hook_active=False, last_assistant_message="Fixed.")
    agent.prompt("Now read the notes", "22222222-2222-4222-8222-222222222222")
    agent.tool("Read", {"file_path": str(root / "notes.txt")}, response={"type": "text"})
    agent.hook("Stop", stop_hook_active=False)
    agent.hook("SessionEnd", reason="prompt_input_exit")


def _events(flightlog: CliRunner) -> list[dict[str, Any]]:
    out = flightlog("export", "--format", "events", check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def _install_policy(home: Path) -> None:
    (home / "policies").mkdir(parents=True, exist_ok=True)
    (home / "policies" / "deny-rm.rego").write_text(DENY_RM)


def test_a_scripted_session_becomes_one_trace_per_turn(
    home: Path, workspace: Path, server: Server, flightlog: CliRunner
) -> None:
    _install_policy(home)
    _script_session(Agent(home, workspace, server.url), workspace)
    _assert_session_recorded(flightlog)


def test_the_collector_answers_http_hooks_the_same_way(
    home: Path, workspace: Path, server: Server, flightlog: CliRunner
) -> None:
    """Claude Code's `"type": "http"` hooks: no process per call, same record and decisions."""
    _install_policy(home)
    _script_session(HttpAgent(home, workspace, server.url), workspace)
    _assert_session_recorded(flightlog)
    assert not (home / "logs" / "hook.log").exists()


class HttpAgent(Agent):
    def hook(self, event: str, **fields: Any) -> subprocess.CompletedProcess[str]:
        data = {
            "session_id": SESSION,
            "cwd": str(self.root),
            "hook_event_name": event,
            **({"prompt_id": self.prompt_id} if self.prompt_id else {}),
            **fields,
        }
        answer = httpx.post(f"{self.url}/hooks/claude-code", json=data, timeout=60)
        assert answer.status_code == 200, answer.text
        return subprocess.CompletedProcess([], 0, answer.text, "")


def _assert_session_recorded(flightlog: CliRunner) -> None:
    events = _events(flightlog)
    traces = {e["trace_id"] for e in events}
    assert len(traces) == 2  # one per prompt
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_type.setdefault(e["type"], []).append(e)
    prompts = {e["payload"]["text"]: e for e in by_type["prompt"]}
    first = prompts["Fix add() and write a test"]
    assert first["parent_span_id"] is None
    assert first["payload"]["context"]["git_branch"] == "main"
    assert first["model"]["name"] == "claude-sonnet-4-5"
    calls = {e["payload"]["tool_call_id"]: e for e in by_type["tool_call"]}
    assert set(calls) == {"toolu_01", "toolu_02", "toolu_03", "toolu_04", "toolu_05"}
    assert all(c["parent_span_id"] == first["span_id"] for k, c in calls.items() if k != "toolu_05")
    assert calls["toolu_03"]["duration_ms"] == 12
    assert calls["toolu_04"]["status"] == "denied"
    assert "recursive delete" in calls["toolu_04"]["payload"]["error"]
    # Every call was evaluated, and each evaluation is recorded, abstentions too.
    assert sorted(p["parent_span_id"] for p in by_type["policy_evaluation"]) == sorted(
        c["span_id"] for c in calls.values()
    )
    denial = [p for p in by_type["policy_evaluation"] if p["status"] == "denied"]
    assert len(denial) == 1
    assert denial[0]["payload"]["rules"] == ["no-rm-rf"]
    assert denial[0]["payload"]["bundle"].startswith("sha256:")
    assert denial[0]["parent_span_id"] == calls["toolu_04"]["span_id"]

    files = {(Path(e["payload"]["file_path"]).name, e["payload"]["op"]): e for e in by_type["file_op"]}
    assert set(files) == {
        ("test_app.py", "create"),
        ("app.py", "patch"),
        ("notes.txt", "patch"),
        ("made_by_bash.txt", "create"),
    }  # build/ is gitignored; the Read changed nothing
    edit = files[("app.py", "patch")]
    assert edit["parent_span_id"] == calls["toolu_02"]["span_id"]
    assert "-    return a - b\n+    return a + b\n" in edit["payload"]["diff"]
    assert edit["payload"]["checksum_before"] != edit["payload"]["checksum_after"]
    by_bash = files[("notes.txt", "patch")]
    assert by_bash["parent_span_id"] == calls["toolu_03"]["span_id"]
    assert by_bash["payload"]["detected_by"] == "workspace-scan"
    assert "-old notes\n+new notes\n" in by_bash["payload"]["diff"]
    assert "+data\n" in files[("made_by_bash.txt", "create")]["payload"]["diff"]
    shells = by_type["shell"]
    assert len(shells) == 1 and shells[0]["payload"]["exit_code"] == 0

    shown = flightlog("show", first["trace_id"], check=True).stdout
    for text in ("prompt", "tool_call", "Write", "Edit", "Bash", "file_op", "made_by_bash.txt", "shell", "denied"):
        assert text in shown, text
    flightlog("verify", check=True)


def test_with_the_collector_down_nothing_is_lost_once_the_spool_is_flushed(
    home: Path, workspace: Path, flightlog: CliRunner, tmp_path: Path
) -> None:
    _install_policy(home)
    down = "http://127.0.0.1:9"  # discard port: nothing listens
    _script_session(Agent(home, workspace, down), workspace)
    waiting = sorted((home / "spool").glob("*.ndjson"))
    assert waiting
    spooled = [json.loads(line) for p in waiting for line in p.read_text().splitlines()]
    # a crash between sending a batch and deleting it means it is sent again: keep a copy
    shutil.copy(waiting[0], home / "spool" / "99999999999999999999-copy.ndjson")
    resent = len(waiting[0].read_text().splitlines())
    server = start_server(home)
    try:
        env_url = {"FLIGHTLOG_URL": server.url}
        proc = subprocess.run(
            [sys.executable, "-m", "flightlog", "--home", str(home), "spool", "flush"],
            capture_output=True,
            text=True,
            env={**os.environ, **env_url},
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert f"sent {len(spooled) + resent} event(s)" in proc.stdout
        assert not list((home / "spool").glob("*.ndjson"))
    finally:
        server.stop()
    stored = _events(flightlog)
    assert sorted(e["event_id"] for e in stored) == sorted(e["event_id"] for e in spooled)
    assert {e["type"] for e in stored} >= {"prompt", "tool_call", "file_op", "shell", "policy_evaluation"}
    flightlog("verify", check=True)


def test_spooled_events_hold_no_secret(home: Path, workspace: Path) -> None:
    agent = Agent(home, workspace, "http://127.0.0.1:9")
    token = "ghp_" + "Zq8fT2mK9vLx4Rb7Nc1Wd6Hs3Jy5Pa0Ge2Uo"
    agent.prompt(f"use token {token} to push", "33333333-3333-4333-8333-333333333333")
    agent.tool("Bash", {"command": f"GITHUB_TOKEN={token} git push"}, response={"stdout": "", "stderr": ""})
    spooled = b"".join(p.read_bytes() for p in (home / "spool").glob("*.ndjson"))
    assert spooled and token.encode() not in spooled
    for path in home.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_subagent_calls_nest_under_the_task_call(
    home: Path, workspace: Path, server: Server, flightlog: CliRunner
) -> None:
    agent = Agent(home, workspace, server.url)
    agent.prompt("Investigate with a helper", "44444444-4444-4444-8444-444444444444")
    agent.n = 10
    use_task = "toolu_11"
    agent.hook(
        "PreToolUse", tool_name="Agent", tool_input={"prompt": "look", "subagent_type": "x"}, tool_use_id=use_task
    )
    agent.hook("SubagentStart", agent_id="agent-abc", agent_type="Explore")
    agent.hook(
        "PreToolUse",
        tool_name="Read",
        tool_input={"file_path": str(workspace / "app.py")},
        tool_use_id="toolu_sub",
        agent_id="agent-abc",
        agent_type="Explore",
    )
    agent.hook(
        "PostToolUse",
        tool_name="Read",
        tool_input={"file_path": str(workspace / "app.py")},
        tool_use_id="toolu_sub",
        tool_response={"type": "text"},
        agent_id="agent-abc",
        agent_type="Explore",
    )
    agent.hook("SubagentStop", agent_id="agent-abc", agent_type="Explore", stop_hook_active=False)
    agent.hook(
        "PostToolUse",
        tool_name="Agent",
        tool_input={"prompt": "look"},
        tool_use_id=use_task,
        tool_response={"status": "completed"},
    )
    calls = {e["payload"]["tool_call_id"]: e for e in _events(flightlog) if e["type"] == "tool_call"}
    assert calls["toolu_sub"]["parent_span_id"] == calls[use_task]["span_id"]
    assert calls["toolu_sub"]["trace_id"] == calls[use_task]["trace_id"]


def test_a_call_without_post_is_recorded_as_unfinished_at_stop(
    home: Path, workspace: Path, server: Server, flightlog: CliRunner
) -> None:
    agent = Agent(home, workspace, server.url)
    agent.prompt("Delete the build folder", "55555555-5555-4555-8555-555555555555")
    agent.hook("PreToolUse", tool_name="Bash", tool_input={"command": "ls"}, tool_use_id="toolu_refused")
    agent.hook("Stop", stop_hook_active=False)
    calls = [e for e in _events(flightlog) if e["type"] == "tool_call"]
    assert len(calls) == 1
    assert calls[0]["status"] == "unset"
    assert "no PostToolUse" in calls[0]["payload"]["error"]


def test_failures_fail_open_and_are_logged(home: Path, workspace: Path) -> None:
    agent = Agent(home, workspace, "http://127.0.0.1:9")
    env = {**os.environ, "FLIGHTLOG_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-m", "flightlog", "hook", "claude-code"],
        input="{not json",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout == ""
    assert "JSONDecodeError" in (home / "logs" / "hook.log").read_text()
    # an allowed-by-default call answers nothing: Claude Code's own permission flow decides
    assert agent.tool("Read", {"file_path": str(workspace / "app.py")}) == {}


def test_a_broken_policy_denies_and_says_why(home: Path, workspace: Path) -> None:
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "broken.rego").write_text("package flightlog\ndecision := {\n")
    answer = Agent(home, workspace, "http://127.0.0.1:9").tool("Bash", {"command": "ls"})
    out = answer["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny"
    assert out["permissionDecisionReason"].startswith("policy error:")


def test_a_policy_can_ask_for_a_human(home: Path, workspace: Path) -> None:
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "ask.rego").write_text(
        "package flightlog\nimport rego.v1\n"
        'decision := {"decision": "ask", "reason": "infra change"} if '
        "startswith(input.action.input.file_path, input.workspace.root)\n"
    )
    answer = Agent(home, workspace, "http://127.0.0.1:9").tool("Write", {"file_path": str(workspace / "x.tf")})
    assert answer["hookSpecificOutput"]["permissionDecision"] == "ask"
    assert answer["hookSpecificOutput"]["permissionDecisionReason"] == "infra change"


def test_hook_help_is_reachable(flightlog: CliRunner) -> None:
    out = flightlog("hook", "claude-code", "--help", check=True).stdout
    assert "JSON on stdin" in out


def test_the_active_trace_is_marked_for_tools_in_the_workspace(home: Path, workspace: Path) -> None:
    """Git hooks and `flightlog exec` run inside an agent's tool call find its trace."""
    agent = Agent(home, workspace, "http://127.0.0.1:9")
    agent.prompt("Commit the fix", "66666666-6666-4666-8666-666666666666")
    prompt_active = current_trace(home, workspace / "sub" / "dir", environ={})
    assert prompt_active is not None and prompt_active["agent_id"] == "claude-code"
    agent.hook("PreToolUse", tool_name="Bash", tool_input={"command": "git commit"}, tool_use_id="toolu_c")
    during = current_trace(home, workspace, environ={})
    assert during is not None
    assert during["trace_id"] == prompt_active["trace_id"] and during["span_id"] != prompt_active["span_id"]
    agent.hook("Stop", stop_hook_active=False)
    assert current_trace(home, workspace, environ={}) is None


def test_a_claude_code_turn_rolls_back_to_the_workspace_before_it(
    home: Path, workspace: Path, server: Server, flightlog: CliRunner
) -> None:
    """The hook snapshots the workspace before a turn's first change, so `flightlog rollback`
    undoes the turn: edits, files it wrote and files its Bash created or changed."""

    def tree() -> dict[str, bytes]:
        return {
            str(p.relative_to(workspace)): p.read_bytes()
            for p in workspace.rglob("*")
            if p.is_file() and ".git" not in p.parts and "build" not in p.parts
        }

    before = tree()
    _install_policy(home)
    _script_session(Agent(home, workspace, server.url), workspace)
    assert tree() != before
    file_ops = [e for e in _events(flightlog) if e["type"] == "file_op"]
    assert {e["payload"]["workspace_snapshot"] for e in file_ops} != {None}
    (trace,) = {e["trace_id"] for e in file_ops}
    proc = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), "rollback", trace],
        capture_output=True,
        text=True,
        env={**os.environ, "FLIGHTLOG_URL": server.url},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert tree() == before
    assert any(e["type"] == "rollback" for e in _events(flightlog))


def test_the_command_hook_hands_its_work_to_a_local_collector(
    home: Path, workspace: Path, server: Server, flightlog: CliRunner, tmp_path: Path
) -> None:
    """With a collector on this machine the command hook only forwards the hook JSON (fast: no
    policy engine or snapshot code loaded in the hook process); the collector does the work."""
    elsewhere = tmp_path / "hook-own-home"
    agent = Agent(elsewhere, workspace, server.url)
    agent.prompt("Fix add()", "77777777-7777-4777-8777-777777777777")
    app = workspace / "app.py"
    agent.tool(
        "Edit",
        {"file_path": str(app), "old_string": "a - b", "new_string": "a + b"},
        act=lambda: app.write_text(app.read_text().replace("a - b", "a + b")),
    )
    denied = agent.tool("Write", {"file_path": str(Path.home() / ".ssh" / "authorized_keys"), "content": "k"})
    assert denied["hookSpecificOutput"]["permissionDecision"] == "deny"  # the pack, in the collector
    types = [e["type"] for e in _events(flightlog)]
    assert {"prompt", "tool_call", "file_op", "policy_evaluation"} <= set(types)
    assert not elsewhere.exists()  # nothing was kept or spooled by the hook process itself


def test_importing_the_transcript_of_a_hooked_session_adds_only_what_the_hook_cannot_see(
    home: Path, workspace: Path, server: Server, flightlog: CliRunner, tmp_path: Path
) -> None:
    """Hook and transcript share span ids: the import adds the model call, not a second copy of
    the prompt or the tool call (the server must be stopped: import writes the ledger itself)."""
    agent = Agent(home, workspace, server.url)
    prompt_id = "88888888-8888-4888-8888-888888888888"
    agent.prompt("List the files", prompt_id)
    agent.tool("Glob", {"pattern": "*"}, response={"filenames": ["app.py"], "numFiles": 1})  # toolu_01
    agent.hook("Stop", stop_hook_active=False)
    server.stop()
    base = {"sessionId": SESSION, "cwd": str(workspace), "version": "2.1.228", "gitBranch": "main"}
    lines = [
        {**base, "type": "user", "uuid": "u1", "parentUuid": None, "promptId": prompt_id,
         "timestamp": "2026-11-24T10:00:00.000Z", "message": {"role": "user", "content": "List the files"}},
        {**base, "type": "assistant", "uuid": "a1", "parentUuid": "u1", "requestId": "req_1",
         "timestamp": "2026-11-24T10:00:01.000Z",
         "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                     "content": [{"type": "tool_use", "id": "toolu_01", "name": "Glob", "input": {"pattern": "*"}}],
                     "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 5}}},
        {**base, "type": "user", "uuid": "u2", "parentUuid": "a1", "timestamp": "2026-11-24T10:00:02.000Z",
         "message": {"role": "user",
                     "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "app.py"}]},
         "toolUseResult": {"filenames": ["app.py"], "numFiles": 1}},
    ]  # fmt: skip
    transcript = tmp_path / f"{SESSION}.jsonl"
    transcript.write_text("".join(json.dumps(line) + "\n" for line in lines))
    imported = flightlog("import", "claude-code", str(transcript), check=True)
    assert "1 new event(s)" in imported.stdout, imported.stdout
    events = _events(flightlog)
    assert [e["type"] for e in events].count("tool_call") == 1
    assert [e["type"] for e in events].count("prompt") == 1
    (model_call,) = [e for e in events if e["type"] == "model_call"]
    assert model_call["trace_id"] == next(e["trace_id"] for e in events if e["type"] == "prompt")


@pytest.mark.parametrize("answer", [401, 501])
def test_a_collector_that_does_not_take_the_call_leaves_it_to_the_hook(
    answer: int, home: Path, workspace: Path, flightlog: CliRunner
) -> None:
    """A collector that refuses the token, or another program on the port (an OpenTelemetry
    Collector answering 501): the hook must still gate and record, offline, as with none."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(answer)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    other = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        agent = Agent(home, workspace, f"http://127.0.0.1:{other.server_address[1]}")
        agent.prompt("Add a key", "99999999-9999-4999-8999-999999999999")
        denied = agent.tool("Write", {"file_path": str(Path.home() / ".ssh" / "authorized_keys"), "content": "k"})
    finally:
        other.shutdown()
        other.server_close()
    assert denied["hookSpecificOutput"]["permissionDecision"] == "deny"  # the pack, in the hook
    spooled = [json.loads(line) for p in (home / "spool").glob("*.ndjson") for line in p.read_text().splitlines()]
    assert {"prompt", "policy_evaluation"} <= {e["type"] for e in spooled}


def test_a_prompt_without_a_prompt_id_keeps_its_calls_in_its_trace(
    home: Path, workspace: Path, flightlog: CliRunner
) -> None:
    # Claude Code's documented UserPromptSubmit input has no prompt_id; tool hooks may have one.
    agent = Agent(home, workspace, "http://127.0.0.1:9")  # no collector: recorded offline
    agent.hook("UserPromptSubmit", prompt="List the files")
    agent.prompt_id = "12121212-1212-4121-8121-121212121212"
    agent.tool("Glob", {"pattern": "*"}, response={"filenames": ["app.py"], "numFiles": 1})
    spooled = [json.loads(line) for p in (home / "spool").glob("*.ndjson") for line in p.read_text().splitlines()]
    assert {e["type"] for e in spooled} >= {"prompt", "tool_call"}
    assert len({e["trace_id"] for e in spooled}) == 1
    prompt = next(e for e in spooled if e["type"] == "prompt")
    call = next(e for e in spooled if e["type"] == "tool_call")
    assert call["parent_span_id"] == prompt["span_id"]


def _telemetry(prompt_id: str, *records: tuple[str, dict[str, str]]) -> dict[str, Any]:
    """Claude Code's OTLP/JSON log export of some events of one prompt."""

    def attrs(values: dict[str, str]) -> list[dict[str, Any]]:
        return [{"key": k, "value": {"stringValue": v}} for k, v in values.items()]

    now = str(time.time_ns())
    logs = [
        {
            "timeUnixNano": now,
            "body": {"stringValue": f"claude_code.{name}"},
            "attributes": attrs({"event.name": name, "session.id": SESSION, "prompt.id": prompt_id, **extra}),
        }
        for name, extra in records
    ]
    scope = {"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": logs}
    resource = {"attributes": attrs({"service.name": "claude-code"})}
    return {"resourceLogs": [{"resource": resource, "scopeLogs": [scope]}]}


def test_hook_and_telemetry_record_each_prompt_and_tool_call_once(
    home: Path, workspace: Path, server: Server, flightlog: CliRunner
) -> None:
    """`install claude-code --telemetry`: both sources send a turn's prompt and tool calls; the
    collector keeps one of each, whichever comes first, and the model calls under the prompt."""
    agent = Agent(home, workspace, server.url)
    session_records = [
        ("user_prompt", {"prompt": "List the files"}),
        ("api_request", {"model": "claude-sonnet-4-5", "input_tokens": "1200", "output_tokens": "40"}),
        ("tool_result", {"tool_name": "Glob", "tool_use_id": "toolu_01", "success": "true"}),
    ]
    # Hook first (the usual order: telemetry is exported in batches), then telemetry.
    first_prompt = "13131313-1313-4131-8131-131313131313"
    agent.prompt("List the files", first_prompt)
    agent.tool("Glob", {"pattern": "*"}, response={"filenames": ["app.py"], "numFiles": 1})  # toolu_01
    assert httpx.post(server.url + "/v1/logs", json=_telemetry(first_prompt, *session_records)).status_code == 200
    # Telemetry first, then the hook.
    second_prompt = "14141414-1414-4141-8141-141414141414"
    records = [(n, {**a, "tool_use_id": "toolu_02"} if n == "tool_result" else a) for n, a in session_records]
    assert httpx.post(server.url + "/v1/logs", json=_telemetry(second_prompt, *records)).status_code == 200
    agent.prompt("List the files", second_prompt)
    agent.tool("Glob", {"pattern": "*"}, response={"filenames": ["app.py"], "numFiles": 1})  # toolu_02
    events = _events(flightlog)
    for trace in {e["trace_id"] for e in events}:
        turn = [e for e in events if e["trace_id"] == trace]
        kinds = sorted(e["type"] for e in turn)
        assert kinds.count("prompt") == 1 and kinds.count("tool_call") == 1 and "model_call" in kinds, kinds
        prompt = next(e for e in turn if e["type"] == "prompt")
        model = next(e for e in turn if e["type"] == "model_call")
        assert model["parent_span_id"] == prompt["span_id"]
    assert len({e["trace_id"] for e in events}) == 2


def test_a_spooled_hook_turn_that_telemetry_recorded_meanwhile_is_kept_once(
    home: Path, workspace: Path, server: Server, flightlog: CliRunner
) -> None:
    prompt_id = "16161616-1616-4161-8161-161616161616"
    offline = Agent(home, workspace, "http://127.0.0.1:9")  # the collector is away: the hook spools
    offline.prompt("List the files", prompt_id)
    offline.tool("Glob", {"pattern": "*"}, response={"filenames": ["app.py"], "numFiles": 1})  # toolu_01
    assert list((home / "spool").glob("*.ndjson"))
    records = [
        ("user_prompt", {"prompt": "List the files"}),
        ("tool_result", {"tool_name": "Glob", "tool_use_id": "toolu_01", "success": "true"}),
    ]
    assert httpx.post(server.url + "/v1/logs", json=_telemetry(prompt_id, *records)).status_code == 200
    flush = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), "spool", "flush"],
        capture_output=True,
        text=True,
        env={**os.environ, "FLIGHTLOG_URL": server.url},
        timeout=60,
    )
    assert flush.returncode == 0, flush.stderr
    kinds = sorted(e["type"] for e in _events(flightlog))
    assert kinds.count("prompt") == 1 and kinds.count("tool_call") == 1, kinds  # were 2 and 2
    flightlog("verify", check=True)


def test_a_64_bit_number_in_a_tool_input_is_kept_as_text_not_refused(
    home: Path, workspace: Path, server: Server, flightlog: CliRunner
) -> None:
    # Canonical JSON (RFC 8785) holds integers up to 2**53 only: such a number is stored as its
    # digits, on the collector's hook route and in the offline hook alike.
    big = 2**60 + 1
    online = Agent(home, workspace, server.url)
    online.prompt("fetch the record", "17171717-1717-4171-8171-171717171717")
    online.tool("mcp__db__get", {"id": big}, response={"ok": True})
    offline = Agent(home, workspace, "http://127.0.0.1:9")
    offline.prompt("fetch it again", "18181818-1818-4181-8181-181818181818")
    offline.tool("mcp__db__get", {"id": big}, response={"ok": True})
    stored = [e for e in _events(flightlog) if e["type"] == "tool_call"]
    assert [e["payload"]["input"]["id"] for e in stored] == [str(big)]  # was: no tool_call at all
    spooled = [json.loads(line) for p in (home / "spool").glob("*.ndjson") for line in p.read_text().splitlines()]
    assert [e["payload"]["input"]["id"] for e in spooled if e["type"] == "tool_call"] == [str(big)]


def test_stop_ends_the_turn_for_the_latency_signal(home: Path, workspace: Path, server: Server) -> None:
    agent = Agent(home, workspace, server.url)
    agent.prompt("List the files", "15151515-1515-4151-8151-151515151515")
    agent.tool("Glob", {"pattern": "*"}, response={"filenames": ["app.py"], "numFiles": 1})

    def turns_measured() -> float:
        text = httpx.get(server.url + "/metrics").text
        return float(text.split("flightlog_action_latency_seconds_count ")[1].split()[0])

    assert turns_measured() == 0  # the turn is still running
    agent.hook("Stop", stop_hook_active=False)
    assert turns_measured() == 1
