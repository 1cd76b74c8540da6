"""Trace context across process and network boundaries: W3C `traceparent` into a child
process's environment (`TRACEPARENT`, `TRACESTATE`) and into HTTP request headers.

`run()` is `subprocess.run` inside a span: like `file_op`, it is an `execute_tool` span (tool
name "shell", `flightlog.event.type` = "shell") whose arguments `{"command", "cwd"}` and result
`{"exit_code", "stdout", "stderr"}` carry the fields of a flightlog `shell` event.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, TypeVar

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from flightlog.sdk import _setup
from flightlog.sdk._files import EVENT_TYPE
from flightlog.sdk._spans import clip, open_span, to_json

__all__ = ["inject_headers", "run", "subprocess_env"]

H = TypeVar("H", bound=MutableMapping[str, str])
Command = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def _context() -> Context:
    """The context to propagate: the current span's, else the TRACEPARENT this process got."""
    if trace.get_current_span().get_span_context().is_valid:
        return context.get_current()
    return _setup.env_parent() or context.get_current()


def subprocess_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return a copy of `env` (default: this process's environment) with which a child process
    joins the current trace: `TRACEPARENT` (and `TRACESTATE`) of the current span and
    `FLIGHTLOG_CONVERSATION_ID` of the current `agent_run`, plus `FLIGHTLOG_URL` and
    `FLIGHTLOG_AGENT_ID` of `init()` unless `env` already sets them, so a child using this SDK
    sends to the same collector as the same agent, in the same conversation. Outside any span (or
    without `init()`) a TRACEPARENT already in `env` passes through unchanged."""
    out = dict(os.environ if env is None else env)
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=_context())
    if "traceparent" in carrier:
        out["TRACEPARENT"] = carrier["traceparent"]
        out.pop("TRACESTATE", None)  # it belongs to the trace being replaced
        if carrier.get("tracestate"):
            out["TRACESTATE"] = carrier["tracestate"]
    handle = _setup.active()
    if handle is not None:
        # FLIGHTLOG_TOKEN is not added: a secret given as an argument stays out of children
        # that may run untrusted code; one already in the environment is inherited as usual.
        out.setdefault("FLIGHTLOG_URL", handle.url)
        out.setdefault("FLIGHTLOG_AGENT_ID", handle.agent_id)
        if (conversation := _setup.conversation()) is not None:
            out["FLIGHTLOG_CONVERSATION_ID"] = conversation
    return out


def inject_headers(headers: H) -> H:
    """Add the current trace context to HTTP request `headers` (W3C `traceparent`, and
    whatever else the globally configured OTel propagators carry) and return them."""
    propagate.inject(headers, context=_context())
    return headers


def _text(output: object) -> str | None:
    if isinstance(output, bytes):
        return clip(output.decode("utf-8", "replace"))
    return clip(output) if isinstance(output, str) else None


def run(
    args: Command, *, env: Mapping[str, str] | None = None, check: bool = False, **kwargs: Any
) -> subprocess.CompletedProcess[Any]:
    """Run a command like `subprocess.run` inside a "shell" span, the child's environment from
    `subprocess_env(env)` so a child using this SDK (or `flightlog exec`) joins the trace.

    The span records the command, cwd, exit code and, when captured (`capture_output=True`,
    `stdout=PIPE`), stdout and stderr; a non-zero exit marks it failed. `check=True` raises
    `CalledProcessError` as `subprocess.run` does."""
    command = os.fspath(args) if isinstance(args, str | os.PathLike) else shlex.join(os.fspath(a) for a in args)
    start = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "shell", EVENT_TYPE: "shell"}
    with open_span("execute_tool shell", SpanKind.INTERNAL, start) as span:
        if span.is_recording():
            cwd = kwargs.get("cwd")
            arguments = {"command": clip(command), "cwd": os.fspath(cwd) if cwd is not None else os.getcwd()}
            span.set_attribute("gen_ai.tool.call.arguments", to_json(arguments, limit=None))
        proc: subprocess.CompletedProcess[Any] = subprocess.run(args, env=subprocess_env(env), **kwargs)
        if span.is_recording():
            result = {"exit_code": proc.returncode, "stdout": _text(proc.stdout), "stderr": _text(proc.stderr)}
            span.set_attribute("gen_ai.tool.call.result", to_json(result, limit=None))
        if proc.returncode != 0:
            span.set_status(Status(StatusCode.ERROR, f"exit code {proc.returncode}"))
            span.set_attribute("error.type", "exit_code")
        if check:
            proc.check_returncode()
        return proc
