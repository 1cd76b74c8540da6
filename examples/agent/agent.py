"""A small coding agent traced with `flightlog.sdk`; a scripted policy stands in for the model.

It gets a task, "thinks" (model calls to a fake model), calls tools — reads a file, writes a
file, runs `wordcount.py` in a subprocess that traces itself with the SDK too — and answers.
The whole run, the subprocess included, is one trace.

    flightlog serve &                                    # collector on 127.0.0.1:4318
    python examples/agent/agent.py                       # or FLIGHTLOG_URL=http://host:port …
    flightlog traces                                     # the run, as one trace
    flightlog show TRACE_ID                              # prompt, model calls, tools, files

It works in a fresh temporary directory (or `--workdir DIR`) and prints one JSON line:
`{"trace_id", "answer", "workdir"}`. Without a collector it still runs; the spans are lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flightlog import sdk

HERE = Path(__file__).resolve().parent
MODEL = "scripted-policy"
NOTES = """\
Flight recorders keep the last hours of a flight.
They survive crashes because they sit in the tail.

Investigators read them to learn what happened.
Every action is recorded with the time it happened.
"""


@dataclass
class Reply:
    """What the model answers: text, and the tool calls it asks for."""

    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


class ScriptedPolicy:
    """Stands in for a model: decides the next step from the conversation so far."""

    def next(self, history: list[dict[str, Any]]) -> Reply:
        results = [m for m in history if m["role"] == "tool"]
        step = len(results)
        if step == 0:
            return Reply("I will read the notes first.", [_call(1, "read_file", path="notes.txt")])
        if step == 1:
            notes = results[0]["content"]
            summary = "# Summary\n\n" + "".join(f"- {p.splitlines()[0]}\n" for p in notes.split("\n\n") if p.strip())
            return Reply("Writing the summary.", [_call(2, "write_file", path="summary.md", content=summary)])
        if step == 2:
            return Reply("Counting its words with the helper.", [_call(3, "run_python", script="wordcount.py")])
        counted = json.loads(results[2]["content"]["stdout"])
        return Reply(f"Wrote summary.md ({counted['words']} words).")


def _call(n: int, name: str, **arguments: Any) -> dict[str, Any]:
    return {"id": f"call_{n}", "name": name, "arguments": arguments}


def _tokens(value: object) -> int:
    """A stand-in token count: words in the JSON of what the model read or wrote."""
    return len(json.dumps(value).split())


class Tools:
    """The agent's tools, working inside `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def read_file(self, path: str) -> str:
        return (self.workdir / path).read_text("utf-8")

    def write_file(self, path: str, content: str) -> dict[str, int]:
        with sdk.file_op(self.workdir / path):
            written = (self.workdir / path).write_text(content, "utf-8")
        return {"bytes": written}

    def run_python(self, script: str) -> dict[str, Any]:
        # The helper is a traced program of its own: run() hands it TRACEPARENT.
        done = sdk.run(
            [sys.executable, str(HERE / script), "summary.md"], cwd=self.workdir, capture_output=True, text=True
        )
        return {"exit_code": done.returncode, "stdout": done.stdout}


def solve(task: str, workdir: Path, conversation_id: str) -> tuple[str, str]:
    """Run the agent loop on `task`; return (trace id, final answer)."""
    policy, tools = ScriptedPolicy(), Tools(workdir)
    history: list[dict[str, Any]] = [{"role": "user", "content": task}]
    with sdk.agent_run(prompt=task, conversation_id=conversation_id, version="1.0") as run:
        while True:
            with sdk.model_call(MODEL, provider="scripted", version="1.0", temperature=0.0, top_p=1.0, seed=7) as call:
                reply = policy.next(history)
                call.set_response(
                    reply.text,
                    tool_calls=reply.tool_calls,
                    finish_reason="tool_calls" if reply.tool_calls else "stop",
                    input_tokens=_tokens(history),
                    output_tokens=_tokens(reply.text) + _tokens(reply.tool_calls),
                    response_model=f"{MODEL}-1.0",
                )
            history.append({"role": "assistant", "content": reply.text, "tool_calls": reply.tool_calls})
            if not reply.tool_calls:
                run.set_output(reply.text)
                return f"{run.span.get_span_context().trace_id:032x}", reply.text
            for request in reply.tool_calls:
                with sdk.tool_call(request["name"], arguments=request["arguments"], call_id=request["id"]) as tool:
                    result = getattr(tools, request["name"])(**request["arguments"])
                    tool.set_result(result)
                history.append({"role": "tool", "id": request["id"], "content": result})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--task", default="Summarise notes.txt into summary.md and tell me how many words it has.")
    parser.add_argument("--workdir", type=Path, help="where the agent works (default: a new temporary directory)")
    parser.add_argument("--conversation-id", default=f"conv-{uuid.uuid4().hex[:12]}")
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="flightlog-agent-"))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "notes.txt").write_text(NOTES, "utf-8")

    handle = sdk.init(service_name="example-agent", agent_id="example-agent")
    try:
        trace_id, answer = solve(options.task, workdir, options.conversation_id)
    finally:
        handle.shutdown()  # exports what is left before the process ends
    print(json.dumps({"trace_id": trace_id, "answer": answer, "workdir": str(workdir)}))


if __name__ == "__main__":
    main()
