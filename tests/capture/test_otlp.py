"""OTLP/HTTP bodies → flightlog events: real SDK bytes, protobuf and JSON, Claude Code shapes."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from flightlog.capture import claude_shape, otlp
from flightlog.capture.otlp import (
    OtlpBatch,
    OtlpDecodeError,
    logs_response,
    logs_to_events,
    trace_response,
    traces_to_events,
)
from flightlog.errors import ValidationError
from flightlog.events import canonical_bytes, validate_event

PB = "application/x-protobuf"
JSON = "application/json"
T0 = 1_795_021_200_123_456_789  # 2026-11-18T17:00:00.123456789Z
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")


# --- helpers -------------------------------------------------------------------------------


def value(v: Any) -> AnyValue:
    """A Python value as an OTLP AnyValue."""
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[value(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=kvs(v)))
    return AnyValue(string_value=v)


def kvs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=value(v)) for k, v in attrs.items()]


def span(n: int, name: str = "op", attrs: dict[str, Any] | None = None, parent: int = 0, **fields: Any) -> Span:
    """A span with span id n (8 bytes) in TRACE, starting n ms after T0 and lasting 5 ms."""
    return Span(
        trace_id=fields.pop("trace_id", TRACE),
        span_id=fields.pop("span_id", n.to_bytes(8, "big")),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        kind=fields.pop("kind", Span.SPAN_KIND_INTERNAL),
        start_time_unix_nano=fields.pop("start", T0 + n * 1_000_000),
        end_time_unix_nano=fields.pop("end", T0 + n * 1_000_000 + 5_000_000),
        attributes=kvs(attrs or {}),
        **fields,
    )


def trace_request(*spans: Span, resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(kvs(resource if resource is not None else {"service.name": "svc"}))
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "test.scope", "1.2"
    ss.spans.extend(spans)
    return request


def logs_request(*records: LogRecord, resource: dict[str, Any] | None = None) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    res = resource if resource is not None else {"service.name": "claude-code", "service.version": "2.1.236"}
    rl.resource.attributes.extend(kvs(res))
    sl = rl.scope_logs.add()
    sl.scope.name, sl.scope.version = "com.anthropic.claude_code.events", "2.1.236"
    sl.log_records.extend(records)
    return request


def to_otlp_json(message: Message) -> bytes:
    """OTLP/JSON as a conforming exporter writes it: the proto3 JSON mapping with hex ids."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)

    def hexify(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(item, str):
                    node[key] = base64.b64decode(item).hex()
                else:
                    hexify(item)
        elif isinstance(node, list):
            for item in node:
                hexify(item)

    hexify(document)
    return json.dumps(document).encode()


def check(batch: OtlpBatch) -> list[dict[str, Any]]:
    """Every event passes the schema and has canonical bytes (the pipeline hashes those);
    returns the events."""
    for event in batch.events:
        validate_event(event)
        canonical_bytes(event)
    return batch.events


def by_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


# --- spans from the real OpenTelemetry SDK -------------------------------------------------


@pytest.fixture
def sdk_spans() -> tuple[bytes, dict[str, str]]:
    """invoke_agent → chat → execute_tool (+ a failing tool), recorded and encoded by the SDK."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "my-agent", "user.id": "u-7", "host.name": "devbox"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("agent.lib", "0.9")
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "find the TODOs"}]},
    ]
    ids = {}
    with tracer.start_as_current_span(
        "invoke_agent coder",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "coder",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.conversation.id": "conv-42",
            "gen_ai.input.messages": json.dumps(messages),
        },
    ) as agent:
        ids["agent"] = format(agent.get_span_context().span_id, "016x")
        with tracer.start_as_current_span(
            "chat claude-x",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.agent.name": "coder",
                "gen_ai.request.model": "claude-x",
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.top_p": 0.9,
                "gen_ai.request.seed": 7,
                "gen_ai.request.max_tokens": 1024,
                "gen_ai.response.id": "msg_1",
                "gen_ai.response.finish_reasons": ["tool_use"],
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 30,
                "gen_ai.usage.cache_read.input_tokens": 100,
                "gen_ai.input.messages": json.dumps(messages),
            },
        ) as chat:
            ids["chat"] = format(chat.get_span_context().span_id, "016x")
            with tracer.start_as_current_span(
                "execute_tool grep",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.agent.name": "coder",
                    "gen_ai.tool.name": "grep",
                    "gen_ai.tool.call.id": "call_1",
                    "gen_ai.tool.call.arguments": '{"pattern": "TODO", "path": "src"}',
                    "gen_ai.tool.call.result": "src/a.py:3: TODO",
                },
            ) as tool:
                ids["tool"] = format(tool.get_span_context().span_id, "016x")
            with tracer.start_as_current_span(
                "execute_tool bash",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "bash"},
            ) as failing:
                failing.set_status(StatusCode.ERROR, "exit status 1")
                ids["failing"] = format(failing.get_span_context().span_id, "016x")
        ids["trace"] = format(agent.get_span_context().trace_id, "032x")
    spans = exporter.get_finished_spans()
    provider.shutdown()
    return encode_spans(spans).SerializeToString(), ids


def test_sdk_spans_map_to_nested_prompt_model_call_and_tool_calls(
    sdk_spans: tuple[bytes, dict[str, str]],
) -> None:
    body, ids = sdk_spans
    batch = traces_to_events(body, PB)
    assert (batch.rejected, batch.errors) == (0, [])
    events = {e["span_id"]: e for e in check(batch)}
    assert set(events) == {ids["agent"], ids["chat"], ids["tool"], ids["failing"]}
    assert {e["trace_id"] for e in events.values()} == {ids["trace"]}

    prompt = events[ids["agent"]]
    assert prompt["type"] == "prompt"
    assert "parent_span_id" not in prompt
    assert prompt["payload"]["text"] == "find the TODOs"
    assert prompt["payload"]["messages"][1]["role"] == "user"
    assert prompt["agent_id"] == "coder"
    assert prompt["session_id"] == "conv-42"
    assert prompt["user_context"] == {"user_id": "u-7", "host": "devbox"}
    assert prompt["source"] == {"kind": "otlp", "version": "agent.lib 0.9"}
    assert prompt["payload"]["raw"]["resource"]["service.name"] == "my-agent"
    assert prompt["payload"]["raw"]["span_name"] == "invoke_agent coder"

    chat = events[ids["chat"]]
    assert chat["type"] == "model_call"
    assert chat["parent_span_id"] == ids["agent"]
    assert chat["model"] == {
        "provider": "anthropic",
        "name": "claude-x",
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
    }
    payload = chat["payload"]
    assert payload["request"]["max_tokens"] == 1024
    assert payload["request"]["messages"][1]["parts"][0]["content"] == "find the TODOs"
    assert payload["response"] == {"id": "msg_1", "finish_reasons": ["tool_use"]}
    assert payload["usage"] == {"input_tokens": 120, "output_tokens": 30, "cache_read_input_tokens": 100}
    assert chat["status"] == "ok"
    assert chat["duration_ms"] >= 0

    tool = events[ids["tool"]]
    assert tool["type"] == "tool_call"
    assert tool["parent_span_id"] == ids["chat"]
    assert tool["payload"]["tool_name"] == "grep"
    assert tool["payload"]["tool_call_id"] == "call_1"
    assert tool["payload"]["input"] == {"pattern": "TODO", "path": "src"}
    assert tool["payload"]["output"] == "src/a.py:3: TODO"
    assert tool["payload"]["error"] is None

    failing = events[ids["failing"]]
    assert failing["status"] == "error"
    assert failing["payload"]["error"] == "exit status 1"
    assert failing["agent_id"] == "my-agent"  # no gen_ai.agent.* attribute: service.name


def test_protobuf_and_json_of_the_same_request_give_the_same_events(
    sdk_spans: tuple[bytes, dict[str, str]],
) -> None:
    body, _ = sdk_spans
    request = ExportTraceServiceRequest.FromString(body)
    from_pb = traces_to_events(body, PB)
    from_json = traces_to_events(to_otlp_json(request), "application/json; charset=utf-8")
    assert from_json.events == from_pb.events
    assert len(from_pb.events) == 4


def test_timestamp_and_duration() -> None:
    start = T0
    batch = traces_to_events(
        trace_request(
            span(1, start=start, end=start + 2_500_000), span(2, start=start, end=start - 1)
        ).SerializeToString(),
        PB,
    )
    first, second = check(batch)
    assert first["timestamp"] == "2026-11-18T17:00:00.123456Z"  # microseconds, Z
    assert first["duration_ms"] == 2.5
    assert "duration_ms" not in second  # ends before it starts


def test_ids_are_lowercase_hex_of_the_span() -> None:
    trace_id, span_id, parent = bytes(range(1, 17)), bytes(range(17, 25)), bytes(range(25, 33))
    sp = span(0, trace_id=trace_id, span_id=span_id)
    sp.parent_span_id = parent
    (event,) = check(traces_to_events(trace_request(sp).SerializeToString(), PB))
    assert (event["trace_id"], event["span_id"], event["parent_span_id"]) == (
        trace_id.hex(),
        span_id.hex(),
        parent.hex(),
    )


def test_bad_ids_reject_only_their_span() -> None:
    request = trace_request(
        span(1),
        span(2, trace_id=bytes(16)),
        span(3, span_id=b"\x01\x02\x03\x04"),
        span(4, trace_id=b""),
        span(5, start=0),
        span(6),
    )
    batch = traces_to_events(request.SerializeToString(), PB)
    assert [e["span_id"] for e in check(batch)] == [
        (1).to_bytes(8, "big").hex(),
        (6).to_bytes(8, "big").hex(),
    ]
    assert batch.rejected == 4
    assert batch.errors == [
        "span 1: trace_id is all zero",
        "span 2: span_id has 4 bytes, expected 8",
        "span 3: trace_id is missing",
        "span 4: start_time_unix_nano is missing",
    ]


def test_rejected_spans_are_reported_in_partial_success() -> None:
    batch = traces_to_events(trace_request(span(1), span(2, trace_id=bytes(16))).SerializeToString(), PB)
    response = ExportTraceServiceResponse.FromString(trace_response(batch, PB))
    assert response.partial_success.rejected_spans == 1
    assert response.partial_success.error_message == "span 1: trace_id is all zero"

    as_json = json.loads(trace_response(batch, "application/json; charset=utf-8"))
    assert as_json == {"partialSuccess": {"rejectedSpans": "1", "errorMessage": "span 1: trace_id is all zero"}}
    parsed = json_format.Parse(trace_response(batch, JSON), ExportTraceServiceResponse())
    assert parsed.partial_success.rejected_spans == 1


def test_full_success_response_has_no_partial_success() -> None:
    batch = traces_to_events(trace_request(span(1)).SerializeToString(), PB)
    assert trace_response(batch, PB) == b""
    assert json.loads(trace_response(batch, JSON)) == {}
    assert logs_response(OtlpBatch(skipped=3), PB) == b""
    assert json.loads(logs_response(OtlpBatch(), JSON)) == {}


def test_error_messages_are_capped_and_summarised() -> None:
    spans = [span(i + 1, trace_id=bytes(16)) for i in range(25)]
    batch = traces_to_events(trace_request(*spans).SerializeToString(), PB)
    assert (batch.rejected, len(batch.errors)) == (25, otlp.MAX_ERRORS)
    response = ExportTraceServiceResponse.FromString(trace_response(batch, PB))
    assert response.partial_success.rejected_spans == 25
    assert response.partial_success.error_message.endswith("; and 5 more")


def test_empty_requests_are_successes() -> None:
    for body, ctype in ((b"", PB), (b"{}", JSON)):
        for decode in (traces_to_events, logs_to_events):
            batch = decode(body, ctype)
            assert (batch.events, batch.rejected, batch.skipped) == ([], 0, 0)


# --- OTLP/JSON -----------------------------------------------------------------------------


def test_json_accepts_numbers_snake_case_and_uppercase_hex() -> None:
    document = {
        "resource_spans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": TRACE.hex().upper(),
                                "spanId": "00000000000000AB",
                                "parentSpanId": "",
                                "name": "execute_tool ls",
                                "kind": 1,
                                "startTimeUnixNano": T0,
                                "end_time_unix_nano": str(T0 + 1_000_000),
                                "status": {"code": 2, "message": "boom"},
                                "attributes": [
                                    {
                                        "key": "gen_ai.operation.name",
                                        "value": {"stringValue": "execute_tool"},
                                    },
                                    {"key": "gen_ai.tool.name", "value": {"stringValue": "ls"}},
                                    {"key": "n", "value": {"intValue": "12"}},
                                    {"key": "blob", "value": {"bytesValue": "AAEC"}},
                                ],
                                "someFutureField": {"x": 1},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    batch = traces_to_events(json.dumps(document).encode(), JSON)
    (event,) = check(batch)
    assert event["trace_id"] == TRACE.hex()
    assert event["span_id"] == "00000000000000ab"
    assert "parent_span_id" not in event
    assert event["duration_ms"] == 1.0
    assert event["status"] == "error"
    assert event["payload"]["tool_name"] == "ls"
    assert event["payload"]["error"] == "boom"
    assert event["payload"]["raw"]["attributes"]["n"] == 12
    assert event["payload"]["raw"]["attributes"]["blob"] == "AAEC"  # bytes stay base64
    assert event["payload"]["raw"]["span_kind"] == "internal"


def test_json_link_ids_are_hex_too() -> None:
    sp = span(1)
    link = sp.links.add()
    link.trace_id, link.span_id = bytes(range(16)), bytes(range(8))
    body = to_otlp_json(trace_request(sp))
    assert bytes(range(16)).hex().encode() in body
    (event,) = check(traces_to_events(body, JSON))
    assert event["payload"]["raw"]["links"] == [
        {"trace_id": bytes(range(16)).hex(), "span_id": bytes(range(8)).hex(), "attributes": {}}
    ]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b"{not json", "$", "not valid JSON"),
        (b"\xff\xfe\x00", "$", "not valid JSON"),
        (b"[]", "$", "must be a JSON object"),
        (b'{"resourceSpans": {"a": 1}}', "$.resourceSpans", "must be an array"),
        (b'{"resourceSpans": [1]}', "$.resourceSpans[0]", "must be an object"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": NaN}]}]}]}', "$", "not valid JSON"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "W47/95gDgQPSabYzgT/GDA=="}]}]}]}',
            "$.resourceSpans[0].scopeSpans[0].spans[0].traceId",
            "must be a hex string",
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "abc"}]}]}]}',
            "$.resourceSpans[0].scopeSpans[0].spans[0].spanId",
            "must be a hex string",
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"links": [{"spanId": "zz"}]}]}]}]}',
            "$.resourceSpans[0].scopeSpans[0].spans[0].links[0].spanId",
            "must be a hex string",
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
            "$",
            "not a valid ExportTraceServiceRequest in OTLP/JSON",
        ),
    ],
)
def test_undecodable_json_names_the_field(body: bytes, field: str, reason: str) -> None:
    with pytest.raises(OtlpDecodeError) as info:
        traces_to_events(body, JSON)
    assert info.value.field == field
    assert reason in info.value.reason
    assert isinstance(info.value, ValidationError)


@pytest.mark.parametrize(
    "value",
    [
        '"startTimeUnixNano": "ghp_4gN5ZrUA6qQUbFKqpk7oBFcxkJNDpZURxWlm"',
        '"attributes": [{"key": "k", "value": {"intValue": "ghp_4gN5ZrUA6qQUbFKqpk7oBFcxkJNDpZURxWlm"}}]',
        '"attributes": [{"key": "k", "value": {"doubleValue": "ghp_4gN5ZrUA6qQUbFKqpk7oBFcxkJNDpZURxWlm"}}]',
    ],
)
def test_a_value_that_cannot_be_parsed_is_not_repeated(value: str) -> None:
    # It may be a secret: error answers and logs never carry what was sent.
    body = '{"resourceSpans": [{"scopeSpans": [{"spans": [{' + value + "}]}]}]}"
    with pytest.raises(OtlpDecodeError) as info:
        traces_to_events(body.encode(), JSON)
    assert "ghp_" not in info.value.message and "spans." in info.value.reason


def test_json_log_ids_must_be_hex() -> None:
    body = b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "W47/95gDgQPSabYzgT/GDA=="}]}]}]}'
    with pytest.raises(OtlpDecodeError) as info:
        logs_to_events(body, JSON)
    assert info.value.field == "$.resourceLogs[0].scopeLogs[0].logRecords[0].traceId"


def test_deeply_nested_json_is_a_decode_error() -> None:
    deep = '{"arrayValue": {"values": [' * 400 + '{"stringValue": "x"}' + "]}}" * 400
    body = '{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"key": "k", "value": %s}]}]}]}]}'
    with pytest.raises(OtlpDecodeError):
        traces_to_events((body % deep).encode(), JSON)
    with pytest.raises(OtlpDecodeError):
        traces_to_events(b"[" * 100_000 + b"]" * 100_000, JSON)


# --- protobuf and content types ------------------------------------------------------------


def test_truncated_protobuf_is_a_decode_error() -> None:
    body = trace_request(span(1), span(2)).SerializeToString()
    with pytest.raises(OtlpDecodeError) as info:
        traces_to_events(body[: len(body) // 2], PB)
    assert info.value.reason == "not a valid ExportTraceServiceRequest protobuf"
    with pytest.raises(OtlpDecodeError, match="ExportLogsServiceRequest"):
        logs_to_events(b"\x0a\xff\xff\xff", PB)


@pytest.mark.parametrize("ctype", ["text/plain", "", "application/grpc", "application/jsonx"])
def test_unknown_content_type_is_a_decode_error(ctype: str) -> None:
    with pytest.raises(OtlpDecodeError, match="content type"):
        traces_to_events(b"{}", ctype)
    with pytest.raises(OtlpDecodeError, match="content type"):
        logs_response(OtlpBatch(), ctype)


def test_content_type_parameters_and_case_are_ignored() -> None:
    body = trace_request(span(1)).SerializeToString()
    assert len(traces_to_events(body, "Application/X-Protobuf; foo=bar").events) == 1


def test_too_many_items_is_a_decode_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp, "MAX_ITEMS", 2)
    request = trace_request(span(1), span(2), span(3))
    with pytest.raises(OtlpDecodeError, match="more than 2 spans"):
        traces_to_events(request.SerializeToString(), PB)
    with pytest.raises(OtlpDecodeError, match="more than 2 spans"):
        traces_to_events(to_otlp_json(request), JSON)
    records = [LogRecord(time_unix_nano=T0) for _ in range(3)]
    with pytest.raises(OtlpDecodeError, match="more than 2 log records"):
        logs_to_events(logs_request(*records).SerializeToString(), PB)
    with pytest.raises(OtlpDecodeError, match="more than 2 log records"):
        logs_to_events(to_otlp_json(logs_request(*records)), JSON)
    assert len(traces_to_events(trace_request(span(1), span(2)).SerializeToString(), PB).events) == 2


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300), as_json=st.booleans(), logs=st.booleans())
def test_arbitrary_bytes_decode_or_raise_decode_error(body: bytes, as_json: bool, logs: bool) -> None:
    decode = logs_to_events if logs else traces_to_events
    try:
        batch = decode(body, JSON if as_json else PB)
    except OtlpDecodeError:
        return
    check(batch)


@settings(max_examples=200, deadline=None)
@given(
    trace_id=st.binary(max_size=20),
    span_id=st.binary(max_size=10),
    name=st.text(max_size=20),
    attrs=st.dictionaries(
        st.sampled_from(
            [
                "gen_ai.operation.name",
                "gen_ai.tool.name",
                "gen_ai.request.temperature",
                "gen_ai.request.seed",
                "session.id",
                "user.id",
                "success",
                "gen_ai.input.messages",
                "cicd.pipeline.name",
            ]
        ),
        st.one_of(
            st.sampled_from(["execute_tool", "chat", "invoke_agent", "", "[{}]", "false", "{"]),
            st.integers(-(2**63), 2**63 - 1),
            st.floats(),
            st.booleans(),
            st.text(max_size=300),
        ),
    ),
    code=st.sampled_from([0, 1, 2]),
)
def test_any_span_maps_to_a_valid_event_or_is_rejected(
    trace_id: bytes, span_id: bytes, name: str, attrs: dict[str, Any], code: int
) -> None:
    sp = span(1, name=name, attrs=attrs, trace_id=trace_id, span_id=span_id, status=Status(code=code))  # type: ignore[arg-type]
    batch = traces_to_events(trace_request(sp).SerializeToString(), PB)
    assert len(check(batch)) + batch.rejected == 1


# --- attribute values ----------------------------------------------------------------------


def test_attribute_values_become_plain_json() -> None:
    attrs = {
        "s": "x",
        "i": -5,
        "f": 1.5,
        "b": True,
        "bytes": b"\x00\x01",
        "list": [1, "two", [3.0]],
        "map": {"k": {"deep": False}},
        "nan": float("nan"),
        "inf": float("-inf"),
        "big": 2**62,
    }
    sp = span(1, attrs=attrs)
    sp.attributes.add(key="empty")  # AnyValue with nothing set
    (event,) = check(traces_to_events(trace_request(sp).SerializeToString(), PB))
    assert event["payload"]["raw"]["attributes"] == {
        "s": "x",
        "i": -5,
        "f": 1.5,
        "b": True,
        "bytes": "AAE=",
        "list": [1, "two", [3.0]],
        "map": {"k": {"deep": False}},
        "nan": "NaN",
        "inf": "-Infinity",
        "big": str(2**62),  # beyond what canonical JSON numbers hold exactly
        "empty": None,
    }


def test_json_string_attributes_are_parsed_only_when_safe() -> None:
    deep = "[" * 100 + "]" * 100
    calls = [
        '{"n": 12345678901234567890, "x": 1e999, "ok": [1.5, "s"]}',
        deep,
        "[" * 5000,  # not JSON at all
        ' {"padded": true}',
        '"a JSON string, not an object"',
    ]
    spans = [
        span(i + 1, "t", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.call.arguments": a})
        for i, a in enumerate(calls)
    ]
    inputs = [e["payload"]["input"] for e in check(traces_to_events(trace_request(*spans).SerializeToString(), PB))]
    assert inputs == [
        {"n": "12345678901234567890", "x": "1e999", "ok": [1.5, "s"]},
        deep,
        "[" * 5000,
        {"padded": True},
        '"a JSON string, not an object"',
    ]


# --- generic and Claude Code spans ---------------------------------------------------------


def test_generic_spans() -> None:
    request = trace_request(
        span(1, "GET /api", {"http.request.method": "GET"}, kind=Span.SPAN_KIND_CLIENT),
        span(2, "build", {"cicd.pipeline.name": "ci", "cicd.pipeline.run.id": "77"}),
        span(3, "db query", status=Status(code=Status.STATUS_CODE_ERROR, message="timeout")),
        span(4, ""),
    )
    one, two, three, four = check(traces_to_events(request.SerializeToString(), PB))
    assert (one["type"], one["payload"]["name"], one["status"]) == ("span", "GET /api", "ok")
    assert "error" not in one["payload"]
    assert one["payload"]["raw"]["span_kind"] == "client"
    assert one["payload"]["raw"]["attributes"] == {"http.request.method": "GET"}
    assert two["type"] == "ci"
    assert two["payload"]["raw"]["attributes"]["cicd.pipeline.run.id"] == "77"
    assert (three["type"], three["status"], three["payload"]["error"]) == ("span", "error", "timeout")
    assert three["payload"]["name"] == "db query"
    assert four["payload"]["name"] == "unnamed span"
    assert all(e["agent_id"] == "svc" for e in (one, two, three, four))


def test_claude_code_beta_spans() -> None:
    common = {"session.id": "sess-1", "user.id": "anon-1", "span.type": "x"}
    request = trace_request(
        span(1, "claude_code.interaction", {**common, "user_prompt": "fix the bug", "user_prompt_length": 11}),
        span(
            2,
            "claude_code.llm_request",
            {
                **common,
                "model": "claude-sonnet-4-5",
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.response.id": "msg_9",
                "gen_ai.response.finish_reasons": ["tool_use"],
                "input_tokens": 10,
                "output_tokens": "20",
                "cache_read_tokens": 5,
                "cache_creation_tokens": 1,
                "request_id": "req_1",
            },
            parent=1,
        ),
        span(
            3,
            "claude_code.tool",
            {
                **common,
                "tool_name": "Bash",
                "tool_use_id": "toolu_1",
                "gen_ai.tool.call.id": "toolu_1",
                "full_command": "make test",
            },
            parent=1,
        ),
        span(
            4,
            "claude_code.tool.blocked_on_user",
            {**common, "decision": "reject", "source": "user_reject"},
            parent=3,
        ),
        span(
            5,
            "claude_code.tool.execution",
            {**common, "success": "false", "error": "exit 2", "gen_ai.tool.call.id": "toolu_1"},
            parent=3,
            status=Status(code=Status.STATUS_CODE_ERROR),
        ),
        resource={"service.name": "claude-code", "service.version": "2.1.236"},
    )
    prompt, llm, tool, blocked, execution = check(traces_to_events(request.SerializeToString(), PB))
    assert (prompt["type"], prompt["payload"]["text"]) == ("prompt", "fix the bug")
    assert prompt["payload"]["raw"]["attributes"]["user_prompt_length"] == 11
    assert prompt["session_id"] == "sess-1"
    assert prompt["agent_id"] == "claude-code"
    assert prompt["user_context"] == {"user_id": "anon-1", "host": None}  # no user.email: the install id

    assert llm["type"] == "model_call"
    assert llm["model"] == {"provider": "anthropic", "name": "claude-sonnet-4-5"}
    assert llm["payload"]["usage"] == {
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_read_input_tokens": 5,
        "cache_creation_input_tokens": 1,
    }
    assert llm["payload"]["response"]["id"] == "msg_9"
    assert llm["payload"]["response"]["request_id"] == "req_1"

    assert tool["type"] == "tool_call"
    assert (tool["payload"]["tool_name"], tool["payload"]["tool_call_id"]) == ("Bash", "toolu_1")
    assert tool["payload"]["input"] == {"full_command": "make test"}

    assert (blocked["type"], blocked["status"]) == ("policy_evaluation", "denied")
    assert blocked["payload"]["decision"] == "reject"

    assert (execution["type"], execution["status"]) == ("tool_call", "error")
    assert execution["payload"]["error"] == "exit 2"
    assert execution["parent_span_id"] == (3).to_bytes(8, "big").hex()


def test_prompt_text_falls_back_to_gen_ai_prompt_then_span_name() -> None:
    request = trace_request(
        span(1, "invoke_agent a", {"gen_ai.operation.name": "invoke_agent", "gen_ai.prompt": "hello"}),
        span(2, "invoke_agent b", {"gen_ai.operation.name": "invoke_agent"}),
        span(
            3,
            "invoke_agent c",
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.input.messages": "not json"},
        ),
    )
    a, b, c = check(traces_to_events(request.SerializeToString(), PB))
    assert [a["payload"]["text"], b["payload"]["text"], c["payload"]["text"]] == [
        "hello",
        "invoke_agent b",
        "not json",
    ]


def test_overlong_agent_and_session_ids_stay_valid() -> None:
    attrs = {"gen_ai.agent.name": "a" * 300, "session.id": "s" * 300}
    (event,) = check(traces_to_events(trace_request(span(1, attrs=attrs)).SerializeToString(), PB))
    assert event["agent_id"] == "svc"  # too long for agent_id: service.name instead
    assert "session_id" not in event
    assert event["payload"]["raw"]["attributes"] == attrs  # nothing is lost


# --- Claude Code log events ----------------------------------------------------------------


def cc_record(name: str, attrs: dict[str, Any], n: int = 0, **fields: Any) -> LogRecord:
    """A log record shaped like Claude Code's: body is the qualified name, event.name is bare."""
    standard = {
        "session.id": "sess-1",
        "user.id": "anon-1",
        "user.email": "dev@example.com",
        "organization.id": "org-1",
        "terminal.type": "xterm",
        "prompt.id": "prompt-1",
        "event.name": name,
        "event.timestamp": "2026-11-24T17:00:00.123Z",
        "event.sequence": n,
    }
    return LogRecord(
        time_unix_nano=fields.pop("time", T0 + n),
        severity_number=fields.pop("severity", 9),
        body=AnyValue(string_value=f"claude_code.{name}"),
        attributes=kvs({**standard, **attrs}),
        **fields,
    )


def claude_code_session() -> ExportLogsServiceRequest:
    return logs_request(
        cc_record("user_prompt", {"prompt_length": 11, "prompt": "fix the bug"}, 1),
        cc_record(
            "api_request",
            {
                "model": "claude-sonnet-4-5",
                "cost_usd": 0.0123,
                "duration_ms": "840",
                "input_tokens": 1200,
                "output_tokens": "85",
                "cache_read_tokens": 1000,
                "cache_creation_tokens": 0,
                "request_id": "req_1",
            },
            2,
        ),
        cc_record(
            "tool_decision",
            {"tool_name": "Bash", "tool_use_id": "toolu_1", "decision": "accept", "source": "config"},
            3,
        ),
        cc_record(
            "tool_result",
            {
                "tool_name": "Bash",
                "tool_use_id": "toolu_1",
                "success": "false",
                "duration_ms": 12,
                "error": "exit code 2",
                "tool_parameters": '{"bash_command": "make", "full_command": "make test"}',
            },
            4,
        ),
        cc_record(
            "api_error",
            {"model": "claude-sonnet-4-5", "error": "overloaded", "status_code": "529", "duration_ms": 5},
            5,
        ),
        cc_record("tool_decision", {"tool_name": "Write", "decision": "reject", "source": "user_reject"}, 6),
        cc_record("hook_execution_start", {"hook_event": "PreToolUse"}, 7),
        cc_record("internal_error", {"error_name": "TypeError"}, 8, severity=17),
        cc_record("assistant_response", {"response": "Fixed: the Makefile target was missing.", "model": "m"}, 9),
    )


def test_claude_code_log_events_map_to_types() -> None:
    batch = logs_to_events(claude_code_session().SerializeToString(), PB)
    events = check(batch)
    assert (batch.rejected, batch.skipped) == (0, 0)  # every Claude Code event is part of the record
    assert [e["type"] for e in events] == [
        "prompt",
        "model_call",
        "policy_evaluation",
        "tool_call",
        "model_call",
        "policy_evaluation",
        "span",
        "span",
        "span",
    ]
    prompt, api, decision, result, api_error, rejected, hook, internal, response = events
    assert prompt["payload"]["text"] == "fix the bug"
    assert prompt["payload"]["raw"]["attributes"]["prompt_length"] == 11
    assert prompt["payload"]["raw"]["event_name"] == "user_prompt"
    assert prompt["agent_id"] == "claude-code"
    assert prompt["session_id"] == "sess-1"
    assert prompt["user_context"] == {"user_id": "dev@example.com", "host": None}  # not the anonymous install id
    assert prompt["source"] == {"kind": "otlp", "version": "com.anthropic.claude_code.events 2.1.236"}
    kept = prompt["payload"]["raw"]["attributes"]
    assert kept["user.id"] == "anon-1"  # only the attribute used for user_id is consumed
    assert (kept["prompt.id"], kept["organization.id"], kept["event.sequence"]) == ("prompt-1", "org-1", 1)
    assert "session.id" not in kept and "event.name" not in kept

    assert api["model"] == {"name": "claude-sonnet-4-5"}
    assert api["duration_ms"] == 840.0
    assert api["payload"]["usage"] == {
        "input_tokens": 1200,
        "output_tokens": 85,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 0,
        "cost_usd": 0.0123,
    }
    assert api["payload"]["response"] == {"request_id": "req_1"}
    assert api["status"] == "ok"

    assert decision["payload"] == {
        "decision": "accept",
        "source": "config",
        "tool_name": "Bash",
        "tool_call_id": "toolu_1",
        "raw": decision["payload"]["raw"],
    }
    assert decision["status"] == "ok"

    assert result["status"] == "error"
    assert result["duration_ms"] == 12.0
    assert result["payload"]["tool_name"] == "Bash"
    assert result["payload"]["tool_call_id"] == "toolu_1"
    assert result["payload"]["error"] == "exit code 2"
    assert result["payload"]["input"] == {"bash_command": "make", "full_command": "make test"}

    assert (api_error["status"], api_error["payload"]["error"]) == ("error", "overloaded")
    assert api_error["payload"]["response"]["status_code"] == 529

    assert rejected["status"] == "denied"
    assert (hook["payload"]["name"], hook["status"]) == ("claude_code.hook_execution_start", "ok")
    assert hook["payload"]["raw"]["attributes"]["hook_event"] == "PreToolUse"
    assert (internal["status"], internal["payload"]["name"]) == ("error", "claude_code.internal_error")
    assert internal["payload"]["error"] == "claude_code.internal_error"
    assert response["payload"]["name"] == "claude_code.assistant_response"
    assert response["payload"]["raw"]["attributes"]["response"] == "Fixed: the Makefile target was missing."
    assert response["trace_id"] == prompt["trace_id"]  # one prompt.id: one trace


def test_claude_code_log_ids_are_deterministic() -> None:
    body = claude_code_session().SerializeToString()
    first, second = logs_to_events(body, PB).events, logs_to_events(body, PB).events
    assert [(e["trace_id"], e["span_id"]) for e in first] == [(e["trace_id"], e["span_id"]) for e in second]
    expected_trace = hashlib.sha256(b"flightlog-trace:sess-1:prompt-1").digest()[:16].hex()
    assert {e["trace_id"] for e in first} == {expected_trace}  # one trace per prompt
    assert len({e["span_id"] for e in first}) == len(first)
    # The spans the Claude Code hook gives the same prompt and tool call, so that the collector
    # keeps one of each; the rest hang under the prompt.
    prompt, *rest = first
    assert prompt["span_id"] == claude_shape.prompt_span_id(expected_trace)
    assert all(e["parent_span_id"] == prompt["span_id"] for e in rest)
    result = next(e for e in rest if e["type"] == "tool_call")
    assert result["span_id"] == claude_shape.tool_span_id("sess-1", "toolu_1")
    # the same events in JSON map to the same ids
    assert logs_to_events(to_otlp_json(claude_code_session()), JSON).events == first


def test_log_trace_follows_prompt_id_then_session() -> None:
    request = logs_request(
        cc_record("user_prompt", {"prompt.id": "p-2"}, 1),
        cc_record("user_prompt", {"prompt.id": ""}, 2),  # an empty attribute is still the key
    )
    record = LogRecord(time_unix_nano=T0, body=AnyValue(string_value="claude_code.user_prompt"))
    record.attributes.extend(kvs({"session.id": "sess-9"}))
    request.resource_logs[0].scope_logs[0].log_records.append(record)
    lone = LogRecord(time_unix_nano=T0, event_name="claude_code.user_prompt")
    request.resource_logs[0].scope_logs[0].log_records.append(lone)
    p2, empty, session_only, no_keys = check(logs_to_events(request.SerializeToString(), PB))
    sha = hashlib.sha256
    assert p2["trace_id"] == sha(b"flightlog-trace:sess-1:p-2").digest()[:16].hex()
    assert empty["trace_id"] == sha(b"flightlog-trace:sess-1:").digest()[:16].hex()
    assert session_only["trace_id"] == sha(b"flightlog-trace:sess-9").digest()[:16].hex()
    assert no_keys["type"] == "prompt"  # named by the LogRecord event_name field
    assert no_keys["payload"]["text"] == ""
    assert no_keys["trace_id"] not in (p2["trace_id"], session_only["trace_id"])


def test_log_record_with_trace_context_joins_its_span() -> None:
    record = cc_record("tool_result", {"tool_name": "Read", "success": True}, 1)
    record.trace_id, record.span_id = TRACE, bytes.fromhex("00f067aa0ba902b7")
    (event,) = check(logs_to_events(logs_request(record).SerializeToString(), PB))
    assert event["trace_id"] == TRACE.hex()
    assert event["parent_span_id"] == "00f067aa0ba902b7"
    assert event["span_id"] != "00f067aa0ba902b7"
    assert event["status"] == "ok"
    assert event["payload"]["error"] is None


def test_log_timestamps_and_bad_records() -> None:
    observed = cc_record("user_prompt", {}, 1, time=0, observed_time_unix_nano=T0)
    from_attribute = cc_record("user_prompt", {"event.timestamp": "2026-11-24T17:00:00.123Z"}, 2, time=0)
    no_time = cc_record("user_prompt", {}, 3, time=0)
    no_time.attributes.pop(7)  # drop event.timestamp
    assert [kv.key for kv in no_time.attributes][7] == "event.sequence"
    bad_trace = cc_record("user_prompt", {}, 4, trace_id=b"\x01\x02")
    batch = logs_to_events(logs_request(observed, from_attribute, no_time, bad_trace).SerializeToString(), PB)
    first, second = check(batch)
    assert first["timestamp"] == "2026-11-18T17:00:00.123456Z"
    assert second["timestamp"] == "2026-11-24T17:00:00.123000Z"
    assert batch.rejected == 2
    assert batch.errors == [
        "log record 2: time_unix_nano is missing (and no event.timestamp attribute)",
        "log record 3: trace_id has 2 bytes, expected 16",
    ]
    response = ExportLogsServiceResponse.FromString(logs_response(batch, PB))
    assert response.partial_success.rejected_log_records == 2
    assert json.loads(logs_response(batch, JSON))["partialSuccess"]["rejectedLogRecords"] == "2"


def test_non_agent_log_records_are_skipped_below_error_severity() -> None:
    records = [
        LogRecord(
            time_unix_nano=T0,
            severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
            body=AnyValue(string_value="started"),
        ),
        LogRecord(
            time_unix_nano=T0,
            severity_number=SeverityNumber.SEVERITY_NUMBER_WARN,
            body=AnyValue(string_value="slow"),
        ),
        LogRecord(
            time_unix_nano=T0,
            severity_number=SeverityNumber.SEVERITY_NUMBER_FATAL,
            severity_text="FATAL",
            body=value({"code": 3, "detail": "disk full"}),
        ),
    ]
    batch = logs_to_events(logs_request(*records, resource={"service.name": "svc"}).SerializeToString(), PB)
    (event,) = check(batch)
    assert batch.skipped == 2
    assert event["type"] == "error"
    assert event["payload"]["body"] == {"code": 3, "detail": "disk full"}
    assert event["payload"]["raw"]["severity"] == "FATAL"


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(["user_prompt", "api_request", "api_error", "tool_result", "tool_decision", "other", ""]),
    attrs=st.dictionaries(
        st.sampled_from(
            [
                "prompt",
                "model",
                "duration_ms",
                "input_tokens",
                "cost_usd",
                "success",
                "tool_name",
                "tool_parameters",
                "decision",
                "status_code",
                "error",
                "session.id",
                "prompt.id",
                "event.timestamp",
                "event.sequence",
            ]
        ),
        st.one_of(
            st.sampled_from(["", "true", "false", "reject", "12", "-3", "{}", "[1]", "2026-11-24T17:00:00Z"]),
            st.integers(-(2**63), 2**63 - 1),
            st.floats(),
            st.booleans(),
            st.text(max_size=50),
        ),
    ),
    time=st.sampled_from([0, T0]),
    severity=st.integers(0, 24),
    trace_id=st.sampled_from([b"", bytes(16), TRACE, b"\x01"]),
)
def test_any_log_record_maps_to_a_valid_event_is_skipped_or_rejected(
    name: str, attrs: dict[str, Any], time: int, severity: int, trace_id: bytes
) -> None:
    record = LogRecord(
        time_unix_nano=time,
        severity_number=severity,  # type: ignore[arg-type]
        event_name=name,
        attributes=kvs(attrs),
        trace_id=trace_id,
    )
    body = logs_request(record).SerializeToString()
    batch = logs_to_events(body, PB)
    assert len(check(batch)) + batch.rejected + batch.skipped == 1
    assert logs_to_events(body, PB).events == batch.events  # deterministic


