"""What a producer sees from a real server when an event cannot be stored as sent: an integer
RFC 8785 cannot hold, or an event id that already names a different event. Both are 422 with
the field named, and nothing of the request is stored; a true retry stays a duplicate."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785

from flightlog.ledger.log import IdConflict, Ledger
from flightlog.pipeline import Pipeline
from tests.conftest import make_event
from tests.server.conftest import Server

EVENTS = "/api/v1/events"
BIG_ID = "019a0000-0000-7000-8000-000000000001"


def _entries(server: Server) -> int:
    return int(httpx.get(server.url + "/healthz").json()["entries"])


def _post(server: Server, events: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(server.url + EVENTS, json=events)


def _leaf(server: Server, event_id: str) -> bytes:
    answer = httpx.get(f"{server.url}{EVENTS}/{event_id}", params={"proof": "1"})
    assert answer.status_code == 200, answer.text
    return base64.b64decode(answer.json()["proof"]["leaf"])


def test_integers_beyond_the_safe_domain_are_refused_naming_the_field(server: Server) -> None:
    big = 2**53 + 1
    cases = [
        ({"text": "x", "n": big}, "$.payload.n"),  # the fast encoder's path
        ({"text": "x", "n": big, "f": 1.0}, "$.payload.n"),  # rfc8785's path (an integral float)
        ({"text": "x", "ключ": [1, -big]}, "$.payload.ключ[1]"),  # rfc8785's path (a non-ASCII key)
        ({"text": "x", "n": 2**70}, "$.payload.n"),  # beyond 64 bits
    ]
    for payload, field in cases:
        answer = _post(server, [make_event(0), make_event(0, span_id="00000000000000aa", payload=payload)])
        assert answer.status_code == 422, answer.text
        detail = answer.json()["details"]
        assert [(d["index"], d["field"]) for d in detail] == [(1, field)], detail
        assert "2**53 - 1" in detail[0]["reason"] and "send it as a string" in detail[0]["reason"]
    for text in ('{"text": "x", "f": 1e400}', '{"text": "x", "f": NaN}'):
        body = json.dumps([make_event(0, payload={})]).replace('"payload": {}', f'"payload": {text}')
        answer = httpx.post(server.url + EVENTS, content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert [(d["index"], d["field"]) for d in answer.json()["details"]] == [(0, "$.payload.f")]
    assert _entries(server) == 0  # nothing of any refused request was stored


def test_every_leaf_is_what_rfc8785_gives_for_the_stored_event(server: Server) -> None:
    payloads = [
        {"text": "x", "n": 2**53 - 1, "m": -(2**53 - 1), "as_text": str(2**53 + 1)},
        {"text": "x", "z": -0.0, "big": 1e21, "small": 1e-7, "mid": 0.1, "whole": 3.0, "e16": 1e16},
        {"text": "x", "é": 5e-324, "\U0001f600": 1.7976931348623157e308, "a": 123456789.125},
    ]
    events = [make_event(0, span_id=f"{n + 1:016x}", payload=p) for n, p in enumerate(payloads)]
    answer = _post(server, events)
    assert answer.status_code == 200, answer.text
    ids = answer.json()["event_ids"]
    for event_id in ids:
        leaf = _leaf(server, event_id)
        # RFC 8785 numbers are IEEE doubles: 1e16 is written 10000000000000000, which Python's
        # json reads as an int that rfc8785 then refuses; parse numbers as doubles, as JCS does.
        assert rfc8785.dumps(json.loads(leaf, parse_int=float)) == leaf
    integers = _leaf(server, ids[0])
    assert rfc8785.dumps(json.loads(integers)) == integers
    assert json.loads(integers)["payload"]["as_text"] == str(2**53 + 1)


def test_a_different_event_under_a_stored_id_is_refused(server: Server) -> None:
    first = make_event(0, event_id=BIG_ID)
    answer = _post(server, [first])
    assert answer.status_code == 200 and answer.json()["stored"] == 1, answer.text
    leaf = _leaf(server, BIG_ID)

    changed = make_event(0, event_id=BIG_ID, payload={"text": "something else"})
    fresh = make_event(1)
    answer = _post(server, [fresh, changed])
    assert answer.status_code == 422, answer.text
    assert answer.json()["details"] == [
        {"index": 1, "field": "$.event_id", "reason": "already stored with different content"}
    ]
    assert _entries(server) == 1 and _leaf(server, BIG_ID) == leaf  # neither event was stored

    answer = _post(server, [first])  # a true retry is still an idempotent duplicate
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 0 and answer.json()["duplicates"] == 1 and answer.json()["indexes"] == [0]


def test_a_retry_is_a_duplicate_although_the_pipeline_added_fields(server: Server) -> None:
    # Filled status/source/redactions, a timestamp moved to UTC, a redacted secret and a long
    # output moved to a blob: the retry prepares to the same leaf, so it is not a conflict.
    event = make_event(
        2,
        event_id="019a0000-0000-7000-8000-000000000002",
        timestamp="2026-11-24T18:00:02.5+01:00",
        payload={
            "command": "deploy --token ghp_" + "Q3v9Lk2Pz8Xw4Rt6Ym1Nb5Hc7Jd0Fs2Ga4Ke",
            "stdout": "y" * 40_000,
            "exit_code": 0,
        },
    )
    first = _post(server, [event])
    assert first.status_code == 200 and first.json()["stored"] == 1, first.text
    stored = httpx.get(f"{server.url}{EVENTS}/{event['event_id']}").json()["event"]
    assert stored["redactions"] and "blob" in stored["payload"]["stdout"]  # the pipeline did change it
    again = _post(server, [event, event])  # a retry, twice in one request
    assert again.status_code == 200, again.text
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == 2
    assert again.json()["indexes"] == first.json()["indexes"] * 2


def test_one_id_for_two_different_events_in_one_request_is_refused(server: Server) -> None:
    event_id = "019a0000-0000-7000-8000-000000000003"
    a = make_event(0, event_id=event_id)
    b = make_event(1, event_id=event_id)
    answer = _post(server, [a, b])
    assert answer.status_code == 422, answer.text
    [detail] = answer.json()["details"]
    assert detail["index"] == 1 and detail["field"] == "$.event_id"
    assert "different event" in detail["reason"] and "index 0" in detail["reason"]
    assert _entries(server) == 0

    answer = _post(server, [a, a])  # the same event twice: stored once
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 1 and answer.json()["duplicates"] == 1


def test_prepare_events_refuses_what_prepare_batch_would_drop(tmp_path: Path) -> None:
    # The pipeline half on its own (the events API calls `prepare_events`); adapters with
    # derived ids keep `prepare_batch`, where a repeated id is the ledger's duplicate.
    with Ledger.open(tmp_path / "home") as ledger:
        pipeline = Pipeline(ledger)
        event_id = "019a0000-0000-7000-8000-000000000004"
        good, bad = pipeline.prepare_events([make_event(0, event_id=event_id)])
        assert not bad and ledger.append(good) == [0]
        changed, same = make_event(1, event_id=event_id), make_event(0, event_id=event_id)
        good, bad = pipeline.prepare_events([same, changed, changed])
        assert [(r.index, r.field, r.reason) for r in bad] == [
            (1, "$.event_id", "already stored with different content"),
            (2, "$.event_id", "already stored with different content"),
        ]
        good, bad = pipeline.prepare_batch([changed])
        assert not bad and ledger.append(good) == [0] and good[0].duplicate


def test_two_requests_racing_with_one_id_cannot_both_be_told_stored(tmp_path: Path) -> None:
    # Both pass the early check (nothing stored yet); the commit checks again under its lock.
    with Ledger.open(tmp_path / "home") as ledger:
        pipeline = Pipeline(ledger)
        event_id = "019a0000-0000-7000-8000-000000000005"
        first, _ = pipeline.prepare_events([make_event(0, event_id=event_id)])
        other, _ = pipeline.prepare_events([make_event(1, event_id=event_id)])
        again, _ = pipeline.prepare_events([make_event(0, event_id=event_id)])
        assert ledger.append(first) == [0]
        with pytest.raises(IdConflict):  # was: a silent duplicate of entry 0
            ledger.append(other)
        assert ledger.append(again) == [0] and again[0].duplicate  # a true retry
        assert ledger.size == 1
