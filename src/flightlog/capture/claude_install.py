"""flightlog's entries in a Claude Code settings object: add them, find them, remove them
(pure functions on the parsed JSON; `flightlog.cli_install` does the file I/O).

Settings shape (Claude Code hooks reference, "Hook locations"): event → matcher groups →
handlers. We add one group per event, holding one handler::

    "PreToolUse": [..., {"matcher": "*", "hooks": [
        {"type": "command", "command": "/venv/bin/flightlog hook claude-code", "timeout": 30}]}]

A handler is ours when its command ends with ` hook claude-code`, whatever path precedes it, so
installing from another environment replaces our handler instead of adding a second one.

Nothing else is touched. Removal prunes only the groups, event lists, `hooks` object and `env`
object that it emptied; `before` (the settings as they were before we installed) says which of
those were already there and empty, and which `env` values we overwrote, so that
`remove_*(add_*(s), before=s) == s`, key order included.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from flightlog.errors import ConfigError

__all__ = [
    "COMMAND_ONLY_EVENTS",
    "HOOK_EVENTS",
    "HOOK_SUFFIX",
    "HTTP_PATH",
    "TOOL_EVENTS",
    "add_env",
    "add_hooks",
    "hook_command",
    "hooked_events",
    "is_ours",
    "remove_env",
    "remove_hooks",
    "telemetry_env",
]

# What an auditor needs from a session: its bounds, every prompt, every tool call before and
# after (success or failure), notifications, turn ends, subagents and compactions.
HOOK_EVENTS: tuple[str, ...] = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "Stop",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "SessionEnd",
)
# Events whose matcher is tested against the tool name; "*" says "every tool" explicitly.
TOOL_EVENTS = frozenset({"PreToolUse", "PostToolUse", "PostToolUseFailure"})
HOOK_SUFFIX = " hook claude-code"
HTTP_PATH = "/hooks/claude-code"  # the collector's endpoint for Claude Code's "type": "http" hooks
# Claude Code runs only command (and mcp_tool) handlers for these, so they stay commands.
COMMAND_ONLY_EVENTS = frozenset({"SessionStart"})
# Claude Code's default is 600 s; a recorder that hangs must not stall the agent that long.
HOOK_TIMEOUT = 30

Settings = dict[str, Any]


def hook_command(argv: Sequence[str]) -> str:
    """Return the shell command that runs `argv` + `hook claude-code`, each word quoted.

    >>> hook_command(["/opt/my venv/bin/flightlog"])
    "'/opt/my venv/bin/flightlog' hook claude-code"
    """
    return shlex.join(argv) + HOOK_SUFFIX


def is_ours(handler: object) -> bool:
    """Return True when `handler` is a command handler that runs `… hook claude-code`, or an
    http handler that posts to a collector's `/hooks/claude-code`."""
    if not isinstance(handler, dict):
        return False
    if handler.get("type") == "http":
        return isinstance(handler.get("url"), str) and handler["url"].rstrip("/").endswith(HTTP_PATH)
    return (
        handler.get("type") == "command"
        and isinstance(handler.get("command"), str)
        and handler["command"].endswith(HOOK_SUFFIX)
    )


def hooked_events(settings: Mapping[str, Any]) -> list[str]:
    """Return the events (in file order) that have at least one handler of ours."""
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return []
    return [event for event, groups in hooks.items() if _has_ours(groups)]


def add_hooks(settings: Mapping[str, Any], command: str, http_url: str | None = None) -> Settings:
    """Return a copy of `settings` with one handler of ours running `command` on every event of
    HOOK_EVENTS, and none anywhere else; with `http_url`, an http handler posting there instead,
    except on COMMAND_ONLY_EVENTS.

    A group that holds only our handler is updated where it stands; otherwise ours are taken out
    of mixed groups and our group is appended. Applying it twice changes nothing more.
    Raises ConfigError when `hooks`, or the list of one of our events, has the wrong JSON type.
    """
    out = copy.deepcopy(dict(settings))
    hooks = out.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ConfigError(f'"hooks" is {_json_type(hooks)}, not an object')
    for event in list(hooks):
        if event not in HOOK_EVENTS and isinstance(hooks[event], list):
            # An event an older flightlog hooked and this one does not.
            _prune_event(hooks, event, hooks[event], None)
    for event in HOOK_EVENTS:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise ConfigError(f'"hooks.{event}" is {_json_type(groups)}, not a list')
        wanted = _our_group(event, command, None if event in COMMAND_ONLY_EVENTS else http_url)
        spot = next((i for i, g in enumerate(groups) if _is_our_group(g)), None)
        if spot is None:
            groups[:] = [_without_ours(g) for g in groups if not _only_ours(g)]
            groups.append(wanted)
        else:
            groups[:] = [
                wanted if i == spot else _without_ours(g)
                for i, g in enumerate(groups)
                if i == spot or not _only_ours(g)
            ]
    return out


