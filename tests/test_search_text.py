"""The search text the collector indexes is that of the event as stored: redacted, with blobs."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flightlog.index import event_text
from flightlog.pipeline import Preparer
from tests.conftest import make_event
from tests.redact_cases import AWS_SECRET, GITHUB_PAT, PASSWORD

_PREPARER = Preparer(search_text=True, blob_threshold=64)

payload_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "text", "password", "auth", "note", "x"]), inner, max_size=3)
    ),
    max_leaves=12,
)


def _check(event: dict[str, Any]) -> str:
    entry = _PREPARER.prepare(event)
    assert entry.text is not None
    assert entry.text == event_text(entry.event)
    return entry.text


def test_the_text_of_a_redacted_event_has_markers_not_secrets() -> None:
    event = make_event(
        0,
        type="prompt",
        payload={"text": f"use {GITHUB_PAT} then", "env": {"DB_PASSWORD": PASSWORD}, "list": [AWS_SECRET, "kept"]},
        model={"provider": "anthropic", "name": "claude"},
        user_context={"user_id": "u1", "host": "box"},
        source={"kind": "otlp", "version": "sdk 1"},
        signatures=[{"keyid": "k", "sig": "s"}],
    )
    text = _check(event)
    assert GITHUB_PAT not in text and PASSWORD not in text
    assert "[REDACTED:secret-field]" in text and "kept" in text and "claude" in text
    assert "sdk 1" not in text  # the source is not searched


def test_the_text_of_an_event_with_blobs_names_them() -> None:
    text = _check(make_event(0, type="prompt", payload={"text": "long " * 40}))
    assert "long long" not in text and "text/plain" in text


@settings(max_examples=300, deadline=None)
@given(payload_values, st.sampled_from([None, "session-9"]))
def test_the_text_is_that_of_the_stored_event(extra: Any, session: str | None) -> None:
    event = make_event(1, type="prompt", payload={"text": "go", "extra": extra}, session_id=session)
    _check(event)
