"""After ingesting events full of secrets, none is findable anywhere under $FLIGHTLOG_HOME.

Scans every file (database, WAL, blobs, keys) byte for byte, while the ledger is still open
(WAL present) and after it is closed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from flightlog.ledger.log import Ledger
from flightlog.pipeline import Pipeline
from tests.conftest import CliRunner, make_event
from tests.redact_cases import SECRET_CASES

CORPUS = Path(__file__).parent / "vectors" / "secrets-corpus.jsonl"


def _needles(secret: str) -> list[bytes]:
    """The secret as it could appear on disk: raw UTF-8 and as escaped inside JSON."""
    raw = secret.encode()
    escaped = json.dumps(secret)[1:-1].encode()
    return [raw] if raw == escaped else [raw, escaped]


def _disk(home: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def _contexts(n: int, text: str) -> dict[str, Any]:
    """Put a text where agents put secrets: prompts, tool input, shell output, diffs, blobs."""
    placements: list[tuple[str, dict[str, Any]]] = [
        ("prompt", {"text": f"use this: {text}"}),
        ("tool_call", {"tool_name": "Bash", "input": {"command": text}, "output": ""}),
        ("shell", {"command": "cat .env", "stdout": text, "exit_code": 0}),
        ("file_op", {"op": "patch", "file_path": "config.yml", "diff": f"+  key: {text}\n"}),
        ("shell", {"command": "make logs", "stdout": "log line\n" * 3000 + text}),  # a blob
        (
            "tool_call",
            {"tool_name": "http", "input": {"headers": {"Authorization": text}, "env": {"DB_PASSWORD": text}}},
        ),
    ]
    kind, payload = placements[n % len(placements)]
    return make_event(n, type=kind, payload=payload)


def test_corpus_secrets_never_reach_disk(home: Path) -> None:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    positives = [r for r in rows if r["secret"]]
    assert len(positives) > 250
    ledger = Ledger.open(home)
    pipeline = Pipeline(ledger)
    good, bad = pipeline.prepare_batch(_contexts(i, r["text"]) for i, r in enumerate(positives))
    assert not bad
    ledger.append(good)
    assert (home / "ledger.db-wal").exists()
    for moment in ("open", "closed"):
        disk = _disk(home)
        found = [r for r in positives if any(n in disk for n in _needles(r["secret"]))]
        gone = 1 - len(found) / len(positives)
        print(f"{moment}: {gone:.2%} of {len(positives)} corpus secrets absent from disk")
        assert gone >= 0.97, [r["kind"] for r in found]
        if moment == "open":
            ledger.close()


def test_own_context_secrets_never_reach_disk(home: Path, flightlog: CliRunner) -> None:
    events = [_contexts(i, case.text) for i, case in enumerate(SECRET_CASES)]
    proc = flightlog("ingest", "-", input="".join(json.dumps(e) + "\n" for e in events))
    assert proc.returncode == 0, proc.stderr
    assert "secret(s) redacted" in proc.stdout
    disk = _disk(home)
    leaked = [(case.name, s) for case in SECRET_CASES for s in case.secrets if any(n in disk for n in _needles(s))]
    assert not leaked
    assert flightlog("verify").returncode == 0
    # The events say what was redacted and where, never the value.
    stored = [json.loads(line) for line in flightlog("export", "--format", "events").stdout.split("\n") if line]
    assert all(e["redactions"] for e in stored)
    assert all(r["path"].startswith("$['payload']") for e in stored for r in e["redactions"])


def test_files_are_private(home: Path, flightlog: CliRunner) -> None:
    flightlog(
        "ingest",
        "-",
        input=json.dumps(make_event(0, payload={"text": "x" * 40000})) + "\n",
        check=True,
    )
    assert home.stat().st_mode & 0o777 == 0o700
    for path in home.rglob("*"):
        mode = path.stat().st_mode & 0o777
        assert mode & 0o077 == 0, f"{path.relative_to(home)} has mode {mode:o}"


def test_folders_made_by_the_hook_and_the_cli_are_private(home: Path, flightlog: CliRunner, tmp_path: Path) -> None:
    # The first thing to touch a fresh data directory may be a hook call: every folder it makes
    # on the way (not only the last one) must be 0700, the files 0600.
    project = tmp_path / "project"
    project.mkdir()
    for name, tool in (("PreToolUse", "Read"), ("PreToolUse", "Edit"), ("PostToolUse", "Edit")):
        call = {
            "session_id": "sess-1",
            "hook_event_name": name,
            "tool_name": tool,
            "tool_use_id": "toolu_1" if tool == "Edit" else "toolu_0",
            "tool_input": {"file_path": str(project / "a.py"), "old_string": "", "new_string": "x = 1\n"},
            "cwd": str(project),
        }
        flightlog("hook", "claude-code", input=json.dumps(call), check=True)
    flightlog("tokens", "create", "--role", "read", check=True)
    assert home.stat().st_mode & 0o777 == 0o700
    folders = [p for p in home.rglob("*") if p.is_dir()]
    assert any(p.name == "sess-1" for p in folders)  # the hook kept session state
    for path in [*folders, *(p for p in home.rglob("*") if p.is_file())]:
        mode = path.stat().st_mode & 0o777
        assert mode & 0o077 == 0, f"{path.relative_to(home)} has mode {mode:o}"


def test_values_under_secret_names_never_reach_disk(home: Path) -> None:
    # Values no text rule recognises (no keyword beside them, no known shape), named as
    # secrets only by their key: an OTLP span's attributes, its resource's and a kvlist.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    from flightlog.capture.otlp import PROTOBUF, traces_to_events

    secrets = ["Zq81LlqsajAIxNKu8", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYzz", "hunter2hunter2"]

    def kv(key: str, value: AnyValue) -> KeyValue:
        return KeyValue(key=key, value=value)

    nested = KeyValueList(values=[kv("password", AnyValue(string_value=secrets[2]))])
    span = Span(
        trace_id=bytes(range(1, 17)),
        span_id=bytes(range(1, 9)),
        name="GET /deploy",
        start_time_unix_nano=1_795_000_000_000_000_000,
        end_time_unix_nano=1_795_000_000_100_000_000,
        attributes=[
            kv("aws.secret_access_key", AnyValue(string_value=secrets[1])),
            kv("db", AnyValue(kvlist_value=nested)),
        ],
    )
    resource = Resource(attributes=[kv("env.DB_PASSWORD", AnyValue(string_value=secrets[0]))])
    body = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=[span])])]
    ).SerializeToString()
    with Ledger.open(home) as ledger:
        pipeline = Pipeline(ledger)
        good, bad = pipeline.prepare_batch(traces_to_events(body, PROTOBUF).events)
        assert not bad and len(good) == 1
        ledger.append(good)
        assert len(good[0].event["redactions"]) == 3
        disk = _disk(home)
        assert not [s for s in secrets if any(n in disk for n in _needles(s))]


def test_secrets_sent_as_otlp_bytes_never_reach_disk(home: Path) -> None:
    # Some SDKs send byte attributes (log bodies, raw headers); base64 hid a token from every rule.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    from flightlog.capture.otlp import PROTOBUF, traces_to_events

    token = "ghp_" + "Q3v9Lk2Pz8Xw4Rt6Ym1Nb5Hc7Jd0Fs2Ga4Ke"
    password = "Zq81LlqsajAIxNKu8"
    binary = bytes([0xFF, 0xFE, 0x00, 0x81]) * 4
    span = Span(
        trace_id=bytes(range(1, 17)),
        span_id=bytes(range(1, 9)),
        name="POST /push",
        start_time_unix_nano=1_795_000_000_000_000_000,
        end_time_unix_nano=1_795_000_000_100_000_000,
        attributes=[
            KeyValue(key="http.request.raw", value=AnyValue(bytes_value=f"Authorization: token {token}".encode())),
            KeyValue(key="db.password", value=AnyValue(bytes_value=password.encode())),
            KeyValue(key="payload.digest", value=AnyValue(bytes_value=binary)),
        ],
    )
    body = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=Resource(), scope_spans=[ScopeSpans(spans=[span])])]
    ).SerializeToString()
    with Ledger.open(home) as ledger:
        good, bad = Pipeline(ledger).prepare_batch(traces_to_events(body, PROTOBUF).events)
        assert not bad and len(good) == 1
        ledger.append(good)
        attrs = good[0].event["payload"]["raw"]["attributes"]
        assert attrs["http.request.raw"].startswith("Authorization: token [REDACTED")
        assert attrs["payload.digest"] == base64.b64encode(binary).decode()  # not text: kept as base64
        disk = _disk(home)
        for secret in (token, password):
            assert not any(n in disk for n in [*_needles(secret), base64.b64encode(secret.encode())])
