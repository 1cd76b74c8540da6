"""`flightlog hook claude-code`: the command Claude Code runs for each hook event.

It reads the hook's JSON on stdin and records the session in the trace shape of
`claude_shape` (one trace per prompt; tool calls under the prompt, or under the Task/Agent
call of their subagent; file_op and shell events under their tool call). PreToolUse asks the
policy stage and answers in Claude Code's protocol; everything else answers nothing.

Pre and Post run in separate processes, so what Post needs from Pre (start time, the files'
before-state, a deferred policy record) waits in a small state folder per session under
`$FLIGHTLOG_HOME/hooks/claude-code/`. Events go to the collector at `$FLIGHTLOG_URL`; when it
cannot be reached they go to the spool, and the next hook call sends them.

What that folder keeps of the hook input (a tool's input, the model, a policy's reason) is
redacted first, and so is a reason said back to Claude Code: an engine error may quote the input.

It never breaks the agent: any failure is logged to `$FLIGHTLOG_HOME/logs/hook.log` and the
hook exits 0 with no answer (fail open) — except an explicit policy deny (fail closed).
Heavy modules (click, the ledger) are not loaded on this path; the redactor is, for PreToolUse.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, Any, Final

from flightlog.active import clear_active, write_active
from flightlog.capture import claude_shape as shape
from flightlog.capture.claude_hook_events import (
    MAX_INPUT_CHARS,
    HookSession,
    cap,
    capture_before,
    edit_changes,
    log_failure,
    redacted,
    safe,
    shell_event,
    tool_call_event,
    tool_fields,
    workspace_changes,
)
from flightlog.capture.gitinfo import git_head
from flightlog.capture.jsonlines import load_json
from flightlog.capture.workspace import list_files, scan
from flightlog.home import resolve_home
from flightlog.ids import derive_id
from flightlog.policy_stage import Decision, build_input, decide, policy_files

__all__ = ["HookOutcome", "handle", "process", "run_hook"]

Event = dict[str, Any]


class HookOutcome:
    """What the hook answers Claude Code: JSON on stdout (or nothing), an exit code, and the
    events to record. (A plain class: dataclasses would import inspect on every tool call.)"""

    __slots__ = ("events", "exit_code", "output")

    def __init__(
        self, output: dict[str, Any] | None = None, exit_code: int = 0, events: list[Event] | None = None
    ) -> None:
        self.output = output
        self.exit_code = exit_code
        self.events = events or []


def run_hook(home: Path | None = None, stdin: IO[bytes] | None = None, stdout: IO[str] | None = None) -> int:
    """Run one hook call from stdin to stdout in this process (no local collector answered, or
    the hook records into its own data directory); return the exit code. Never raises."""
    home = home or resolve_home()
    event_name = "?"
    try:
        # Big integers as text: a tool input's 64-bit id must not cost the call its record.
        data = load_json((stdin or sys.stdin.buffer).read() or b"{}")
        if not isinstance(data, dict):
            raise ValueError("hook input is not a JSON object")
        event_name = str(data.get("hook_event_name", "?"))
        outcome = handle(data, home)
    except Exception as exc:  # fail open: a recorder must never stop the agent
        log_failure(home, event_name, exc)
        return 0
    if outcome.output is not None:
        (stdout or sys.stdout).write(json.dumps(outcome.output) + "\n")
    return outcome.exit_code


def handle(data: dict[str, Any], home: Path) -> HookOutcome:
    """Record one hook event (to the collector, or the spool) and return the answer."""
    outcome = process(data, home)
    if outcome.events:
        _deliver(home, outcome.events)
    elif data.get("hook_event_name") in ("Stop", "SessionEnd", "SessionStart") and _spool_waiting(home):
        _flush_quietly(home)
    return outcome


def process(data: dict[str, Any], home: Path, project_dir: str | None = None, *, local: bool = True) -> HookOutcome:
    """Update the session's state for one hook event and return the answer for Claude Code and
    the events to record, sending nothing (the collector's HTTP hook endpoint stores them itself).
    `project_dir` is Claude Code's CLAUDE_PROJECT_DIR when the caller is not its child process.
    `local` false: the agent runs on another machine, so its workspace is not read (no snapshot,
    no diffs, no git branch, no workspace policies, no active-trace marker), only recorded."""
    name = data.get("hook_event_name")
    handler = _HANDLERS.get(name if isinstance(name, str) else "")
    session = HookSession(home, data, project_dir, local)
    return handler(session, data) if handler is not None else HookOutcome()


# --- session state ---------------------------------------------------------------------------


# --- handlers ----------------------------------------------------------------------------------


def _session_start(s: HookSession, data: dict[str, Any]) -> HookOutcome:
    said, _ = redacted({"model": data.get("model"), "source": data.get("source")}, "$")

    def note(state: dict[str, Any]) -> None:
        state.update({**said, "started": s.timestamp})

    s.update("session.json", note)
    # The first content snapshot is the slow one; take it here, not on the first tool call.
    names = list_files(s.root, home=s.home) if s.local else None
    if names is not None:
        s.cache().refresh(s.root, scan(s.root, names))
    return HookOutcome()


def _user_prompt(s: HookSession, data: dict[str, Any]) -> HookOutcome:
    prompt_id = data.get("prompt_id")
    key = prompt_id if isinstance(prompt_id, str) and prompt_id else f"turn-{s.now_ns}"
    s.update("turn.json", lambda state: state.update({"key": key, "started_ns": s.now_ns}))
    trace = shape.turn_trace_id(s.id, key)
    event = s.envelope(trace, shape.prompt_span_id(trace), None, "prompt", s.timestamp)
    branch, head = git_head(Path(s.cwd)) if s.local else (None, None)
    event["payload"] = {
        "text": cap(data.get("prompt") or "", MAX_INPUT_CHARS),
        "prompt_id": prompt_id if isinstance(prompt_id, str) else None,
        "context": {
            "cwd": s.cwd,
            "git_branch": branch,
            "git_head": head,
            "permission_mode": data.get("permission_mode"),
        },
    }
    if s.local:
        _mark_active(s, event)
    return HookOutcome(events=[event])


def _pre_tool(s: HookSession, data: dict[str, Any]) -> HookOutcome:
    tool, tool_input, use_id = tool_fields(data)
    trace, prompt_span = s.turn(data)
    span = shape.tool_span_id(s.id, use_id)
    parent = _parent_span(s, data, prompt_span)
    state: dict[str, Any] = {
        "started_ns": s.now_ns,
        "trace": trace,
        "parent": parent,
        "before": {},
        "use_id": use_id,
        # enough of the call to record it at Stop if no Post hook ever comes
        "data": {"tool_name": tool, "tool_input": tool_input, "tool_use_id": use_id, "agent_id": data.get("agent_id")},
    }
    if tool in shape.SUBAGENT_TOOLS:
        s.update("tasks.json", lambda tasks: tasks.update({use_id: {"span": span, "started_ns": s.now_ns}}))
    files = policy_files(s.home, s.root if s.local else None)
    decision = (
        decide(
            build_input(
                agent_id=shape.AGENT_ID,
                tool_name=tool,
                tool_input=tool_input,
                user=os.environ.get("USER"),
                session_id=s.id,
                root=str(s.root),
                cwd=s.cwd,
                trace_id=trace,
                span_id=span,
            ),
            files,
        )
        if files
        else Decision("abstain", "no policy installed")
    )
    policy_event = s.envelope(
        trace, derive_id(f"flightlog-claude-policy:{span}", 8), span, "policy_evaluation", s.timestamp
    )
    _mask_reason(decision, policy_event)  # before an approval request or the answer holds it
    policy_event["payload"] = {**decision.to_payload(), "gate": "claude-code PreToolUse", "tool_name": tool}
    policy_event["status"] = "denied" if decision.decision == "deny" else "ok"
    approval_events: list[Event] = []
    if decision.decision == "ask":  # a signed approval may settle it within a bounded wait
        from flightlog.approval_wait import settle_ask

        settled, approval_events = settle_ask(s, decision, policy_event, files)
        if settled is not decision:  # decided again, with the approvals
            _mask_reason(settled, policy_event)
        decision = settled
        policy_event["payload"] = {**decision.to_payload(), "gate": "claude-code PreToolUse", "tool_name": tool}
    if decision.decision == "deny":
        call = tool_call_event(s, data, state, span, "denied")
        call["payload"]["error"] = f"denied by policy: {decision.reason}"
        return HookOutcome(_answer("deny", decision.reason), 0, [policy_event, call])
    capture_before(s, tool, tool_input, state)
    if s.local:
        _mark_active(s, {"trace_id": trace, "span_id": span, "model": s.model()})
    if decision.decision == "abstain":
        state["policy_event"] = policy_event  # recorded with the call, saving a send per tool call
        events = []
    else:
        events = [policy_event, *approval_events]
    # Kept until Post or Stop, which may never come: only the redacted input touches disk.
    state["data"]["tool_input"], state["redactions"] = redacted(tool_input, "$['payload']['input']")
    s.save(f"tool-{safe(use_id)}.json", state)
    answer = _answer(decision.decision, decision.reason) if decision.decision in ("allow", "ask") else None
    return HookOutcome(answer, 0, events)


def _post_tool(s: HookSession, data: dict[str, Any]) -> HookOutcome:
    tool, _, use_id = tool_fields(data)
    state_path = s.path(f"tool-{safe(use_id)}.json")
    state = s.load(state_path.name)
    if not state:
        trace, prompt_span = s.turn(data)
        state = {"trace": trace, "parent": _parent_span(s, data, prompt_span), "before": {}}
    span = shape.tool_span_id(s.id, use_id)
    failed = data.get("hook_event_name") == "PostToolUseFailure"
    call = tool_call_event(s, data, state, span, "error" if failed else "ok")
    events: list[Event] = [call]
    if isinstance(state.get("policy_event"), dict):  # an abstain, kept by PreToolUse
        events.insert(0, state["policy_event"])
    if tool in shape.SHELL_TOOLS:
        events.append(shell_event(s, data, state, span, failed))
        events.extend(workspace_changes(s, state, span))
    elif tool in shape.EDIT_TOOLS:
        events.extend(edit_changes(s, state, span))
    if tool in shape.SUBAGENT_TOOLS:
        s.update("tasks.json", lambda tasks: tasks.pop(use_id, None))
    state_path.unlink(missing_ok=True)
    return HookOutcome(events=events)


def _subagent_start(s: HookSession, data: dict[str, Any]) -> HookOutcome:
    agent = data.get("agent_id")
    if isinstance(agent, str):
        _bind_agent(s, agent)
    return HookOutcome()


def _stop(s: HookSession, data: dict[str, Any]) -> HookOutcome:
    """End of a turn: tool calls that never got a Post hook (the user refused the permission
    prompt, the call was interrupted) are recorded as unfinished."""
    if data.get("hook_event_name") == "SubagentStop":
        return HookOutcome()
    if s.local:
        clear_active(s.home, s.root)
    events = []
    for path in sorted(s.folder.glob("tool-*.json")) if s.folder.exists() else []:
        state = s.load(path.name)
        use_id = state.get("use_id")
        if isinstance(use_id, str):
            call = tool_call_event(s, state.get("data", {}), state, shape.tool_span_id(s.id, use_id), "unset")
            call["payload"]["error"] = "no PostToolUse: refused at the permission prompt or interrupted"
            if state.get("redactions"):  # the input was masked when kept: say where
                call["redactions"] = state["redactions"]
            if isinstance(state.get("policy_event"), dict):  # an abstain, kept for a Post that never came
                events.append(state["policy_event"])
            events.append(call)
        path.unlink(missing_ok=True)
    if data.get("hook_event_name") == "StopFailure":
        trace, prompt_span = s.turn(data)
        error = s.envelope(trace, derive_id(f"flightlog-claude-stopfail:{trace}", 8), prompt_span, "error", s.timestamp)
        error["status"] = "error"
        error["payload"] = {"message": str(data.get("error") or "stop failure"), "details": data.get("error_details")}
        events.append(error)
    return HookOutcome(events=events)


def _notification(s: HookSession, data: dict[str, Any]) -> HookOutcome:
    if data.get("notification_type") != "permission_prompt":
        return HookOutcome()  # idle and auth notices say nothing about the agent's actions
    trace, prompt_span = s.turn(data)
    span = derive_id(f"flightlog-claude-notice:{trace}:{s.now_ns}", 8)
    event = s.envelope(trace, span, prompt_span, "approval", s.timestamp)
    event["status"] = "pending"
    event["payload"] = {"kind": "permission_prompt", "message": data.get("message"), "title": data.get("title")}
    return HookOutcome(events=[event])


def _session_end(s: HookSession, data: dict[str, Any]) -> HookOutcome:
    outcome = _stop(s, {**data, "hook_event_name": "Stop"})
    import shutil  # only at the end of a session

    shutil.rmtree(s.folder, ignore_errors=True)  # the before-state copies are not kept
    return outcome


_HANDLERS: Final = {
    "SessionStart": _session_start,
    "UserPromptSubmit": _user_prompt,
    "PreToolUse": _pre_tool,
    "PostToolUse": _post_tool,
    "PostToolUseFailure": _post_tool,
    "SubagentStart": _subagent_start,
    "Stop": _stop,
    "StopFailure": _stop,
    "SubagentStop": _stop,
    "Notification": _notification,
    "SessionEnd": _session_end,
}


# --- delivery --------------------------------------------------------------------------------


def _deliver(home: Path, events: list[Event]) -> None:
    """Send to the collector, or spool when it is away; then send what waited."""
    from flightlog.client import SendError, post_events
    from flightlog.spool import spool_events

    try:
        post_events(events, timeout=3.0)
    except SendError as exc:
        spool_events(home, events)
        if not exc.retry:
            log_failure(home, "send", exc)
        return
    if _spool_waiting(home):
        _flush_quietly(home)


def _spool_waiting(home: Path) -> bool:
    try:
        return any(name.endswith(".ndjson") for name in os.listdir(home / "spool"))
    except OSError:
        return False


def _flush_quietly(home: Path) -> None:
    from flightlog.spool import flush_spool

    result = flush_spool(home)
    if result.rejected_files:
        log_failure(home, "spool flush", RuntimeError(result.stopped or "batches set aside"))


# --- helpers -----------------------------------------------------------------------------------


def _parent_span(s: HookSession, data: dict[str, Any], prompt_span: str) -> str:
    """A subagent's calls nest under the Task/Agent call that started it."""
    agent = data.get("agent_id")
    if not isinstance(agent, str) or not agent:
        return prompt_span
    bound = s.load("agents.json").get(agent) or _bind_agent(s, agent)
    return bound if isinstance(bound, str) else prompt_span


def _bind_agent(s: HookSession, agent: str) -> str | None:
    """Tie a subagent to the newest Task/Agent call not yet tied to one."""
    tasks = s.load("tasks.json")
    result: list[str] = []

    def bind(agents: dict[str, Any]) -> None:
        if agent in agents:
            result.append(agents[agent])
            return
        taken = set(agents.values())
        free = sorted((t for t in tasks.values() if t["span"] not in taken), key=lambda t: -int(t["started_ns"]))
        if free:
            agents[agent] = free[0]["span"]
            result.append(free[0]["span"])

    s.update("agents.json", bind)
    return result[0] if result else None


def _mark_active(s: HookSession, event: dict[str, Any]) -> None:
    """Tell git hooks and other tools in this workspace which trace they are part of."""
    model = event.get("model")
    write_active(
        s.home,
        s.root,
        {
            "trace_id": event["trace_id"],
            "span_id": event["span_id"],
            "agent_id": shape.AGENT_ID,
            "model": model.get("name") if isinstance(model, dict) else model,
            "session_id": s.id,
            "updated_ns": s.now_ns,
        },
    )


def _mask_reason(decision: Decision, policy_event: Event) -> None:
    """Mask secrets in the decision's reason (a policy engine's error may quote the tool input),
    noting on `policy_event` where they were."""
    decision.reason, found = redacted(decision.reason, "$['payload']['reason']")
    if found:
        policy_event["redactions"] = found
    else:
        policy_event.pop("redactions", None)


def _answer(decision: str, reason: str) -> dict[str, Any]:
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        }
    }
