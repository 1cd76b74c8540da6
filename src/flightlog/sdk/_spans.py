"""Spans with OpenTelemetry GenAI semantic-convention attributes: an agent run (`invoke_agent`),
model calls (`chat`), tool calls (`execute_tool`) and the `tool` decorator.

Structured values (messages, tool arguments and results) are JSON strings, as the conventions
allow on spans; long text is clipped to MAX_TEXT characters so one span cannot swamp an export.
Values are only encoded when the span records: without `init()` the helpers cost next to nothing.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, ParamSpec, TypeVar, cast

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from flightlog.sdk import _setup

__all__ = ["MAX_TEXT", "AgentRun", "ModelCall", "ToolCall", "agent_run", "model_call", "open_span", "tool", "tool_call"]

MAX_TEXT: Final = 64 * 1024
TRACER_NAME: Final = "flightlog.sdk"
_CLIPPED: Final = "…[clipped]"

P = ParamSpec("P")
R = TypeVar("R")
Messages = str | Sequence[Mapping[str, Any]]


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Return `text`, or its first `limit` characters marked as clipped."""
    return text if len(text) <= limit else text[: limit - len(_CLIPPED)] + _CLIPPED


def to_json(value: object, limit: int | None = MAX_TEXT) -> str:
    """Return `value` as compact JSON (anything JSON cannot hold as its str()), clipped to
    `limit` characters (a clipped text is no longer JSON; the collector then keeps it as text)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if limit is None else clip(text, limit)


def messages_json(messages: Messages, role: str = "user") -> str:
    """Return GenAI messages (`[{role, parts: [{type, content}]}]`) as JSON; a plain string is
    one message of `role` with one text part."""
    if isinstance(messages, str):
        return to_json([{"role": role, "parts": [{"type": "text", "content": messages}]}])
    return to_json(list(messages))


@contextmanager
def open_span(name: str, kind: SpanKind, attributes: Mapping[str, AttributeValue]) -> Iterator[trace.Span]:
    """Start `name` as the current span and end it on exit; an exception marks it failed
    (status ERROR, `error.type`, an exception event) and propagates.

    A span with no current parent takes the `TRACEPARENT` the process started with, so a
    thread that does not inherit the main thread's context still joins the parent's trace."""
    tracer = trace.get_tracer(TRACER_NAME)
    parent = None if trace.get_current_span().get_span_context().is_valid else _setup.env_parent()
    with tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as span:
        try:
            yield span
        except Exception as exc:
            # start_as_current_span records the exception and sets the status; error.type is
            # the conventions' low-cardinality name for what went wrong.
            span.set_attribute("error.type", type(exc).__qualname__)
            raise


def _set(span: trace.Span, values: Mapping[str, AttributeValue | None]) -> None:
    for key, value in values.items():
        if value is not None:
            span.set_attribute(key, value)


class AgentRun:
    """The span of one agent run (`invoke_agent`)."""

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def set_output(self, text: str) -> None:
        """Record the agent's final answer as `gen_ai.output.messages`."""
        if self.span.is_recording():
            parts = [{"type": "text", "content": text}]
            self.span.set_attribute(
                "gen_ai.output.messages", to_json([{"role": "assistant", "parts": parts, "finish_reason": "stop"}])
            )


class ModelCall:
    """The span of one model call (`chat` by default)."""

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def set_response(
        self,
        text: str | None = None,
        *,
        tool_calls: Sequence[Mapping[str, Any]] = (),
        finish_reason: str = "stop",
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        response_model: str | None = None,
        response_id: str | None = None,
    ) -> None:
        """Record what the model answered: its text and the tool calls it asked for (each
        `{"id", "name", "arguments"}`) as `gen_ai.output.messages`, plus token usage."""
        if not self.span.is_recording():
            return
        parts: list[dict[str, Any]] = [{"type": "text", "content": text}] if text is not None else []
        parts += [{"type": "tool_call", **call} for call in tool_calls]
        message = {"role": "assistant", "parts": parts, "finish_reason": finish_reason}
        _set(
            self.span,
            {
                "gen_ai.output.messages": to_json([message]),
                "gen_ai.response.finish_reasons": [finish_reason],
                "gen_ai.response.model": response_model,
                "gen_ai.response.id": response_id,
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
            },
        )


class ToolCall:
    """The span of one tool call (`execute_tool`)."""

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def set_result(self, value: object) -> None:
        """Record the tool's result as `gen_ai.tool.call.result`: a string as it is (not quoted
        as JSON, so the collector shows the text), anything else as JSON."""
        if self.span.is_recording():
            self.span.set_attribute(
                "gen_ai.tool.call.result", clip(value) if isinstance(value, str) else to_json(value)
            )

    def fail(self, message: str, error_type: str = "tool_error") -> None:
        """Mark the call failed without raising (a tool that reports an error as its result)."""
        self.span.set_status(Status(StatusCode.ERROR, message))
        self.span.set_attribute("error.type", error_type)


