"""Independent verifier for flightlog's signed checkpoints and Merkle proofs.

Written only from the public specifications, with no flightlog code (nothing
from ``src/`` is read or imported). Dependencies: the standard library
(``hashlib`` for SHA-256, ``base64``, ``json``, ``re``) and ``cryptography``,
used solely for the Ed25519 verification primitive (RFC 8032).

Specifications followed
-----------------------
* RFC 6962 section 2.1 (= RFC 9162 section 2.1.1): Merkle Tree Hash.
  ``MTH({}) = SHA-256()``, ``MTH({d0}) = SHA-256(0x00 || d0)``, and for n > 1
  with k the largest power of two smaller than n,
  ``MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))``.
* RFC 9162 section 2.1.3.2: verifying an inclusion proof (``fn``/``sn`` walk).
* RFC 9162 section 2.1.4.2: verifying a consistency proof (defined there for
  ``0 < first < second``; the ``first == second`` case is the RFC 6962
  ``PROOF(m, D[m]) = {}`` case: empty proof, equal roots).
* c2sp.org/signed-note: note text, blank line, signature lines
  ``U+2014 SP <key name> SP base64(key ID(4) || signature) LF``; Ed25519 key
  ID ``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]``.
* c2sp.org/tlog-checkpoint: note text = origin, decimal tree size (no leading
  zeros), standard-base64 root hash, then optional non-empty extension lines.
* Verifier key string (Go ``golang.org/x/mod/sumdb/note`` format, the one the
  signed-note ecosystem uses): ``<name>+<8 hex key ID>+<base64(0x01 || key)>``.

Strictness choices (all deliberate, all stricter-or-equal to the specs)
---------------------------------------------------------------------
* Every hash (leaf hash, proof node, root) must be exactly 32 bytes, even in
  the ``size1 == size2`` consistency case, where transparency-dev's verifier
  only compares the two roots byte-wise.
* Consistency from ``size1 == 0`` is rejected (RFC 9162 defines the algorithm
  for ``0 < first``; transparency-dev rejects it too). ``check_cli_outputs``
  accepts it only as the protocol-level trivial case: empty proof and
  ``root1 == SHA-256("")``.
* Base64 must be standard alphabet, padded, and canonical (re-encoding gives
  the same string); hex must be lowercase and exactly 64 digits (plain
  ``bytes.fromhex`` would accept upper case and embedded spaces).
* Signed notes: valid UTF-8, no ASCII control characters other than LF, text
  split from signatures at the *last* blank line, every signature line must be
  well formed, at most 100 signature lines (the spec requires accepting at
  least 16). Signature lines whose (name, key ID) pair matches the verifier
  key MUST verify: one failing known-key signature rejects the whole note,
  and a note with no signature from the key is rejected. Lines matching only
  the name or only the key ID are ignored, as the spec requires.
* Verifier key IDs must be 8 *lowercase* hex digits (Go accepts either case).

How each flightlog CLI output is checked (``check_cli_outputs``)
----------------------------------------------------------------
``flightlog checkpoint --json`` ->
  ``{"origin", "size", "root": hex, "note", "verifier_key", "verifier_keys"}``.
  ``verifier_key`` and every entry of ``verifier_keys`` must parse, and
  ``verifier_key`` must be in ``verifier_keys``. ``note`` must verify under
  ``verifier_key`` (``verify_note``); its text must parse as a checkpoint
  (``parse_checkpoint``) whose origin, size and root equal the JSON
  ``origin``, ``size`` and ``root``.
``flightlog export --format leaves`` -> JSON lines
  ``{"index": int, "event_id": str, "leaf": base64}``; indices must be
  0, 1, 2, ... in order with no gaps, and there must be at least ``size``
  lines. ``root_from_leaves`` over the first ``size`` decoded leaves must equal
  the checkpoint root.
``flightlog proof inclusion N --json`` ->
  ``{"index", "size", "leaf_hash": hex, "proof": [hex], "root": hex, "note"}``.
  ``note`` must verify under one of ``verifier_keys`` and parse as a
  checkpoint with the same origin as the checkpoint, size == ``size`` and
  root == ``root``; ``root`` must equal ``root_from_leaves`` of the first
  ``size`` exported leaves (and the checkpoint root when ``size`` is the
  checkpoint size); ``leaf_hash`` must equal ``leaf_hash`` of exported leaf
  ``index``; the proof must pass ``verify_inclusion`` against ``root``. The
  signed (size, root) pair matters: an inclusion proof alone does not pin the
  tree size (e.g. the proof of leaf 0 in a 3-leaf tree also "verifies" with
  size 4 against the 3-leaf root).
``flightlog proof consistency OLD NEW --json`` ->
  ``{"size1", "size2", "root1": hex, "root2": hex, "proof": [hex]}``.
  ``verify_consistency`` must pass; ``root1`` must equal the root recomputed
  from the first ``size1`` exported leaves, ``root2`` the root of the first
  ``size2`` leaves (so ``size2`` must not exceed the export), and, when
  ``size2`` is the checkpoint size, the checkpoint root.

Two of these checks are backup only: once a proof verifies against a root
recomputed from the export, the inclusion ``leaf_hash`` and the consistency
``root1`` are already fixed unless SHA-256 collides. They stay to give
precise error messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "EMPTY_TREE_ROOT",
    "IndependentVerifyError",
    "check_cli_outputs",
    "key_id_for",
    "leaf_hash",
    "node_hash",
    "parse_checkpoint",
    "parse_verifier_key",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
    "verify_note",
]

HASH_SIZE = 32
ALG_ED25519 = 0x01
EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()
MAX_SIGNATURES = 100  # the spec says verifiers MUST accept at least 16
EM_DASH = "\u2014"
SIG_PREFIX = EM_DASH + " "

_HEX32 = re.compile(r"[0-9a-f]{64}")
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")  # ASCII only: str.isdigit() accepts "١"
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class IndependentVerifyError(Exception):
    """Raised for any verification failure or malformed input."""


# ---------------------------------------------------------------------------
# Encoding helpers
# ---------------------------------------------------------------------------


def _b64decode_strict(s: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 section 4), padded and canonical."""
    if not isinstance(s, str) or _B64.fullmatch(s) is None or len(s) % 4 != 0:
        raise IndependentVerifyError(f"{what}: not standard padded base64")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IndependentVerifyError(f"{what}: bad base64: {exc}") from exc
    if base64.b64encode(raw).decode("ascii") != s:
        raise IndependentVerifyError(f"{what}: non-canonical base64")
    return raw


