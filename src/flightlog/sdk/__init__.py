"""flightlog's Python SDK: trace your own agent into flightlog with OpenTelemetry.

    from flightlog import sdk

    sdk.init(agent_id="fixer")                        # OTLP/HTTP to $FLIGHTLOG_URL
    with sdk.agent_run(prompt="fix the failing test", conversation_id="c-1"):
        with sdk.model_call("gpt-4o", provider="openai", temperature=0.2) as call:
            call.set_response("I will read the test.", input_tokens=812, output_tokens=9)
        with sdk.tool_call("read_file", arguments={"path": "test_x.py"}, call_id="call_1") as tool:
            tool.set_result(open("test_x.py").read())
        with sdk.file_op("x.py"):
            open("x.py", "w").write(fixed)
        sdk.run(["pytest", "-q"], capture_output=True, text=True)  # the child joins the trace

Spans carry the OpenTelemetry GenAI semantic-convention attributes (`invoke_agent`, `chat`,
`execute_tool`), so any OTel backend understands them too. Without `init()` every helper is a
no-op (the OTel API default). See docs/sdk.md.
"""

from __future__ import annotations

from flightlog.sdk._files import FileOp, file_op
from flightlog.sdk._propagation import inject_headers, run, subprocess_env
from flightlog.sdk._setup import Handle, init
from flightlog.sdk._spans import AgentRun, ModelCall, ToolCall, agent_run, model_call, tool, tool_call

__all__ = [
    "AgentRun",
    "FileOp",
    "Handle",
    "ModelCall",
    "ToolCall",
    "agent_run",
    "file_op",
    "init",
    "inject_headers",
    "model_call",
    "run",
    "subprocess_env",
    "tool",
    "tool_call",
]
