"""Agent Trace export: line ranges from diffs, records per conversation, and the real CLI."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from flightlog.agent_trace import AGENT_TRACE_VERSION, added_line_ranges, agent_trace_records
from flightlog.ledger.blobs import blob_digest
from tests.conftest import TRACE, VECTORS, CliRunner, jsonl, make_event

SPEC = VECTORS / "agent-trace"
COMMIT = "9fceb02d0ae598e95dc970b74767f19372d61af8"
HEAD = "0123456789abcdef0123456789abcdef01234567"
MODEL = {"provider": "anthropic", "name": "claude-sonnet-4-5"}


def _load(name: str) -> Any:
    data = json.loads((SPEC / name).read_text(encoding="utf-8"))
    assert data, f"{name}: nothing in the vendored vector"
    return data


def _strict(schema: Any) -> Any:
    """The spec's schema with `additionalProperties: false` on every object but `metadata`,
    as upstream's generated schema has it: a field we invent is one other tools refuse."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out:
            out["additionalProperties"] = False
            if "metadata" in out["properties"]:
                out["properties"]["metadata"] = schema["properties"]["metadata"]
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


VALIDATE: Callable[[Any], Any] = jsonschema_rs.validator_for(
    _strict(_load("trace-record.schema.json")), validate_formats=True
).validate


def _no_blob(digest: str) -> bytes:
    raise AssertionError(f"unexpected blob read {digest}")


def _records(events: list[dict[str, Any]], blobs: dict[str, bytes] | None = None) -> list[dict[str, Any]]:
    records = agent_trace_records(events, (blobs or {}).__getitem__ if blobs else _no_blob)
    for record in records:
        VALIDATE(record)
    return records


def _file_op(n: int, path: str, diff: object, op: str = "patch", **payload: Any) -> dict[str, Any]:
    return make_event(3, span_id=f"{n + 100:016x}", payload={"op": op, "file_path": path, "diff": diff, **payload})


def _ranges(record: dict[str, Any], path: str) -> list[tuple[int, int]]:
    (entry,) = [f for f in record["files"] if f["path"] == path]
    (conv,) = entry["conversations"]
    return [(r["start_line"], r["end_line"]) for r in conv["ranges"]]


def _create(lines: int) -> str:
    body = "".join(f"+line {i}\n" for i in range(1, lines + 1))
    return f"--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,{lines} @@\n{body}"


# --- the vendored spec and the validator built from it ---


def test_the_spec_examples_pass_and_broken_ones_fail() -> None:
    examples = _load("examples.json")
    assert len(examples) == 2
    for example in examples:
        VALIDATE(example)
    broken: list[Callable[[dict[str, Any]], None]] = [
        lambda r: r.pop("id"),
        lambda r: r.update(version="0.1"),
        lambda r: r.update(id="not-a-uuid"),
        lambda r: r["files"][0].pop("conversations"),
        lambda r: r["files"][0]["conversations"][0]["ranges"][0].update(start_line=0),
        lambda r: r["files"][0]["conversations"][0]["contributor"].update(type="robot"),
        lambda r: r["files"][0]["conversations"][0].update(model="x"),  # not a spec field
        lambda r: r.update(vcs={"type": "git"}),
    ]
    for spoil in broken:
        record = copy.deepcopy(examples[1])
        spoil(record)
        with pytest.raises(jsonschema_rs.ValidationError):
            VALIDATE(record)


# --- line ranges of one diff ---


def test_multi_hunk_diff_gives_each_hunks_added_lines() -> None:
    diff = "--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,4 @@\n a\n+b\n c\n d\n@@ -10,4 +11,5 @@\n j\n-k\n+K\n+K2\n l\n m\n"
    assert added_line_ranges(diff) == [(2, 2), (12, 13)]


def test_pure_deletion_gives_no_range() -> None:
    assert added_line_ranges("@@ -3,3 +3,1 @@\n a\n-b\n-c\n") == []


def test_adjacent_added_lines_merge_across_changes() -> None:
    # a change (-x +X) right next to an addition (+Y) is one range
    assert added_line_ranges("@@ -1,3 +1,4 @@\n a\n-x\n+X\n+Y\n z\n") == [(2, 3)]
    assert added_line_ranges("@@ -1,2 +1,4 @@\n a\n+p\n b\n+q\n") == [(2, 2), (4, 4)]