def _hex32(value: object, what: str) -> bytes:
    """Lowercase hex of exactly 32 bytes."""
    if not isinstance(value, str) or _HEX32.fullmatch(value) is None:
        raise IndependentVerifyError(f"{what}: expected 64 lowercase hex digits, got {value!r}")
    return bytes.fromhex(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise IndependentVerifyError(f"{what}: expected {HASH_SIZE} bytes")
    return value


def _valid_key_name(name: str) -> bool:
    # signed-note: non-empty, no Unicode spaces, no plus.
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


# ---------------------------------------------------------------------------
# Signed notes (c2sp.org/signed-note)
# ---------------------------------------------------------------------------


def key_id_for(name: str, public_key: bytes) -> bytes:
    """Ed25519 key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    data = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    return hashlib.sha256(data).digest()[:4]


def parse_verifier_key(vkey: str) -> tuple[str, bytes, bytes]:
    """Parse ``<name>+<8 hex key id>+<base64(0x01 || 32-byte key)>``.

    Returns (name, key_id (4 bytes), public key (32 bytes)). The key ID must
    equal the first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key).
    """
    if not isinstance(vkey, str):
        raise IndependentVerifyError("verifier key must be a string")
    # The name cannot contain '+', the base64 part can: split at most twice.
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise IndependentVerifyError("verifier key: expected name+keyid+key")
    name, id_hex, key_b64 = parts
    if not _valid_key_name(name):
        raise IndependentVerifyError(f"verifier key: invalid key name {name!r}")
    if _KEY_ID_HEX.fullmatch(id_hex) is None:
        raise IndependentVerifyError("verifier key: key ID must be 8 lowercase hex digits")
    raw = _b64decode_strict(key_b64, "verifier key")
    if len(raw) != 1 + 32 or raw[0] != ALG_ED25519:
        raise IndependentVerifyError("verifier key: expected 0x01 || 32-byte Ed25519 key")
    public_key = raw[1:]
    key_id = bytes.fromhex(id_hex)
    if key_id_for(name, public_key) != key_id:
        raise IndependentVerifyError("verifier key: key ID does not match name and key")
    return name, key_id, public_key


def verify_note(note: str, vkey: str) -> str:
    """Verify a C2SP signed note against one Ed25519 verifier key.

    Returns the note text (everything before the separating blank line,
    including its final newline). Raises ``IndependentVerifyError`` if the
    note is malformed, has no signature from the key, or any signature line
    carrying the key's (name, key ID) fails to verify.
    """
    name, key_id, public_key = parse_verifier_key(vkey)
    if not isinstance(note, str):
        raise IndependentVerifyError("note must be a string")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise IndependentVerifyError("note is not valid UTF-8") from exc
    if any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise IndependentVerifyError("note contains an ASCII control character")
    if not note.endswith("\n"):
        raise IndependentVerifyError("note does not end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise IndependentVerifyError("note has no blank line before the signatures")
    text = note[: split + 1]
    sig_block = note[split + 2 :]
    if not sig_block:
        raise IndependentVerifyError("note has no signature lines")
    lines = sig_block[:-1].split("\n")  # sig_block ends with "\n" (checked above)
    if len(lines) > MAX_SIGNATURES:
        raise IndependentVerifyError("note has too many signature lines")

    try:
        pub = Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise IndependentVerifyError("verifier key is not a usable Ed25519 key") from exc
    text_bytes = text.encode("utf-8")
    verified = 0
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise IndependentVerifyError(f"malformed signature line {line!r}")
        fields = line[len(SIG_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise IndependentVerifyError(f"malformed signature line {line!r}")
        sig_name, sig_b64 = fields
        if not _valid_key_name(sig_name):
            raise IndependentVerifyError(f"invalid key name in signature line {line!r}")
        blob = _b64decode_strict(sig_b64, "signature")
        if len(blob) < 5:
            raise IndependentVerifyError("signature shorter than key ID + 1 byte")
        if sig_name != name or blob[:4] != key_id:
            continue  # unknown key (name or ID differs): MUST be ignored
        if len(blob) != 4 + 64:
            raise IndependentVerifyError("signature from the key has the wrong length")
        try:
            pub.verify(blob[4:], text_bytes)
        except InvalidSignature as exc:
            raise IndependentVerifyError("signature from the key does not verify") from exc
        verified += 1
    if verified == 0:
        raise IndependentVerifyError("note has no signature from the verifier key")
    return text


# ---------------------------------------------------------------------------
# Checkpoints (c2sp.org/tlog-checkpoint)
# ---------------------------------------------------------------------------


def parse_checkpoint(text: str) -> tuple[str, int, bytes]:
    """Parse a checkpoint note text into (origin, size, root hash)."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise IndependentVerifyError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise IndependentVerifyError("checkpoint needs origin, size and root lines")
    if any(line == "" for line in lines):
        raise IndependentVerifyError("checkpoint lines (incl. extension lines) must be non-empty")
    origin, size_line, root_line = lines[0], lines[1], lines[2]
    if _DECIMAL.fullmatch(size_line) is None:
        raise IndependentVerifyError(f"checkpoint size {size_line!r} is not canonical decimal")
    size = int(size_line)
    if size >= 1 << 64:
        raise IndependentVerifyError("checkpoint size does not fit in 64 bits")
    root = _b64decode_strict(root_line, "checkpoint root")
    if len(root) != HASH_SIZE:
        raise IndependentVerifyError("checkpoint root is not 32 bytes")
    return origin, size, root