def test_a_tool_span_marked_as_a_file_op_or_shell_becomes_that_event() -> None:
    """What flightlog.sdk sends for file writes and subprocesses lands as neutral events."""
    file_span = span(
        1,
        "execute_tool file_op",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "file_op",
            "flightlog.event.type": "file_op",
            "gen_ai.tool.call.arguments": json.dumps({"op": "patch", "file_path": "src/a.py"}),
            "gen_ai.tool.call.result": json.dumps({"checksum_after": "sha256:" + "a" * 64, "diff": "+x\n"}),
        },
    )
    shell_span = span(
        2,
        "execute_tool shell",
        {
            "gen_ai.operation.name": "execute_tool",
            "flightlog.event.type": "shell",
            "gen_ai.tool.call.arguments": json.dumps({"command": "pytest -q", "cwd": "/repo"}),
            "gen_ai.tool.call.result": json.dumps({"exit_code": 1, "stdout": "1 failed"}),
        },
    )
    incomplete = span(
        3, "execute_tool file_op", {"gen_ai.operation.name": "execute_tool", "flightlog.event.type": "file_op"}
    )
    file_op, shell, tool = check(
        traces_to_events(trace_request(file_span, shell_span, incomplete).SerializeToString(), PB)
    )
    assert file_op["type"] == "file_op"
    assert file_op["payload"]["op"] == "patch" and file_op["payload"]["diff"] == "+x\n"
    assert shell["type"] == "shell"
    assert (shell["payload"]["command"], shell["payload"]["exit_code"]) == ("pytest -q", 1)
    assert tool["type"] == "tool_call"  # without the fields it stays what it said it was
