"""Signed notes and checkpoints: round trips, and parsers that only ever raise CheckpointError."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from flightlog.errors import CheckpointError
from flightlog.ledger.checkpoint import (
    Checkpoint,
    format_checkpoint,
    format_verifier_key,
    parse_checkpoint,
    parse_verifier_key,
    sign_note,
    verify_note,
)

KEY = Ed25519PrivateKey.generate()
NAME = "flightlog.local/test"
VKEY = format_verifier_key(NAME, KEY.public_key().public_bytes_raw())


def test_round_trip() -> None:
    cp = Checkpoint(NAME, 42, hashlib.sha256(b"x").digest())
    note = sign_note(format_checkpoint(cp), NAME, KEY)
    text, used = verify_note(note, [VKEY])
    assert used == VKEY and parse_checkpoint(text) == cp
    assert parse_verifier_key(VKEY)[0] == NAME


@pytest.mark.parametrize(
    "body",
    [
        "o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",  # leading zero
        "o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n1\nAAAA\n",  # short root
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # no final newline
        "\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    ],
)
def test_non_canonical_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(body)


def test_signature_over_other_text_fails() -> None:
    note = sign_note("a\n1\n", NAME, KEY)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(note.replace("a\n1", "a\n2"), [VKEY])


@given(st.text(max_size=300))
def test_parsers_raise_only_checkpoint_error(text: str) -> None:
    for parse in (parse_checkpoint, parse_verifier_key, lambda t: verify_note(t, [VKEY])):
        with contextlib.suppress(CheckpointError):
            parse(text)