@contextmanager
def agent_run(
    name: str | None = None,
    *,
    prompt: Messages | None = None,
    conversation_id: str | None = None,
    description: str | None = None,
    version: str | None = None,
    provider: str | None = None,
) -> Iterator[AgentRun]:
    """Open the span of one agent run: `invoke_agent {name}` with `gen_ai.agent.name` (default:
    the agent id of `init()`), the prompt as `gen_ai.input.messages` and
    `gen_ai.conversation.id`, which every span started inside it also gets."""
    handle = _setup.active()
    agent = name or (handle.agent_id if handle is not None else _setup.DEFAULT_AGENT)
    start = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent}
    with open_span(f"invoke_agent {agent}", SpanKind.INTERNAL, start) as span:
        if span.is_recording():
            _set(
                span,
                {
                    "gen_ai.conversation.id": conversation_id,
                    "gen_ai.agent.description": description,
                    "gen_ai.agent.version": version,
                    "gen_ai.provider.name": provider,
                    "gen_ai.input.messages": messages_json(prompt) if prompt is not None else None,
                },
            )
        if conversation_id is None:
            yield AgentRun(span)
            return
        token = context.attach(context.set_value(_setup.CONVERSATION_KEY, conversation_id))
        try:
            yield AgentRun(span)
        finally:
            context.detach(token)


@contextmanager
def model_call(
    model: str,
    *,
    provider: str | None = None,
    version: str | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    max_tokens: int | None = None,
    messages: Messages | None = None,
    system_instructions: str | None = None,
    operation: str = "chat",
) -> Iterator[ModelCall]:
    """Open the span of one model call: `{operation} {model}` with `gen_ai.request.*`,
    `gen_ai.provider.name`, the input messages, and `flightlog.model.version` (the conventions
    have no attribute for a model's version). Record the answer with `set_response()`."""
    start = {"gen_ai.operation.name": operation, "gen_ai.request.model": model}
    with open_span(f"{operation} {model}", SpanKind.CLIENT, start) as span:
        if span.is_recording():
            system = [{"type": "text", "content": system_instructions}] if system_instructions is not None else None
            _set(
                span,
                {
                    "gen_ai.provider.name": provider,
                    "flightlog.model.version": version,
                    "gen_ai.request.temperature": temperature,
                    "gen_ai.request.top_p": top_p,
                    "gen_ai.request.seed": seed,
                    "gen_ai.request.max_tokens": max_tokens,
                    "gen_ai.input.messages": messages_json(messages) if messages is not None else None,
                    "gen_ai.system_instructions": to_json(system) if system is not None else None,
                },
            )
        yield ModelCall(span)


@contextmanager
def tool_call(
    name: str,
    *,
    arguments: object = None,
    call_id: str | None = None,
    description: str | None = None,
    tool_type: str = "function",
) -> Iterator[ToolCall]:
    """Open the span of one tool call: `execute_tool {name}` with `gen_ai.tool.name`,
    `gen_ai.tool.call.id` (the id the model gave the call), `gen_ai.tool.type` and the
    arguments as JSON. Record the result with `set_result()`; an exception fails the span."""
    start = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
    with open_span(f"execute_tool {name}", SpanKind.INTERNAL, start) as span:
        if span.is_recording():
            _set(
                span,
                {
                    "gen_ai.tool.call.id": call_id,
                    "gen_ai.tool.description": description,
                    "gen_ai.tool.type": tool_type,
                    "gen_ai.tool.call.arguments": to_json(arguments) if arguments is not None else None,
                },
            )
        yield ToolCall(span)


def tool(
    name: str | None = None, *, description: str | None = None, record_result: bool = True
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function (or coroutine function) so each call is a `tool_call` span named
    `name` (default: the function's name) with its bound arguments and, when `record_result`,
    its return value; an exception marks the span failed and propagates unchanged."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        tool_name = name or fn.__name__
        summary = description or (inspect.getdoc(fn) or "").split("\n", 1)[0] or None
        signature = inspect.signature(fn)

        def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            try:
                bound = signature.bind(*args, **kwargs).arguments
            except TypeError:
                return {}  # the call itself will raise, and be recorded as the failure
            return {k: v for k, v in bound.items() if k not in ("self", "cls")}

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                with tool_call(tool_name, arguments=arguments(args, kwargs), description=summary) as call:
                    result = await fn(*args, **kwargs)
                    if record_result:
                        call.set_result(result)
                    return result

            return cast(Callable[P, R], run_async)

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with tool_call(tool_name, arguments=arguments(args, kwargs), description=summary) as call:
                result = fn(*args, **kwargs)
                if record_result:
                    call.set_result(result)
                return result

        return run

    return decorate
