"""Real OpenTelemetry SDK exporters (protobuf and JSON) and Claude Code-shaped logs into a real
server; the query API and `flightlog show` see one trace, and `verify` passes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.server.conftest import Server


def _agent_run(provider: TracerProvider) -> str:
    """One agent turn with GenAI semantic-convention spans; returns its trace id (hex)."""
    tracer = provider.get_tracer("example-agent", "1.0")
    with tracer.start_as_current_span("invoke_agent fixer") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.name", "fixer")
        root.set_attribute("gen_ai.conversation.id", "conv-1")
        with tracer.start_as_current_span("chat claude-sonnet-4-5") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.provider.name", "anthropic")
            chat.set_attribute("gen_ai.request.model", "claude-sonnet-4-5")
            chat.set_attribute("gen_ai.request.temperature", 0.2)
            chat.set_attribute("gen_ai.usage.input_tokens", 1200)
            chat.set_attribute("gen_ai.usage.output_tokens", 80)
            chat.set_attribute("notes", "x" * 600)
        with tracer.start_as_current_span("execute_tool Bash") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "Bash")
            tool.set_attribute("gen_ai.tool.call.id", "toolu_1")
            tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"command": "pytest -q"}))
            tool.set_status(Status(StatusCode.ERROR, "exit 1"))
        with tracer.start_as_current_span("GET /repos/acme/app/pulls") as http:
            http.set_attribute("http.request.method", "GET")
            http.set_attribute("http.response.status_code", 200)
        return f"{root.get_span_context().trace_id:032x}"


def _provider(url: str, **kw: object) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "example-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url + "/v1/traces", **kw)))  # type: ignore[arg-type]
    return provider


def _types(server: Server, trace_id: str) -> list[str]:
    trace = httpx.get(f"{server.url}/api/v1/traces/{trace_id}").json()
    return [e["event"]["type"] for e in trace["events"]]


def test_sdk_spans_become_one_trace(serve: Callable[..., Server], home: Path) -> None:
    server = serve()
    provider = _provider(server.url)
    trace_id = _agent_run(provider)
    provider.shutdown()
    assert sorted(_types(server, trace_id)) == ["model_call", "prompt", "span", "tool_call"]
    trace = httpx.get(f"{server.url}/api/v1/traces/{trace_id}").json()["events"]
    assert trace[0]["depth"] == 0 and trace[0]["event"]["type"] == "prompt"
    assert {e["depth"] for e in trace[1:]} == {1}
    tool = next(e["event"] for e in trace if e["event"]["type"] == "tool_call")
    assert tool["payload"]["tool_name"] == "Bash" and tool["status"] == "error"
    model = next(e["event"] for e in trace if e["event"]["type"] == "model_call")
    assert model["model"]["name"] == "claude-sonnet-4-5"
    # The root span ends, and arrives, after its children: its end closes the turn.
    root = trace[0]["event"]
    metrics = httpx.get(server.url + "/metrics").text
    assert "flightlog_action_latency_seconds_count 1.0" in metrics
    latency = float(metrics.split("flightlog_action_latency_seconds_sum ")[1].split()[0])
    assert abs(latency - root["duration_ms"] / 1000) < 0.001
    http = next(e["event"] for e in trace if e["event"]["type"] == "span")
    assert http["payload"]["name"] == "GET /repos/acme/app/pulls" and http["status"] == "ok"
    assert http["payload"]["raw"]["attributes"]["http.response.status_code"] == 200

    server.stop()
    cli = [sys.executable, "-m", "flightlog", "--home", str(home)]
    show = subprocess.run([*cli, "show", trace_id], capture_output=True, text=True, check=True).stdout
    assert "prompt" in show and "Bash" in show and "span" in show and "GET /repos/acme/app/pulls" in show
    assert subprocess.run([*cli, "verify"], capture_output=True, text=True).returncode == 0


def test_otlp_json_and_gzip_and_claude_code_logs(serve: Callable[..., Server]) -> None:
    server = serve()
    t = "5b8efff798038103d269b633813fc60c"
    now = str(time.time_ns())
    spans = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": t,
                                "spanId": "eee19b7ec3c1b174",
                                "name": "execute_tool Read",
                                "kind": 1,
                                "startTimeUnixNano": now,
                                "endTimeUnixNano": now,
                                "attributes": [
                                    {
                                        "key": "gen_ai.operation.name",
                                        "value": {"stringValue": "execute_tool"},
                                    },
                                    {"key": "gen_ai.tool.name", "value": {"stringValue": "Read"}},
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    r = httpx.post(
        server.url + "/v1/traces",
        content=gzip.compress(json.dumps(spans).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert _types(server, t) == ["tool_call"]

    def attr(k: str, v: str) -> dict[str, object]:
        return {"key": k, "value": {"stringValue": v}}

    logs = {
        "resourceLogs": [
            {
                "resource": {"attributes": [attr("service.name", "claude-code")]},
                "scopeLogs": [
                    {
                        "scope": {"name": "com.anthropic.claude_code.events"},
                        "logRecords": [
                            {
                                "timeUnixNano": now,
                                "body": {"stringValue": "claude_code.user_prompt"},
                                "attributes": [
                                    attr("event.name", "user_prompt"),
                                    attr("session.id", "s-1"),
                                    attr("prompt.id", "p-1"),
                                    attr("prompt", "fix the build"),
                                    attr("prompt_length", "13"),
                                ],
                            },
                            {
                                "timeUnixNano": now,
                                "body": {"stringValue": "claude_code.tool_result"},
                                "attributes": [
                                    attr("event.name", "tool_result"),
                                    attr("session.id", "s-1"),
                                    attr("prompt.id", "p-1"),
                                    attr("tool_name", "Bash"),
                                    attr("success", "true"),
                                    attr("duration_ms", "120"),
                                ],
                            },
                        ],
                    }
                ],
            }
        ]
    }
    r = httpx.post(server.url + "/v1/logs", json=logs)
    assert r.status_code == 200, r.text
    found = httpx.get(server.url + "/api/v1/traces", params={"session": "s-1"}).json()["traces"]
    assert len(found) == 1
    assert sorted(_types(server, found[0]["trace_id"])) == ["prompt", "tool_call"]

    # An exporter retries a batch whose answer it did not see: nothing is stored twice.
    entries = httpx.get(server.url + "/healthz").json()["entries"]
    assert httpx.post(server.url + "/v1/logs", json=logs).status_code == 200
    r = httpx.post(
        server.url + "/v1/traces",
        content=gzip.compress(json.dumps(spans).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 200 and r.json() == {}
    assert httpx.get(server.url + "/healthz").json()["entries"] == entries
    assert _types(server, t) == ["tool_call"]
    assert sorted(_types(server, found[0]["trace_id"])) == ["prompt", "tool_call"]


def test_bad_otlp_input(serve: Callable[..., Server]) -> None:
    server = serve()
    url = server.url + "/v1/traces"
    proto = {"content-type": "application/x-protobuf"}
    truncated = httpx.post(url, content=b"\x0a\xff\xff\xff", headers=proto)
    assert truncated.status_code == 400
    status = status_pb2.Status.FromString(truncated.content)  # OTLP: a google.rpc.Status, not OK
    assert (status.code, status.message) == (3, "$: not a valid ExportTraceServiceRequest protobuf")
    bad_json = httpx.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json() == {"code": 3, "message": "$: not valid JSON"}
    assert httpx.post(url, content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    bomb = gzip.compress(b"\0" * 50_000_000)
    r = httpx.post(url, content=bomb, headers={**proto, "content-encoding": "gzip"})
    assert r.status_code == 413
    assert httpx.get(server.url + "/healthz").json()["entries"] == 0
