"""The CLI as a user meets it: help, bad input, all-or-nothing ingest, traces and show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import TRACE, CliRunner, jsonl, make_event


def test_help_lists_every_command(flightlog: CliRunner) -> None:
    out = flightlog("--help", check=True).stdout
    for command in ("ingest", "verify", "checkpoint", "proof", "export", "keys", "traces", "show"):
        assert command in out


def test_bad_lines_are_reported_and_nothing_is_stored(home: Path, flightlog: CliRunner) -> None:
    good = make_event(0)
    lines = [json.dumps(good), "{not json", json.dumps(make_event(1, span_id="xyz")), ""]
    proc = flightlog("ingest", "-", input="\n".join(lines) + "\n")
    assert proc.returncode != 0
    assert "line 2: $: invalid JSON" in proc.stderr
    assert "line 3: $.span_id" in proc.stderr
    assert "nothing was stored" in proc.stderr
    assert flightlog("export").stdout == ""
    assert "no traces" in flightlog("traces").stdout


def test_missing_file_is_a_clear_error(flightlog: CliRunner, tmp_path: Path) -> None:
    proc = flightlog("ingest", str(tmp_path / "nope.jsonl"))
    assert proc.returncode != 0 and "cannot read" in proc.stderr


def test_traces_and_show_tree(flightlog: CliRunner) -> None:
    events = [make_event(i) for i in range(4)]
    events[2]["parent_span_id"] = events[1]["span_id"]
    events[1]["status"] = "error"
    events[1]["payload"]["error"] = "ls: cannot access 'src': No such file or directory"
    flightlog("ingest", "-", input=jsonl(events), check=True)
    assert TRACE in flightlog("traces", check=True).stdout
    lines = flightlog("show", TRACE, check=True).stdout.splitlines()
    assert lines[0].startswith(f"trace {TRACE} (4 events)")
    assert lines[1].startswith("#0 ") and "prompt" in lines[1]
    assert lines[2].startswith("  #1 ") and "Bash" in lines[2] and "[error]" in lines[2]
    assert "→ ls: cannot access 'src'" in lines[2]  # why it failed, not only that it did
    assert lines[3].startswith("    #2 ") and "pytest" in lines[3]
    assert lines[4].startswith("  #3 ") and "patch src/mod3.py" in lines[4]
    assert flightlog("show", "f" * 32).returncode != 0


def test_proof_of_unknown_entry_is_a_clear_error(flightlog: CliRunner) -> None:
    flightlog("ingest", "-", input=jsonl([make_event(0)]), check=True)
    proc = flightlog("proof", "inclusion", "5")
    assert proc.returncode != 0 and "entry 5" in proc.stderr
    proc = flightlog("proof", "inclusion", "no-such-id")
    assert proc.returncode != 0 and "no entry" in proc.stderr


def test_user_rules_extend_redaction(flightlog: CliRunner, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rules]]\nid = "acme-token"\ndescription = "ACME internal token"\n'
        "regex = '''acme_[a-z0-9]{20}'''\nkeywords = [\"acme_\"]\n"
    )
    secret = "acme_" + "k3j4h5g6f7d8s9a0p1o2"
    event = make_event(0, payload={"text": f"deploy with {secret}"})
    flightlog("ingest", "--rules", str(rules), "-", input=jsonl([event]), check=True)
    stored = json.loads(flightlog("export", "--format", "events", check=True).stdout)
    assert stored["payload"]["text"] == "deploy with [REDACTED:acme-token]"
    assert stored["redactions"] == [{"kind": "acme-token", "path": "$['payload']['text']"}]


def test_one_writer_at_a_time_but_reading_works_beside_it(home: Path, flightlog: CliRunner) -> None:
    from flightlog.ledger.log import Ledger

    flightlog("ingest", "-", input=jsonl([make_event(0)]), check=True)
    writer = Ledger.open(home)  # stands in for a running `flightlog serve`
    try:
        proc = flightlog("ingest", "-", input=jsonl([make_event(1)]))
        assert proc.returncode != 0 and "in use by another flightlog process" in proc.stderr
        assert TRACE in flightlog("traces", check=True).stdout
        assert flightlog("verify").returncode == 0
        assert flightlog("proof", "inclusion", "0", "--json").returncode == 0
    finally:
        writer.close()
    flightlog("ingest", "-", input=jsonl([make_event(1)]), check=True)


def test_reading_an_empty_home_is_a_clear_error(flightlog: CliRunner) -> None:
    proc = flightlog("traces")
    assert proc.returncode != 0 and "no ledger" in proc.stderr


def test_kept_checkpoint_file_verifies(flightlog: CliRunner, tmp_path: Path) -> None:
    flightlog("ingest", "-", input=jsonl([make_event(i) for i in range(3)]), check=True)
    kept = tmp_path / "kept.note"
    kept.write_text(flightlog("checkpoint", check=True).stdout)
    flightlog("ingest", "-", input=jsonl([make_event(i) for i in range(3, 5)]), check=True)
    key = flightlog("keys", "export", check=True).stdout.split()[-1]
    proc = flightlog("verify", "--checkpoint", str(kept), "--key", key)
    assert proc.returncode == 0, proc.stderr
    assert "1 trusted checkpoint(s) match" in proc.stdout


def test_ingesting_the_same_ids_again_stores_nothing_new(flightlog: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    events = [make_event(i, event_id=f"01890a5d-ac96-774b-bcce-b302099a8{i:03d}") for i in range(4)]
    source.write_text(jsonl(events))
    first = flightlog("ingest", str(source), check=True)
    assert "stored 4 event(s) as entries 0..3" in first.stdout
    again = flightlog("ingest", str(source), check=True)
    assert "stored 0 event(s) (0 secret(s) redacted); 4 already stored; checkpoint size 4" in again.stdout
    flightlog("verify", check=True)


def test_a_data_directory_that_cannot_be_written_is_one_clear_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cli = [sys.executable, "-m", "flightlog", "--home", str(home)]
    made = subprocess.run([*cli, "ingest", "-"], input=jsonl([make_event(0)]), capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    # Root writes anywhere: then run as root without its capabilities (another user could not
    # read this checkout, which may sit in a private folder), the home readable, not writable.
    as_user = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.geteuid() == 0 else []
    for path in (home, *home.rglob("*")):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        for command in (["tokens", "create", "--role", "read"], ["checkpoint"], ["traces"]):
            proc = subprocess.run([*as_user, *cli, *command], capture_output=True, text=True)
            assert proc.returncode != 0, command
            assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert proc.stderr.startswith("error: ") and str(home) in proc.stderr
    finally:
        for path in (home, *home.rglob("*")):
            path.chmod(0o700 if path.is_dir() else 0o600)


def test_reading_a_home_without_a_ledger_makes_none(flightlog: CliRunner, home: Path) -> None:
    for command in (["checkpoint"], ["proof", "inclusion", "0"], ["traces"], ["verify"]):
        proc = flightlog(*command)
        assert proc.returncode == 4 and proc.stderr == f"error: no ledger in {home} yet\n", (command, proc.stderr)
    assert not (home / "ledger.db").exists() and not (home / "keys").exists()
