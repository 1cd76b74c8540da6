"""The event model against its JSON Schema, canonical bytes against RFC 8785."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from flightlog.errors import ValidationError
from flightlog.events import (
    EVENT_TYPES,
    canonical_bytes,
    event_schema,
    fill_defaults,
    new_event_id,
    validate_event,
)
from flightlog.ids import stable_event_id
from flightlog.pipeline import Preparer
from tests.conftest import make_event


def test_schema_names_every_design_type_and_field() -> None:
    schema = event_schema()
    assert schema["title"] == "flightlog.event/v1"
    assert set(EVENT_TYPES) == {
        "prompt",
        "model_call",
        "tool_call",
        "file_op",
        "shell",
        "git_op",
        "approval",
        "policy_evaluation",
        "ci",
        "rollback",
        "replay",
        "span",
        "error",
    }
    assert set(schema["properties"]) == {
        "event_id",
        "trace_id",
        "span_id",
        "parent_span_id",
        "timestamp",
        "duration_ms",
        "agent_id",
        "session_id",
        "model",
        "type",
        "status",
        "payload",
        "user_context",
        "source",
        "redactions",
        "signatures",
    }
    payload = schema["definitions"]
    assert set(payload["file_op_payload"]["properties"]) >= {
        "op",
        "file_path",
        "checksum_before",
        "checksum_after",
        "diff",
        "workspace_snapshot",
    }
    assert set(payload["shell_payload"]["properties"]) >= {
        "command",
        "cwd",
        "exit_code",
        "stdout",
        "stderr",
    }
    assert set(payload["git_op_payload"]["properties"]) >= {
        "op",
        "repo",
        "ref",
        "commit",
        "parents",
        "trailers",
        "signature",
    }


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"trace_id": "0" * 32}, "$.trace_id", "not all zero"),
        ({"trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736"}, "$.trace_id", "lowercase hex"),
        ({"span_id": "abc"}, "$.span_id", "16 lowercase hex"),
        ({"parent_span_id": "0" * 16}, "$.parent_span_id", "not all zero"),
        ({"timestamp": "yesterday"}, "$.timestamp", "RFC 3339"),
        ({"type": "nope"}, "$.type", "one of"),
        ({"agent_id": ""}, "$.agent_id", ""),
        (
            {"payload": {"op": "explode", "file_path": "a"}, "type": "file_op"},
            "$.payload.op",
            "one of",
        ),
        ({"payload": {}, "type": "shell"}, "$.payload.command", "required"),
        ({"surprise": 1}, "$", "unknown field"),
        ({"model": "gpt-4o"}, "$.model", "must be object or null"),
        ({"model": {"name": 5}}, "$.model.name", "must be string or null"),
        ({"model": {"surprise": 1}}, "$.model", "unknown field"),
        ({"user_context": []}, "$.user_context", "must be object or null"),
    ],
)
def test_validation_names_field_and_reason(change: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_event(make_event(1) | change)
    assert info.value.field == field
    assert reason in info.value.reason


def test_missing_required_field_is_named() -> None:
    event = make_event(2)
    del event["agent_id"]
    with pytest.raises(ValidationError, match=r"\$\.agent_id: is required"):
        validate_event(event)


def test_defaults_and_utc_timestamp() -> None:
    event = fill_defaults(validate_event(make_event(3, timestamp="2026-01-02T03:04:05.5+02:00")))
    assert event["timestamp"] == "2026-01-02T01:04:05.500000Z"
    assert event["status"] == "ok" and event["redactions"] == [] and event["source"]["kind"]
    validate_event(event)  # the stored form is valid too
    # A payload that reports an error makes a missing status "error" (a failed call counts as one).
    failed = make_event(1, payload={"tool_name": "Bash", "error": "exit 2"})
    failed.pop("status", None)
    assert fill_defaults(validate_event(failed))["status"] == "error"
    assert fill_defaults(validate_event({**failed, "status": "ok"}))["status"] == "ok"
    assert fill_defaults(validate_event(make_event(1, payload={"tool_name": "Bash", "error": None})))["status"] == "ok"


def test_event_ids_are_time_ordered_uuid7() -> None:
    ids = [new_event_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i[14] == "7" and i[19] in "89ab" for i in ids)


json_values = st.recursive(
    st.none()
    | st.booleans()
    # around rfc8785's integer domain, ±(2**53 - 1), and beyond 64 bits: both refuse the same
    | st.integers(1 - 2**53, 2**53 - 1)
    | st.sampled_from([2**53 - 1, 2**53, 1 - 2**53, -(2**53), 2**63, -(2**64), 2**70])
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_canonical_bytes_equal_rfc8785(value: dict[str, Any]) -> None:
    try:
        want = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError):
        with pytest.raises(ValidationError):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == want
    assert json.loads(want) == json.loads(canonical_bytes(value))


def test_stable_event_ids_are_valid_uuid7_and_depend_only_on_seed_and_time() -> None:
    a = stable_event_id("claude-code:session:toolu_1", 1_764_000_000_123)
    assert a == stable_event_id("claude-code:session:toolu_1", 1_764_000_000_123)
    assert a != stable_event_id("claude-code:session:toolu_2", 1_764_000_000_123)
    assert int(a.replace("-", "")[:12], 16) == 1_764_000_000_123  # the time is the record's
    validate_event(make_event(0, event_id=a))


ascii_keyed = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(1 - 2**53, 2**53 - 1)
    | st.sampled_from([2**53, -(2**53), 2**63 - 1])  # the fast encoder must refuse these too
    | st.text()
    | st.floats(1e-4, 1e15),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=8), ascii_keyed, max_size=6))
def test_fast_path_values_equal_rfc8785(value: dict[str, Any]) -> None:
    # ASCII keys and mid-range floats take the fast encoder: the bytes must still be RFC 8785's,
    # and what rfc8785 refuses (an integer beyond its domain) the fast encoder refuses as well.
    try:
        want = rfc8785.dumps(value)
    except rfc8785.IntegerDomainError:
        with pytest.raises(ValidationError, match="send it as a string"):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == want


def test_canonical_bytes_outside_the_fast_encoder() -> None:
    assert canonical_bytes({"\U0001f600": 1, "\ue000": 2}) == rfc8785.dumps({"\U0001f600": 1, "\ue000": 2})
    assert canonical_bytes({"z": -0.0, "b": 1e21, "s": 1e-7, "w": 2.0}) == b'{"b":1e+21,"s":1e-7,"w":2,"z":0}'


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        # One rule whichever encoder the value takes: refused, naming the field, never written.
        ({"payload": {"n": 2**53}}, "$.payload.n", "send it as a string"),  # orjson's path
        ({"payload": {"n": -(2**63)}}, "$.payload.n", "send it as a string"),
        ({"payload": {"n": 2**70, "a": 1}}, "$.payload.n", "send it as a string"),  # beyond 64 bits
        ({"payload": {"f": 1.0, "x": [0, 2**53]}}, "$.payload.x[1]", "send it as a string"),  # rfc8785's
        ({"payload": {"é": {"n": -(2**53)}}}, "$.payload.é.n", "send it as a string"),
        ({"payload": {"f": float("inf")}}, "$.payload.f", "finite"),
        ({"payload": {"f": float("nan")}}, "$.payload.f", "finite"),
        ({"s": ["lone \ud800 surrogate"]}, "$.s[0]", "lone surrogate"),
    ],
)
def test_values_rfc8785_cannot_hold_are_refused_by_path(value: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        canonical_bytes(value)
    assert info.value.field == field and reason in info.value.reason


_preparer = Preparer()
payload_values = st.dictionaries(st.text(max_size=8).filter(lambda k: k != "text"), json_values, max_size=6)


@given(payload_values)
def test_prepared_leaf_is_rfc8785_of_the_stored_event(extra: dict[str, Any]) -> None:
    # Within the event schema, through the whole prepare step (defaults, redaction, blobs): the
    # leaf is exactly rfc8785's bytes of the event stored, or the event is refused.
    raw = make_event(0, payload={"text": "x", **extra})
    try:
        want: bytes | None = rfc8785.dumps(raw["payload"])
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError):
        want = None
    if want is None:
        with pytest.raises(ValidationError) as info:
            _preparer.prepare(raw)
        assert info.value.field.startswith("$.payload")
        return
    entry = _preparer.prepare(raw)
    assert entry.leaf == rfc8785.dumps(entry.event)


def test_forked_child_does_not_repeat_the_parents_random_bits() -> None:
    new_event_id()  # the parent now holds a pool of random bits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next id and exit at once
        os.write(write, new_event_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    mine = new_event_id()
    assert child[-12:] != mine[-12:]  # the random tails differ
