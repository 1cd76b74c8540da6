"""Signed approvals of `ask` decisions: approver keys, approval requests, signing and checking.

Approvers are people (or services) with a role and an Ed25519 key, kept apart from the log's
signing keys: `$FLIGHTLOG_HOME/approvers/<name>.key` (PKCS#8 PEM, 0600) and
`approvers/approvers.json` (name, role, public key, created; 0600).

An `ask` writes a request to `approvals/pending/<event_id>.json` (the id of its
`policy_evaluation` event) and waits; `flightlog approve EVENT_ID` signs a statement bound to
that event and the exact action digest (`policy_stage.action_digest`) and drops it into
`approvals/inbox/`, then records it as an `approval` event. The statement signed:

    flightlog approval v1
    event 0196a3c1-…
    action sha256:9f2c…
    approver alice
    role infra
    nonce 4c1d…(32 hex)
    issued 2025-06-01T12:00:00Z
    expires 2025-06-01T12:10:00Z
    context human

`check_approval` refuses (and names why) an approval by an unknown key, a bad signature, the
wrong role, for another action, expired, by the agent's own identity, or replayed (each nonce
is accepted once: `approvals/used/<nonce>`).

The same record can come through the collector (`POST /api/v1/approvals`, signed on the
approver's machine); `approval_event` and `refusal_event` build the events either path records.
A refusal is an `error` event, status `denied`, payload kind `approval_bypass_attempt` (REFUSED).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from flightlog.errors import ConfigError
from flightlog.home import private_dir, write_private_file

__all__ = [
    "APPROVAL_FIELDS",
    "DEFAULT_TTL",
    "REFUSED",
    "Approver",
    "approval_event",
    "approvers",
    "check_approval",
    "create_approver",
    "deliver",
    "delivered",
    "format_statement",
    "inbox",
    "pending_requests",
    "read_request",
    "refusal_event",
    "remove_request",
    "sign_approval",
    "write_request",
]

DEFAULT_TTL: Final = 600  # seconds an approval stays valid
REFUSED: Final = "approval_bypass_attempt"  # payload kind of the error event of a refused approval
APPROVAL_FIELDS: Final = (
    "kind",
    "policy_event_id",
    "action_digest",
    "approver",
    "role",
    "nonce",
    "issued_at",
    "expires_at",
    "context",
    "public_key",
    "signature",
)
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_EVENT_ID: Final = re.compile(r"[0-9A-Za-z-]{8,64}")
_MAX_FILE: Final = 64 * 1024
_SKEW: Final = timedelta(seconds=60)


class Approver:
    """A registered approver: name, role, raw Ed25519 public key (base64) and creation time."""

    __slots__ = ("created", "name", "public_key", "role")

    def __init__(self, name: str, role: str, public_key: str, created: str) -> None:
        self.name, self.role, self.public_key, self.created = name, role, public_key, created

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role, "public_key": self.public_key, "created": self.created}


def _dir(home: Path, *parts: str) -> Path:
    path = home.joinpath(*parts)
    private_dir(path)
    return path


def approvers(home: Path) -> dict[str, Approver]:
    """Return the registered approvers by name (empty when none)."""
    try:
        rows = json.loads((home / "approvers" / "approvers.json").read_text("utf-8"))
        return {r["name"]: Approver(r["name"], r["role"], r["public_key"], r["created"]) for r in rows}
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"approvers/approvers.json is not a valid approver list: {exc}") from None


def create_approver(home: Path, name: str, role: str) -> Approver:
    """Create an Ed25519 key for approver `name` with `role` and register it.
    Raises ConfigError for a bad name or role, or a name already registered."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    for what, value in (("approver name", name), ("role", role)):
        if not _NAME.fullmatch(value):
            raise ConfigError(f"{what} must be 1-64 letters, digits, '.', '_' or '-': {value!r}")
    known = approvers(home)
    if name in known:
        raise ConfigError(f"approver {name} already exists (role {known[name].role})")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    approver = Approver(name, role, public, _format_time(datetime.now(UTC)))
    folder = _dir(home, "approvers")
    write_private_file(folder / f"{name}.key", pem)
    rows = [a.to_json() for a in known.values()] + [approver.to_json()]
    write_private_file(folder / "approvers.json", json.dumps(rows, indent=1).encode())
    return approver


