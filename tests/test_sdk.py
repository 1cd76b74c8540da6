"""flightlog.sdk: the attributes each helper sets (OTel's in-memory exporter), no-op without
init(), TRACEPARENT in and out, and the example agent against a real collector: one trace."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from opentelemetry.util._once import Once

from flightlog import sdk
from flightlog.active import format_traceparent, parse_traceparent
from flightlog.sdk import _setup
from tests.conftest import CliRunner
from tests.server.conftest import start_server

ROOT = Path(__file__).parent.parent
AGENT = ROOT / "examples" / "agent" / "agent.py"
PARENT_TRACE, PARENT_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def _reset_otel() -> None:
    # OTel lets the global provider be set once per process; its own test utilities reset
    # these two private names the same way.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("FLIGHTLOG_", "OTEL_")) or name in ("TRACEPARENT", "TRACESTATE"):
            monkeypatch.delenv(name)
    _reset_otel()
    yield
    handle = _setup.active()
    if handle is not None:
        handle.shutdown()
    _setup._reset()
    _reset_otel()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def _init(spans: InMemorySpanExporter, **kw: Any) -> sdk.Handle:
    return sdk.init(service_name="test-agent", exporter=spans, **kw)


def _finished(handle: sdk.Handle, spans: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    assert handle.flush()
    return {s.name: s for s in spans.get_finished_spans()}


def _ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def _parent(span: ReadableSpan) -> str | None:
    return f"{span.parent.span_id:016x}" if span.parent is not None else None


# --- helpers and their attributes ----------------------------------------------------------


def test_helpers_set_genai_attributes(spans: InMemorySpanExporter) -> None:
    handle = _init(spans, agent_id="fixer")
    with sdk.agent_run(prompt="fix the test", conversation_id="conv-1", version="2") as run:
        with sdk.model_call(
            "m-large", provider="acme", version="2026-01", temperature=0.2, top_p=0.9, seed=7, messages="hi"
        ) as call:
            call.set_response(
                "reading",
                tool_calls=[{"id": "call_1", "name": "read_file", "arguments": {"path": "a.py"}}],
                finish_reason="tool_calls",
                input_tokens=120,
                output_tokens=8,
                response_model="m-large-2026-01",
            )
        with sdk.tool_call("read_file", arguments={"path": "a.py"}, call_id="call_1") as tool:
            tool.set_result("print(1)\n")
        with sdk.tool_call("lint", arguments=[1, 2]) as failing:
            failing.set_result({"problems": 3})
            failing.fail("3 problems")
        run.set_output("done")
    got = _finished(handle, spans)
    agent, chat = got["invoke_agent fixer"], got["chat m-large"]
    read, lint = got["execute_tool read_file"], got["execute_tool lint"]

    assert agent.attributes is not None and chat.attributes is not None
    assert read.attributes is not None and lint.attributes is not None
    assert agent.kind == trace.SpanKind.INTERNAL and chat.kind == trace.SpanKind.CLIENT
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "fixer" and agent.attributes["gen_ai.agent.version"] == "2"
    prompt = json.loads(str(agent.attributes["gen_ai.input.messages"]))
    assert prompt == [{"role": "user", "parts": [{"type": "text", "content": "fix the test"}]}]
    assert json.loads(str(agent.attributes["gen_ai.output.messages"]))[0]["parts"][0]["content"] == "done"

    assert dict(chat.attributes) | {"gen_ai.output.messages": "…"} == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m-large",
        "gen_ai.provider.name": "acme",
        "flightlog.model.version": "2026-01",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.seed": 7,
        "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
        "gen_ai.output.messages": "…",
        "gen_ai.response.finish_reasons": ("tool_calls",),
        "gen_ai.response.model": "m-large-2026-01",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 8,
        # stamped on every span by init(): agent and conversation
        "gen_ai.agent.id": "fixer",
        "gen_ai.conversation.id": "conv-1",
    }
    output = json.loads(str(chat.attributes["gen_ai.output.messages"]))[0]
    assert output["parts"][1] == {
        "type": "tool_call",
        "id": "call_1",
        "name": "read_file",
        "arguments": {"path": "a.py"},
    }

    assert read.attributes["gen_ai.tool.name"] == "read_file" and read.attributes["gen_ai.tool.call.id"] == "call_1"
    assert read.attributes["gen_ai.tool.call.arguments"] == '{"path":"a.py"}'
    assert read.attributes["gen_ai.tool.call.result"] == "print(1)\n"  # text stays text
    assert read.status.status_code == StatusCode.UNSET
    assert lint.status.status_code == StatusCode.ERROR and lint.status.description == "3 problems"
    assert lint.attributes["gen_ai.tool.call.result"] == '{"problems":3}'

    root = _ids(agent)
    assert {_ids(s)[0] for s in got.values()} == {root[0]}
    assert agent.parent is None and {_parent(s) for s in (chat, read, lint)} == {root[1]}


def test_long_values_are_clipped(spans: InMemorySpanExporter) -> None:
    handle = _init(spans)
    with sdk.tool_call("cat") as tool:
        tool.set_result("x" * 200_000)
    result = str(_finished(handle, spans)["execute_tool cat"].attributes["gen_ai.tool.call.result"])  # type: ignore[index]
    assert len(result) == sdk._spans.MAX_TEXT and result.endswith("[clipped]")


def test_tool_decorator_records_arguments_and_result(spans: InMemorySpanExporter) -> None:
    handle = _init(spans)

    @sdk.tool()
    def add(a: int, b: int = 1) -> int:
        """Add two numbers.

        Longer text that is not the description."""
        return a + b

    assert add(2, b=3) == 5
    assert add.__name__ == "add"  # functools.wraps
    span = _finished(handle, spans)["execute_tool add"]
    assert span.attributes is not None
    assert span.attributes["gen_ai.tool.call.arguments"] == '{"a":2,"b":3}'
    assert span.attributes["gen_ai.tool.call.result"] == "5"
    assert span.attributes["gen_ai.tool.description"] == "Add two numbers."


def test_tool_decorator_error_path(spans: InMemorySpanExporter) -> None:
    handle = _init(spans)

    @sdk.tool("explode")
    def explode(path: str) -> None:
        raise ValueError(f"cannot read {path}")

    with pytest.raises(ValueError, match="cannot read x"), sdk.agent_run(prompt="p"):
        explode("x")
    got = _finished(handle, spans)
    span = got["execute_tool explode"]
    assert span.attributes is not None
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "ValueError: cannot read x"
    assert span.attributes["error.type"] == "ValueError"
    assert [e.name for e in span.events] == ["exception"]
    assert got["invoke_agent test-agent"].status.status_code == StatusCode.ERROR  # it passed through


def test_async_tool_decorator(spans: InMemorySpanExporter) -> None:
    handle = _init(spans)

    @sdk.tool("fetch")
    async def fetch(url: str) -> dict[str, str]:
        await asyncio.sleep(0)
        return {"url": url}

    assert asyncio.run(fetch("https://example.org")) == {"url": "https://example.org"}
    span = _finished(handle, spans)["execute_tool fetch"]
    assert span.attributes is not None and span.attributes["gen_ai.tool.call.result"] == '{"url":"https://example.org"}'


def _file_result(handle: sdk.Handle, spans: InMemorySpanExporter) -> tuple[dict[str, Any], dict[str, Any]]:
    assert handle.flush()
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("execute_tool file_op")]
    assert span.attributes is not None
    spans.clear()
    assert span.attributes["flightlog.event.type"] == "file_op" and span.attributes["gen_ai.tool.name"] == "file_op"
    return json.loads(str(span.attributes["gen_ai.tool.call.arguments"])), json.loads(
        str(span.attributes["gen_ai.tool.call.result"])
    )


def test_file_op_records_checksums_and_diff(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    handle = _init(spans)
    path = tmp_path / "a.txt"
    with sdk.file_op(path):
        path.write_text("one\n")
    args, result = _file_result(handle, spans)
    assert args == {"op": "create", "file_path": str(path)}
    assert result["checksum_before"] is None and result["checksum_after"].startswith("sha256:")
    assert "+one\n" in result["diff"] and "--- /dev/null" in result["diff"]

    created = result["checksum_after"]
    with sdk.file_op(path):
        path.write_text("one\ntwo\n")
    args, result = _file_result(handle, spans)
    assert args["op"] == "patch" and result["checksum_before"] == created and "+two\n" in result["diff"]

    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\0\1")
    with sdk.file_op(binary):
        binary.write_bytes(b"\0\2")
    args, result = _file_result(handle, spans)
    assert args["op"] == "patch" and result["diff"] is None and result["checksum_before"] != result["checksum_after"]

    with sdk.file_op(path):
        path.unlink()
    args, result = _file_result(handle, spans)
    assert args["op"] == "delete" and result["checksum_after"] is None and "-two\n" in result["diff"]

    moved = tmp_path / "moved.bin"
    with sdk.file_op(moved, "rename", old_path=binary):
        binary.rename(moved)
    args, result = _file_result(handle, spans)
    assert args == {"op": "rename", "file_path": str(moved), "old_path": str(binary)}
    assert result["checksum_before"] == result["checksum_after"]


# --- no-op without init() ------------------------------------------------------------------


def test_everything_is_a_noop_without_init(tmp_path: Path) -> None:
    @sdk.tool()
    def fail() -> None:
        raise KeyError("k")

    with sdk.agent_run(prompt="p") as run, sdk.model_call("m") as call, sdk.tool_call("t") as tool:
        assert not run.span.is_recording() and not call.span.is_recording()
        call.set_response("x", input_tokens=1)
        tool.set_result({"a": 1})
        with sdk.file_op(tmp_path / "f"):
            (tmp_path / "f").write_text("x")
        assert "TRACEPARENT" not in sdk.subprocess_env({})
        assert sdk.inject_headers({}) == {}
        with pytest.raises(KeyError):
            fail()
    done = sdk.run([sys.executable, "-c", "print('hi')"], capture_output=True, text=True)
    assert done.stdout == "hi\n"
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # nothing was set up


# --- trace context in and out --------------------------------------------------------------


def test_traceparent_in_the_environment_is_the_parent(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACEPARENT", format_traceparent(PARENT_TRACE, PARENT_SPAN))
    handle = _init(spans)
    with sdk.tool_call("main-thread"):
        pass

    # A new thread starts with an empty context; the helpers still find the parent.
    def work() -> None:
        with sdk.tool_call("worker"):
            pass

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    got = _finished(handle, spans)
    for name in ("execute_tool main-thread", "execute_tool worker"):
        parent = got[name].parent
        assert _ids(got[name])[0] == PARENT_TRACE and _parent(got[name]) == PARENT_SPAN
        assert parent is not None and parent.is_remote


def test_invalid_traceparent_is_ignored(spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEPARENT", "00-" + "0" * 32 + "-" + "0" * 16 + "-01")
    handle = _init(spans)
    with sdk.tool_call("t"):
        pass
    span = _finished(handle, spans)["execute_tool t"]
    assert span.parent is None and _ids(span)[0] != "0" * 32


def test_subprocess_env_and_headers_carry_the_current_span(spans: InMemorySpanExporter) -> None:
    handle = _init(spans, agent_id="fixer", url="http://127.0.0.1:9")
    with sdk.agent_run(conversation_id="conv-9"), sdk.tool_call("t") as tool:
        env = sdk.subprocess_env({"PATH": "/bin", "TRACESTATE": "stale=1", "FLIGHTLOG_URL": "http://elsewhere"})
        headers = sdk.inject_headers({"accept": "*/*"})
        context = tool.span.get_span_context()
    ids = (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert parse_traceparent(env["TRACEPARENT"]) == ids and "TRACESTATE" not in env
    assert env["FLIGHTLOG_URL"] == "http://elsewhere"  # the caller's wins
    assert env["FLIGHTLOG_AGENT_ID"] == "fixer" and env["FLIGHTLOG_CONVERSATION_ID"] == "conv-9"
    assert "FLIGHTLOG_TOKEN" not in env and env["PATH"] == "/bin"
    assert parse_traceparent(headers["traceparent"]) == ids and headers["accept"] == "*/*"
    handle.flush()


def test_run_records_a_shell_span_the_child_joins(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    handle = _init(spans)
    child = "import os, sys; print(os.environ['TRACEPARENT']); sys.exit(int(sys.argv[1]))"
    ok = sdk.run([sys.executable, "-c", child, "0"], capture_output=True, text=True, cwd=tmp_path)
    span = _finished(handle, spans)["execute_tool shell"]
    assert span.attributes is not None
    assert parse_traceparent(ok.stdout) == _ids(span)  # the child's parent is the shell span
    assert span.attributes["flightlog.event.type"] == "shell"
    arguments = json.loads(str(span.attributes["gen_ai.tool.call.arguments"]))
    assert arguments["cwd"] == str(tmp_path) and arguments["command"].endswith(" 0")
    result = json.loads(str(span.attributes["gen_ai.tool.call.result"]))
    assert result == {"exit_code": 0, "stdout": ok.stdout, "stderr": ""}
    assert span.status.status_code == StatusCode.UNSET

    spans.clear()
    failed = sdk.run([sys.executable, "-c", child, "3"], stdout=-3)  # DEVNULL: nothing captured
    span = _finished(handle, spans)["execute_tool shell"]
    assert failed.returncode == 3 and span.status.status_code == StatusCode.ERROR
    assert json.loads(str(span.attributes["gen_ai.tool.call.result"])) == {  # type: ignore[index]
        "exit_code": 3,
        "stdout": None,
        "stderr": None,
    }
    with pytest.raises(Exception, match="non-zero exit status 3"):
        sdk.run([sys.executable, "-c", child, "3"], check=True, capture_output=True)


# --- init() --------------------------------------------------------------------------------


def test_init_is_idempotent_and_reads_its_settings(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLIGHTLOG_AGENT_ID", "from-env")
    monkeypatch.setenv("FLIGHTLOG_URL", "http://127.0.0.1:9/")
    first = _init(spans)
    assert sdk.init(service_name="other", exporter=InMemorySpanExporter()) is first
    assert (first.service_name, first.agent_id, first.url) == ("test-agent", "from-env", "http://127.0.0.1:9")
    assert trace.get_tracer_provider() is first.provider


def test_init_adds_to_an_existing_sdk_provider(spans: InMemorySpanExporter) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    mine = TracerProvider()
    trace.set_tracer_provider(mine)
    handle = _init(spans)
    assert handle.provider is mine and not handle.owns_provider
    with sdk.tool_call("t"):
        pass
    assert "execute_tool t" in _finished(handle, spans)
    mine.shutdown()


class _Catcher(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None, int]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, self.headers.get("Authorization"), len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("via", ["argument", "environment"])
def test_init_exports_otlp_to_the_url_with_the_token(via: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Catcher)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        _Catcher.seen = []
        if via == "argument":
            handle = sdk.init(url=url, token="flt_secret")
        else:
            monkeypatch.setenv("FLIGHTLOG_URL", url)
            monkeypatch.setenv("FLIGHTLOG_TOKEN", "flt_secret")
            handle = sdk.init()
        with sdk.tool_call("t"):
            pass
        assert handle.flush()
        assert [(path, auth) for path, auth, _ in _Catcher.seen] == [("/v1/traces", "Bearer flt_secret")]
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


# --- end to end: the example agent, a real collector, one trace ----------------------------


def _wait_for_events(url: str, count: int) -> None:
    deadline = time.monotonic() + 60
    stored = 0
    while time.monotonic() < deadline:
        traces = httpx.get(f"{url}/api/v1/traces", timeout=5).json()["traces"]
        stored = sum(t["events"] for t in traces)
        if stored >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{stored} of {count} events stored after 60 s")


def test_example_agent_is_one_trace(flightlog: CliRunner, home: Path, tmp_path: Path) -> None:
    server = start_server(home)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTLOG_", "OTEL_", "TRACE"))}
        env["FLIGHTLOG_URL"] = server.url
        argv = [sys.executable, str(AGENT), "--workdir", str(tmp_path / "work"), "--conversation-id", "conv-e2e"]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr and "Failed to export" not in done.stderr, done.stderr
        printed = json.loads(done.stdout)
        assert printed["answer"] == "Wrote summary.md (20 words)."
        _wait_for_events(server.url, 12)
    finally:
        server.stop()

    lines = flightlog("export", "--format", "events", check=True).stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == 12
    assert {e["trace_id"] for e in events} == {printed["trace_id"]}  # the whole store: one trace
    assert {e["agent_id"] for e in events} == {"example-agent"}
    assert {e["session_id"] for e in events} == {"conv-e2e"}  # the subprocess's too

    by_span = {e["span_id"]: e for e in events}
    (root,) = [e for e in events if e.get("parent_span_id") is None]
    assert root["type"] == "prompt" and root["payload"]["text"].startswith("Summarise notes.txt")
    assert all(e["parent_span_id"] in by_span for e in events if e is not root)

    def children(event: dict[str, Any]) -> list[dict[str, Any]]:
        found = [e for e in events if e.get("parent_span_id") == event["span_id"]]
        return sorted(found, key=lambda e: e["timestamp"])

    def name(event: dict[str, Any]) -> str:
        return str(event["payload"].get("tool_name") or event["type"])

    steps = children(root)
    assert [name(e) for e in steps] == [
        "model_call",
        "read_file",
        "model_call",
        "write_file",
        "model_call",
        "run_python",
        "model_call",
    ]
    for call in (e for e in steps if e["type"] == "model_call"):
        assert call["model"] == {
            "name": "scripted-policy",
            "provider": "scripted",
            "temperature": 0,
            "top_p": 1,
            "seed": 7,
            "version": "1.0",
        }
        assert call["payload"]["usage"]["input_tokens"] > 0 and call["payload"]["usage"]["output_tokens"] > 0
        assert call["payload"]["response"]["model"] == "scripted-policy-1.0"
    tools = {name(e): e for e in steps if e["type"] == "tool_call"}
    assert [tools[t]["payload"]["tool_call_id"] for t in ("read_file", "write_file", "run_python")] == [
        "call_1",
        "call_2",
        "call_3",
    ]
    assert tools["read_file"]["payload"]["input"] == {"path": "notes.txt"}

    (write,) = children(tools["write_file"])
    assert write["type"] == "file_op"  # the collector turns the SDK's file span into the neutral event
    assert write["payload"]["op"] == "create"
    assert write["payload"]["checksum_after"].startswith("sha256:")
    assert write["payload"]["checksum_before"] is None and "+" in write["payload"]["diff"]

    (shell,) = children(tools["run_python"])
    assert shell["type"] == "shell" and shell["payload"]["exit_code"] == 0
    assert "wordcount.py" in shell["payload"]["command"]
    # The subprocess's own spans, sent by another process, hang under the shell span.
    sub = children(shell)
    assert [name(e) for e in sub] == ["count_words", "file_op"]
    assert {e["payload"]["raw"]["resource"]["service.name"] for e in sub} == {"example-wordcount"}
    assert sub[0]["payload"]["output"] == "20"

    assert printed["trace_id"] in flightlog("traces", check=True).stdout
    assert "read_file" in flightlog("show", printed["trace_id"], check=True).stdout
    assert flightlog("verify").returncode == 0


def test_public_names_are_sorted_and_exported() -> None:
    assert sdk.__all__ == sorted(sdk.__all__)
    assert all(hasattr(sdk, name) for name in sdk.__all__)
