"""The policy stage every gated action passes: build the input document, evaluate the policies,
return a decision.

The policies are the built-in pack (`flightlog/policies/*.rego`, settings in its
`settings.json`) plus the user's `*.rego` files in `$FLIGHTLOG_HOME/policies/` and the
workspace's `.flightlog/policies/`; a `settings.json` in either place is merged over the
pack's settings (objects merge, other values replace). Rego (OPA's language, v1 syntax) is
evaluated in process by regorus, compiled once per thread and set of files. The decision is
`data.flightlog.pack.decision`: the pack's verdict, or the user's `data.flightlog.decision`
where one is defined (see docs/policy.md). When no rule decides, the stage abstains and the
agent's own permission flow decides (it never says "allow" on nobody's behalf, unless the
settings say `"default": "allow"`). A policy or settings file that fails to load or evaluate
denies, with the error as the reason: someone installed it to be enforced.

The evaluator is an interface (`policy_backends.Evaluator`): `RegorusEvaluator` here by
default, or an external OPA server through its REST data API when `$FLIGHTLOG_POLICY_URL` is set
(or the collector's `--policy-url`, see `using_policy_url`). An OPA that times out, fails or
answers nonsense denies, like a broken local policy. Every decision names its `engine`.

The input document (field by field in docs/policy.md):

    {"actor":     {"agent_id", "user", "session_id"},
     "action":    {"kind": "tool_call", "tool_name", "input", "commands", "paths", "secrets",
                   "dependencies", "parse_error"},
     "workspace": {"root", "cwd", "home", "tmpdir"},
     "trace":     {"trace_id", "span_id"},
     "approvals": [{"role", "approver", "approval_id"}]}
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from flightlog.policy_input import derive_action

if TYPE_CHECKING:
    from flightlog.policy_backends import Evaluator

__all__ = [
    "DECISION_RULE",
    "PACK_DIR",
    "Decision",
    "RegorusEvaluator",
    "action_digest",
    "build_input",
    "current_evaluator",
    "decide",
    "load_settings",
    "policy_files",
    "using_policy_url",
]

DECISION_RULE: Final = "data.flightlog.pack.decision"
PACK_DIR: Final = Path(__file__).parent / "policies"
SETTINGS_NAME: Final = "settings.json"
_DECISIONS: Final = frozenset({"allow", "deny", "ask"})
_local = threading.local()  # regorus engines must not be shared across threads
_policy_url: ContextVar[str | None] = ContextVar("flightlog_policy_url", default=None)


class Decision:
    """`decision` is allow, deny, ask or abstain (no rule spoke); `roles` are the approver roles
    an ask needs; `bundle` is the sha256 over the policy files' names and contents; `document`
    is the input evaluated; `engine` the evaluator that answered ("regorus", "opa"; None when
    none was asked) and `location` the OPA URL, without credentials. (A plain class: the hook
    loads this on every tool call and dataclasses would import inspect.)"""

    __slots__ = (
        "bundle",
        "decision",
        "document",
        "engine",
        "input_digest",
        "latency_ms",
        "location",
        "reason",
        "roles",
        "rules",
    )

    def __init__(
        self,
        decision: str,
        reason: str,
        rules: list[str] | None = None,
        bundle: str | None = None,
        input_digest: str | None = None,
        latency_ms: float = 0.0,
        roles: list[str] | None = None,
        document: dict[str, Any] | None = None,
        engine: str | None = None,
        location: str | None = None,
    ) -> None:
        self.decision = decision
        self.reason = reason
        self.rules = rules or []
        self.bundle = bundle
        self.input_digest = input_digest
        self.latency_ms = latency_ms
        self.roles = roles or []
        self.document = document
        self.engine = engine
        self.location = location

    def to_payload(self) -> dict[str, Any]:
        """The `policy_evaluation` event payload for this decision."""
        payload: dict[str, Any] = {
            "decision": self.decision,
            "reason": self.reason,
            "rules": self.rules,
            "bundle": self.bundle,
            "input_digest": self.input_digest,
            "latency_ms": round(self.latency_ms, 3),
            "engine": self.engine,
        }
        if self.location:
            payload["policy_url"] = self.location
        if self.roles:
            payload["roles"] = self.roles
        if self.document and self.document.get("approvals"):
            payload["approvals"] = self.document["approvals"]
        return payload


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
    home_dir: str | None = None,
    approvals: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return the policy input document for one tool call (see the module doc and
    docs/policy.md). `home_dir` (default: the user's home) expands `~` in commands."""
    home_dir = home_dir or os.path.expanduser("~")
    where = cwd or root or "/"
    return {
        "actor": {"agent_id": agent_id, "user": user, "session_id": session_id},
        "action": {
            "kind": "tool_call",
            "tool_name": tool_name,
            "input": tool_input,
            **derive_action(tool_name, tool_input, where, home_dir),
        },
        "workspace": {
            "root": root,
            "cwd": cwd,
            "home": home_dir,
            "tmpdir": os.environ.get("TMPDIR", "/tmp").rstrip("/") or "/tmp",
        },
        "trace": {"trace_id": trace_id, "span_id": span_id},
        "approvals": approvals or [],
    }


