"""C2SP signed notes and tlog-checkpoints: pure formatting, parsing, signing and verifying.

Specs: c2sp.org/signed-note and c2sp.org/tlog-checkpoint (summarised in docs/ledger.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from flightlog.errors import CheckpointError

__all__ = [
    "Checkpoint",
    "format_checkpoint",
    "format_verifier_key",
    "key_id",
    "parse_checkpoint",
    "parse_verifier_key",
    "sign_note",
    "verify_note",
]

_ALG_ED25519: Final = b"\x01"
_SIG_PREFIX: Final = "\u2014 "  # EM DASH, then a space
_MAX_NOTE: Final = 64 * 1024
_SIZE_RE: Final = re.compile(r"^(0|[1-9][0-9]{0,18})$")
_NAME_RE: Final = re.compile(r"^[^\s+]+$")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and the RFC 6962 root hash (32 bytes)."""

    origin: str
    size: int
    root: bytes


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte signed-note key ID: SHA-256(name || "\\n" || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + _ALG_ED25519 + public_key).digest()[:4]


def format_verifier_key(name: str, public_key: bytes) -> str:
    """Return the verifier key string `<name>+<hex key id>+<base64(0x01 || key)>`."""
    if not _NAME_RE.match(name):
        raise CheckpointError(f"key name {name!r} must be non-empty with no spaces or '+'")
    blob = base64.b64encode(_ALG_ED25519 + public_key).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{blob}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes, bytes]:
    """Return (name, key_id, public_key) of a verifier key string; the ID must match the key."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3 or not _NAME_RE.match(parts[0]) or not re.fullmatch("[0-9a-f]{8}", parts[1]):
        raise CheckpointError("verifier key must look like <name>+<8 hex>+<base64>")
    try:
        blob = base64.b64decode(parts[2], validate=True)
    except binascii.Error:
        raise CheckpointError("verifier key: bad base64") from None
    if len(blob) != 33 or blob[:1] != _ALG_ED25519:
        raise CheckpointError("verifier key: not an Ed25519 key")
    name, public_key = parts[0], blob[1:]
    if key_id(name, public_key).hex() != parts[1]:
        raise CheckpointError("verifier key: key id does not match the key")
    return name, bytes.fromhex(parts[1]), public_key


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """Return the tlog-checkpoint note text, e.g.

    flightlog.local/3f9a1c0d2b4e5f60
    4
    1ncXOcSd6zyJBnLCk6nZ4ir9Rq3C8tS1+lo6lIzeuOY=
    """
    if not _NAME_RE.match(checkpoint.origin) or len(checkpoint.root) != 32 or checkpoint.size < 0:
        raise CheckpointError("checkpoint: bad origin, size or root")
    root = base64.b64encode(checkpoint.root).decode()
    return f"{checkpoint.origin}\n{checkpoint.size}\n{root}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Return the Checkpoint in a note's text; only the canonical form is accepted."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise CheckpointError("checkpoint: want origin, size and root lines ending in a newline")
    origin, size, root_b64 = lines[0], lines[1], lines[2]
    if not origin or not _SIZE_RE.match(size):
        raise CheckpointError("checkpoint: bad origin or size line")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except binascii.Error:
        raise CheckpointError("checkpoint: root is not base64") from None
    if len(root) != 32 or base64.b64encode(root).decode() != root_b64:
        raise CheckpointError("checkpoint: root must be 32 bytes in standard base64")
    return Checkpoint(origin, int(size), root)


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Return `text` as a signed note: text, a blank line, one `— name base64(id||sig)` line."""
    if not text.endswith("\n") or "\n\n" in text:
        raise CheckpointError("note text must end in a newline and contain no blank line")
    public = private_key.public_key().public_bytes_raw()
    sig = private_key.sign(text.encode())
    blob = base64.b64encode(key_id(name, public) + sig).decode()
    return f"{text}\n{_SIG_PREFIX}{name} {blob}\n"


def verify_note(note: str, verifier_keys: list[str]) -> tuple[str, str]:
    """Return (text, verifier key used) if one signature line verifies under one of the keys.

    Fails closed: a malformed note, a note with no signature by a known key, or a signature by a
    known key that does not verify raises CheckpointError.
    """
    if len(note) > _MAX_NOTE or not note.endswith("\n"):
        raise CheckpointError("note: too large or missing final newline")
    text, sep, sigs = note.rpartition("\n\n")
    if not sep:
        raise CheckpointError("note: no blank line before the signatures")
    text += "\n"
    known = {}
    for vkey in verifier_keys:
        name, kid, public = parse_verifier_key(vkey)
        known[(name, kid)] = (public, vkey)
    for line in sigs.rstrip("\n").split("\n"):
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError("note: malformed signature line")
        name, _, blob_b64 = line[len(_SIG_PREFIX) :].rpartition(" ")
        try:
            blob = base64.b64decode(blob_b64, validate=True)
        except binascii.Error:
            raise CheckpointError("note: signature is not base64") from None
        entry = known.get((name, blob[:4]))
        if entry is None or len(blob) != 68:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(entry[0]).verify(blob[4:], text.encode())
        except InvalidSignature:
            raise CheckpointError(f"note: signature by {name} does not verify") from None
        return text, entry[1]
    raise CheckpointError("note: no signature by a known key")
