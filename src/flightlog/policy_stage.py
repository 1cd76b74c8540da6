"""The policy stage every gated action passes: build the input document, evaluate the Rego
policies found, return a decision.

Policies are `*.rego` files in `$FLIGHTLOG_HOME/policies/` and in the workspace's
`.flightlog/policies/`, evaluated in process by regorus (OPA's Rego, v1 syntax). The decision
is the value of `data.flightlog.decision`: `{"decision": "allow"|"deny"|"ask", "reason": "…",
"rules": ["…"]}`. With no policy, or when the policies leave the decision undefined, the stage
abstains: the caller records that and lets the agent's own permission flow decide (it never
says "allow" on nobody's behalf). A policy that fails to load or evaluate denies, with the
error as the reason: someone installed it to be enforced.

The input document (stable field names; later gate points fill more of it):

    {"actor":     {"agent_id", "user", "session_id"},
     "action":    {"kind": "tool_call", "tool_name", "input"},
     "workspace": {"root", "cwd"},
     "trace":     {"trace_id", "span_id"}}
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Final

__all__ = ["DECISION_RULE", "Decision", "build_input", "decide", "policy_files"]

DECISION_RULE: Final = "data.flightlog.decision"
_DECISIONS: Final = frozenset({"allow", "deny", "ask"})


class Decision:
    """`decision` is allow, deny, ask or abstain (no policy spoke); `bundle` is the sha256 over
    the policy files' names and contents. (A plain class: the hook loads this on every tool
    call and dataclasses would import inspect.)"""

    __slots__ = ("bundle", "decision", "input_digest", "latency_ms", "reason", "rules")

    def __init__(
        self,
        decision: str,
        reason: str,
        rules: list[str] | None = None,
        bundle: str | None = None,
        input_digest: str | None = None,
        latency_ms: float = 0.0,
    ) -> None:
        self.decision = decision
        self.reason = reason
        self.rules = rules or []
        self.bundle = bundle
        self.input_digest = input_digest
        self.latency_ms = latency_ms

    def to_payload(self) -> dict[str, Any]:
        """The `policy_evaluation` event payload for this decision."""
        return {
            "decision": self.decision,
            "reason": self.reason,
            "rules": self.rules,
            "bundle": self.bundle,
            "input_digest": self.input_digest,
            "latency_ms": round(self.latency_ms, 3),
            "engine": "regorus" if self.bundle else None,
        }


def build_input(
    *,
    agent_id: str,
    tool_name: str,
    tool_input: object,
    user: str | None,
    session_id: str | None,
    root: str | None,
    cwd: str | None,
    trace_id: str,
    span_id: str,
) -> dict[str, Any]:
    """Return the policy input document for one tool call."""
    return {
        "actor": {"agent_id": agent_id, "user": user, "session_id": session_id},
        "action": {"kind": "tool_call", "tool_name": tool_name, "input": tool_input},
        "workspace": {"root": root, "cwd": cwd},
        "trace": {"trace_id": trace_id, "span_id": span_id},
    }


def policy_files(home: Path, workspace: Path | None) -> list[Path]:
    """Return the policy files that apply, user-wide first, sorted by name within each place."""
    places = [home / "policies"]
    if workspace is not None:
        places.append(workspace / ".flightlog" / "policies")
    found: list[Path] = []
    for place in places:
        try:
            found.extend(sorted(p for p in place.iterdir() if p.suffix == ".rego" and p.is_file()))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return found


def decide(document: dict[str, Any], files: list[Path]) -> Decision:
    """Evaluate `files` against `document` and return the decision (see the module doc)."""
    started = time.perf_counter()
    digest = "sha256:" + hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    if not files:
        return Decision("abstain", "no policy installed", input_digest=digest)
    bundle = hashlib.sha256()
    try:
        import regorus  # loaded only when there is a policy to run

        engine = regorus.Engine()
        for path in files:
            text = path.read_text("utf-8")
            bundle.update(f"{path.name}\0{len(text)}\0".encode() + text.encode())
            engine.add_policy(path.name, text)
        engine.set_input(document)
        results = engine.eval_query(DECISION_RULE)["result"]
    except Exception as exc:  # any engine failure must deny, not crash the agent
        return Decision(
            "deny",
            f"policy error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            input_digest=digest,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
    elapsed = (time.perf_counter() - started) * 1000
    bundle_digest = "sha256:" + bundle.hexdigest()
    value = results[0]["expressions"][0]["value"] if results else None  # [] when undefined
    if value is None:
        return Decision("abstain", "no policy rule decided", [], bundle_digest, digest, elapsed)
    if not isinstance(value, dict) or value.get("decision") not in _DECISIONS:
        return Decision(
            "deny",
            f"policy error: {DECISION_RULE} must be an object with decision allow, deny or ask",
            [],
            bundle_digest,
            digest,
            elapsed,
        )
    rules = value.get("rules")
    return Decision(
        str(value["decision"]),
        str(value.get("reason") or ""),
        [str(r) for r in rules] if isinstance(rules, list) else [],
        bundle_digest,
        digest,
        elapsed,
    )