def remove_hooks(settings: Mapping[str, Any], before: Mapping[str, Any] | None = None) -> Settings:
    """Return a copy of `settings` without any handler of ours.

    Groups, event lists and the `hooks` object that lose their last entry to this are dropped,
    except where `before` holds the same container, empty: it was there before we were.
    Other handlers, groups and keys are left exactly as they are.
    """
    out = copy.deepcopy(dict(settings))
    hooks = out.get("hooks")
    if not isinstance(hooks, dict) or not hooked_events(out):
        return out
    old_hooks = before.get("hooks") if before is not None else None
    old_hooks = old_hooks if isinstance(old_hooks, dict) else None
    for event in list(hooks):
        if isinstance(hooks[event], list):
            _prune_event(hooks, event, hooks[event], old_hooks)
    if not hooks and old_hooks != {}:
        del out["hooks"]
    return out


def telemetry_env(url: str) -> dict[str, str]:
    """Return the `env` entries that make Claude Code export its OpenTelemetry events (logs)
    and spans (traces, beta) to the OTLP/HTTP receiver at base `url`.

    Claude Code has no default protocol, so it is set; traces need the beta switch too.
    Metrics are left off: flightlog does not receive them.
    """
    return {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_TRACES_EXPORTER": "otlp",
        "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": url,
    }


def add_env(settings: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Return a copy of `settings` whose `env` object holds every entry of `env` (other entries
    kept, ours overwriting). Raises ConfigError when `env` is not an object."""
    out = copy.deepcopy(dict(settings))
    block = out.setdefault("env", {})
    if not isinstance(block, dict):
        raise ConfigError(f'"env" is {_json_type(block)}, not an object')
    block.update(env)
    return out


def remove_env(
    settings: Mapping[str, Any], env: Mapping[str, str], before: Mapping[str, Any] | None = None
) -> Settings:
    """Return a copy of `settings` without the entries of `env` whose value is still ours.

    An entry that `before` had is given back its value from `before` instead (we overwrote it);
    entries someone changed since are left alone. An `env` object this empties is dropped,
    unless `before` had it empty.
    """
    out = copy.deepcopy(dict(settings))
    block = out.get("env")
    if not isinstance(block, dict):
        return out
    old = before.get("env") if before is not None else None
    old = old if isinstance(old, dict) else {}
    removed = False
    for key, value in env.items():
        if block.get(key) != value:
            continue
        if key in old:
            block[key] = old[key]
        else:
            del block[key]
            removed = True
    if removed and not block and not (before is not None and before.get("env") == {}):
        del out["env"]
    return out


# --- helpers ---------------------------------------------------------------------------------


def _our_group(event: str, command: str, http_url: str | None) -> dict[str, Any]:
    handler: dict[str, Any] = (
        {"type": "http", "url": http_url, "timeout": HOOK_TIMEOUT}
        if http_url
        else {"type": "command", "command": command, "timeout": HOOK_TIMEOUT}
    )
    return {"matcher": "*", "hooks": [handler]} if event in TOOL_EVENTS else {"hooks": [handler]}


def _handlers(group: object) -> list[Any] | None:
    if isinstance(group, dict) and isinstance(group.get("hooks"), list):
        handlers: list[Any] = group["hooks"]
        return handlers
    return None


def _only_ours(group: object) -> bool:
    """A group that has handlers, all of them ours: ours to replace or drop."""
    handlers = _handlers(group)
    return bool(handlers) and all(is_ours(h) for h in handlers or ())


def _is_our_group(group: object) -> bool:
    """A group shaped like one we write (no other keys), so it can be rewritten in place."""
    return _only_ours(group) and isinstance(group, dict) and set(group) <= {"matcher", "hooks"}


def _has_ours(groups: object) -> bool:
    return isinstance(groups, list) and any(is_ours(h) for g in groups for h in _handlers(g) or ())


def _without_ours(group: Any) -> Any:
    handlers = _handlers(group)
    if handlers is None or not any(is_ours(h) for h in handlers):
        return group
    return {**group, "hooks": [h for h in handlers if not is_ours(h)]}


def _prune_event(hooks: dict[str, Any], event: str, groups: list[Any], old_hooks: Mapping[str, Any] | None) -> None:
    """Take our handlers out of `hooks[event]`, dropping the groups, then the list, they empty."""
    if not _has_ours(groups):
        return
    kept = [_without_ours(g) for g in groups if not _only_ours(g)]
    if kept or (old_hooks is not None and old_hooks.get(event) == []):
        hooks[event] = kept
    else:
        del hooks[event]


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
