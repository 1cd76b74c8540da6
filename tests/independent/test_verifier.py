"""Unit tests of the independent verifier (tests/independent/verifier.py).

Sources of truth, in order: published vectors in tests/vectors/rfc6962.json
(transparency-dev/merkle, golang/mod sumdb/tlog, Google Argon 2020 CT log),
the published examples of golang.org/x/mod/sumdb/note and C2SP, and notes
built here by hand from the c2sp.org/signed-note text with a fresh Ed25519
key. The RFC 6962 PATH/PROOF generators below are test-only reference code
written from RFC 6962 sections 2.1.1 and 2.1.2; they are checked against the
published proofs before being used to generate more cases.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.independent.verifier import (
    EMPTY_TREE_ROOT,
    IndependentVerifyError,
    check_cli_outputs,
    leaf_hash,
    node_hash,
    parse_checkpoint,
    parse_verifier_key,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
    verify_note,
)

VECTORS_PATH = Path(__file__).resolve().parent.parent / "vectors" / "rfc6962.json"


# ---------------------------------------------------------------------------
# Vector loading
# ---------------------------------------------------------------------------


def _load_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    return data


VECTORS = _load_vectors()


def _cases(*keys: str) -> list[Any]:
    """Return the list at VECTORS[k0][k1]...; assert it is a non-empty list."""
    node: Any = VECTORS
    for key in keys:
        assert isinstance(node, dict) and key in node, f"vector section {keys} missing"
        node = node[key]
    assert isinstance(node, list) and len(node) > 0, f"vector section {keys} is empty"
    return node


def h(hex_str: str) -> bytes:
    return bytes.fromhex(hex_str)


TREE = VECTORS["tree"]
LEAF_INPUTS = [h(x) for x in _cases("tree", "leaf_inputs")]
LEAF_HASHES = [h(x) for x in _cases("tree", "leaf_hashes")]
ROOTS = {int(k): h(v) for k, v in TREE["roots_by_size"].items()}

PUBLISHED_INCLUSION = _cases("published_inclusion")
PUBLISHED_CONSISTENCY = _cases("published_consistency")
DERIVED_INCLUSION = _cases("derived_exhaustive_inclusion")
DERIVED_CONSISTENCY = _cases("derived_exhaustive_consistency")
INCLUSION_PROBES = _cases("probes", "inclusion")
CONSISTENCY_PROBES = _cases("probes", "consistency")
REAL_CT = VECTORS["real_world_ct"]

# Probes on which this verifier is deliberately stricter than transparency-dev:
# the probe's roots are 12 bytes long, and we require every hash to be 32 bytes.
STRICTER_THAN_PROBES = {
    "testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json",
}


def test_vector_file_has_every_section() -> None:
    assert len(LEAF_INPUTS) == len(LEAF_HASHES) == 8
    assert sorted(ROOTS) == list(range(9))
    assert len(PUBLISHED_INCLUSION) >= 4
    assert len(PUBLISHED_CONSISTENCY) >= 5
    assert len(DERIVED_INCLUSION) == 36  # every (index, size), 1 <= size <= 8
    assert len(DERIVED_CONSISTENCY) == 36  # every (size1, size2), 1 <= size1 <= size2 <= 8
    assert len(INCLUSION_PROBES) == 98
    assert len(CONSISTENCY_PROBES) == 98
    n_neg = sum(p["wantErr"] for p in INCLUSION_PROBES + CONSISTENCY_PROBES)
    assert n_neg == 184
    assert REAL_CT["inclusion"]["proof"] and REAL_CT["consistency"]["proof"]


# ---------------------------------------------------------------------------
# Test-only RFC 6962 generators (sections 2.1.1 and 2.1.2)
# ---------------------------------------------------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc6962_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*rfc6962_path(m, leaves[:k]), root_from_leaves(leaves[k:])]
    return [*rfc6962_path(m - k, leaves[k:]), root_from_leaves(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [root_from_leaves(leaves)]
    k = _k(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], b), root_from_leaves(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root_from_leaves(leaves[:k])]


def rfc6962_proof(m: int, leaves: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    return _subproof(m, leaves, True)


def mth_iterative(leaves: list[bytes]) -> bytes:
    """A differently-shaped MTH (level by level, odd node promoted) for cross-checks."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [hashlib.sha256(b"\x00" + x).digest() for x in leaves]
    while len(level) > 1:
        nxt = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def flip(b: bytes, pos: int = 0) -> bytes:
    return b[:pos] + bytes([b[pos] ^ 0x01]) + b[pos + 1 :]


# ---------------------------------------------------------------------------
# Merkle tree hash
# ---------------------------------------------------------------------------


def test_empty_tree_root() -> None:
    assert root_from_leaves([]) == EMPTY_TREE_ROOT == ROOTS[0]
    assert EMPTY_TREE_ROOT.hex() == VECTORS["hashing"]["empty_tree_root"]


@pytest.mark.parametrize("i", range(8))
def test_leaf_hashes(i: int) -> None:
    assert leaf_hash(LEAF_INPUTS[i]) == LEAF_HASHES[i]
    assert root_from_leaves([LEAF_INPUTS[i]]) == LEAF_HASHES[i]


@pytest.mark.parametrize("size", range(9))
def test_roots_by_size(size: int) -> None:
    assert root_from_leaves(LEAF_INPUTS[:size]) == ROOTS[size]


def test_node_hashes_by_level() -> None:
    levels = TREE["node_hashes_by_level"]
    assert len(levels) == 4
    for level, hashes in enumerate(levels):
        width = 1 << level
        for i, want in enumerate(hashes):
            assert root_from_leaves(LEAF_INPUTS[i * width : (i + 1) * width]) == h(want)


def test_node_hash_is_prefixed() -> None:
    a, b = LEAF_HASHES[0], LEAF_HASHES[1]
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest() == ROOTS[2]


