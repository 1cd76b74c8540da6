"""`init()`: one TracerProvider feeding the collector, and the state the span helpers share.

The SDK sits on top of OpenTelemetry: spans go through the global TracerProvider, so spans from
other OTel instrumentations in the same process (HTTP clients, frameworks) land in the same
trace, and without `init()` every helper is the OTel API's no-op.
"""

from __future__ import annotations

import logging
import os
import threading
from contextvars import Token
from dataclasses import dataclass
from typing import Final

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from flightlog.client import collector_url

__all__ = ["CONVERSATION_KEY", "Handle", "active", "conversation", "env_parent", "init"]

TRACES_PATH: Final = "/v1/traces"
EXPORT_TIMEOUT_S: Final = 5.0  # a collector that is away must not hold the agent's exit for long
DEFAULT_AGENT: Final = "agent"
# Context key under which `agent_run` keeps its conversation id for the spans started inside it.
CONVERSATION_KEY: Final = context.create_key("flightlog.sdk.conversation_id")

_log = logging.getLogger("flightlog.sdk")
_lock = threading.Lock()
_handle: Handle | None = None
_env_parent: Context | None = None
_attached: Token[Context] | None = None  # the token of the context init() attached, for _reset()


@dataclass(frozen=True)
class Handle:
    """What `init()` set up: where spans go, as which agent; `flush()` and `shutdown()`."""

    service_name: str
    agent_id: str
    conversation_id: str | None
    url: str
    provider: TracerProvider | None
    processor: SpanProcessor | None
    owns_provider: bool

    def flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every span ended so far; return False when that did not finish in time."""
        return self.processor.force_flush(timeout_millis) if self.processor is not None else True

    def shutdown(self) -> None:
        """Flush and stop exporting (also done at interpreter exit by the OTel SDK)."""
        if self.owns_provider and self.provider is not None:
            self.provider.shutdown()
        elif self.processor is not None:
            self.processor.shutdown()


class _Stamp(SpanProcessor):
    """Marks every span started in this process with the agent it belongs to and, inside an
    `agent_run` (else the process's default), its conversation: the collector reads
    `agent_id` and `session_id` per span."""

    def __init__(self, agent_id: str, conversation_id: str | None) -> None:
        self._agent_id = agent_id
        self._conversation_id = conversation_id

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        present = span.attributes or {}
        if "gen_ai.agent.id" not in present:
            span.set_attribute("gen_ai.agent.id", self._agent_id)
        conversation = context.get_value(CONVERSATION_KEY, parent_context) or self._conversation_id
        if isinstance(conversation, str) and "gen_ai.conversation.id" not in present:
            span.set_attribute("gen_ai.conversation.id", conversation)

    def on_end(self, span: ReadableSpan) -> None:
        pass


def init(
    service_name: str | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
    agent_id: str | None = None,
    conversation_id: str | None = None,
    exporter: SpanExporter | None = None,
) -> Handle:
    """Send this process's spans to the flightlog collector and return the handle; later calls
    return the first handle unchanged (their arguments are ignored).

    Settings (argument, else environment variable, else default):
    - `service_name`: `OTEL_SERVICE_NAME`, else the agent id. The OTel resource's service.name.
    - `agent_id`: `FLIGHTLOG_AGENT_ID`, else the service name, else "agent". Recorded on every
      span as `gen_ai.agent.id`; `subprocess_env()` passes it on so child processes record as
      the same agent.
    - `conversation_id`: `FLIGHTLOG_CONVERSATION_ID`, else none. Recorded as
      `gen_ai.conversation.id` on spans outside an `agent_run` that sets its own;
      `subprocess_env()` passes the current one on.
    - `url`: `FLIGHTLOG_URL`, else http://127.0.0.1:4318. Spans are POSTed to `<url>/v1/traces`
      (OTLP/HTTP protobuf) in batches.
    - `token`: `FLIGHTLOG_TOKEN`, sent as `Authorization: Bearer <token>` when set.
    - `exporter`: where spans go instead of the collector (a console or in-memory exporter).

    A `TRACEPARENT` in the environment (W3C, set by a parent using `subprocess_env()`, `run()`
    or `flightlog exec`) becomes the parent of this process's root spans, so its whole run
    joins the parent's trace. When the global TracerProvider is already an OTel SDK one, the
    exporter is added to it rather than replacing it. Never raises for a bad setting: capture
    must not break the agent, so a problem is logged and the helpers stay no-ops.
    """
    global _handle, _env_parent, _attached
    with _lock:
        if _handle is not None:
            return _handle
        service = service_name or os.environ.get("OTEL_SERVICE_NAME") or None
        agent = agent_id or os.environ.get("FLIGHTLOG_AGENT_ID") or service or DEFAULT_AGENT
        service = service or agent
        conversation = conversation_id or os.environ.get("FLIGHTLOG_CONVERSATION_ID") or None
        base = (url or collector_url()).rstrip("/")
        try:
            provider, processor, owns = _connect(service, agent, conversation, base, token, exporter)
        except Exception:  # capture fails open: log it, and the helpers stay no-ops
            _log.exception("flightlog.sdk: could not set up tracing; not recording")
            provider, processor, owns = None, None, False
        _env_parent = _from_environment()
        if _env_parent is not None and not trace.get_current_span().get_span_context().is_valid:
            # Spans of other instrumentations on this thread join the parent's trace too; the
            # helpers fall back to _env_parent on threads that do not inherit this context.
            _attached = context.attach(_env_parent)
        _handle = Handle(service, agent, conversation, base, provider, processor, owns)
        return _handle


def _connect(
    service: str, agent: str, conversation: str | None, base: str, token: str | None, exporter: SpanExporter | None
) -> tuple[TracerProvider | None, SpanProcessor | None, bool]:
    """Add the exporter (and the agent stamp) to the global provider, creating it when nobody
    has set one; return (provider, processor, whether we created the provider)."""
    if exporter is None:
        secret = token or os.environ.get("FLIGHTLOG_TOKEN")
        headers = {"Authorization": f"Bearer {secret}"} if secret else None
        exporter = OTLPSpanExporter(endpoint=base + TRACES_PATH, headers=headers, timeout=EXPORT_TIMEOUT_S)
    current = trace.get_tracer_provider()
    owns = isinstance(current, trace.ProxyTracerProvider)  # nobody has set one yet
    if owns:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
    elif isinstance(current, TracerProvider):
        provider = current
    else:
        _log.warning("flightlog.sdk: the global tracer provider is %r, not the OTel SDK's; not recording", current)
        return None, None, False
    processor = BatchSpanProcessor(exporter)
    provider.add_span_processor(_Stamp(agent, conversation))
    provider.add_span_processor(processor)
    if owns:
        trace.set_tracer_provider(provider)
    return provider, processor, owns


def active() -> Handle | None:
    """Return the handle of `init()`, or None when it was not called."""
    return _handle


def conversation() -> str | None:
    """Return the conversation id of the current `agent_run`, else the default of `init()`."""
    value = context.get_value(CONVERSATION_KEY)
    if isinstance(value, str):
        return value
    return _handle.conversation_id if _handle is not None else None


def env_parent() -> Context | None:
    """Return the context of the `TRACEPARENT` this process was started with (read by `init()`),
    or None."""
    return _env_parent


def _from_environment() -> Context | None:
    carrier = {"traceparent": os.environ.get("TRACEPARENT", ""), "tracestate": os.environ.get("TRACESTATE", "")}
    if not carrier["traceparent"]:
        return None
    found = TraceContextTextMapPropagator().extract(carrier)
    return found if trace.get_current_span(found).get_span_context().is_valid else None


def _reset() -> None:
    """Forget the handle (for tests, which also reset OTel's global provider)."""
    global _handle, _env_parent, _attached
    with _lock:
        if _attached is not None:
            context.detach(_attached)
        _handle, _env_parent, _attached = None, None, None
