"""An auditor with no flightlog code checks what the CLI hands out (tests/independent/)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CliRunner, jsonl, make_event
from tests.independent import verifier


def _outputs(flightlog: CliRunner, *proof_args: str) -> tuple[dict, str, dict, dict]:  # type: ignore[type-arg]
    cp = json.loads(flightlog("checkpoint", "--json", check=True).stdout)
    leaves = flightlog("export", "--format", "leaves", check=True).stdout
    inclusion = json.loads(flightlog("proof", "inclusion", proof_args[0], "--json", check=True).stdout)
    consistency = json.loads(flightlog("proof", "consistency", *proof_args[1:], "--json", check=True).stdout)
    return cp, leaves, inclusion, consistency


def test_cli_outputs_verify_independently(home: Path, flightlog: CliRunner) -> None:
    flightlog("ingest", "-", input=jsonl([make_event(i) for i in range(13)]), check=True)
    old = json.loads(flightlog("checkpoint", "--json", check=True).stdout)
    flightlog("ingest", "-", input=jsonl([make_event(i) for i in range(13, 37)]), check=True)
    cp, leaves, inclusion, consistency = _outputs(flightlog, "11", "13", "37")
    assert cp["size"] == 37 and inclusion["size"] == 37
    verifier.check_cli_outputs(cp, leaves, inclusion, consistency)
    # The old checkpoint, saved by the auditor, is still consistent with the new one.
    verifier.verify_note(old["note"], old["verifier_key"])
    verifier.verify_consistency(
        13,
        37,
        [bytes.fromhex(h) for h in consistency["proof"]],
        bytes.fromhex(old["root"]),
        bytes.fromhex(cp["root"]),
    )
    # Inclusion by event id gives the same proof.
    event_id = json.loads(leaves.splitlines()[11])["event_id"]
    by_id = json.loads(flightlog("proof", "inclusion", event_id, "--json", check=True).stdout)
    assert by_id["proof"] == inclusion["proof"]


def test_audit_after_key_rotation(home: Path, flightlog: CliRunner) -> None:
    flightlog("ingest", "-", input=jsonl([make_event(i) for i in range(5)]), check=True)
    before = json.loads(flightlog("checkpoint", "--json", check=True).stdout)
    flightlog("keys", "rotate", check=True)
    flightlog("ingest", "-", input=jsonl([make_event(i) for i in range(5, 9)]), check=True)
    cp, leaves, inclusion, consistency = _outputs(flightlog, "2", "5", "9")
    assert before["verifier_key"] in cp["verifier_keys"]
    assert cp["verifier_key"] != before["verifier_key"]
    verifier.check_cli_outputs(cp, leaves, inclusion, consistency)
    verifier.verify_note(before["note"], before["verifier_key"])


def test_tampered_export_is_caught_independently(home: Path, flightlog: CliRunner) -> None:
    flightlog("ingest", "-", input=jsonl([make_event(i) for i in range(6)]), check=True)
    cp, leaves, inclusion, consistency = _outputs(flightlog, "3", "2", "6")
    rows = [json.loads(line) for line in leaves.splitlines()]
    rows[4]["leaf"] = rows[5]["leaf"]
    bad = "".join(json.dumps(r) + "\n" for r in rows)
    try:
        verifier.check_cli_outputs(cp, bad, inclusion, consistency)
    except verifier.IndependentVerifyError:
        return
    raise AssertionError("a changed leaf passed the independent audit")