# ---------------------------------------------------------------------------
# Merkle tree (RFC 6962 section 2.1)
# ---------------------------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    """MTH({d0}) = SHA-256(0x00 || d0)."""
    return hashlib.sha256(b"\x00" + bytes(leaf)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two k with k < n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root_from_leaves(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) straight from the RFC 6962 definition (recursive)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_TREE_ROOT
    if n == 1:
        return leaf_hash(leaves[0])
    k = _largest_power_of_two_below(n)
    return node_hash(root_from_leaves(leaves[:k]), root_from_leaves(leaves[k:]))


# ---------------------------------------------------------------------------
# Proof verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2)
# ---------------------------------------------------------------------------


def _proof_nodes(proof: list[bytes], what: str) -> list[bytes]:
    if not isinstance(proof, list):
        raise IndependentVerifyError(f"{what}: proof must be a list")
    return [_check_hash(p, f"{what} node {i}") for i, p in enumerate(proof)]


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2; raises ``IndependentVerifyError`` on failure."""
    if not _is_int(index) or not _is_int(size) or index < 0 or size < 0:
        raise IndependentVerifyError("inclusion: index and size must be non-negative ints")
    leaf = _check_hash(leaf_hash, "inclusion leaf hash")
    root = _check_hash(root, "inclusion root")
    path = _proof_nodes(proof, "inclusion")
    # 1. leaf_index >= tree_size fails.
    if index >= size:
        raise IndependentVerifyError("inclusion: index >= size")
    # 2. fn = leaf_index, sn = tree_size - 1.  3. r = hash.
    fn, sn = index, size - 1
    r = leaf
    # 4. For each p in inclusion_path:
    for p in path:
        # a. sn == 0 -> fail.
        if sn == 0:
            raise IndependentVerifyError("inclusion: proof too long")
        # b. LSB(fn) set or fn == sn:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)  # i. r = HASH(0x01 || p || r)
            # ii. if LSB(fn) not set, shift until LSB(fn) set or fn == 0.
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)  # i. r = HASH(0x01 || r || p)
        # c. shift both once.
        fn >>= 1
        sn >>= 1
    # 5. sn == 0 and r == root.
    if sn != 0:
        raise IndependentVerifyError("inclusion: proof too short")
    if r != root:
        raise IndependentVerifyError("inclusion: computed root does not match")


def verify_consistency(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> None:
    """RFC 9162 section 2.1.4.2; raises ``IndependentVerifyError`` on failure."""
    if not _is_int(size1) or not _is_int(size2) or size1 < 0 or size2 < 0:
        raise IndependentVerifyError("consistency: sizes must be non-negative ints")
    first_hash = _check_hash(root1, "consistency root1")
    second_hash = _check_hash(root2, "consistency root2")
    path = _proof_nodes(proof, "consistency")
    if size1 > size2:
        raise IndependentVerifyError("consistency: size1 > size2")
    if size1 == 0:
        raise IndependentVerifyError("consistency: size1 == 0 proves nothing")
    if size1 == size2:
        # RFC 6962: PROOF(m, D[m]) = SUBPROOF(m, D[m], true) = {}.
        if path:
            raise IndependentVerifyError("consistency: non-empty proof for equal sizes")
        if first_hash != second_hash:
            raise IndependentVerifyError("consistency: equal sizes but different roots")
        return
    # 0 < first < second from here on.
    # 1. Empty consistency_path fails.
    if not path:
        raise IndependentVerifyError("consistency: empty proof")
    # 2. If first is an exact power of 2, prepend first_hash.
    if size1 & (size1 - 1) == 0:
        path = [first_hash, *path]
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = size1 - 1, size2 - 1
    # 4. While LSB(fn) is set, shift both.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = consistency_path[0].
    fr = sr = path[0]
    # 6. For each subsequent c:
    for c in path[1:]:
        # a. sn == 0 -> fail.
        if sn == 0:
            raise IndependentVerifyError("consistency: proof too long")
        # b. LSB(fn) set or fn == sn:
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)  # i.
            sr = node_hash(c, sr)  # ii.
            # iii. if LSB(fn) not set, shift until LSB(fn) set or fn == 0.
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)  # i. sr = HASH(0x01 || sr || c)
        # c. shift both once.
        fn >>= 1
        sn >>= 1
    # 7. fr == first_hash, sr == second_hash, sn == 0.
    if sn != 0:
        raise IndependentVerifyError("consistency: proof too short")
    if fr != first_hash:
        raise IndependentVerifyError("consistency: first root does not match")
    if sr != second_hash:
        raise IndependentVerifyError("consistency: second root does not match")


# ---------------------------------------------------------------------------
# End-to-end audit of flightlog CLI outputs
# ---------------------------------------------------------------------------


def _field(obj: Any, key: str, kind: type, what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise IndependentVerifyError(f"{what}: missing field {key!r}")
    value = obj[key]
    ok = _is_int(value) if kind is int else isinstance(value, kind)
    if not ok:
        raise IndependentVerifyError(f"{what}: field {key!r} must be {kind.__name__}")
    return value


def _size_field(obj: Any, key: str, what: str) -> int:
    value: int = _field(obj, key, int, what)
    if value < 0:
        raise IndependentVerifyError(f"{what}: field {key!r} must be >= 0")
    return value


def _hex_list(obj: Any, key: str, what: str) -> list[bytes]:
    items = _field(obj, key, list, what)
    return [_hex32(item, f"{what} {key}[{i}]") for i, item in enumerate(items)]


def _parse_leaves(leaves_jsonl: str) -> list[bytes]:
    if not isinstance(leaves_jsonl, str):
        raise IndependentVerifyError("leaves export must be a string")
    leaves: list[bytes] = []
    # JSON Lines separates records with "\n" only; str.splitlines() would also
    # split inside strings holding U+2028, U+0085, ... (json.dumps with
    # ensure_ascii=False leaves those raw).
    for lineno, line in enumerate(leaves_jsonl.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise IndependentVerifyError(f"leaves line {lineno}: invalid JSON") from exc
        what = f"leaves line {lineno}"
        index = _size_field(row, "index", what)
        _field(row, "event_id", str, what)
        leaf = _b64decode_strict(_field(row, "leaf", str, what), f"{what} leaf")
        if index != len(leaves):
            raise IndependentVerifyError(f"{what}: index {index}, expected {len(leaves)}")
        leaves.append(leaf)
    return leaves


def _open_with_any(note: str, vkeys: list[str]) -> str:
    errors = []
    for vkey in vkeys:
        try:
            return verify_note(note, vkey)
        except IndependentVerifyError as exc:
            errors.append(f"{vkey.split('+', 1)[0]}: {exc}")
    raise IndependentVerifyError("note verifies under no listed key: " + "; ".join(errors))


def check_cli_outputs(
    checkpoint_json: dict[str, Any],
    leaves_jsonl: str,
    inclusion_json: dict[str, Any] | None,
    consistency_json: dict[str, Any] | None,
) -> None:
    """Audit flightlog CLI outputs end to end (see the module docstring)."""
    what = "checkpoint"
    vkey: str = _field(checkpoint_json, "verifier_key", str, what)
    vkeys: list[Any] = _field(checkpoint_json, "verifier_keys", list, what)
    for k in vkeys:
        if not isinstance(k, str):
            raise IndependentVerifyError("checkpoint: verifier_keys must be strings")
        parse_verifier_key(k)
    if vkey not in vkeys:
        raise IndependentVerifyError("checkpoint: verifier_key missing from verifier_keys")
    text = verify_note(_field(checkpoint_json, "note", str, what), vkey)
    origin, size, root = parse_checkpoint(text)
    if _field(checkpoint_json, "origin", str, what) != origin:
        raise IndependentVerifyError("checkpoint: JSON origin differs from the signed note")
    if _size_field(checkpoint_json, "size", what) != size:
        raise IndependentVerifyError("checkpoint: JSON size differs from the signed note")
    if _hex32(_field(checkpoint_json, "root", str, what), "checkpoint root") != root:
        raise IndependentVerifyError("checkpoint: JSON root differs from the signed note")

    leaves = _parse_leaves(leaves_jsonl)
    if len(leaves) < size:
        raise IndependentVerifyError(f"export has {len(leaves)} leaves, checkpoint has {size}")
    if root_from_leaves(leaves[:size]) != root:
        raise IndependentVerifyError("root recomputed from exported leaves != checkpoint root")

    if inclusion_json is not None:
        what = "inclusion"
        index = _size_field(inclusion_json, "index", what)
        isize = _size_field(inclusion_json, "size", what)
        ileaf = _hex32(_field(inclusion_json, "leaf_hash", str, what), "inclusion leaf_hash")
        iroot = _hex32(_field(inclusion_json, "root", str, what), "inclusion root")
        iproof = _hex_list(inclusion_json, "proof", what)
        itext = _open_with_any(_field(inclusion_json, "note", str, what), vkeys)
        n_origin, n_size, n_root = parse_checkpoint(itext)
        if n_origin != origin:
            raise IndependentVerifyError("inclusion: note origin differs from the checkpoint")
        if (n_size, n_root) != (isize, iroot):
            raise IndependentVerifyError("inclusion: size/root differ from its signed note")
        if isize > len(leaves):
            raise IndependentVerifyError("inclusion: size exceeds the exported leaves")
        if root_from_leaves(leaves[:isize]) != iroot:
            raise IndependentVerifyError("inclusion: root != root of the exported leaves")
        if isize == size and iroot != root:
            raise IndependentVerifyError("inclusion: root differs from the checkpoint root")
        if index >= isize:
            raise IndependentVerifyError("inclusion: index >= size")
        if leaf_hash(leaves[index]) != ileaf:
            raise IndependentVerifyError("inclusion: leaf_hash != hash of the exported leaf")
        verify_inclusion(ileaf, index, isize, iproof, iroot)

    if consistency_json is not None:
        what = "consistency"
        size1 = _size_field(consistency_json, "size1", what)
        size2 = _size_field(consistency_json, "size2", what)
        root1 = _hex32(_field(consistency_json, "root1", str, what), "consistency root1")
        root2 = _hex32(_field(consistency_json, "root2", str, what), "consistency root2")
        cproof = _hex_list(consistency_json, "proof", what)
        if size1 == 0:
            # Protocol-level trivial case: the empty tree precedes every tree.
            if cproof or root1 != EMPTY_TREE_ROOT:
                raise IndependentVerifyError("consistency: bad proof from the empty tree")
        else:
            verify_consistency(size1, size2, cproof, root1, root2)
        if size2 > len(leaves):
            raise IndependentVerifyError("consistency: size2 exceeds the exported leaves")
        if root_from_leaves(leaves[:size1]) != root1:
            raise IndependentVerifyError("consistency: root1 != root of the exported leaves")
        if root_from_leaves(leaves[:size2]) != root2:
            raise IndependentVerifyError("consistency: root2 != root of the exported leaves")
        if size2 == size and root2 != root:
            raise IndependentVerifyError("consistency: root2 differs from the checkpoint root")