def test_go_sumdb_record_hash_and_tree_golden() -> None:
    rec = VECTORS["go_sumdb"]["record_hash_hello_world"]
    assert leaf_hash(rec["data_utf8"].encode()) == h(rec["leaf_hash"])
    assert base64.b64decode(rec["leaf_hash_b64"]) == h(rec["leaf_hash"])
    origin, size, root = parse_checkpoint(VECTORS["go_sumdb"]["format_tree_golden"])
    assert (origin, size, root) == ("go.sum database tree", 123456789012, h(rec["leaf_hash"]))


@pytest.mark.parametrize("n", range(0, 70))
def test_root_matches_iterative_construction(n: int) -> None:
    leaves = [b"leaf-%d" % i for i in range(n)]
    assert root_from_leaves(leaves) == mth_iterative(leaves)


def test_root_of_2000_leaves_is_fast() -> None:
    leaves = [b"event-%d" % i for i in range(2000)]
    start = time.perf_counter()
    root = root_from_leaves(leaves)
    elapsed = time.perf_counter() - start
    assert root == mth_iterative(leaves)
    assert elapsed < 1.0, f"root_from_leaves(2000) took {elapsed:.3f}s"


# ---------------------------------------------------------------------------
# Inclusion proofs
# ---------------------------------------------------------------------------


def _inclusion_cases() -> list[tuple[str, int, int, bytes, list[bytes], bytes]]:
    cases = []
    for c in PUBLISHED_INCLUSION:
        i, n = c["index"], c["size"]
        cases.append(
            (
                f"published-{i}-{n}",
                i,
                n,
                h(c["leaf_hash"]),
                [h(p) for p in c["proof"]],
                h(c["root"]),
            )
        )
    for c in DERIVED_INCLUSION:
        i, n = c["index"], c["size"]
        proof = [h(p) for p in c["proof"]]
        cases.append((f"derived-{i}-{n}", i, n, LEAF_HASHES[i], proof, ROOTS[n]))
    assert cases
    return cases


INCLUSION_CASES = _inclusion_cases()


