"""`/api/v1/approvals`: signed approvals of `ask` decisions through the collector (role approve).

`GET` lists the pending approval requests (what `flightlog approve` lists); `POST` takes one
approval, signed on the approver's machine exactly as `flightlog approve` signs it (see
`flightlog.approvals`): the collector never holds an approver's private key. The body:

    {"event_id": "0196a3c1-…",
     "approval": {"kind": "policy_approval", "policy_event_id": "0196a3c1-…",
                  "action_digest": "sha256:9f2c…", "approver": "alice", "role": "infra",
                  "nonce": "4c1d…", "issued_at": "2025-06-01T12:00:00Z",
                  "expires_at": "2025-06-01T12:10:00Z", "context": "human",
                  "public_key": "<base64>", "signature": "<base64>"}}

It is checked against the pending request and the registered approvers' public keys with the
same rules as the hook (`approvals.check_approval`: key, signature, role, action, expiry, the
agent's own identity, replay — also of an approval already delivered and not yet consumed).
Accepted: dropped into `approvals/inbox/` for the waiting ask and
stored as an `approval` event, 200 `{"approved": true, "event_id", "expires_at"}`. Refused:
stored as an `error` event (an approval-bypass attempt), 422 `{"error", "reason", "event_id"}`.
No pending request for `event_id` (the ask is over, or was never made here): 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flightlog import approvals
from flightlog.errors import ValidationError
from flightlog.server.body import BodyError, parse_json, read_body

if TYPE_CHECKING:
    from flightlog.server.app import Collector

__all__ = ["MAX_APPROVAL_BYTES", "approvals_routes"]

MAX_APPROVAL_BYTES: Final = 16 * 1024  # an approval is well under 1 KiB
SOURCE: Final = "approvals-api"


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "details": [], **extra}, status)


def approvals_routes(collector: Callable[[], Collector]) -> list[Route]:
    """Return the routes of `/api/v1/approvals` for the app whose state `collector()` returns."""

    async def list_pending(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "approve")) is not None:
            return denied
        return JSONResponse({"pending": await run_in_threadpool(approvals.pending_requests, c.home)})

    async def post_approval(request: Request) -> Response:
        c = collector()
        if (denied := c.authorize(request, "approve")) is not None:
            return denied
        refused = c.metrics.refused_requests
        try:
            data = parse_json(await read_body(request, MAX_APPROVAL_BYTES), unique_members=True)
        except BodyError as exc:
            refused.labels(SOURCE, str(exc.status)).inc()
            return _error(exc.status, exc.message)
        except ValidationError as exc:
            refused.labels(SOURCE, "400").inc()
            return _error(400, f"request body is not JSON: {exc.reason}")
        event_id = data.get("event_id") if isinstance(data, dict) else None
        approval = data.get("approval") if isinstance(data, dict) else None
        if not isinstance(event_id, str) or not isinstance(approval, dict):
            refused.labels(SOURCE, "400").inc()
            return _error(400, 'expected {"event_id": "…", "approval": {…}}')
        pending = await run_in_threadpool(approvals.read_request, c.home, event_id)
        if pending is None:
            return _error(404, "no pending approval request for that event_id (the ask is over or never was)")
        why = await run_in_threadpool(approvals.check_approval, c.home, approval, pending, consume=False)
        if why is None and approvals.delivered(c.home, approval):  # consumed by the ask only later
            why = "approval replayed"
        if why is None:
            event = approvals.approval_event(pending, approval)
        else:
            event = approvals.refusal_event(pending, approval, why)
        good, bad = await run_in_threadpool(c.pipeline.prepare_batch, [event])
        c.metrics.received.labels(SOURCE).inc()
        if bad:  # cannot happen for events built here; never store half a story
            c.metrics.rejected.labels(SOURCE, "validation").inc()
            return _error(500, f"approval event refused: {bad[0].field} {bad[0].reason}")
        # Recorded first, whatever the load: an approval acted on is always in the log.
        await c.store(good, SOURCE, c.origin(request), essential=True)
        stored_id = good[0].event["event_id"]
        if why is not None:
            message = f"approval refused: {why} (recorded as an approval-bypass attempt)"
            return _error(422, message, reason=why, event_id=stored_id)
        await run_in_threadpool(approvals.deliver, c.home, approval)
        return JSONResponse({"approved": True, "event_id": stored_id, "expires_at": approval["expires_at"]})

    return [
        Route("/api/v1/approvals", list_pending, methods=["GET"]),
        Route("/api/v1/approvals", post_approval, methods=["POST"]),
    ]
