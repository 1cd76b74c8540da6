"""The example agent's helper program: counts the words of a file and writes `FILE.count`.

A separate process traced with `flightlog.sdk`: `init()` reads the `TRACEPARENT` (and
`FLIGHTLOG_URL`, `FLIGHTLOG_AGENT_ID`) that the agent's `sdk.run()` put in its environment, so
its spans are children of the agent's "shell" span, in the agent's trace. Run alone, it starts
a trace of its own.

    python examples/agent/wordcount.py FILE     # prints {"file", "words"}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flightlog import sdk


@sdk.tool("count_words")
def count_words(path: str) -> int:
    """Count the whitespace-separated words of a text file."""
    return len(Path(path).read_text("utf-8").split())


def main() -> None:
    handle = sdk.init(service_name="example-wordcount")
    try:
        name = sys.argv[1]
        words = count_words(name)
        with sdk.file_op(f"{name}.count"):
            Path(f"{name}.count").write_text(f"{words}\n", "utf-8")
    finally:
        handle.shutdown()
    print(json.dumps({"file": name, "words": words}))


if __name__ == "__main__":
    main()
