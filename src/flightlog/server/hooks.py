"""`POST /hooks/claude-code`: Claude Code's `"type": "http"` hooks answered by the collector.

The same recording and policy decision as `flightlog hook claude-code`, without starting a
process per tool call (Claude Code POSTs the hook JSON; the answer body uses the command
hook's stdout format, an empty 200 meaning "nothing to say"). The collector reads the
workspace itself (snapshots, diffs, git branch, the workspace's policies), so this transport is
for a collector on the same machine as the agent.

The hook's `cwd` and project directory name the agent's machine. Only a request from a loopback
client address may have the collector read them; from any other client the events are recorded
and the policy decided (with the collector's user and built-in policies), but no file of the
collector's is read, snapshotted or diffed, whatever its token (a token says who may record, not
where the agent runs). The address is uvicorn's, which takes `X-Forwarded-For` from a proxy on
this machine: such a proxy must send it, or its remote clients pass for local ones.

Fail open, as the command hook: a failure here is logged and answered with an empty 200; only
an explicit policy deny stops the call. Unlike the command hook there is no spool: while the
collector is down Claude Code carries on unrecorded (its HTTP hooks fail open).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flightlog.capture.claude_hook import process
from flightlog.errors import ValidationError
from flightlog.server.body import BodyError, parse_json, read_body
from flightlog.server.browser_guard import loopback_client

if TYPE_CHECKING:
    from flightlog.server.app import Collector

__all__ = ["MAX_HOOK_BYTES", "claude_code_hook"]

MAX_HOOK_BYTES: Final = 4 * 1024 * 1024  # tool inputs can be large (a Write of a big file)
SOURCE: Final = "claude-code-hook"
_log = logging.getLogger("flightlog.server.hooks")


async def claude_code_hook(request: Request, collector: Collector) -> Response:
    """Answer one Claude Code hook event, committing its events before answering."""
    received = time.time()  # a turn ends when its Stop arrives, not once its events are stored
    if (denied := collector.authorize(request, "ingest")) is not None:
        return denied
    refused = collector.metrics.refused_requests
    try:
        data = parse_json(await read_body(request, MAX_HOOK_BYTES), numbers_as_text=True)
    except BodyError as exc:
        refused.labels(SOURCE, str(exc.status)).inc()
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    except ValidationError as exc:
        refused.labels(SOURCE, "400").inc()
        return JSONResponse({"error": f"hook input is not JSON: {exc.reason}"}, status_code=400)
    if not isinstance(data, dict):
        refused.labels(SOURCE, "400").inc()
        return JSONResponse({"error": "hook input is not a JSON object"}, status_code=400)
    project_dir = _project_dir(request.headers.get("flightlog-project-dir"))
    try:
        local = loopback_client(request.client.host if request.client else None)
        outcome = await run_in_threadpool(process, data, collector.home, project_dir, local=local)
        if outcome.events:
            good, bad = await run_in_threadpool(collector.pipeline.prepare_batch, outcome.events)
            collector.metrics.received.labels(SOURCE).inc(len(outcome.events))
            if bad:
                collector.metrics.rejected.labels(SOURCE, "validation").inc(len(bad))
                _log.warning("claude-code hook: %d event(s) refused: %s %s", len(bad), bad[0].field, bad[0].reason)
            good = await run_in_threadpool(collector.unrecorded, good) if good else good
            if good:
                await collector.store(good, SOURCE, collector.origin(request), essential=True)
        if data.get("hook_event_name") in ("Stop", "StopFailure"):  # after its events: the turn's last ones
            collector.metrics.end_session_turn(data.get("session_id"), at=received)
    except Exception as exc:  # fail open, as the command hook does
        _log.warning("claude-code hook failed (%s: %s); answering nothing", type(exc).__name__, exc)
        return Response(status_code=200)
    if outcome.output is None:
        return Response(status_code=200)
    return JSONResponse(outcome.output)


def _project_dir(value: str | None) -> str | None:
    """The hook client's CLAUDE_PROJECT_DIR, sent hex-encoded (a path need not be latin-1)."""
    if not value:
        return None
    try:
        return bytes.fromhex(value).decode("utf-8", "surrogateescape")
    except ValueError:
        return None