def test_created_file_is_one_range_from_line_one() -> None:
    assert added_line_ranges(_create(3)) == [(1, 3)]
    assert added_line_ranges("@@ -0,0 +1 @@\n+only\n\\ No newline at end of file\n") == [(1, 1)]


def test_insertion_into_an_empty_hunk_position() -> None:
    assert added_line_ranges("@@ -5,0 +6,2 @@\n+x\n+y\n") == [(6, 7)]


@pytest.mark.parametrize(
    "diff",
    [
        "@@ -1,3 +1,3 @@\n a\n-b\n",  # ends early
        "@@ -1,1 +1,1 @@\n*a\n",  # not a hunk line
        "@@ -5,1 +5,1 @@\n a\n@@ -1,1 +1,1 @@\n b\n",  # out of order
        "@@ -5,1 +9,1 @@\n-a\n+b\n",  # new start does not follow
    ],
)
def test_malformed_diff_is_an_error(diff: str) -> None:
    with pytest.raises(ValueError):
        added_line_ranges(diff)


# --- records from events ---


def test_later_edits_move_earlier_lines_to_the_final_positions() -> None:
    events = [
        make_event(1, type="model_call", model=MODEL, payload={}),
        _file_op(1, "new.py", _create(3), op="create"),
        # insert two lines at the top, then delete old line 2 (now line 4)
        _file_op(2, "new.py", "@@ -0,0 +1,2 @@\n+h1\n+h2\n"),
        _file_op(3, "new.py", "@@ -3,3 +3,2 @@\n line 1\n-line 2\n line 3\n"),
    ]
    (record,) = _records(events)
    assert _ranges(record, "new.py") == [(1, 4)]
    (conv,) = record["files"][0]["conversations"]
    assert conv["contributor"] == {"type": "ai", "model_id": "anthropic/claude-sonnet-4-5"}
    assert "vcs" not in record
    assert record["version"] == AGENT_TRACE_VERSION
    assert record["tool"] == {"name": "claude-code"}
    assert record["metadata"]["dev.flightlog"]["trace_id"] == TRACE


def test_models_differ_per_range() -> None:
    other = {"provider": "openai", "name": "gpt-5"}
    events = [
        _file_op(1, "a.py", "@@ -0,0 +1,2 @@\n+a\n+b\n", op="create"),
        {**_file_op(2, "a.py", "@@ -2,0 +3 @@\n+c\n"), "model": other},
    ]
    events[0]["model"] = MODEL
    (record,) = _records(events)
    (conv,) = record["files"][0]["conversations"]
    assert conv["contributor"] == {"type": "ai"}
    assert [(r["start_line"], r["end_line"], r["contributor"].get("model_id")) for r in conv["ranges"]] == [
        (1, 2, "anthropic/claude-sonnet-4-5"),
        (3, 3, "openai/gpt-5"),
    ]


def test_unknown_positions_drop_earlier_lines_rather_than_misplace_them() -> None:
    first = _file_op(1, "a.py", "@@ -0,0 +1,2 @@\n+a\n+b\n", op="create", checksum_after="sha256:" + "1" * 64)
    # someone else changed the file in between: checksum_before is not our checksum_after
    second = _file_op(2, "a.py", "@@ -5,0 +6 @@\n+z\n", checksum_before="sha256:" + "2" * 64)
    (record,) = _records([first, second])
    assert _ranges(record, "a.py") == [(6, 6)]
    # a patch whose diff is not a unified diff: what it changed is unknown
    assert _records([first, _file_op(2, "a.py", "+line\n")]) == []
    assert _records([first, _file_op(2, "a.py", "@@ -1,9 +1,9 @@\n a\n")]) == []


def test_pure_deletions_and_deleted_files_give_no_record() -> None:
    assert _records([_file_op(1, "a.py", "@@ -1,2 +1,1 @@\n a\n-b\n")]) == []
    assert _records([_file_op(1, "a.py", _create(2), op="create"), _file_op(2, "a.py", None, op="delete")]) == []


