"""Where the policy stage gets its decision: the `Evaluator` interface and the external OPA one.

`policy_stage.decide` asks an evaluator for the raw value of the decision rule and interprets
it the same way whichever evaluator answered. Two exist:

- `policy_stage.RegorusEvaluator` (the default): the Rego files evaluated in process;
- `OpaEvaluator`: an OPA server a team already runs, through OPA's REST data API
  ("Get a Document (with Input)"): `POST {url}/v1/data/flightlog/decision` with the body
  `{"input": <document>}`, answered `200 {"result": {...}}`, or `200 {}` (no `result`) where the
  document is undefined. The local Rego files are not used: the OPA server holds the policies.

Chosen by `$FLIGHTLOG_POLICY_URL` (the command hook and the CLI) or `flightlog serve
--policy-url URL` (the collector's HTTP hook). A timeout, a connection failure, a status other
than 200 or a body that is not a JSON object raises `PolicyBackendError`, which the stage turns
into a deny: an unreachable policy fails closed, as a broken local one does.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "DECISION_PATH",
    "POLICY_URL_ENV",
    "Evaluator",
    "OpaEvaluator",
    "PolicyBackendError",
    "public_url",
]

POLICY_URL_ENV: Final = "FLIGHTLOG_POLICY_URL"
DECISION_PATH: Final = "/v1/data/flightlog/decision"
DEFAULT_TIMEOUT: Final = 2.0  # seconds; the agent waits on every gated action
_MAX_ANSWER: Final = 1024 * 1024


class PolicyBackendError(Exception):
    """The evaluator could not produce a decision (the message says why, in one line)."""


class Evaluator(Protocol):
    """Evaluates the decision rule for one input document.

    `engine` names it in every decision ("regorus" or "opa"); `location` is where it evaluates
    (the OPA URL without credentials, or None in process)."""

    engine: str
    location: str | None

    def evaluate(self, document: dict[str, Any], files: list[Any]) -> tuple[object, str | None]:
        """Return the decision rule's value (None when undefined) and the bundle digest (None
        when unknown). Raises on any failure; the caller denies."""
        ...


def public_url(url: str) -> str:
    """Return `url` without user, password, query or fragment: safe to record in an event."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class OpaEvaluator:
    """An OPA server's `data.flightlog.decision`, through its REST data API (see the module doc).

    `url` is the server's base URL (`http(s)://host:port`, optionally with a path prefix, and
    `user:password@` for HTTP basic auth by a proxy in front of OPA); `timeout` bounds each
    request in seconds. OPA is asked for provenance, so the bundle revisions it reports stand
    in for the bundle digest."""

    engine: str = "opa"

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.location: str | None = public_url(url)
        self.timeout = timeout
        self._parts = urlsplit(url)
        try:
            port_ok = self._parts.port is None or self._parts.port > 0
        except ValueError:
            port_ok = False
        # a bad URL is reported by evaluate(), so that it denies like any other failure
        self._invalid = self._parts.scheme not in ("http", "https") or not self._parts.hostname or not port_ok

    def evaluate(self, document: dict[str, Any], files: list[Any]) -> tuple[object, str | None]:
        """POST the document to OPA; return `result` (None when undefined) and the bundle
        revision OPA reports (`provenance`), if any. Raises PolicyBackendError."""
        import http.client  # only when an OPA server is configured

        if self._invalid:
            raise PolicyBackendError(f"{POLICY_URL_ENV} must be an http(s) URL, got {self.location!r}")
        parts = self._parts
        conn_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        body = json.dumps({"input": document}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if parts.username is not None:
            import base64

            pair = f"{parts.username}:{parts.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        path = parts.path.rstrip("/") + DECISION_PATH + "?provenance=true"
        conn = conn_type(parts.hostname or "", parts.port, timeout=self.timeout)
        try:
            conn.request("POST", path, body, headers)
            answer = conn.getresponse()
            status, raw = answer.status, answer.read(_MAX_ANSWER + 1)
        except TimeoutError:
            raise PolicyBackendError(f"OPA at {self.location} did not answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise PolicyBackendError(f"OPA at {self.location} unreachable: {exc.strerror or exc}") from None
        except http.client.HTTPException as exc:
            raise PolicyBackendError(f"OPA at {self.location}: bad HTTP answer ({type(exc).__name__})") from None
        finally:
            conn.close()
        if status != 200:
            raise PolicyBackendError(f"OPA at {self.location} answered HTTP {status}{_opa_message(raw)}")
        if len(raw) > _MAX_ANSWER:
            raise PolicyBackendError(f"OPA at {self.location}: answer over {_MAX_ANSWER} bytes")
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise PolicyBackendError(f"OPA at {self.location}: answer is not JSON") from None
        if not isinstance(value, dict):
            raise PolicyBackendError(f"OPA at {self.location}: answer is not a JSON object")
        return value.get("result"), _revision(value.get("provenance"))


def _opa_message(raw: bytes) -> str:
    """OPA's error body is `{"code": "...", "message": "..."}`: quote its message, one line."""
    try:
        message = json.loads(raw).get("message")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return ""
    return f": {' '.join(str(message).split())[:200]}" if message else ""


def _revision(provenance: object) -> str | None:
    """The bundle revision(s) OPA reports when asked for provenance, as `opa:<name>=<rev>,…`."""
    if not isinstance(provenance, dict) or not isinstance(provenance.get("bundles"), dict):
        return None
    revs = [f"{name}={b.get('revision')}" for name, b in sorted(provenance["bundles"].items()) if isinstance(b, dict)]
    return "opa:" + ",".join(revs) if revs else None
