"""The events and query APIs of a real server: durable writes, clear 4xx, nothing partial."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import TRACE, jsonl, make_event
from tests.server.conftest import Server


def _count(server: Server) -> int:
    return int(httpx.get(server.url + "/healthz").json()["entries"])


def test_post_query_and_verify(serve: Callable[..., Server], home: Path) -> None:
    server = serve()
    events = [make_event(i) for i in range(6)]
    r = httpx.post(server.url + "/api/v1/events", json=events[:3])
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 3 and r.json()["indexes"] == [0, 1, 2]
    r = httpx.post(
        server.url + "/api/v1/events",
        content=jsonl(events[3:]),
        headers={"content-type": "application/x-ndjson"},
    )
    assert r.status_code == 200 and r.json()["indexes"] == [3, 4, 5]

    deadline = time.monotonic() + 10  # stored events are indexed for search right after
    while (health := httpx.get(server.url + "/healthz").json())["indexed"] < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert health == {"status": "ok", "entries": 6, "indexed": 6}

    traces = httpx.get(server.url + "/api/v1/traces").json()["traces"]
    assert [t["trace_id"] for t in traces] == [TRACE] and traces[0]["events"] == 6
    assert httpx.get(server.url + "/api/v1/traces", params={"type": "git_op"}).json()["traces"] == []
    by_file = httpx.get(server.url + "/api/v1/traces", params={"file_path": "src/mod3.py"}).json()
    assert len(by_file["traces"]) == 1

    trace = httpx.get(f"{server.url}/api/v1/traces/{TRACE}").json()
    assert [e["depth"] for e in trace["events"]] == [0, 1, 1, 1, 1, 1]
    event_id = trace["events"][2]["event"]["event_id"]
    one = httpx.get(f"{server.url}/api/v1/events/{event_id}", params={"proof": "1"}).json()
    assert one["index"] == 2 and one["proof"]["size"] == 6 and one["proof"]["note"]
    cp = httpx.get(server.url + "/api/v1/checkpoint").json()
    assert cp["size"] == 6
    assert httpx.get(f"{server.url}/api/v1/traces/{'e' * 32}").status_code == 404

    assert server.stop() == 0
    verify = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home), "verify"], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stderr
    assert "intact: 6 entries" in verify.stdout


def test_bad_input_gets_clear_4xx_and_stores_nothing(serve: Callable[..., Server]) -> None:
    server = serve("--max-body-bytes", "65536")
    url = server.url + "/api/v1/events"
    good = make_event(0)
    cases = [
        (httpx.post(url, content=b"[{bad json", headers={"content-type": "application/json"}), 400),
        (httpx.post(url, content=b"<xml/>", headers={"content-type": "text/xml"}), 415),
        (
            httpx.post(url, content=b"[" + b" " * 70000 + b"]", headers={"content-type": "application/json"}),
            413,
        ),
        (httpx.post(url, json=[good, make_event(1, trace_id="0" * 32)]), 422),
        (
            httpx.post(
                url,
                content=gzip.compress(b"[" + b" " * 10_000_000 + b"]"),
                headers={"content-type": "application/json", "content-encoding": "gzip"},
            ),
            413,
        ),
        (
            httpx.post(
                url,
                content=gzip.compress(json.dumps([good]).encode())[:-8],
                headers={"content-type": "application/json", "content-encoding": "gzip"},
            ),
            400,
        ),
        (httpx.post(url, content=b"\xff\xfe", headers={"content-type": "application/json"}), 400),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]
    details = cases[3][0].json()["details"]
    assert details == [
        {
            "index": 1,
            "field": "$.trace_id",
            "reason": "must be 32 lowercase hex digits, not all zero (W3C trace id)",
        }
    ]
    assert _count(server) == 0
    ok = httpx.post(
        url,
        content=gzip.compress(json.dumps([good]).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert ok.status_code == 200 and _count(server) == 1


def test_tokens_and_roles(serve: Callable[..., Server], home: Path) -> None:
    def token(role: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "flightlog", "--home", str(home), "tokens", "create", "--role", role],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    ingest, read = token("ingest"), token("read")
    server = serve("--require-tokens")
    url = server.url
    assert httpx.post(url + "/api/v1/events", json=[make_event(0)]).status_code == 401
    assert httpx.get(url + "/api/v1/traces").status_code == 401
    bad = {"authorization": "Bearer flt_nope"}
    assert httpx.get(url + "/api/v1/traces", headers=bad).status_code == 401
    as_ingest = {"authorization": f"Bearer {ingest}"}
    as_read = {"authorization": f"Bearer {read}"}
    assert httpx.post(url + "/api/v1/events", json=[make_event(0)], headers=as_ingest).status_code == 200
    assert httpx.get(url + "/api/v1/traces", headers=as_ingest).status_code == 403
    assert httpx.get(url + "/api/v1/checkpoint", headers=as_ingest).status_code == 403
    assert httpx.post(url + "/api/v1/events", json=[make_event(1)], headers=as_read).status_code == 403
    assert httpx.get(url + "/api/v1/traces", headers=as_read).status_code == 200
    stored = json.loads((home / "tokens.json").read_text())
    assert ingest not in json.dumps(stored) and (home / "tokens.json").stat().st_mode & 0o077 == 0

    # A broken token file is the operator's to fix: a 500 that names no path, the log says more.
    (home / "tokens.json").write_text("{bad")
    broken = httpx.get(url + "/api/v1/traces", headers=as_read)
    assert broken.status_code == 500 and str(home) not in broken.text
    assert "not a valid token file" in server.log.read_text()


def test_hostile_bodies_and_queries_get_4xx_not_500(serve: Callable[..., Server]) -> None:
    server = serve()
    url = server.url + "/api/v1/events"
    deep = b"[" * 100_000 + b"]" * 100_000
    for ctype in ("application/json", "application/x-ndjson"):
        r = httpx.post(url, content=deep, headers={"content-type": ctype})
        assert r.status_code == 400 and r.json()["details"][0]["reason"].endswith("nested too deeply"), r.text
    r = httpx.post(server.url + "/hooks/claude-code", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]

    # Deep enough to pass the JSON parser, too deep to store: refused by name, not a crash.
    nested = json.dumps([make_event(1, payload={"tool_name": "Bash", "input": "HERE"})])
    nested = nested.replace('"HERE"', "[" * 300 + '"x"' + "]" * 300)
    r = httpx.post(url, content=nested, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "nested deeper than" in r.json()["details"][0]["reason"]

    huge = b'[{"a": ' + b"1" * 5000 + b"}]"  # past Python's 4,300-digit integer conversion limit
    for target, ctype in ((url, "application/json"), (url, "application/x-ndjson")):
        assert httpx.post(target, content=huge, headers={"content-type": ctype}).status_code == 400
    hook = httpx.post(
        server.url + "/hooks/claude-code", content=huge[1:-1], headers={"content-type": "application/json"}
    )
    assert hook.status_code == 200  # the hook keeps a number it cannot hold exactly as its digits
    assert httpx.get(server.url + "/?cursor=\u00b2").status_code == 200  # a digit, but not 0-9

    r = httpx.post(url, content=b'[{"a":1},]', headers={"content-type": "application/json"})
    assert r.json()["details"][0]["reason"] == "invalid JSON: Expecting value at line 1 column 10"

    assert _count(server) == 0
    assert httpx.post(url, json=[make_event(0)]).status_code == 200
    assert httpx.get(server.url + "/api/v1/search", params={"q": "ps\x00ql"}).status_code == 200
    big = httpx.get(server.url + "/api/v1/traces", params={"cursor": "9" * 30})
    assert big.status_code == 200 and len(big.json()["traces"]) == 1
    for bad in (
        {"since": "garbage"},
        {"until": "1795021200"},
        {"until": "9999-12-31T23:59:59-01:00"},  # past year 9999 in UTC
        {"type": "nope"},
        {"status": "fine"},
    ):
        r = httpx.get(server.url + "/api/v1/traces", params=bad)
        assert r.status_code == 400, (bad, r.text)
        assert next(iter(bad)) in r.json()["error"]
    assert _count(server) == 1


def test_event_size_limit_counts_utf8_bytes(serve: Callable[..., Server]) -> None:
    server = serve("--max-event-bytes", "300")
    url = server.url + "/api/v1/events"
    small = make_event(0, payload={"text": "日" * 30})
    small.pop("session_id")
    assert len(json.dumps(small, ensure_ascii=False, separators=(",", ":")).encode()) < 300
    assert httpx.post(url, json=[small]).status_code == 200
    r = httpx.post(url, json=[make_event(0, payload={"text": "日" * 100})])
    assert r.status_code == 413 and r.json()["details"][0]["reason"] == "event is over 300 bytes"
    assert _count(server) == 1


def test_time_filters_compare_instants(serve: Callable[..., Server]) -> None:
    server = serve()
    # One trace whose only event is at 17:00:05.250 UTC.
    r = httpx.post(server.url + "/api/v1/events", json=[make_event(5, parent_span_id=None, agent_id="a,b")])
    assert r.status_code == 200
    assert httpx.get(server.url + "/api/v1/traces/" + TRACE).json()["events"][0]["event"]["timestamp"] == (
        "2026-11-24T17:00:05.005000Z"
    )

    def found(**params: str) -> bool:
        r = httpx.get(server.url + "/api/v1/traces", params=params)
        assert r.status_code == 200, r.text
        return bool(r.json()["traces"])

    assert found(since="2026-11-24T17:00:05Z")
    assert found(since="2026-11-24T18:00:05+01:00")  # the same instant
    assert not found(since="2026-11-24T17:00:05.006Z")
    assert not found(until="2026-11-24T17:00:05Z")  # until is exclusive
    assert found(until="2026-11-24T17:00:05.006Z")
    assert found(since="2026-11-24", until="2026-11-25")
    assert found(since="2026-11-24 17:00")  # no offset: UTC
    assert found(since="0999-01-01")  # a year before 1000 still compares as a time
    page = httpx.get(server.url + "/", params={"since": "2026-11-24 18:00+01:00"})
    assert page.status_code == 200 and TRACE in page.text
    assert 'value="2026-11-24 18:00+01:00"' in page.text  # the form keeps what was typed
    bad = httpx.get(server.url + "/", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since: &#x27;yesterday&#x27; is not a time" in bad.text
    assert not found(since="2026-11-24T18:00:00+00:00")
    assert httpx.get(server.url + "/api/v1/traces").json()["traces"][0]["agents"] == ["a,b"]


def test_paging_sees_the_log_as_of_its_first_page(serve: Callable[..., Server]) -> None:
    server = serve()
    traces = [c * 32 for c in "abc"]
    events = [make_event(n, trace_id=t, parent_span_id=None) for n, t in enumerate(traces)]
    assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
    url = server.url + "/api/v1/traces"
    first = httpx.get(url, params={"limit": 1}).json()
    assert first["as_of"] == 3 and [t["trace_id"] for t in first["traces"]] == [traces[2]]
    # Trace a gets an event while the client pages: it is still listed, once.
    assert httpx.post(server.url + "/api/v1/events", json=[make_event(7, trace_id=traces[0])]).status_code == 200
    listed, cursor = [traces[2]], first["next_cursor"]
    while cursor is not None:
        page = httpx.get(url, params={"limit": 1, "cursor": cursor, "as_of": first["as_of"]}).json()
        listed += [t["trace_id"] for t in page["traces"]]
        cursor = page["next_cursor"]
    assert listed == [traces[2], traces[1], traces[0]]
    assert httpx.get(url, params={"as_of": "soon"}).status_code == 400


def test_the_ui_older_link_keeps_the_first_pages_view(serve: Callable[..., Server]) -> None:
    server = serve()
    events = [make_event(n, trace_id=f"{n + 1:032x}", parent_span_id=None) for n in range(51)]
    assert httpx.post(server.url + "/api/v1/events", json=events).status_code == 200
    first = httpx.get(server.url + "/").text
    link = first.split('<a rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert "as_of=51" in link
    assert httpx.post(server.url + "/api/v1/events", json=[make_event(60, trace_id=f"{1:032x}")]).status_code == 200
    older = httpx.get(server.url + link).text
    assert f"/traces/{1:032x}" in older  # its new event came after the first page: listed here, not lost


def test_the_end_of_a_burst_is_signed_without_another_append(serve: Callable[..., Server], home: Path) -> None:
    import sqlite3

    server = serve()
    for n in range(3):  # the first append signs; the next ones come within the second after it
        assert httpx.post(server.url + "/api/v1/events", json=[make_event(n)]).status_code == 200

    def signed() -> int:
        with sqlite3.connect(f"file:{home / 'ledger.db'}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT MAX(size) FROM checkpoints").fetchone()
        return int(row[0] or 0)

    deadline = time.monotonic() + 20
    while signed() < 3 and time.monotonic() < deadline:  # was: unsigned until the next append
        time.sleep(0.1)
    assert signed() == 3


def test_one_pretty_printed_event_is_taken_as_one_event(serve: Callable[..., Server]) -> None:
    server = serve()
    url = server.url + "/api/v1/events"
    pretty = json.dumps(make_event(0), indent=2).encode()  # was: 400, "line 1: invalid JSON"
    answer = httpx.post(url, content=pretty, headers={"content-type": "application/json"})
    assert answer.status_code == 200 and answer.json()["stored"] == 1, answer.text
    lines = jsonl([make_event(1), make_event(2)]).encode()  # NDJSON labelled application/json still works
    assert httpx.post(url, content=lines, headers={"content-type": "application/json"}).json()["stored"] == 2


def test_the_ui_takes_any_run_of_digits_as_a_cursor(serve: Callable[..., Server]) -> None:
    server = serve()
    assert httpx.post(server.url + "/api/v1/events", json=[make_event(0)]).status_code == 200
    for name in ("cursor", "as_of"):  # past Python's 4,300-digit int() limit: was a 500
        assert httpx.get(server.url + "/", params={name: "9" * 5000}).status_code == 200