def test_rename_moves_lines_and_absolute_paths_become_relative() -> None:
    events = [
        _file_op(1, "/home/dev/repo/old.py", _create(2), op="create"),
        _file_op(2, "/home/dev/repo/new.py", None, op="rename", old_path="/home/dev/repo/old.py"),
        make_event(5, type="git_op", payload={"op": "commit", "repo": "/home/dev/repo", "commit": COMMIT}),
    ]
    (record,) = _records(events)
    assert [f["path"] for f in record["files"]] == ["new.py"]
    assert record["vcs"] == {"type": "git", "revision": COMMIT}
    assert record["metadata"]["dev.flightlog"]["revision_from"] == "git_op"


def test_revision_falls_back_to_the_prompts_git_head() -> None:
    prompt = make_event(0, payload={"text": "fix it", "context": {"git_head": HEAD}})
    (record,) = _records([prompt, _file_op(1, "a.py", _create(1), op="create")])
    assert record["vcs"] == {"type": "git", "revision": HEAD}
    assert record["metadata"]["dev.flightlog"]["revision_from"] == "prompt.context.git_head"


def test_one_record_per_trace_within_a_session_with_stable_ids() -> None:
    other_trace = "0af7651916cd43dd8448eb211c80319c"
    events = [
        _file_op(1, "a.py", _create(1), op="create"),
        {**_file_op(2, "b.py", _create(1), op="create"), "trace_id": other_trace},
        {**_file_op(3, "c.py", _create(1), op="create"), "session_id": "session-2"},
    ]
    records = _records(events)
    assert [r["files"][0]["path"] for r in records] == ["a.py", "b.py", "c.py"]
    assert len({r["id"] for r in records}) == 3
    assert [r["id"] for r in _records(events)] == [r["id"] for r in records]


def test_a_diff_stored_as_a_blob_is_read_from_the_blob_store() -> None:
    diff = _create(4).encode()
    digest = blob_digest(diff)
    event = _file_op(1, "new.py", {"blob": digest, "size": len(diff)}, op="create")
    (record,) = _records([event], {digest: diff})
    assert _ranges(record, "new.py") == [(1, 4)]


# --- through the real CLI ---


def test_export_agent_trace_end_to_end(flightlog: CliRunner, tmp_path: Path) -> None:
    big = _create(2000)  # over 16 KiB: stored as a blob, read back on export
    assert len(big.encode()) > 16 * 1024
    events = [
        make_event(0, payload={"text": "add the parser", "context": {"git_head": HEAD}}),
        make_event(1, type="model_call", model=MODEL, payload={"usage": {"input_tokens": 10}}),
        make_event(2, type="file_op", payload={"op": "create", "file_path": "src/parser.py", "diff": big}),
        make_event(
            3,
            type="file_op",
            payload={"op": "patch", "file_path": "src/app.py", "diff": "@@ -10,2 +10,4 @@\n a\n+b\n+c\n d\n"},
        ),
        make_event(4, type="git_op", payload={"op": "commit", "ref": "refs/heads/main", "commit": COMMIT}),
    ]
    source = tmp_path / "events.jsonl"
    source.write_text(jsonl(events), encoding="utf-8")
    flightlog("ingest", str(source), check=True)

    proc = flightlog("export", "--format", "agent-trace", check=True)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    VALIDATE(record)
    assert record["version"] == "0.1.0"
    assert record["vcs"] == {"type": "git", "revision": COMMIT}
    assert record["tool"] == {"name": "claude-code"}
    assert record["timestamp"] == "2026-11-24T17:00:04.004000Z"
    assert [f["path"] for f in record["files"]] == ["src/app.py", "src/parser.py"]
    assert _ranges(record, "src/app.py") == [(11, 12)]
    assert _ranges(record, "src/parser.py") == [(1, 2000)]
    for entry in record["files"]:
        assert entry["conversations"][0]["contributor"] == {"type": "ai", "model_id": "anthropic/claude-sonnet-4-5"}
    assert record["metadata"]["dev.flightlog"] == {
        "trace_id": TRACE,
        "session_id": "session-1",
        "agent_ids": ["claude-code"],
        "revision_from": "git_op",
    }
    again = flightlog("export", "--format", "agent-trace", check=True)
    assert again.stdout == proc.stdout
