"""Codex CLI rollouts → events: the real `flightlog import codex` on hand-written rollouts, the
pure mapper on small inline rollouts, and the apply_patch envelope parser."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightlog.capture import codex
from flightlog.capture.codex_patch import find_patch, parse_patch
from flightlog.capture.mapped import Mapped
from flightlog.ids import derive_id
from flightlog.pipeline import Pipeline
from tests.conftest import CliRunner

FIXTURES = Path(__file__).parent / "fixtures" / "codex"
SESSION = "019a0c1e-5f00-7a10-8b00-00000000c0de"
LEGACY_SESSION = "5c0ffee0-0000-4000-8000-00000000beef"
MAIN = FIXTURES / f"rollout-2026-11-20T10-00-00-{SESSION}.jsonl"
LEGACY = FIXTURES / "archived" / f"rollout-2025-08-01T09-30-00-{LEGACY_SESSION}.jsonl"
CORRUPT_LINE = 19  # the truncated line in MAIN

GREET_DIFF = '--- /dev/null\n+++ b/src/greet.py\n@@ -0,0 +1,2 @@\n+def greet(name):\n+    return f"hello {name}"\n'
README_DIFF = (
    "--- a/README.md\n+++ b/README.md\n@@ -1,2 +1,2 @@ ## Usage\n Run it with python.\n-Nothing yet.\n+Call greet().\n"
)
NOTES_DIFF = "--- a/notes.txt\n+++ b/docs/notes.txt\n@@ -1,1 +1,1 @@\n-draft\n+final\n"


# --- helpers -------------------------------------------------------------------------------


def export(flightlog: CliRunner) -> list[dict[str, Any]]:
    out = flightlog("export", "--format", "events", check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def rollout(*items: dict[str, Any] | str, session: str = "s-1") -> Mapped:
    """Map an inline rollout; each item is a line object ({"type", "payload"}, timestamps added)
    or a raw line."""
    lines = []
    for n, item in enumerate(items):
        if isinstance(item, str):
            lines.append(item.encode())
            continue
        line = {"timestamp": f"2026-11-20T10:{n // 60:02d}:{n % 60:02d}.000Z", **item}
        lines.append(json.dumps(line).encode())
    head = json.dumps({"type": "session_meta", "payload": {"id": session, "model_provider": "openai"}}).encode()
    return codex.map_rollout([head, *lines], "mem.jsonl", "fallback")


def ctx(turn_id: str | None = None, model: str = "gpt-5.2-codex", cwd: str = "/w") -> dict[str, Any]:
    payload: dict[str, Any] = {"cwd": cwd, "approval_policy": "never", "sandbox_policy": {"type": "read-only"}}
    payload["model"] = model
    if turn_id:
        payload["turn_id"] = turn_id
    return {"type": "turn_context", "payload": payload}


def prompt(text: str) -> dict[str, Any]:
    return {"type": "event_msg", "payload": {"type": "user_message", "message": text}}


def reply(text: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text}]
    return {"type": "response_item", "payload": {"type": "message", "role": "assistant", "content": content}}


def fcall(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    payload = {"type": "function_call", "name": name, "arguments": json.dumps(args), "call_id": call_id}
    return {"type": "response_item", "payload": payload}


def fout(call_id: str, output: Any) -> dict[str, Any]:
    return {"type": "response_item", "payload": {"type": "function_call_output", "call_id": call_id, "output": output}}


def of_type(mapped: Mapped, kind: str) -> list[dict[str, Any]]:
    return [e for e in mapped.events if e["type"] == kind]


# --- through the CLI -----------------------------------------------------------------------


def test_import_maps_turns_tool_calls_shell_and_edits(flightlog: CliRunner) -> None:
    proc = flightlog("import", "codex", str(FIXTURES), check=True)
    assert f"{MAIN}:{CORRUPT_LINE}: not JSON" in proc.stderr
    assert "line skipped" in proc.stderr
    assert "imported 2 of 2 file(s): 27 new event(s), 0 already stored, 1 line(s) skipped" in proc.stdout
    events = export(flightlog)
    assert {e["agent_id"] for e in events} == {"codex"}
    main = [e for e in events if e["session_id"] == SESSION]
    assert {e["source"]["kind"] for e in events} == {"codex-rollout"}
    assert {e["source"]["version"] for e in main} == {"0.77.0"}

    # one trace per prompt, the prompt its root, with the turn's context
    prompts = [e for e in main if e["type"] == "prompt"]
    assert [p["payload"]["text"] for p in prompts] == [
        "Add a greeting module and run the tests",
        "Fix the failing test",
    ]
    assert len({e["trace_id"] for e in main}) == 2
    root = {p["trace_id"]: p["span_id"] for p in prompts}
    assert all(p["parent_span_id"] is None for p in prompts)
    first = prompts[0]["payload"]["context"]
    assert first["cwd"] == "/home/dev/demo"
    assert first["approval_policy"] == "on-request"
    assert first["sandbox_policy"] == {"type": "workspace-write", "network_access": False}
    assert first["git"]["branch"] == "main"
    assert prompts[1]["payload"]["context"]["approval_policy"] == "never"
    assert prompts[0]["trace_id"] == derive_id(f"flightlog-codex-trace:{SESSION}:turn-1", 16)

    # one tool_call per call, paired with its output, child of its prompt
    calls = {e["payload"]["tool_call_id"]: e for e in main if e["type"] == "tool_call"}
    assert set(calls) == {"call_ls", "call_patch", "call_test", "call_rerun", "call_cat", "call_sleep"}
    assert all(c["parent_span_id"] == root[c["trace_id"]] for c in calls.values())
    assert {k: c["status"] for k, c in calls.items()} == {
        "call_ls": "ok",
        "call_patch": "ok",
        "call_test": "error",
        "call_rerun": "ok",
        "call_cat": "error",
        "call_sleep": "unset",
    }
    assert calls["call_ls"]["payload"]["input"] == {
        "command": ["bash", "-lc", "ls -a"],
        "workdir": "/home/dev/demo",
        "timeout_ms": 120000,
    }
    assert calls["call_ls"]["duration_ms"] == 300
    assert calls["call_test"]["payload"]["error"] == "exit code 1"
    assert calls["call_sleep"]["payload"]["output"] is None
    assert "Success. Updated the following files" in calls["call_patch"]["payload"]["output"]

    # shell children with exit codes
    shells = {e["payload"]["command"]: e for e in main if e["type"] == "shell"}
    assert {cmd: s["payload"]["exit_code"] for cmd, s in shells.items()} == {
        "bash -lc 'ls -a'": 0,
        "pytest -q": 1,
        "python -m pytest -q": 0,
        "bash -lc 'cat missing.txt'": 1,
        "sleep 600": None,
    }
    assert shells["pytest -q"]["parent_span_id"] == calls["call_test"]["span_id"]
    assert shells["pytest -q"]["status"] == "error"
    assert shells["pytest -q"]["payload"]["stdout"] == "F\n1 failed in 0.02s\n"
    assert shells["pytest -q"]["duration_ms"] == 1250
    assert shells["bash -lc 'cat missing.txt'"]["payload"]["cwd"] == "/home/dev/demo"  # the turn's cwd

    # file_op children of the apply_patch call, one per file
    ops = [e for e in main if e["type"] == "file_op"]
    assert all(op["parent_span_id"] == calls["call_patch"]["span_id"] for op in ops)
    assert [(o["payload"]["op"], o["payload"]["file_path"], o["payload"]["old_path"]) for o in ops] == [
        ("create", "src/greet.py", None),
        ("patch", "README.md", None),
        ("rename", "docs/notes.txt", "notes.txt"),
    ]
    assert [o["payload"]["diff"] for o in ops] == [GREET_DIFF, README_DIFF, NOTES_DIFF]
    content = 'def greet(name):\n    return f"hello {name}"\n'
    assert ops[0]["payload"]["checksum_after"] == "sha256:" + hashlib.sha256(content.encode()).hexdigest()
    assert ops[1]["payload"]["checksum_after"] is None

    # model call with model, usage and a short reasoning summary
    (model_call,) = [e for e in main if e["type"] == "model_call"]
    assert model_call["model"] == {"provider": "openai", "name": "gpt-5.2-codex"}
    assert model_call["payload"]["response"]["text"] == "I added src/greet.py; one test still fails."
    assert model_call["payload"]["response"]["reasoning_summary"].startswith("**Looking around**")
    assert model_call["payload"]["usage"]["input_tokens"] == 1200
    assert model_call["parent_span_id"] == root[model_call["trace_id"]]

    # the unknown item and the aborted turn are kept
    notes = {e["payload"]["message"]: e for e in main if e["type"] == "error"}
    assert notes["unrecognised rollout item type 'future_item'"]["payload"]["raw"] == {"note": "from a newer build"}
    assert notes["unrecognised rollout item type 'future_item'"]["status"] == "unset"
    assert notes["turn aborted (interrupted)"]["status"] == "error"

    # re-import adds nothing; the log verifies; the trace shows as a tree
    again = flightlog("import", "codex", str(FIXTURES), check=True)
    assert "0 new event(s), 27 already stored" in again.stdout
    flightlog("verify", check=True)
    shown = flightlog("show", prompts[0]["trace_id"], check=True).stdout
    assert "Add a greeting module" in shown
    assert "src/greet.py" in shown


def test_import_legacy_rollout_without_event_messages(flightlog: CliRunner) -> None:
    flightlog("import", "codex", str(LEGACY), check=True)
    events = export(flightlog)
    assert {e["session_id"] for e in events} == {LEGACY_SESSION}
    (p,) = [e for e in events if e["type"] == "prompt"]
    assert p["payload"]["text"] == "Remove old.txt"  # not the injected <user_instructions>
    assert p["payload"]["context"]["approval_policy"] == "on-failure"  # turn_context came after it
    shells = [e["payload"] for e in events if e["type"] == "shell"]
    assert shells[0] == {
        "command": "ls old.txt",
        "cwd": "/home/dev/legacy",
        "exit_code": 0,
        "stdout": "old.txt\n",
        "stderr": None,
    }
    assert shells[1]["command"].startswith("apply_patch ")
    (delete,) = [e["payload"] for e in events if e["type"] == "file_op"]
    assert (delete["op"], delete["file_path"], delete["diff"]) == ("delete", "old.txt", None)
    bad = next(e for e in events if e["type"] == "tool_call" and e["payload"]["tool_call_id"] == "call_bad")
    assert bad["status"] == "error"
    assert "Frobnicate" in bad["payload"]["patch_error"]
    (model_call,) = [e for e in events if e["type"] == "model_call"]
    assert model_call["model"]["name"] == "codex-mini-latest"


# --- find_files ----------------------------------------------------------------------------


def test_find_files_walks_folders_and_defaults_to_codex_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "codex-home"
    day = home / "sessions" / "2026" / "11" / "20"
    day.mkdir(parents=True)
    (home / "archived_sessions").mkdir()
    b = day / "rollout-2026-11-20T10-00-00-b.jsonl"
    a = home / "archived_sessions" / "rollout-2026-01-01T00-00-00-a.jsonl"
    other = day / "notes.jsonl"
    for f in (a, b, other):
        f.write_text("")
    monkeypatch.setenv("CODEX_HOME", str(home))
    assert codex.find_files(()) == sorted([a, b])
    assert codex.find_files((home / "sessions",)) == [b]
    assert codex.find_files((other, home / "sessions", b)) == sorted([b, other])


# --- turns and traces ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "items",
    [
        pytest.param(
            [ctx("t1"), prompt("one"), reply("r1"), ctx("t2"), prompt("two"), reply("r2")], id="context-first"
        ),
        pytest.param(
            [prompt("one"), ctx("t1"), reply("r1"), prompt("two"), ctx("t2"), reply("r2")], id="context-after"
        ),
        pytest.param(
            [
                {"type": "event_msg", "payload": {"type": "turn_started", "turn_id": "t1"}},
                ctx("t1"),
                prompt("one"),
                reply("r1"),
                {"type": "event_msg", "payload": {"type": "turn_started", "turn_id": "t2"}},
                ctx("t2"),
                prompt("two"),
                reply("r2"),
            ],
            id="turn-started",
        ),
    ],
)
def test_each_turn_gets_its_context_wherever_it_comes(items: list[dict[str, Any]]) -> None:
    mapped = rollout(*items)
    prompts = of_type(mapped, "prompt")
    assert [p["trace_id"] for p in prompts] == [
        derive_id("flightlog-codex-trace:s-1:t1", 16),
        derive_id("flightlog-codex-trace:s-1:t2", 16),
    ]
    replies = of_type(mapped, "model_call")
    assert [r["trace_id"] for r in replies] == [p["trace_id"] for p in prompts]
    assert [r["parent_span_id"] for r in replies] == [p["span_id"] for p in prompts]


def test_trace_key_is_the_prompt_line_without_turn_ids() -> None:
    mapped = rollout(prompt("one"), ctx(), reply("r"), ctx(model="other-model"), reply("r2"))
    (p,) = of_type(mapped, "prompt")
    assert p["trace_id"] == derive_id("flightlog-codex-trace:s-1:2", 16)  # line 1 is session_meta
    assert [r["model"]["name"] for r in of_type(mapped, "model_call")] == ["gpt-5.2-codex", "other-model"]
    assert {e["trace_id"] for e in mapped.events} == {p["trace_id"]}  # a mid-turn context opens no turn


def test_injected_messages_are_not_prompts() -> None:
    injected = {"type": "user_message", "message": "<environment_context/>", "kind": "environment_context"}
    user_item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello there"}]}
    mapped = rollout({"type": "event_msg", "payload": injected}, {"type": "response_item", "payload": user_item})
    assert of_type(mapped, "prompt") == []  # the rollout has user_message events, so items are not prompts


def test_items_before_the_first_prompt_have_a_session_trace_without_root() -> None:
    mapped = rollout(fcall("shell", {"command": ["true"]}, "c0"), fout("c0", "ok"), prompt("later"))
    tool = of_type(mapped, "tool_call")[0]
    assert tool["parent_span_id"] is None
    assert tool["trace_id"] == derive_id("flightlog-codex-trace:s-1:session", 16)


def test_token_usage_goes_to_the_reply_it_follows() -> None:
    def count(n: int) -> dict[str, Any]:
        info = {"last_token_usage": {"input_tokens": n, "output_tokens": 1}, "total_token_usage": {"input_tokens": 999}}
        return {"type": "event_msg", "payload": {"type": "token_count", "info": info}}

    mapped = rollout(prompt("p"), count(1), reply("a"), count(2), fcall("x", {}, "c"), count(3), reply("b"))
    usages = [r["payload"]["usage"] for r in of_type(mapped, "model_call")]
    assert usages == [{"input_tokens": 2, "output_tokens": 1}, None]


# --- tool outputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "exit_code", "stdout", "status"),
    [
        (json.dumps({"output": "hi\n", "metadata": {"exit_code": 0, "duration_seconds": 0.5}}), 0, "hi\n", "ok"),
        ("Exit code: 2\nWall time: 0.1 seconds\nTotal output lines: 1\nOutput:\nboom\n", 2, "boom\n", "error"),
        ("Wall time: 1.0000 seconds\nProcess exited with code 0\nOutput:\n", 0, "", "ok"),
        ("Chunk ID: a1\nWall time: 5.0 seconds\nProcess running with session ID 7\nOutput:\nwait", None, "wait", "ok"),
        ("plain text\nOutput:\nnot a header", None, "plain text\nOutput:\nnot a header", "ok"),
        ([{"type": "input_text", "text": "from parts"}], None, "from parts", "ok"),
        ({"content": "denied", "success": False}, None, "denied", "error"),
        ("failed to parse function arguments: missing field", None, "failed to parse function arguments: …", "error"),
        ("aborted", None, "aborted", "error"),
    ],
)
def test_shell_output_shapes(output: Any, exit_code: int | None, stdout: str, status: str) -> None:
    mapped = rollout(prompt("p"), fcall("shell", {"command": ["bash", "-lc", "run"]}, "c"), fout("c", output))
    (shell,) = of_type(mapped, "shell")
    assert shell["payload"]["exit_code"] == exit_code
    if not stdout.endswith("…"):
        assert shell["payload"]["stdout"] == stdout
    assert shell["status"] == status == of_type(mapped, "tool_call")[0]["status"]


def test_extended_exec_end_events_give_separate_streams() -> None:
    end = {"type": "exec_command_end", "call_id": "c", "stdout": "out", "stderr": "err", "exit_code": 3}
    mapped = rollout(
        prompt("p"), fcall("exec_command", {"cmd": "make"}, "c"), {"type": "event_msg", "payload": end}, fout("c", "x")
    )
    (shell,) = of_type(mapped, "shell")
    assert shell["payload"] | {"cwd": None} == {
        "command": "make",
        "cwd": None,
        "exit_code": 3,
        "stdout": "out",
        "stderr": "err",
    }
    assert shell["status"] == "error"


def test_unmatched_outputs_and_repeated_call_ids_are_kept_apart() -> None:
    mapped = rollout(
        prompt("p"),
        fout("nobody", "?"),
        fcall("shell", {"command": ["a"]}, "dup"),
        fout("dup", "1"),
        fcall("shell", {"command": ["b"]}, "dup"),
        fout("dup", "2"),
    )
    (note,) = of_type(mapped, "error")
    assert note["payload"]["message"] == "tool output with no matching call"
    calls = of_type(mapped, "tool_call")
    assert len({c["span_id"] for c in calls}) == 2
    assert [c["payload"]["output"] for c in calls] == ["1", "2"]


def test_other_tools_are_tool_calls_without_children() -> None:
    search = {
        "type": "web_search_call",
        "id": "ws_1",
        "status": "completed",
        "action": {"type": "search", "query": "q"},
    }
    mapped = rollout(
        prompt("p"),
        fcall("mcp__docs__lookup", {"q": "x"}, "m1"),
        fout("m1", [{"type": "input_text", "text": "found"}]),
        {"type": "response_item", "payload": search},
    )
    calls = {c["payload"]["tool_name"]: c for c in of_type(mapped, "tool_call")}
    assert set(calls) == {"mcp__docs__lookup", "web_search"}
    assert calls["mcp__docs__lookup"]["payload"]["input"] == {"q": "x"}
    assert calls["web_search"]["payload"]["tool_call_id"] == "ws_1"
    assert [c["status"] for c in calls.values()] == ["ok", "ok"]
    assert of_type(mapped, "shell") == of_type(mapped, "file_op") == []


def test_apply_patch_through_exec_command_heredoc() -> None:
    script = "cd sub && apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: a.txt\n+x\n*** End Patch\nEOF\n"
    mapped = rollout(prompt("p"), fcall("exec_command", {"cmd": script}, "c"), fout("c", "Exit code: 0\nOutput:\n"))
    (op,) = of_type(mapped, "file_op")
    assert (op["payload"]["op"], op["payload"]["file_path"]) == ("create", "a.txt")
    assert op["parent_span_id"] == of_type(mapped, "tool_call")[0]["span_id"]


# --- lines that cannot be used -------------------------------------------------------------


def test_bad_lines_are_problems_with_their_line_numbers() -> None:
    deep = "[" * 100 + "]" * 100
    mapped = rollout(
        prompt("p"),
        "not json",
        "[1, 2]",
        deep,
        '{"type": "event_msg", "payload": {"type": "agent_message", "message": "\\ud800"}}',
        '{"type": "future", "payload": {"n": 123456789012345678901234567890, "x": NaN}}',
    )
    lines = mapped.lines
    assert lines == 7
    assert [(p.line, p.reason.split(" (")[0]) for p in mapped.problems] == [
        (3, "not JSON"),
        (4, "not a JSON object"),
        (5, "JSON nested deeper than 64"),
        (6, "holds an unpaired UTF-16 surrogate"),
    ]
    (note,) = of_type(mapped, "error")
    assert note["payload"]["raw"] == {"n": "123456789012345678901234567890", "x": "NaN"}
    assert not_rejected(mapped)


def test_non_utf8_line_is_a_problem() -> None:
    mapped = codex.map_rollout([b'{"type": "x"}', b"\xff\xfe"], "f", "fallback-id")
    assert [(p.line, p.reason) for p in mapped.problems] == [(2, "not UTF-8")]
    assert mapped.events[0]["session_id"] == "fallback-id"


# --- apply_patch envelopes -----------------------------------------------------------------


def test_parse_patch_add_update_rename_delete() -> None:
    text = (
        "*** Begin Patch\n*** Add File: new.txt\n+one\n+two\n*** Update File: a.py\n@@ def f():\n"
        "-    pass\n+    return 1\n@@\n x\n+y\n*** End of File\n*** Update File: b.py\n*** Move to: c.py\n"
        "@@\n-old\n+new\n*** Delete File: gone.txt\n*** End Patch\n"
    )
    patch = parse_patch(text)
    assert patch.error is None
    assert [(c.op, c.path, c.old_path) for c in patch.changes] == [
        ("create", "new.txt", None),
        ("patch", "a.py", None),
        ("rename", "c.py", "b.py"),
        ("delete", "gone.txt", None),
    ]
    create, update, rename, delete = patch.changes
    assert create.content == "one\ntwo\n"
    assert create.checksum_after == "sha256:" + hashlib.sha256(b"one\ntwo\n").hexdigest()
    assert update.diff == (
        "--- a/a.py\n+++ b/a.py\n@@ -1,1 +1,1 @@ def f():\n-    pass\n+    return 1\n@@ -1,1 +1,2 @@\n x\n+y\n"
    )
    assert rename.diff == "--- a/b.py\n+++ b/c.py\n@@ -1,1 +1,1 @@\n-old\n+new\n"
    assert update.checksum_after is None
    assert delete.diff is None


def test_parse_patch_leniencies_codex_accepts() -> None:
    text = "<<'EOF'\n  *** Begin Patch \n*** Update File: a.py\n ctx\n\n-old\n+new\n *** End Patch\nEOF"
    patch = parse_patch(text)
    assert patch.error is None
    (change,) = patch.changes
    assert change.diff == "--- a/a.py\n+++ b/a.py\n@@ -1,3 +1,3 @@\n ctx\n \n-old\n+new\n"
    assert parse_patch("*** Begin Patch\r\n*** Add File: e.txt\r\n*** End Patch\r\n").changes[0].content == ""
    assert parse_patch("*** Begin Patch\n*** End Patch").changes == ()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "first line"),
        ("*** Add File: a\n+x\n*** End Patch", "first line"),
        ("*** Begin Patch\n*** Add File: a\n+x", "last line"),
        ("*** Begin Patch\n*** Rename File: a\n*** End Patch", "not an Add File"),
        ("*** Begin Patch\n*** Update File: a\n*** End Patch", "no changes"),
        ("*** Begin Patch\n*** Update File: a\n@@\n*** End Patch", "no lines"),
        ("*** Begin Patch\n*** Update File: a\n?x\n*** End Patch", "must start with"),
        ("*** Begin Patch\n*** Update File: a\n-x\n+y\n!z\n*** End Patch", "expected a '@@'"),
        ("*** Begin Patch\n*** Update File: a\n@@\n*** End of File\n*** End Patch", "no lines"),
    ],
)
def test_parse_patch_rejects_what_codex_rejects(text: str, reason: str) -> None:
    patch = parse_patch(text)
    assert patch.changes == ()
    assert patch.error is not None and reason in patch.error


@pytest.mark.parametrize(
    ("command", "found"),
    [
        (["apply_patch", "*** Begin Patch\n*** End Patch"], True),
        (["/usr/bin/applypatch", "*** Begin Patch\n*** End Patch"], True),
        (["bash", "-lc", "apply_patch <<'EOF'\n*** Begin Patch\n*** End Patch\nEOF"], True),
        ("cd x && apply_patch <<EOF\n*** Begin Patch\n*** End Patch\nEOF", True),
        (["bash", "-lc", "echo '*** Begin Patch\n*** End Patch'"], False),
        ("apply_patch --help", False),
        (["apply_patch"], False),
        ([], False),
        ("my_apply_patch <<EOF\n*** Begin Patch\n*** End Patch\nEOF", False),
    ],
)
def test_find_patch(command: str | list[str], found: bool) -> None:
    envelope = find_patch(command)
    assert (envelope == "*** Begin Patch\n*** End Patch") if found else envelope is None


# --- never crash ---------------------------------------------------------------------------

_PATCH_LINES = st.sampled_from(
    [
        "*** Begin Patch",
        "*** End Patch",
        "*** Add File: a",
        "*** Update File: b",
        "*** Move to: c",
        "*** Delete File: d",
        "*** End of File",
        "@@",
        "@@ ctx",
        "+x",
        "-y",
        " z",
        "",
        "<<'EOF'",
        "EOF",
    ]
)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.lists(st.one_of(_PATCH_LINES, st.text(max_size=5))).map("\n".join)))
def test_patch_parser_never_raises(text: str) -> None:
    patch = parse_patch(text)
    assert (patch.error is None) or patch.changes == ()
    for change in patch.changes:
        assert change.op in ("create", "patch", "delete", "rename") and change.path
    find_patch(text)
    find_patch(text.split("\n"))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_FIELDS = st.sampled_from(
    ["type", "role", "content", "name", "arguments", "input", "call_id", "output", "message", "info", "turn_id",
     "action", "summary", "cmd", "command", "model", "cwd", "kind", "id", "status", "exit_code", "stdout"]
)  # fmt: skip
_SUBTYPES = st.sampled_from(
    ["message", "reasoning", "function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output",
     "local_shell_call", "web_search_call", "user_message", "token_count", "turn_started", "exec_command_end",
     "turn_aborted", "error", "other"]
)  # fmt: skip


@st.composite
def _rollout_line(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=40))
    if choice == 1:
        return json.dumps(draw(_JSON)).encode()
    payload = draw(st.dictionaries(_FIELDS, _JSON, max_size=5))
    payload["type"] = draw(_SUBTYPES)
    if payload["type"] in ("function_call", "custom_tool_call") and draw(st.booleans()):
        name = draw(st.sampled_from(["shell", "exec_command", "shell_command", "apply_patch", "other"]))
        arg = draw(st.sampled_from(["*** Begin Patch\n*** Add File: a\n+x\n*** End Patch", "ls", "{"]))
        payload.update(name=name, input=arg, arguments=json.dumps({"command": ["apply_patch", arg], "cmd": arg}))
    line = {
        "timestamp": draw(st.one_of(st.text(max_size=30), st.just("2026-11-20T10:00:00Z"), _JSON)),
        "type": draw(st.sampled_from(["response_item", "event_msg", "turn_context", "session_meta", "x", 3])),
        "payload": payload,
    }
    return json.dumps(line).encode()


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_rollout_line(), max_size=12))
def test_arbitrary_lines_never_crash_and_every_event_is_storable(lines: list[bytes]) -> None:
    mapped = codex.map_rollout(lines, "f", "fallback")
    assert len(mapped.problems) <= len(lines)
    assert not_rejected(mapped)


_PIPELINE = Pipeline(None)  # type: ignore[arg-type]  # prepare() never touches the ledger


def not_rejected(mapped: Mapped) -> bool:
    good, bad = _PIPELINE.prepare_batch(mapped.events)
    assert bad == [], bad
    return len(good) == len(mapped.events)
