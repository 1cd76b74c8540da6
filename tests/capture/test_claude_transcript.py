"""Claude Code transcripts → events, through the real `flightlog import claude-code` command.

The fixtures under fixtures/claude/ are written by hand from the documented format
(client-formats.md §3): a 2.x session with two prompts and a subagent file, and a 1.x
session with an inline sidechain.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flightlog.capture import claude_shape as shape
from flightlog.capture import claude_transcript as ct
from flightlog.capture.claude_transcript_build import (
    apply_edits,
    content_diff,
    diff_label,
    exit_code,
    file_op_payload,
    patch_diff,
    sha256_text,
    shell_payload,
)
from flightlog.events import canonical_bytes, fill_defaults, validate_event
from tests.conftest import CliRunner

FIXTURES = Path(__file__).parent / "fixtures" / "claude"
S2 = "5d0c6f7e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
S1 = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
V2_FILE = FIXTURES / "v2" / "-home-dev-proj" / f"{S2}.jsonl"
V2_AGENT = FIXTURES / "v2" / "-home-dev-proj" / S2 / "subagents" / "agent-a7f3c2e.jsonl"
V1_FILE = FIXTURES / "v1" / "-home-dev-old" / f"{S1}.jsonl"
CORRUPT_LINE = 16  # the truncated assistant line in V2_FILE


def fixture_tool_use_ids() -> set[str]:
    """Every tool_use id written in the fixtures, read independently of the importer."""
    ids = set()
    for path in FIXTURES.rglob("*.jsonl"):
        for text in path.read_text().splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            for block in line.get("message", {}).get("content", []) if line.get("type") == "assistant" else []:
                if block.get("type") == "tool_use":
                    ids.add(block["id"])
    return ids


def imported(flightlog: CliRunner, *paths: Path) -> tuple[str, str, list[dict[str, Any]]]:
    """Import `paths` (default: all fixtures); return stdout, stderr and every stored event."""
    proc = flightlog("import", "claude-code", *(str(p) for p in paths or (FIXTURES,)), check=True)
    export = flightlog("export", "--format", "events", check=True)
    return proc.stdout, proc.stderr, [json.loads(line) for line in export.stdout.splitlines()]


def by_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def tool_call(events: list[dict[str, Any]], tool_id: str) -> dict[str, Any]:
    (found,) = [e for e in by_type(events, "tool_call") if e["payload"]["tool_call_id"] == tool_id]
    return found


def child(events: list[dict[str, Any]], kind: str, parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in by_type(events, kind) if e["parent_span_id"] == parent["span_id"]]


# --- through the CLI -------------------------------------------------------------------------


def test_every_tool_use_is_one_tool_call_paired_with_its_result(flightlog: CliRunner) -> None:
    _, _, events = imported(flightlog)
    calls = by_type(events, "tool_call")
    assert sorted(e["payload"]["tool_call_id"] for e in calls) == sorted(fixture_tool_use_ids())
    for call in calls:
        assert call["span_id"] == shape.tool_span_id(call["session_id"], call["payload"]["tool_call_id"])
        if call["payload"]["tool_call_id"] == "toolu_unanswered":  # the 1.x session ends before its result
            assert call["status"] == "unset" and call["payload"]["output"] is None and call["duration_ms"] is None
        else:
            assert call["payload"]["output"] is not None, call
            assert call["duration_ms"] is not None and call["duration_ms"] >= 0
    assert tool_call(events, "toolu_write")["duration_ms"] == 2000
    assert tool_call(events, "toolu_agent")["duration_ms"] == 11000
    assert tool_call(events, "toolu_agent")["payload"]["output"]["agentId"] == "a7f3c2e"


def test_one_trace_per_prompt_with_the_shared_ids(flightlog: CliRunner) -> None:
    _, _, events = imported(flightlog)
    prompts = {e["payload"]["text"]: e for e in by_type(events, "prompt")}
    assert len(prompts) == 3  # two in the 2.x session, one in the 1.x one; none from subagents
    first = prompts["Create hello.py that prints a greeting, then fix the typo in README.md"]
    second = prompts["Run the tests and ask a helper agent to review hello.py"]
    old = prompts["Find the TODO comments in src/ with a helper"]
    assert first["trace_id"] == shape.turn_trace_id(S2, "prompt-one")
    assert second["trace_id"] == shape.turn_trace_id(S2, "prompt-two")
    assert old["trace_id"] == shape.turn_trace_id(S1, "u1-0001")  # no promptId in 1.x: the line's uuid
    for prompt in prompts.values():
        assert prompt["span_id"] == shape.prompt_span_id(prompt["trace_id"]) and prompt["parent_span_id"] is None
        assert prompt["agent_id"] == shape.AGENT_ID
    assert first["payload"]["prompt_id"] == "prompt-one"
    assert first["payload"]["context"] == {
        "cwd": "/home/dev/proj",
        "git_branch": "main",
        "permission_mode": "acceptEdits",
        "claude_code_version": "2.1.228",
    }
    assert first["source"] == {"kind": "claude-code-transcript", "version": "2.1.228"}
    for tool_id in ("toolu_write", "toolu_edit", "toolu_multi", "toolu_bad"):
        call = tool_call(events, tool_id)
        assert (call["trace_id"], call["parent_span_id"]) == (first["trace_id"], first["span_id"])
    for tool_id in ("toolu_ls", "toolu_pytest", "toolu_agent"):
        call = tool_call(events, tool_id)
        assert (call["trace_id"], call["parent_span_id"]) == (second["trace_id"], second["span_id"])


def test_a_response_split_over_lines_is_one_model_call(flightlog: CliRunner) -> None:
    _, _, events = imported(flightlog)
    calls = [e for e in by_type(events, "model_call") if e["payload"]["message_id"] == "msg_01"]
    assert len(calls) == 1
    (call,) = calls
    assert call["span_id"] == shape.model_span_id(S2, "msg_01")
    assert call["parent_span_id"] == shape.prompt_span_id(shape.turn_trace_id(S2, "prompt-one"))
    assert call["model"]["provider"] == "anthropic" and call["model"]["name"] == "claude-sonnet-4-5-20250929"
    assert call["payload"]["request_id"] == "req_01"
    assert call["payload"]["response"] == {
        "text": "I'll create the file.",
        "tool_use_ids": ["toolu_write"],
        "thinking_chars": 22,
    }
    assert call["payload"]["stop_reason"] == "tool_use"
    assert call["payload"]["usage"]["output_tokens"] == 25
    (parallel,) = [e for e in by_type(events, "model_call") if e["payload"]["message_id"] == "msg_06"]
    assert parallel["payload"]["response"]["tool_use_ids"] == ["toolu_ls", "toolu_pytest"]
    assert not any("Create the file first." in json.dumps(e) for e in events)  # thinking text is not kept


def test_edits_become_file_ops_with_their_diff_and_checksums(flightlog: CliRunner) -> None:
    _, _, events = imported(flightlog, V2_FILE)
    (create,) = child(events, "file_op", tool_call(events, "toolu_write"))
    assert create["payload"] == {
        "op": "create",
        "file_path": "/home/dev/proj/hello.py",
        "diff": "--- /dev/null\n+++ b/hello.py\n@@ -0,0 +1,1 @@\n+print('hello')\n",
        "checksum_before": None,
        "checksum_after": sha256_text("print('hello')\n"),
        "tool": "Write",
    }
    write_span = shape.tool_span_id(S2, "toolu_write")
    assert create["span_id"] == shape.file_span_id(write_span, "/home/dev/proj/hello.py")
    (edit,) = child(events, "file_op", tool_call(events, "toolu_edit"))
    assert edit["payload"]["op"] == "patch"
    assert (
        edit["payload"]["diff"]
        == "--- a/README.md\n+++ b/README.md\n@@ -1,3 +1,3 @@\n # Demo\n \n-Helo world\n+Hello world\n"
    )
    assert edit["payload"]["checksum_before"] == sha256_text("# Demo\n\nHelo world\n")
    assert edit["payload"]["checksum_after"] == sha256_text("# Demo\n\nHello world\n")
    (multi,) = child(events, "file_op", tool_call(events, "toolu_multi"))
    assert (
        multi["payload"]["diff"]
        == "--- a/hello.py\n+++ b/hello.py\n@@ -1,1 +1,1 @@\n-print('hello')\n+print('hello, reader')\n"
    )
    assert multi["payload"]["checksum_before"] == sha256_text("print('hello')\n")
    assert multi["payload"]["checksum_after"] == sha256_text("print('hello, reader')\n")
    assert multi["payload"]["tool"] == "MultiEdit"
    bad = tool_call(events, "toolu_bad")
    assert bad["status"] == "error" and child(events, "file_op", bad) == []
    assert bad["payload"]["error"].startswith("<tool_use_error>File has not been read yet.")
    assert bad["payload"]["output"] == "Error: File has not been read yet. Read it first before writing to it."


def test_shell_commands_carry_exit_code_and_output(flightlog: CliRunner) -> None:
    _, _, events = imported(flightlog)
    (ok,) = child(events, "shell", tool_call(events, "toolu_ls"))
    assert ok["span_id"] == shape.shell_span_id(shape.tool_span_id(S2, "toolu_ls"))
    assert ok["status"] == "ok" and ok["duration_ms"] == 2000
    assert ok["payload"] == {
        "command": "ls",
        "cwd": "/home/dev/proj",
        "exit_code": 0,
        "stdout": "README.md\nhello.py",
        "stderr": "",
        "interrupted": False,
        "description": "List files",
    }
    (failed,) = child(events, "shell", tool_call(events, "toolu_pytest"))
    assert failed["status"] == "error" and failed["payload"]["exit_code"] == 1
    assert failed["payload"]["stderr"] == "Exit code 1\n1 failed in 0.02s"
    (pending,) = child(events, "shell", tool_call(events, "toolu_unanswered"))
    assert pending["status"] == "unset" and pending["payload"]["exit_code"] is None


def test_subagent_file_nests_under_the_agent_call(flightlog: CliRunner) -> None:
    _, _, events = imported(flightlog, V2_FILE)
    agent = tool_call(events, "toolu_agent")
    read = tool_call(events, "toolu_sub_read")
    assert read["parent_span_id"] == agent["span_id"] == shape.tool_span_id(S2, "toolu_agent")
    assert read["trace_id"] == agent["trace_id"] == shape.turn_trace_id(S2, "prompt-two")
    assert read["payload"]["output"]["file"]["content"] == "print('hello, reader')\n"
    sub_models = [e for e in by_type(events, "model_call") if e["payload"]["message_id"].startswith("msg_sub_")]
    assert len(sub_models) == 2 and all(e["parent_span_id"] == agent["span_id"] for e in sub_models)


def test_inline_sidechain_nests_under_the_task_call(flightlog: CliRunner) -> None:
    _, _, events = imported(flightlog, V1_FILE)
    task = tool_call(events, "toolu_task")
    grep = tool_call(events, "toolu_grep")
    assert (grep["trace_id"], grep["parent_span_id"]) == (task["trace_id"], shape.tool_span_id(S1, "toolu_task"))
    side = [e for e in by_type(events, "model_call") if e["payload"]["message_id"].startswith("msg_side_")]
    assert len(side) == 2 and all(e["parent_span_id"] == task["span_id"] for e in side)
    assert len(by_type(events, "prompt")) == 1  # the sidechain's first message is the Task prompt, not a turn


def test_unknown_line_and_api_error_are_kept_in_their_turn(flightlog: CliRunner) -> None:
    _, _, events = imported(flightlog, V2_FILE)
    errors = {e["payload"]["message"]: e for e in by_type(events, "error")}
    turn = shape.turn_trace_id(S2, "prompt-two")
    unknown = errors["unrecognised transcript line type 'hologram'"]
    assert unknown["status"] == "unset" and unknown["trace_id"] == turn
    assert unknown["payload"]["raw"]["projection"] == {"angle": 42}
    api = errors["API Error: 529 overloaded; retrying"]
    assert api["status"] == "error" and api["trace_id"] == turn and api["payload"]["raw"]["retryAttempt"] == 1
    assert len(errors) == 2  # summary, snapshot and turn_duration lines are bookkeeping


def test_corrupt_line_is_reported_and_the_rest_imported(flightlog: CliRunner) -> None:
    out, err, events = imported(flightlog, V2_FILE)
    assert f"{V2_FILE}:{CORRUPT_LINE}: not valid JSON; line skipped" in err
    assert "imported 1 of 1 file(s)" in out and "1 line(s) skipped" in out
    assert tool_call(events, "toolu_agent")["status"] == "ok"  # lines after the bad one are there


def test_reimport_stores_nothing_and_the_log_verifies(flightlog: CliRunner, tmp_path: Path) -> None:
    out, _, events = imported(flightlog)
    size = len(events)
    assert f"{size} new event(s), 0 already stored" in out and f"checkpoint size {size}" in out
    again = flightlog("import", "claude-code", str(FIXTURES), check=True).stdout
    assert f"0 new event(s), {size} already stored" in again and f"checkpoint size {size}" in again
    copy = tmp_path / "moved"  # ids do not depend on where the file lies
    shutil.copytree(FIXTURES, copy)
    moved = flightlog("import", "claude-code", str(copy), check=True).stdout
    assert "0 new event(s)" in moved and f"checkpoint size {size}" in moved
    flightlog("verify", check=True)
    tree = flightlog("show", shape.turn_trace_id(S2, "prompt-two"), check=True).stdout
    assert "Agent" in tree and "Read" in tree and "$ pytest -q → exit 1" in tree


def test_no_default_folder_says_so(flightlog: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "absent"))
    proc = flightlog("import", "claude-code")
    assert proc.returncode != 0 and "no session files found" in proc.stderr


# --- find_files --------------------------------------------------------------------------------


def test_find_files_lists_sessions_never_subagent_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert ct.find_files((FIXTURES,)) == sorted([V1_FILE, V2_FILE])
    assert ct.find_files((V2_AGENT,)) == [V2_FILE]  # a subagent file stands for its session
    assert ct.find_files((V2_FILE, FIXTURES / "v2")) == [V2_FILE]
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path))
    assert ct.find_files(()) == []
    shutil.copytree(FIXTURES / "v2", tmp_path / "projects")
    assert ct.find_files(()) == [tmp_path / "projects" / "-home-dev-proj" / f"{S2}.jsonl"]
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    assert ct.default_root() == tmp_path / "nohome" / ".claude" / "projects"


# --- pure helpers ------------------------------------------------------------------------------


def test_patch_diff_formats_hunks_like_jsdiff() -> None:
    hunks = [
        {"oldStart": 3, "oldLines": 2, "newStart": 3, "newLines": 3, "lines": [" a", "-b", "+c", "+d"]},
        {"oldStart": 10, "oldLines": 0, "newStart": 12, "newLines": 1, "lines": ["+tail"]},  # empty range: one less
        {"oldStart": "1", "oldLines": 1, "newStart": 1, "newLines": 1, "lines": ["-x", "+y"]},  # bad type: left out
        "not a hunk",
    ]
    assert patch_diff("a/f.py", "b/f.py", hunks) == (
        "--- a/f.py\n+++ b/f.py\n@@ -3,2 +3,3 @@\n a\n-b\n+c\n+d\n@@ -9,0 +12,1 @@\n+tail\n"
    )
    deletion = [{"oldStart": 1, "oldLines": 1, "newStart": 1, "newLines": 0, "lines": ["-gone"]}]
    assert patch_diff("a/f", "b/f", deletion) == "--- a/f\n+++ b/f\n@@ -1,1 +0,0 @@\n-gone\n"
    assert patch_diff("a/f", "b/f", []) is None
    assert patch_diff("a/f", "b/f", {"oldStart": 1}) is None


def test_content_diff_creates_the_file() -> None:
    assert content_diff("b/x", "one\ntwo\n") == "--- /dev/null\n+++ b/x\n@@ -0,0 +1,2 @@\n+one\n+two\n"
    assert (
        content_diff("b/x", "last") == "--- /dev/null\n+++ b/x\n@@ -0,0 +1,1 @@\n+last\n\\ No newline at end of file\n"
    )
    assert content_diff("b/x", "") == "--- /dev/null\n+++ b/x\n"


def test_apply_edits_and_labels_and_exit_codes() -> None:
    assert apply_edits("a a a", [("a", "b", False)]) == "b a a"
    assert apply_edits("a a a", [("a", "b", True), ("b b", "c", False)]) == "c b"
    assert apply_edits("abc", [("zzz", "y", False)]) is None
    assert apply_edits("", [("", "new", False)]) == "new"
    assert apply_edits("text", [("", "new", False)]) is None
    assert diff_label("/home/dev/proj/src/a.py", "/home/dev/proj/") == "src/a.py"
    assert diff_label("/etc/hosts", "/home/dev/proj") == "etc/hosts"
    assert diff_label("C:\\w\\a.py", "C:\\w") == "a.py"
    assert exit_code("Error: Exit code 127\nnot found") == 127
    assert exit_code("Error: something else") is None and exit_code(None) is None


def test_file_op_payload_edge_cases() -> None:
    edited = {"filePath": "/p/f", "oldString": "a", "newString": "b", "originalFile": "a", "structuredPatch": []}
    assert file_op_payload("Edit", {}, edited, "/p")["checksum_after"] == sha256_text("b")  # type: ignore[index]
    modified = file_op_payload("Edit", {}, {**edited, "userModified": True}, "/p")
    assert (
        modified is not None and modified["checksum_after"] is None and modified["checksum_before"] == sha256_text("a")
    )
    assert file_op_payload("Edit", {"old_string": "a"}, "Error: no", None) is None  # no file named
    update = file_op_payload("Write", {"file_path": "/p/f", "content": "new\n"}, {"type": "update"}, "/p")
    assert update == {
        "op": "patch",
        "file_path": "/p/f",
        "diff": None,
        "checksum_before": None,
        "checksum_after": sha256_text("new\n"),
        "tool": "Write",
    }
    notebook = file_op_payload("NotebookEdit", {"notebook_path": "/p/n.ipynb"}, {"new_source": "x"}, "/p")
    assert notebook is not None and notebook["file_path"] == "/p/n.ipynb" and notebook["diff"] is None
    background = shell_payload({"command": "sleep 9"}, {"backgroundTaskId": "b1"}, "ok", None, None)
    assert background["exit_code"] is None


# --- reading odd lines -------------------------------------------------------------------------


def assert_storable(events: list[dict[str, Any]]) -> None:
    """Every event passes the schema and canonicalizes, and no event id repeats."""
    for event in events:
        canonical_bytes(fill_defaults(validate_event(event), ct.SOURCE_KIND))
    assert len({e["event_id"] for e in events}) == len(events)


def test_odd_lines_are_problems_or_made_safe(tmp_path: Path) -> None:
    stamp = '"timestamp":"2026-11-20T10:00:00Z","sessionId":"s"'
    deep = '{"type":"x",' + stamp + ',"v":' + "[" * 80 + "]" * 80 + "}"
    lines = [
        b'{"type":"user",' + stamp.encode() + b',"uuid":"p","message":{"content":"go"}}',
        b"[1, 2]",
        b"\xff\xfe not utf-8",
        deep.encode(),
        b"",
        ('{"type":"odd",' + stamp + ',"n":NaN,"big":123456789012345678901,"s":"\\ud800","f":1e999}').encode(),
    ]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    mapped = ct.read_unit(path)
    assert [(p.line, p.reason) for p in mapped.problems] == [
        (2, "not a JSON object"),
        (3, "not UTF-8"),
        (4, "nested deeper than 64 levels"),
    ]
    assert mapped.lines == 5
    assert_storable(mapped.events)
    (odd,) = [e for e in mapped.events if e["type"] == "error"]
    assert odd["payload"]["raw"]["n"] == "NaN" and odd["payload"]["raw"]["big"] == "123456789012345678901"
    assert odd["payload"]["raw"]["s"] == "\ufffd" and odd["payload"]["raw"]["f"] == "1e999"


def test_lines_before_the_first_prompt_go_to_a_session_trace(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"type":"mystery","sessionId":"s","timestamp":"2026-11-20T10:00:00.000Z"}\n')
    (event,) = ct.read_unit(path).events
    assert event["trace_id"] == shape.turn_trace_id("s", "session") and event["parent_span_id"] is None
    path.write_text('{"type":"mystery"}\n')  # no timestamp anywhere in the file
    mapped = ct.read_unit(path)
    assert mapped.events == [] and [p.reason for p in mapped.problems] == ["no valid timestamp in the file"]


# --- arbitrary input never crashes the importer ------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_ids = st.sampled_from(["t1", "t2", "t3"])
_block = st.one_of(
    _json,
    st.fixed_dictionaries({"type": st.just("text"), "text": _json}),
    st.fixed_dictionaries({"type": st.just("thinking"), "thinking": _json}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["tool_use", "server_tool_use"]), "id": _ids | _json, "input": _json},
        optional={"name": st.sampled_from(sorted(shape.EDIT_TOOLS | shape.SHELL_TOOLS | shape.SUBAGENT_TOOLS)) | _json},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["tool_result", "web_search_tool_result"]), "tool_use_id": _ids | _json},
        optional={"content": _json, "is_error": st.booleans() | _json},
    ),
)
_hunk = st.fixed_dictionaries(
    {k: st.integers(-2, 5) | _json for k in ("oldStart", "oldLines", "newStart", "newLines")},
    optional={"lines": st.lists(st.text(max_size=5)) | _json},
)
_tool_result = st.one_of(
    _json,
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["create", "update"]) | _json,
            "filePath": st.text(max_size=6) | _json,
            "content": _json,
            "originalFile": _json,
            "oldString": _json,
            "newString": _json,
            "structuredPatch": st.lists(_hunk, max_size=2) | _json,
            "agentId": st.sampled_from(["a1", "a2"]) | _json,
            "stdout": _json,
        },
    ),
)
_line = st.fixed_dictionaries(
    {"type": st.sampled_from(["user", "assistant", "system", "summary", "progress", "weird"]) | _json},
    optional={
        "uuid": st.sampled_from(["u1", "u2", "u3", "u4"]) | _json,
        "parentUuid": st.sampled_from(["u1", "u2", "u3"]) | _json,
        "sessionId": st.sampled_from(["s", ""]) | _json,
        "promptId": _json,
        "isSidechain": st.booleans() | _json,
        "isMeta": st.booleans(),
        "timestamp": st.sampled_from(["2026-11-20T10:00:00Z", "2026-02-30T10:00:00Z", "9999-12-31T23:59:59-01:00"])
        | _json,
        "message": st.fixed_dictionaries(
            {}, optional={"id": st.sampled_from(["m1", "m2"]) | _json, "content": st.lists(_block, max_size=3) | _json}
        )
        | _json,
        "toolUseResult": _tool_result,
        "subtype": st.just("api_error") | _json,
        "version": _json,
    },
)
_text_line = st.one_of(_line.map(json.dumps), _json.map(json.dumps), st.text(max_size=20))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(main=st.lists(_text_line, max_size=8), agent=st.lists(_text_line, max_size=4))
def test_arbitrary_lines_never_crash_read_unit(tmp_path: Path, main: list[str], agent: list[str]) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        "\n".join(line.replace("\n", " ") for line in main) + "\n", encoding="utf-8", errors="surrogatepass"
    )
    companion = tmp_path / "s" / "subagents" / "agent-a1.jsonl"
    companion.parent.mkdir(parents=True, exist_ok=True)
    companion.write_text("\n".join(line.replace("\n", " ") for line in agent) + "\n", errors="surrogatepass")
    mapped = ct.read_unit(path)
    assert_storable(mapped.events)
    assert all(p.line >= 1 for p in mapped.problems)