def _private_key(home: Path, name: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = home / "approvers" / f"{name}.key"
    try:
        if os.stat(path).st_mode & 0o077:
            raise ConfigError(f"{path} is readable by others; chmod 600 it")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(
            f"no key for approver {name}; create one with: flightlog keys create --approver {name}"
        ) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not a valid private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 key")
    return key


# --- requests --------------------------------------------------------------------------------


def write_request(home: Path, request: dict[str, Any]) -> None:
    """Record a pending approval request (`event_id`, `action_digest`, `roles`, `reason`, …)."""
    write_private_file(_dir(home, "approvals", "pending") / f"{request['event_id']}.json", json.dumps(request).encode())


def read_request(home: Path, event_id: str) -> dict[str, Any] | None:
    """Return the pending request for `event_id`, or None."""
    if not _EVENT_ID.fullmatch(event_id):
        return None
    try:
        value = json.loads((home / "approvals" / "pending" / f"{event_id}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def remove_request(home: Path, event_id: str) -> None:
    (home / "approvals" / "pending" / f"{event_id}.json").unlink(missing_ok=True)


def pending_requests(home: Path) -> list[dict[str, Any]]:
    """Return every pending request, oldest first."""
    folder = home / "approvals" / "pending"
    found = [read_request(home, p.stem) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted((r for r in found if r), key=lambda r: str(r.get("created", "")))


def inbox(home: Path, event_id: str) -> list[tuple[Path, dict[str, Any] | None]]:
    """Return the approvals waiting for `event_id`: (file, record or None when unreadable)."""
    folder = home / "approvals" / "inbox"
    if not folder.is_dir():
        return []
    found: list[tuple[Path, dict[str, Any] | None]] = []
    for path in sorted(folder.glob(f"{event_id}.*.json")):
        try:
            value = json.loads(path.read_bytes()[:_MAX_FILE])
            found.append((path, value if isinstance(value, dict) else None))
        except (OSError, ValueError):
            found.append((path, None))
    return found


# --- statements ------------------------------------------------------------------------------


def format_statement(approval: dict[str, Any]) -> bytes:
    """Return the exact bytes an approver signs (see the module doc). Raises ValueError when a
    field is missing or holds a newline."""
    lines = ["flightlog approval v1"]
    for label, key in (
        ("event", "policy_event_id"),
        ("action", "action_digest"),
        ("approver", "approver"),
        ("role", "role"),
        ("nonce", "nonce"),
        ("issued", "issued_at"),
        ("expires", "expires_at"),
        ("context", "context"),
    ):
        value = approval.get(key)
        if not isinstance(value, str) or not value or "\n" in value:
            raise ValueError(f"approval field {key} is missing or malformed")
        lines.append(f"{label} {value}")
    return ("\n".join(lines) + "\n").encode()


def sign_approval(
    home: Path, approver: str, request: dict[str, Any], ttl: int = DEFAULT_TTL, context: str = "human"
) -> dict[str, Any]:
    """Return an approval record for `request` signed by `approver`'s key (not yet checked)."""
    known = approvers(home)
    if approver not in known:
        raise ConfigError(f"unknown approver {approver}; create one with: flightlog keys create --approver {approver}")
    key = _private_key(home, approver)
    now = datetime.now(UTC)
    record: dict[str, Any] = {
        "kind": "policy_approval",
        "policy_event_id": str(request["event_id"]),
        "action_digest": str(request["action_digest"]),
        "approver": approver,
        "role": known[approver].role,
        "nonce": os.urandom(16).hex(),
        "issued_at": _format_time(now),
        "expires_at": _format_time(now + timedelta(seconds=ttl)),
        "context": context,
        "public_key": known[approver].public_key,
    }
    record["signature"] = base64.b64encode(key.sign(format_statement(record))).decode()
    return record


def check_approval(
    home: Path, approval: dict[str, Any], request: dict[str, Any], *, consume: bool = True, now: datetime | None = None
) -> str | None:
    """Return why `approval` does not approve `request`, or None when it does.

    Checks, in order: 1 the statement is well formed; 2 the approver is registered and the key
    is theirs; 3 the signature verifies; 4 the role is one the request needs; 5 the event and
    the action digest are the request's; 6 it has not expired (nor is from the future); 7 it is
    not the agent's own identity; 8 its nonce was never used (marked used when `consume`).
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    # 1 well formed
    try:
        statement = format_statement(approval)
        signature = base64.b64decode(str(approval.get("signature", "")), validate=True)
    except (ValueError, binascii.Error):
        return "malformed approval"
    # 2 a registered approver's key
    approver = approvers(home).get(str(approval["approver"]))
    if approver is None:
        return f"unknown approver {approval['approver']}"
    if approval.get("public_key") != approver.public_key:
        return f"not signed with the key of approver {approver.name}"
    # 3 signature
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(approver.public_key)).verify(signature, statement)
    except (InvalidSignature, ValueError):
        return "signature does not verify"
    # 4 role
    roles = [str(r) for r in request.get("roles") or []]
    if approval["role"] != approver.role or (roles and approver.role not in roles):
        return f"wrong role: {approver.name} is {approver.role}, the action needs {' or '.join(roles) or '?'}"
    # 5 the same action
    if approval["policy_event_id"] != request.get("event_id") or approval["action_digest"] != request.get(
        "action_digest"
    ):
        return "approval is for another action"
    # 6 time
    now = now or datetime.now(UTC)
    try:
        issued, expires = _parse_time(approval["issued_at"]), _parse_time(approval["expires_at"])
    except ValueError:
        return "malformed approval time"
    if expires <= now:
        return "approval expired"
    if issued > now + _SKEW:
        return "approval issued in the future"
    # 7 not the agent itself
    if approval["context"] != "human" or approver.name in {request.get("agent_id"), request.get("user_agent")}:
        return "approval by the agent's own identity"
    # 8 once only
    used = _dir(home, "approvals", "used") / str(approval["nonce"])
    if not re.fullmatch(r"[0-9a-f]{32}", str(approval["nonce"])):
        return "malformed nonce"
    if used.exists():
        return "approval replayed"
    if consume:
        try:
            os.close(os.open(used, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return "approval replayed"
    return None


def delivered(home: Path, approval: dict[str, Any]) -> bool:
    """Return whether this approval (its event and nonce) already waits in the inbox: sending
    the same signed approval twice is a replay even before the ask consumes it."""
    name = f"{approval.get('policy_event_id')}.{approval.get('nonce')}.json"
    return "/" not in name and (home / "approvals" / "inbox" / name).exists()


def deliver(home: Path, approval: dict[str, Any]) -> Path:
    """Drop an approval that passed `check_approval` into `approvals/inbox/`, where the waiting
    ask picks it up (and checks it again); return the file written."""
    event_id, nonce = str(approval["policy_event_id"]), str(approval["nonce"])
    if not (_EVENT_ID.fullmatch(event_id) and re.fullmatch(r"[0-9a-f]{32}", nonce)):
        raise ValueError("approval event id or nonce is malformed")
    path = _dir(home, "approvals", "inbox") / f"{event_id}.{nonce}.json"
    write_private_file(path, json.dumps({k: approval[k] for k in APPROVAL_FIELDS if k in approval}).encode())
    return path


# --- events ----------------------------------------------------------------------------------


def approval_event(request: dict[str, Any], approval: dict[str, Any]) -> dict[str, Any]:
    """Return the `approval` event of an accepted approval, under the asked tool call."""
    from flightlog.ids import derive_id

    return {
        "trace_id": request["trace_id"],
        "span_id": derive_id(f"flightlog-approval:{approval['nonce']}", 8),
        "parent_span_id": request["span_id"],
        "type": "approval",
        "status": "ok",
        "timestamp": _now(),
        "agent_id": str(request.get("agent_id") or "unknown"),
        "session_id": request.get("session_id"),
        "user_context": {"user_id": approval["approver"], "role": approval["role"]},
        "payload": {**{k: approval[k] for k in APPROVAL_FIELDS if k in approval}, "decision": "approved"},
    }


def refusal_event(request: dict[str, Any], approval: dict[str, Any], why: str) -> dict[str, Any]:
    """Return the `error` event (status denied, kind REFUSED) of a refused approval. `approval`
    may be anything a caller sent: only short strings are taken from it."""
    from flightlog.ids import derive_id

    def field(key: str) -> str | None:
        value = approval.get(key)
        return value[:200] if isinstance(value, str) else None

    nonce = field("nonce") or os.urandom(16).hex()
    approver, role = field("approver"), field("role")
    return {
        "trace_id": request["trace_id"],
        "span_id": derive_id(f"flightlog-approval-refused:{request['event_id']}:{nonce}", 8),
        "parent_span_id": request["span_id"],
        "type": "error",
        "status": "denied",
        "timestamp": _now(),
        "agent_id": str(request.get("agent_id") or "unknown"),
        "session_id": request.get("session_id"),
        "user_context": {"user_id": approver, "role": role},
        "payload": {
            "kind": REFUSED,
            "message": f"approval refused: {why}",
            "reason": why,
            "approver": approver,
            "role": role,
            "policy_event_id": request["event_id"],
            "action_digest": field("action_digest"),
        },
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
