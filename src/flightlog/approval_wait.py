"""The wait of an `ask` decision for a signed approval (PreToolUse, before Claude Code prompts).

Only when a registered approver has a role the ask needs does the hook wait, for at most
`FLIGHTLOG_APPROVAL_WAIT` seconds (default 5; 0 turns waiting off), polling
`approvals/inbox/` every 100 ms. An approval that passes `approvals.check_approval` is put in
the input document (`approvals`) and the policies decide again: the pack turns an ask whose
roles are all approved into allow. Every refused approval becomes an `error` event with
status `denied` (an approval-bypass attempt, counted by the collector's
`flightlog_approval_bypass_attempts_total`). With nothing accepted in time the ask stands and Claude
Code asks its user.
"""

from __future__ import annotations

import os
import time
from typing import Any, Final

from flightlog import approvals
from flightlog.ids import derive_id
from flightlog.policy_stage import Decision, decide

__all__ = ["DEFAULT_WAIT", "WAIT_ENV", "settle_ask", "wait_seconds"]

WAIT_ENV: Final = "FLIGHTLOG_APPROVAL_WAIT"
DEFAULT_WAIT: Final = 5.0
_MAX_WAIT: Final = 600.0
_POLL: Final = 0.1


def wait_seconds() -> float:
    """Return the bounded wait from $FLIGHTLOG_APPROVAL_WAIT (seconds; default 5, at most 600)."""
    try:
        value = float(os.environ.get(WAIT_ENV, DEFAULT_WAIT))
    except ValueError:
        value = DEFAULT_WAIT
    return min(max(value, 0.0), _MAX_WAIT)


def settle_ask(
    session: Any, decision: Decision, policy_event: dict[str, Any], files: list[Any]
) -> tuple[Decision, list[dict[str, Any]]]:
    """Wait (bounded) for approvals of an ask; return the final decision and the `error` events
    of refused approvals. `session` is the hook's HookSession; `policy_event` the ask's event."""
    home = session.home
    document = decision.document or {}
    roles = decision.roles
    wait = wait_seconds()
    registered = {a.role for a in approvals.approvers(home).values()}
    if wait <= 0 or not (set(roles) & registered if roles else registered):
        return decision, []
    event_id = str(policy_event["event_id"])
    request = {
        "event_id": event_id,
        "action_digest": decision.input_digest,
        "roles": roles,
        "reason": decision.reason,
        "rules": decision.rules,
        "tool_name": (document.get("action") or {}).get("tool_name"),
        "agent_id": (document.get("actor") or {}).get("agent_id"),
        "session_id": session.id,
        "trace_id": policy_event["trace_id"],
        "span_id": policy_event["parent_span_id"],
        "created": session.timestamp,
        "wait_seconds": wait,
    }
    approvals.write_request(home, request)
    refused: list[dict[str, Any]] = []
    accepted: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    try:
        while True:
            for path, record in approvals.inbox(home, event_id):
                why = "unreadable approval" if record is None else approvals.check_approval(home, record, request)
                path.unlink(missing_ok=True)
                if why is None and record is not None:
                    accepted.append(record)
                else:
                    refused.append(_refusal(session, policy_event, record or {}, why or "refused"))
            if {a["role"] for a in accepted} >= set(roles) or time.monotonic() >= deadline:
                break
            time.sleep(_POLL)
    finally:
        approvals.remove_request(home, event_id)
    if not accepted:
        return decision, refused
    granted = [{"role": a["role"], "approver": a["approver"], "approval_id": a["nonce"]} for a in accepted]
    again = decide({**document, "approvals": granted}, files)
    if again.input_digest != decision.input_digest:  # cannot happen: approvals are not digested
        return decision, refused
    return again, refused


def _refusal(session: Any, policy_event: dict[str, Any], record: dict[str, Any], why: str) -> dict[str, Any]:
    nonce = str(record.get("nonce") or os.urandom(8).hex())
    span = derive_id(f"flightlog-approval-refused:{policy_event['event_id']}:{nonce}", 8)
    event: dict[str, Any] = session.envelope(
        policy_event["trace_id"], span, policy_event["parent_span_id"], "error", session.timestamp
    )
    event["status"] = "denied"
    event["payload"] = {
        "kind": "approval_bypass_attempt",
        "message": f"approval refused: {why}",
        "reason": why,
        "approver": record.get("approver"),
        "role": record.get("role"),
        "policy_event_id": policy_event["event_id"],
        "action_digest": record.get("action_digest"),
    }
    return event