@pytest.mark.parametrize(
    ("index", "size", "leaf", "proof", "root"),
    [c[1:] for c in INCLUSION_CASES],
    ids=[c[0] for c in INCLUSION_CASES],
)
def test_inclusion_vectors_verify(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    assert leaf == LEAF_HASHES[index] and root == ROOTS[size]
    verify_inclusion(leaf, index, size, proof, root)
    assert rfc6962_path(index, LEAF_INPUTS[:size]) == proof


def _inclusion_mutants(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> list[tuple[str, tuple[Any, ...]]]:
    zero = bytes(32)
    out: list[tuple[str, tuple[Any, ...]]] = []
    for i in range(len(proof)):
        for pos in (0, 31):
            bad = list(proof)
            bad[i] = flip(proof[i], pos)
            out.append((f"flip proof[{i}] byte {pos}", (leaf, index, size, bad, root)))
    out.append(("flip leaf", (flip(leaf), index, size, proof, root)))
    out.append(("flip root", (leaf, index, size, proof, flip(root, 31))))
    if leaf != root:
        out.append(("swap leaf and root", (root, index, size, proof, leaf)))
    if proof:
        out.append(("drop last", (leaf, index, size, proof[:-1], root)))
        out.append(("drop first", (leaf, index, size, proof[1:], root)))
    if len(proof) > 1:
        out.append(("reverse", (leaf, index, size, proof[::-1], root)))
    out.append(("append zero", (leaf, index, size, [*proof, zero], root)))
    out.append(("append root", (leaf, index, size, [*proof, root], root)))
    out.append(("prepend zero", (leaf, index, size, [zero, *proof], root)))
    out.append(("prepend leaf", (leaf, index, size, [leaf, *proof], root)))
    if index ^ 1 < size:
        out.append(("index xor 1", (leaf, index ^ 1, size, proof, root)))
    out.append(("index = size", (leaf, size, size, proof, root)))
    out.append(("index = -1", (leaf, -1, size, proof, root)))
    out.append(("size = index", (leaf, index, index, proof, root)))
    out.append(("size = 0", (leaf, index, 0, proof, root)))
    out.append(("31-byte leaf", (leaf[:31], index, size, proof, root)))
    out.append(("33-byte root", (leaf, index, size, proof, root + b"\x00")))
    if proof:
        out.append(("33-byte node", (leaf, index, size, [proof[0] + b"\x00", *proof[1:]], root)))
    if index in (0, 1):
        out.append(("bool index", (leaf, bool(index), size, proof, root)))
    return out


@pytest.mark.parametrize(
    ("index", "size", "leaf", "proof", "root"),
    [c[1:] for c in INCLUSION_CASES],
    ids=[c[0] for c in INCLUSION_CASES],
)
def test_inclusion_corruptions_rejected(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    mutants = _inclusion_mutants(index, size, leaf, proof, root)
    assert len(mutants) >= 12
    for name, args in mutants:
        with pytest.raises(IndependentVerifyError):
            verify_inclusion(*args)
            pytest.fail(f"mutant {name!r} verified")


def test_inclusion_proof_alone_does_not_pin_tree_size() -> None:
    # RFC 9162's walk depends only on the bit patterns of (fn, sn): the audit
    # path of leaf 0 in a 3-leaf tree also "verifies" as a 4-leaf proof against
    # the 3-leaf root. The signed checkpoint's (size, root) pair is what binds.
    proof = rfc6962_path(0, LEAF_INPUTS[:3])
    verify_inclusion(LEAF_HASHES[0], 0, 3, proof, ROOTS[3])
    verify_inclusion(LEAF_HASHES[0], 0, 4, proof, ROOTS[3])
    with pytest.raises(IndependentVerifyError):
        verify_inclusion(LEAF_HASHES[0], 0, 4, proof, ROOTS[4])


@pytest.mark.parametrize("probe", INCLUSION_PROBES, ids=[p["path"] for p in INCLUSION_PROBES])
def test_inclusion_probes(probe: dict[str, Any]) -> None:
    args = (
        h(probe["leafHash"]),
        probe["leafIdx"],
        probe["treeSize"],
        [h(p) for p in probe["proof"]],
        h(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(IndependentVerifyError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


# ---------------------------------------------------------------------------
# Consistency proofs
# ---------------------------------------------------------------------------


def _consistency_cases() -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    cases = []
    for c in PUBLISHED_CONSISTENCY:
        m, n = c["size1"], c["size2"]
        proof = [h(p) for p in c["proof"]]
        cases.append((f"published-{m}-{n}", m, n, proof, h(c["root1"]), h(c["root2"])))
    for c in DERIVED_CONSISTENCY:
        m, n = c["size1"], c["size2"]
        proof = [h(p) for p in c["proof"]]
        cases.append((f"derived-{m}-{n}", m, n, proof, ROOTS[m], ROOTS[n]))
    assert cases
    return cases


CONSISTENCY_CASES = _consistency_cases()


@pytest.mark.parametrize(
    ("size1", "size2", "proof", "root1", "root2"),
    [c[1:] for c in CONSISTENCY_CASES],
    ids=[c[0] for c in CONSISTENCY_CASES],
)
def test_consistency_vectors_verify(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> None:
    assert root1 == ROOTS[size1] and root2 == ROOTS[size2]
    verify_consistency(size1, size2, proof, root1, root2)
    assert rfc6962_proof(size1, LEAF_INPUTS[:size2]) == proof


def _consistency_mutants(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> list[tuple[str, tuple[Any, ...]]]:
    zero = bytes(32)
    out: list[tuple[str, tuple[Any, ...]]] = []
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = flip(proof[i], 7)
        out.append((f"flip proof[{i}]", (size1, size2, bad, root1, root2)))
    out.append(("flip root1", (size1, size2, proof, flip(root1), root2)))
    out.append(("flip root2", (size1, size2, proof, root1, flip(root2))))
    out.append(("append zero", (size1, size2, [*proof, zero], root1, root2)))
    out.append(("append root2", (size1, size2, [*proof, root2], root1, root2)))
    out.append(("prepend root1", (size1, size2, [root1, *proof], root1, root2)))
    out.append(("size1 = 0", (0, size2, proof, root1, root2)))
    out.append(("size1 = -1", (-1, size2, proof, root1, root2)))
    out.append(("33-byte root1", (size1, size2, proof, root1 + b"\x00", root2)))
    out.append(("31-byte root2", (size1, size2, proof, root1, root2[:31])))
    if proof:
        out.append(("drop last", (size1, size2, proof[:-1], root1, root2)))
        out.append(("drop first", (size1, size2, proof[1:], root1, root2)))
        out.append(("empty proof", (size1, size2, [], root1, root2)))
        out.append(("33-byte node", (size1, size2, [proof[0] + b"\x00", *proof[1:]], root1, root2)))
    if size1 != size2:
        out.append(("swapped sizes", (size2, size1, proof, root1, root2)))
        out.append(("swapped roots", (size1, size2, proof, root2, root1)))
        out.append(("root1 := root2", (size1, size2, proof, root2, root2)))
    else:
        out.append(("non-empty proof, equal sizes", (size1, size2, [root1], root1, root2)))
        out.append(("equal sizes, other root2", (size1, size2, proof, root1, ROOTS[0])))
    return out


@pytest.mark.parametrize(
    ("size1", "size2", "proof", "root1", "root2"),
    [c[1:] for c in CONSISTENCY_CASES],
    ids=[c[0] for c in CONSISTENCY_CASES],
)
def test_consistency_corruptions_rejected(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> None:
    mutants = _consistency_mutants(size1, size2, proof, root1, root2)
    assert len(mutants) >= 10
    for name, args in mutants:
        with pytest.raises(IndependentVerifyError):
            verify_consistency(*args)
            pytest.fail(f"mutant {name!r} verified")


@pytest.mark.parametrize("probe", CONSISTENCY_PROBES, ids=[p["path"] for p in CONSISTENCY_PROBES])
def test_consistency_probes(probe: dict[str, Any]) -> None:
    args = (
        probe["size1"],
        probe["size2"],
        [h(p) for p in probe["proof"]],
        h(probe["root1"]),
        h(probe["root2"]),
    )
    if probe["wantErr"] or probe["path"] in STRICTER_THAN_PROBES:
        with pytest.raises(IndependentVerifyError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_stricter_than_probes_is_exactly_the_short_root_case() -> None:
    by_path = {p["path"]: p for p in CONSISTENCY_PROBES + INCLUSION_PROBES}
    for path in STRICTER_THAN_PROBES:
        probe = by_path[path]
        assert probe["wantErr"] is False
        assert len(h(probe["root1"])) != 32
        # The same shape with 32-byte roots is accepted: only the length matters.
        same = hashlib.sha256(h(probe["root1"])).digest()
        verify_consistency(probe["size1"], probe["size2"], [], same, same)


# ---------------------------------------------------------------------------
# Real Certificate Transparency log (Google Argon 2020)
# ---------------------------------------------------------------------------


def test_real_ct_root_encoding() -> None:
    assert base64.b64decode(REAL_CT["root_b64"]) == h(REAL_CT["root"])
    assert base64.b64decode(REAL_CT["consistency"]["root1_b64"]) == h(REAL_CT["consistency"]["root1"])


def test_real_ct_inclusion() -> None:
    inc = REAL_CT["inclusion"]
    lh = leaf_hash(base64.b64decode(inc["leaf_input_b64"]))
    assert lh == h(inc["leaf_hash"])
    proof = [h(p) for p in inc["proof"]]
    size, root = REAL_CT["tree_size"], h(REAL_CT["root"])
    verify_inclusion(lh, inc["index"], size, proof, root)
    for name, args in _inclusion_mutants(inc["index"], size, lh, proof, root):
        with pytest.raises(IndependentVerifyError):
            verify_inclusion(*args)
            pytest.fail(f"mutant {name!r} verified")


def test_real_ct_consistency() -> None:
    c = REAL_CT["consistency"]
    assert c["size2"] == REAL_CT["tree_size"]
    proof = [h(p) for p in c["proof"]]
    args = (c["size1"], c["size2"], proof, h(c["root1"]), h(REAL_CT["root"]))
    verify_consistency(*args)
    for name, margs in _consistency_mutants(*args):
        with pytest.raises(IndependentVerifyError):
            verify_consistency(*margs)
            pytest.fail(f"mutant {name!r} verified")


# ---------------------------------------------------------------------------
# Generated trees: every proof of small trees, samples from a 2,000-leaf tree
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 34))
def test_all_proofs_of_small_trees(n: int) -> None:
    leaves = [b"entry %d" % i for i in range(n)]
    roots = [root_from_leaves(leaves[:m]) for m in range(n + 1)]
    for m in range(n):
        path = rfc6962_path(m, leaves)
        verify_inclusion(leaf_hash(leaves[m]), m, n, path, roots[n])
        with pytest.raises(IndependentVerifyError):
            verify_inclusion(leaf_hash(leaves[m]), m, n, path, roots[n - 1])
    for m in range(1, n + 1):
        proof = rfc6962_proof(m, leaves)
        verify_consistency(m, n, proof, roots[m], roots[n])
        if m < n:
            with pytest.raises(IndependentVerifyError):
                verify_consistency(m, n, proof, roots[m - 1] if m > 1 else roots[n], roots[n])


def test_samples_from_a_2000_leaf_tree() -> None:
    leaves = [json.dumps({"i": i}).encode() for i in range(2000)]
    root = root_from_leaves(leaves)
    for m in (0, 1, 2, 511, 999, 1023, 1024, 1536, 1998, 1999):
        verify_inclusion(leaf_hash(leaves[m]), m, 2000, rfc6962_path(m, leaves), root)
    for m, n in ((1, 2000), (7, 1025), (1000, 2000), (1024, 2000), (1999, 2000), (2000, 2000)):
        proof = rfc6962_proof(m, leaves[:n])
        verify_consistency(m, n, proof, root_from_leaves(leaves[:m]), root_from_leaves(leaves[:n]))


# ---------------------------------------------------------------------------
# Signed notes: published examples
# ---------------------------------------------------------------------------

EM = "\u2014"

# golang.org/x/mod sumdb/note note_test.go (TestSign/TestOpen) and package doc.
PETER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_KEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    f"{EM} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    f"{EM} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

# The worked example of c2sp.org/signed-note as of C2SP commit d4c16da5 (it
# had a "Verifier keys" section then; the current text's quasimodo example
# publishes no key). Quoted identically by several independent test suites;
# an Ed25519 signature cannot be forged, so verifying it confirms the copy.
SPEC_KEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    f"{EM} example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# c2sp.org/tlog-checkpoint example (its key is not published: parse only).
CHECKPOINT_SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def test_parse_published_verifier_keys() -> None:
    name, key_id, pub = parse_verifier_key(PETER_KEY)
    assert (name, key_id.hex(), len(pub)) == ("PeterNeumann", "c74f20a3", 32)
    assert hashlib.sha256(b"PeterNeumann\n\x01" + pub).digest()[:4] == key_id
    assert parse_verifier_key(ENOCH_KEY)[:2] == ("EnochRoot", bytes.fromhex("af0cfe78"))
    assert parse_verifier_key(SPEC_KEY)[:2] == ("example.com/foo", bytes.fromhex("530d903a"))


def test_go_note_example_verifies() -> None:
    assert verify_note(GO_TEXT + "\n" + PETER_SIG, PETER_KEY) == GO_TEXT


def test_signed_note_spec_example_verifies() -> None:
    assert verify_note(SPEC_NOTE, SPEC_KEY) == "This is an example message.\n"
    with pytest.raises(IndependentVerifyError):
        verify_note(SPEC_NOTE.replace("example message", "example massage"), SPEC_KEY)
    with pytest.raises(IndependentVerifyError):
        verify_note(SPEC_NOTE, PETER_KEY)


def test_go_two_signers() -> None:
    note = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert verify_note(note, PETER_KEY) == GO_TEXT
    assert verify_note(note, ENOCH_KEY) == GO_TEXT
    with pytest.raises(IndependentVerifyError):
        verify_note(GO_TEXT + "\n" + ENOCH_SIG, PETER_KEY)  # no signature from Peter


def test_go_duplicated_and_corrupt_other_signatures() -> None:
    bad_enoch = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    note = GO_TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + bad_enoch
    # Enoch's lines, even the corrupt one, are signatures from an unknown key.
    assert verify_note(note, PETER_KEY) == GO_TEXT
    # For Enoch they are known-key lines, and one fails: reject the whole note.
    with pytest.raises(IndependentVerifyError):
        verify_note(note, ENOCH_KEY)


def test_go_invalid_signature() -> None:
    with pytest.raises(IndependentVerifyError):
        verify_note(GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], PETER_KEY)


@pytest.mark.parametrize(
    "msg",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        "\udcff" + GO_TEXT + "\n" + PETER_SIG,  # not encodable as UTF-8
        GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + PETER_SIG + "\n",
        GO_TEXT.replace("\n", "\r\n") + "\r\n" + PETER_SIG,
        GO_TEXT + "\n" + PETER_SIG.replace(EM, "--"),
        GO_TEXT + "\n" + PETER_SIG.replace(EM, "\u2013"),  # en dash
        GO_TEXT + "\n" + PETER_SIG.replace(" x08go", "  x08go"),
        GO_TEXT + "\n" + PETER_SIG.replace("=\n", "= \n"),
        GO_TEXT + "\n" + PETER_SIG.replace("=\n", "\n"),  # unpadded base64
        GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),
        GO_TEXT + PETER_SIG,  # no blank line
        "",
    ],
)
def test_malformed_notes_rejected(msg: str) -> None:
    with pytest.raises(IndependentVerifyError):
        verify_note(msg, PETER_KEY)


def test_signature_count_limit() -> None:
    assert verify_note(GO_TEXT + "\n" + PETER_SIG * 16, PETER_KEY) == GO_TEXT
    assert verify_note(GO_TEXT + "\n" + PETER_SIG * 100, PETER_KEY) == GO_TEXT
    with pytest.raises(IndependentVerifyError):
        verify_note(GO_TEXT + "\n" + PETER_SIG * 101, PETER_KEY)


def test_go_verifier_key_manglings_rejected() -> None:
    # Port of golang.org/x/mod sumdb/note TestNewVerifier.
    b = PETER_KEY.encode()
    rejected = 0
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if i == 0 and j == len(b):
                continue
            with pytest.raises(IndependentVerifyError):
                parse_verifier_key(b[i:j].decode())
            rejected += 1
    for i in range(len(b)):
        mangled = b[:i] + bytes([b[i] + 1]) + b[i + 1 :]
        with pytest.raises(IndependentVerifyError):
            parse_verifier_key(mangled.decode())
        rejected += 1
    assert rejected > 2000
    for bad in (
        # wrong length key, with adjusted key hash
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        # unknown algorithm, with adjusted key hash
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        PETER_KEY.replace("c74f20a3", "C74F20A3"),  # key IDs are lowercase hex here
        PETER_KEY + "\n",
        " " + PETER_KEY,
    ):
        with pytest.raises(IndependentVerifyError):
            parse_verifier_key(bad)


# ---------------------------------------------------------------------------
# Signed notes built by hand with a fresh key
# ---------------------------------------------------------------------------


class Key:
    """An Ed25519 note key built by hand from the c2sp.org/signed-note text."""

    def __init__(self, name: str, seed: bytes | None = None) -> None:
        self.name = name
        self.priv = Ed25519PrivateKey.from_private_bytes(seed) if seed else Ed25519PrivateKey.generate()
        self.pub = self.priv.public_key().public_bytes_raw()
        self.key_id = hashlib.sha256(name.encode() + b"\n" + b"\x01" + self.pub).digest()[:4]
        b64 = base64.b64encode(b"\x01" + self.pub).decode()
        self.vkey = f"{name}+{self.key_id.hex()}+{b64}"

    def sig_line(self, text: str, *, key_id: bytes | None = None, name: str | None = None) -> str:
        blob = (key_id or self.key_id) + self.priv.sign(text.encode("utf-8"))
        return f"{EM} {name or self.name} {base64.b64encode(blob).decode()}\n"

    def sign(self, text: str) -> str:
        return text + "\n" + self.sig_line(text)


ORIGIN = "example.test/flightlog"


@pytest.fixture(scope="module")
def key() -> Key:
    return Key(ORIGIN, hashlib.sha256(b"independent verifier test key").digest())


@pytest.fixture(scope="module")
def other_key() -> Key:
    return Key(ORIGIN, hashlib.sha256(b"another key with the same name").digest())


TEXT = f"{ORIGIN}\n5\n{base64.b64encode(ROOTS[5]).decode()}\n"


def test_hand_built_note_verifies(key: Key) -> None:
    assert parse_verifier_key(key.vkey) == (key.name, key.key_id, key.pub)
    note = key.sign(TEXT)
    assert note.endswith("\n") and "\n\n" + EM in note
    assert verify_note(note, key.vkey) == TEXT
    assert parse_checkpoint(verify_note(note, key.vkey)) == (ORIGIN, 5, ROOTS[5])


def test_fresh_random_key(key: Key) -> None:
    k = Key("random.example/log")
    assert verify_note(k.sign("hello\n"), k.vkey) == "hello\n"
    with pytest.raises(IndependentVerifyError):
        verify_note(k.sign("hello\n"), key.vkey)


def test_wrong_key_rejected(key: Key, other_key: Key) -> None:
    with pytest.raises(IndependentVerifyError):
        verify_note(other_key.sign(TEXT), key.vkey)


def test_flipped_signature_byte_rejected(key: Key) -> None:
    text_part, sig_part = key.sign(TEXT).rsplit("\n\n", 1)
    b64 = sig_part.rstrip("\n").rsplit(" ", 1)[1]
    blob = base64.b64decode(b64)
    for pos in (4, 40, 67):  # inside the 64-byte Ed25519 signature
        bad = base64.b64encode(flip(blob, pos)).decode()
        with pytest.raises(IndependentVerifyError):
            verify_note(text_part + "\n\n" + sig_part.replace(b64, bad), key.vkey)


def test_flipped_text_byte_rejected(key: Key) -> None:
    note = key.sign(TEXT)
    for pos in (0, len(ORIGIN) + 1, len(TEXT) - 2):
        bad = note[:pos] + chr(ord(note[pos]) ^ 0x01) + note[pos + 1 :]
        with pytest.raises(IndependentVerifyError):
            verify_note(bad, key.vkey)


def test_signature_must_cover_final_newline(key: Key) -> None:
    # Signing the text without its final newline is a classic mistake.
    note = TEXT + "\n" + key.sig_line(TEXT[:-1])
    with pytest.raises(IndependentVerifyError):
        verify_note(note, key.vkey)


def test_missing_blank_line_rejected(key: Key) -> None:
    with pytest.raises(IndependentVerifyError):
        verify_note(TEXT + key.sig_line(TEXT), key.vkey)


def test_missing_trailing_newline_rejected(key: Key) -> None:
    with pytest.raises(IndependentVerifyError):
        verify_note(key.sign(TEXT)[:-1], key.vkey)


def test_wrong_key_id_is_an_unknown_key(key: Key) -> None:
    # Same name, other key ID: the line is ignored, so no signature is left.
    note = TEXT + "\n" + key.sig_line(TEXT, key_id=flip(key.key_id, 3))
    with pytest.raises(IndependentVerifyError, match="no signature"):
        verify_note(note, key.vkey)
    # Same key ID, other name: also ignored.
    note = TEXT + "\n" + key.sig_line(TEXT, name="other.example/log")
    with pytest.raises(IndependentVerifyError, match="no signature"):
        verify_note(note, key.vkey)


def test_verifier_key_with_wrong_key_id_rejected(key: Key) -> None:
    name, id_hex, b64 = key.vkey.split("+", 2)
    bad_id = flip(key.key_id, 0).hex()
    with pytest.raises(IndependentVerifyError):
        parse_verifier_key(f"{name}+{bad_id}+{b64}")
    with pytest.raises(IndependentVerifyError):
        parse_verifier_key(f"other.example+{id_hex}+{b64}")
    with pytest.raises(IndependentVerifyError):
        verify_note(key.sign(TEXT), f"{name}+{bad_id}+{b64}")


def test_unknown_signatures_are_ignored(key: Key, other_key: Key) -> None:
    stranger = Key("witness.example/w1", hashlib.sha256(b"witness").digest())
    note = TEXT + "\n" + stranger.sig_line(TEXT) + key.sig_line(TEXT)
    assert verify_note(note, key.vkey) == TEXT
    assert verify_note(note, stranger.vkey) == TEXT
    with pytest.raises(IndependentVerifyError):
        verify_note(note, other_key.vkey)


def test_failing_known_key_signature_rejects_note(key: Key) -> None:
    good = key.sig_line(TEXT)
    bad = key.sig_line(TEXT + "tampered\n")  # same name and key ID, wrong message
    for lines in (bad + good, good + bad):
        with pytest.raises(IndependentVerifyError):
            verify_note(TEXT + "\n" + lines, key.vkey)


def test_known_key_signature_of_wrong_length_rejected(key: Key) -> None:
    blob = key.key_id + key.priv.sign(TEXT.encode()) + b"\x00"
    line = f"{EM} {key.name} {base64.b64encode(blob).decode()}\n"
    with pytest.raises(IndependentVerifyError):
        verify_note(TEXT + "\n" + line, key.vkey)


def test_text_with_empty_lines_splits_at_last_blank_line(key: Key) -> None:
    text = "first paragraph\n\nsecond paragraph\n"
    assert verify_note(key.sign(text), key.vkey) == text


@pytest.mark.parametrize("text", ["tab\there\n", "cr\rhere\n", "nul\x00\n", "esc\x1b\n"])
def test_control_characters_rejected(key: Key, text: str) -> None:
    with pytest.raises(IndependentVerifyError):
        verify_note(key.sign(text), key.vkey)


def test_non_ascii_text_and_name(key: Key) -> None:
    k = Key("caffè.example/log", hashlib.sha256(b"unicode").digest())
    text = "Ognuno sta solo sul cuor della terra\ned è subito sera.\n"
    assert verify_note(k.sign(text), k.vkey) == text


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------


def test_checkpoint_spec_example_parses() -> None:
    origin, size, root = parse_checkpoint(CHECKPOINT_SPEC_TEXT)
    assert (origin, size) == ("example.com/behind-the-sofa", 20852163)
    assert root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")


ROOT_B64 = base64.b64encode(ROOTS[8]).decode()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (f"o\n8\n{ROOT_B64}\n", ("o", 8, ROOTS[8])),
        (f"o\n0\n{base64.b64encode(ROOTS[0]).decode()}\n", ("o", 0, ROOTS[0])),
        (f"o\n8\n{ROOT_B64}\next one\next two\n", ("o", 8, ROOTS[8])),
        (f"log with spaces\n8\n{ROOT_B64}\n", ("log with spaces", 8, ROOTS[8])),
        (f"o\n18446744073709551615\n{ROOT_B64}\n", ("o", 2**64 - 1, ROOTS[8])),
    ],
)
def test_checkpoint_parses(text: str, want: tuple[str, int, bytes]) -> None:
    assert parse_checkpoint(text) == want


@pytest.mark.parametrize(
    "text",
    [
        "",
        "o\n8\n",
        f"o\n8\n{ROOT_B64}",  # no final newline
        f"\n8\n{ROOT_B64}\n",  # empty origin
        f"o\n08\n{ROOT_B64}\n",
        f"o\n00\n{ROOT_B64}\n",
        f"o\n+8\n{ROOT_B64}\n",
        f"o\n-8\n{ROOT_B64}\n",
        f"o\n 8\n{ROOT_B64}\n",
        f"o\n8 \n{ROOT_B64}\n",
        f"o\n\u0668\n{ROOT_B64}\n",  # ARABIC-INDIC DIGIT EIGHT: str.isdigit() says yes
        f"o\n8.0\n{ROOT_B64}\n",
        f"o\n0x8\n{ROOT_B64}\n",
        f"o\n\n{ROOT_B64}\n",
        f"o\n18446744073709551616\n{ROOT_B64}\n",
        f"o\n8\n{ROOT_B64}\n\n",  # empty extension line
        f"o\n8\n{ROOT_B64}\n\next\n",
        f"o\r\n8\r\n{ROOT_B64}\r\n",
        f"o\n8\n{ROOT_B64.rstrip('=')}\n",  # unpadded
        f"o\n8\n{ROOT_B64} \n",
        f"o\n8\n{base64.urlsafe_b64encode(bytes([0xFB]) * 32).decode()}\n",
        f"o\n8\n{base64.b64encode(ROOTS[8][:31]).decode()}\n",
        f"o\n8\n{base64.b64encode(ROOTS[8] + b'x').decode()}\n",
        f"o\n8\n{ROOTS[8].hex()}\n",  # hex, not base64
        f"o\n8\n{ROOT_B64[:-2]}B=\n",  # non-canonical trailing bits
    ],
)
def test_checkpoint_rejects(text: str) -> None:
    with pytest.raises(IndependentVerifyError):
        parse_checkpoint(text)


# ---------------------------------------------------------------------------
# check_cli_outputs: synthetic flightlog-shaped outputs built from the specs
# ---------------------------------------------------------------------------

N_LEAVES = 13
CLI_LEAVES = [json.dumps({"seq": i, "kind": "tool_call", "id": f"evt-{i:04d}"}).encode() for i in range(N_LEAVES)]


def _checkpoint_note(k: Key, size: int) -> str:
    root = root_from_leaves(CLI_LEAVES[:size])
    return k.sign(f"{ORIGIN}\n{size}\n{base64.b64encode(root).decode()}\n")


def _bundle(k: Key, retired: Key) -> dict[str, Any]:
    size = N_LEAVES
    root = root_from_leaves(CLI_LEAVES)
    checkpoint = {
        "origin": ORIGIN,
        "size": size,
        "root": root.hex(),
        "note": _checkpoint_note(k, size),
        "verifier_key": k.vkey,
        "verifier_keys": [retired.vkey, k.vkey],
    }
    leaves = "".join(
        json.dumps({"index": i, "event_id": f"evt-{i:04d}", "leaf": base64.b64encode(x).decode()}) + "\n"
        for i, x in enumerate(CLI_LEAVES)
    )
    inclusion = {
        "index": 5,
        "size": size,
        "leaf_hash": leaf_hash(CLI_LEAVES[5]).hex(),
        "proof": [p.hex() for p in rfc6962_path(5, CLI_LEAVES)],
        "root": root.hex(),
        "note": checkpoint["note"],
    }
    consistency = {
        "size1": 6,
        "size2": size,
        "root1": root_from_leaves(CLI_LEAVES[:6]).hex(),
        "root2": root.hex(),
        "proof": [p.hex() for p in rfc6962_proof(6, CLI_LEAVES)],
    }
    return {
        "checkpoint": checkpoint,
        "leaves": leaves,
        "inclusion": inclusion,
        "consistency": consistency,
    }


@pytest.fixture(scope="module")
def retired_key() -> Key:
    return Key(ORIGIN, hashlib.sha256(b"retired key").digest())


@pytest.fixture
def bundle(key: Key, retired_key: Key) -> dict[str, Any]:
    return _bundle(key, retired_key)


def _check(b: dict[str, Any]) -> None:
    check_cli_outputs(b["checkpoint"], b["leaves"], b["inclusion"], b["consistency"])


def test_cli_bundle_passes(bundle: dict[str, Any]) -> None:
    _check(bundle)
    check_cli_outputs(bundle["checkpoint"], bundle["leaves"], None, None)


def test_cli_bundle_older_inclusion_signed_by_retired_key(bundle: dict[str, Any], retired_key: Key) -> None:
    size = 9
    root = root_from_leaves(CLI_LEAVES[:size])
    bundle["inclusion"] = {
        "index": 8,
        "size": size,
        "leaf_hash": leaf_hash(CLI_LEAVES[8]).hex(),
        "proof": [p.hex() for p in rfc6962_path(8, CLI_LEAVES[:size])],
        "root": root.hex(),
        "note": _checkpoint_note(retired_key, size),
    }
    _check(bundle)


def test_cli_bundle_with_extra_exported_leaves_and_consistency_from_empty(key: Key, retired_key: Key) -> None:
    b = _bundle(key, retired_key)
    b["checkpoint"]["size"] = 11
    b["checkpoint"]["root"] = root_from_leaves(CLI_LEAVES[:11]).hex()
    b["checkpoint"]["note"] = _checkpoint_note(key, 11)
    b["inclusion"] = None
    b["consistency"] = {
        "size1": 0,
        "size2": 11,
        "root1": EMPTY_TREE_ROOT.hex(),
        "root2": b["checkpoint"]["root"],
        "proof": [],
    }
    _check(b)  # export holds 13 leaves; the checkpoint covers the first 11


def test_cli_export_with_raw_line_separator_in_event_id(key: Key, retired_key: Key) -> None:
    b = _bundle(key, retired_key)
    rows = [json.loads(line) for line in b["leaves"].splitlines()]
    rows[2]["event_id"] = "evt\u2028with\x85separators"
    b["leaves"] = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    assert "\u2028" in b["leaves"]
    _check(b)


def _leaf_lines(b: dict[str, Any]) -> list[str]:
    lines: list[str] = b["leaves"].splitlines(keepends=True)
    return lines


def _set_leaf(b: dict[str, Any], i: int, raw: bytes) -> None:
    lines = _leaf_lines(b)
    row = json.loads(lines[i])
    row["leaf"] = base64.b64encode(raw).decode()
    lines[i] = json.dumps(row) + "\n"
    b["leaves"] = "".join(lines)


def _tamper_cases(key: Key, other: Key) -> dict[str, Callable[[dict[str, Any]], None]]:
    def resign_other(b: dict[str, Any]) -> None:
        b["checkpoint"]["note"] = other.sign(verify_note(b["checkpoint"]["note"], key.vkey))

    def other_listed_key(b: dict[str, Any]) -> None:
        b["checkpoint"]["verifier_key"] = other.vkey
        b["checkpoint"]["verifier_keys"].append(other.vkey)

    def unlisted_key(b: dict[str, Any]) -> None:
        b["checkpoint"]["verifier_keys"] = [k for k in b["checkpoint"]["verifier_keys"] if k != key.vkey]

    def note_size_edit(b: dict[str, Any]) -> None:
        b["checkpoint"]["note"] = b["checkpoint"]["note"].replace(f"\n{N_LEAVES}\n", "\n12\n", 1)

    def set_(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
        def apply(b: dict[str, Any]) -> None:
            node = b
            for p in path[:-1]:
                node = node[p]
            node[path[-1]] = value

        return apply

    def leaf_edit(b: dict[str, Any]) -> None:
        _set_leaf(b, 3, CLI_LEAVES[3].replace(b"tool_call", b"tool_kall"))

    def leaf_noncanonical_b64(b: dict[str, Any]) -> None:
        lines = _leaf_lines(b)
        row = json.loads(lines[0])
        row["leaf"] = row["leaf"].replace("=", "")
        lines[0] = json.dumps(row) + "\n"
        b["leaves"] = "".join(lines)

    def drop_leaf_line(b: dict[str, Any]) -> None:
        lines = _leaf_lines(b)
        del lines[4]
        b["leaves"] = "".join(lines)

    def truncate_export(b: dict[str, Any]) -> None:
        b["leaves"] = "".join(_leaf_lines(b)[:-1])

    def swap_leaf_lines(b: dict[str, Any]) -> None:
        lines = _leaf_lines(b)
        lines[2], lines[3] = lines[3], lines[2]
        b["leaves"] = "".join(lines)

    def swap_leaf_payloads(b: dict[str, Any]) -> None:
        _set_leaf(b, 2, CLI_LEAVES[3])
        _set_leaf(b, 3, CLI_LEAVES[2])

    def inclusion_flip_node(b: dict[str, Any]) -> None:
        proof = b["inclusion"]["proof"]
        proof[1] = flip(bytes.fromhex(proof[1]), 9).hex()

    def inclusion_note_other_size(b: dict[str, Any]) -> None:
        b["inclusion"]["note"] = _checkpoint_note(key, 12)

    def inclusion_note_foreign_key(b: dict[str, Any]) -> None:
        b["inclusion"]["note"] = _checkpoint_note(other, N_LEAVES)

    def inclusion_other_origin(b: dict[str, Any]) -> None:
        k2 = Key("other.example/log", hashlib.sha256(b"o").digest())
        b["checkpoint"]["verifier_keys"].append(k2.vkey)
        root = root_from_leaves(CLI_LEAVES)
        b["inclusion"]["note"] = k2.sign(f"other.example/log\n{N_LEAVES}\n{base64.b64encode(root).decode()}\n")

    def consistency_flip_node(b: dict[str, Any]) -> None:
        proof = b["consistency"]["proof"]
        proof[0] = flip(bytes.fromhex(proof[0]), 0).hex()

    def consistency_root2_for_other_size(b: dict[str, Any]) -> None:
        b["consistency"]["size2"] = 12
        b["consistency"]["proof"] = [p.hex() for p in rfc6962_proof(6, CLI_LEAVES[:12])]

    def checkpoint_only(
        tamper: Callable[[dict[str, Any]], None],
    ) -> Callable[[dict[str, Any]], None]:
        # With no proofs to cross-check, only the checkpoint-level checks remain.
        def apply(b: dict[str, Any]) -> None:
            b["inclusion"] = None
            b["consistency"] = None
            tamper(b)

        return apply

    def shift_index_fields(b: dict[str, Any]) -> None:
        rows = [json.loads(line) for line in _leaf_lines(b)]
        b["leaves"] = "".join(json.dumps({**r, "index": r["index"] + 1}) + "\n" for r in rows)

    def duplicate_index_field(b: dict[str, Any]) -> None:
        rows = [json.loads(line) for line in _leaf_lines(b)]
        rows[4]["index"] = 3
        b["leaves"] = "".join(json.dumps(r) + "\n" for r in rows)

    root_hex = root_from_leaves(CLI_LEAVES).hex()
    return {
        "checkpoint only: exported leaf edited": checkpoint_only(leaf_edit),
        "checkpoint only: verifier_key not in verifier_keys": checkpoint_only(unlisted_key),
        "checkpoint only: export index fields start at 1": checkpoint_only(shift_index_fields),
        "checkpoint only: duplicated export index": checkpoint_only(duplicate_index_field),
        "note signed by another key": resign_other,
        "verifier_key swapped for another listed key": other_listed_key,
        "verifier_key not in verifier_keys": unlisted_key,
        "size edited inside the signed note": note_size_edit,
        "JSON root differs": set_(("checkpoint", "root"), ROOTS[8].hex()),
        "JSON root upper-case hex": set_(("checkpoint", "root"), root_hex.upper()),
        "JSON size differs": set_(("checkpoint", "size"), N_LEAVES - 1),
        "JSON size is a string": set_(("checkpoint", "size"), str(N_LEAVES)),
        "JSON origin differs": set_(("checkpoint", "origin"), "example.test/other"),
        "JSON note missing": set_(("checkpoint", "note"), None),
        "exported leaf edited": leaf_edit,
        "exported leaf non-canonical base64": leaf_noncanonical_b64,
        "exported leaf line dropped": drop_leaf_line,
        "export truncated below size": truncate_export,
        "exported lines out of order": swap_leaf_lines,
        "exported payloads swapped": swap_leaf_payloads,
        "export is not JSON": set_(("leaves",), "not json\n"),
        "inclusion index moved": set_(("inclusion", "index"), 4),
        "inclusion index out of range": set_(("inclusion", "index"), N_LEAVES),
        "inclusion index is bool": set_(("inclusion", "index"), True),
        "inclusion leaf_hash of another leaf": set_(("inclusion", "leaf_hash"), leaf_hash(CLI_LEAVES[6]).hex()),
        "inclusion proof node flipped": inclusion_flip_node,
        "inclusion proof truncated": set_(("inclusion", "proof"), []),
        "inclusion root differs": set_(("inclusion", "root"), ROOTS[8].hex()),
        "inclusion size differs from its note": set_(("inclusion", "size"), 12),
        "inclusion note of another size": inclusion_note_other_size,
        "inclusion note by an unlisted key": inclusion_note_foreign_key,
        "inclusion note from another origin": inclusion_other_origin,
        "consistency root1 differs": set_(("consistency", "root1"), root_from_leaves(CLI_LEAVES[:5]).hex()),
        "consistency root2 differs": set_(("consistency", "root2"), ROOTS[8].hex()),
        "consistency proof node flipped": consistency_flip_node,
        "consistency size2 beyond export": set_(("consistency", "size2"), N_LEAVES + 1),
        "consistency size2 mislabelled": consistency_root2_for_other_size,
        "consistency from empty with a proof": set_(
            ("consistency",),
            {
                "size1": 0,
                "size2": N_LEAVES,
                "root1": EMPTY_TREE_ROOT.hex(),
                "root2": root_hex,
                "proof": [root_hex],
            },
        ),
    }


TAMPER_NAMES = sorted(
    _tamper_cases(Key("x.example"), Key("y.example")).keys()  # names only
)


@pytest.mark.parametrize("case", TAMPER_NAMES)
def test_cli_bundle_tampering_detected(case: str, bundle: dict[str, Any], key: Key, other_key: Key) -> None:
    tampered = copy.deepcopy(bundle)
    _tamper_cases(key, other_key)[case](tampered)
    assert tampered != bundle
    with pytest.raises(IndependentVerifyError):
        _check(tampered)