def action_digest(document: dict[str, Any]) -> str:
    """Return `sha256:<hex>` over the canonical JSON of `document` without its `approvals`:
    the digest an approval is bound to (the same action with approvals added keeps it)."""
    bound = {k: v for k, v in document.items() if k != "approvals"}
    canonical = json.dumps(bound, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def policy_files(home: Path, workspace: Path | None, *, pack: bool = True) -> list[Path]:
    """Return the policy files that apply: the built-in pack's (`*.rego` without tests, and its
    settings), then the user-wide ones, then the workspace's, sorted by name within each place.
    Rego test files (`*_test.rego`) are left out: `flightlog policy test` runs them."""
    places = [home / "policies"]
    if workspace is not None:
        places.append(workspace / ".flightlog" / "policies")
    found = [*_pack_files()] if pack else []
    for place in places:
        try:
            found.extend(sorted(p for p in place.iterdir() if _is_policy_file(p) and p.is_file()))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return found


def _pack_files() -> list[Path]:
    return sorted(p for p in PACK_DIR.iterdir() if _is_policy_file(p))


def _is_policy_file(path: Path) -> bool:
    return (path.suffix == ".rego" and not path.name.endswith("_test.rego")) or path.name == SETTINGS_NAME


def load_settings(files: list[Path]) -> dict[str, Any]:
    """Return the settings of the `settings.json` files among `files`, each merged over the
    ones before it (objects merge key by key; lists and other values replace).
    Raises ValueError naming the file when one is not a JSON object."""
    merged: dict[str, Any] = {}
    for path in files:
        if path.name != SETTINGS_NAME:
            continue
        value = json.loads(path.read_text("utf-8"))
        if not isinstance(value, dict):
            raise ValueError(f"{path.name} must hold a JSON object")
        merged = _merge(merged, value)
    return merged


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        old = out.get(key)
        out[key] = _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


class RegorusEvaluator:
    """The default evaluator: `files` compiled and evaluated in process by regorus (one engine
    per thread, recompiled when a file changes)."""

    engine: str = "regorus"
    location: str | None = None

    def evaluate(self, document: dict[str, Any], files: list[Path]) -> tuple[object, str | None]:
        """Return the value of DECISION_RULE (None when undefined) and the bundle digest."""
        engine, bundle_digest = _engine(files)
        # JSON, not set_input(): the binding turns Python booleans into numbers (True -> 1.0)
        engine.set_input_json(json.dumps(document))
        results = engine.eval_query(DECISION_RULE)["result"]
        return (results[0]["expressions"][0]["value"] if results else None), bundle_digest  # [] when undefined


_REGORUS: Final = RegorusEvaluator()


def current_evaluator() -> Evaluator:
    """Return the evaluator in force: an OPA server's when a URL is set (`using_policy_url`,
    else `$FLIGHTLOG_POLICY_URL`), else the in-process regorus one."""
    url = _policy_url.get() or os.environ.get("FLIGHTLOG_POLICY_URL")
    if not url:
        return _REGORUS
    from flightlog.policy_backends import OpaEvaluator  # only when an OPA server is configured

    return OpaEvaluator(url)


@contextmanager
def using_policy_url(url: str | None) -> Iterator[None]:
    """Within the block (this context: a request, and the threads it runs work in), decide with
    the OPA server at `url` whatever the environment says; `None` changes nothing."""
    if not url:
        yield
        return
    token = _policy_url.set(url)
    try:
        yield
    finally:
        _policy_url.reset(token)


def decide(document: dict[str, Any], files: list[Path], evaluator: Evaluator | None = None) -> Decision:
    """Evaluate the policies against `document` with `evaluator` (default: `current_evaluator`;
    `files` from `policy_files` are what the in-process one compiles, an OPA server holds its
    own); return the decision (see the module doc). Never raises: a failure is a deny naming
    the error."""
    started = time.perf_counter()
    digest = action_digest(document)
    backend = evaluator or current_evaluator()
    engine, where = backend.engine, backend.location
    if not files and engine == "regorus":
        return Decision("abstain", "no policy installed", input_digest=digest, document=document)
    try:
        value, bundle_digest = backend.evaluate(document, files)
    except Exception as exc:  # any engine or server failure must deny, not crash the agent
        return Decision(
            "deny",
            f"policy error: {error_line(exc)}",
            input_digest=digest,
            latency_ms=(time.perf_counter() - started) * 1000,
            document=document,
            engine=engine,
            location=where,
        )
    elapsed = (time.perf_counter() - started) * 1000
    if value is None:
        return Decision(
            "abstain", "no policy rule decided", [], bundle_digest, digest, elapsed, None, document, engine, where
        )
    if not isinstance(value, dict) or value.get("decision") not in _DECISIONS:
        return Decision(
            "deny",
            "policy error: the decision must be an object with decision allow, deny or ask",
            [],
            bundle_digest,
            digest,
            elapsed,
            document=document,
            engine=engine,
            location=where,
        )
    rules, roles = value.get("rules"), value.get("roles")
    return Decision(
        str(value["decision"]),
        str(value.get("reason") or ""),
        [str(r) for r in rules] if isinstance(rules, list) else [],
        bundle_digest,
        digest,
        elapsed,
        [str(r) for r in roles] if isinstance(roles, list) else [],
        document,
        engine,
        where,
    )


def error_line(exc: BaseException) -> str:
    """Return one line for a policy error: regorus' location and message, without its backtrace."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("Stack backtrace", "|"))]
    kept = [line for line in lines if line.startswith(("-->", "error:"))] or lines[:1]
    text = " ".join(kept[:2]) or type(exc).__name__
    return text[:300]


def _engine(files: list[Path]) -> tuple[Any, str]:
    """The compiled engine for `files` in this thread (recompiled when a file changes)."""
    key = tuple((str(p), *_stamp(p)) for p in files)
    cached = getattr(_local, "engine", None)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    import regorus  # loaded only when there is a policy to run

    engine = regorus.Engine()
    bundle = hashlib.sha256()
    for path in files:
        text = path.read_text("utf-8")
        bundle.update(f"{path.name}\0{len(text)}\0".encode() + text.encode())
        if path.suffix == ".rego":
            engine.add_policy(path.name, text)
    try:
        settings = load_settings(files)
    except ValueError as exc:
        raise ValueError(f"settings: {exc}") from None
    engine.add_data_json(json.dumps({"flightlog": {"settings": settings}}))
    digest = "sha256:" + bundle.hexdigest()
    _local.engine = (key, engine, digest)
    return engine, digest


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size
