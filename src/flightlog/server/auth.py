"""API tokens with roles, stored hashed in `$FLIGHTLOG_HOME/tokens.json` (mode 0600).

Roles: `ingest` (write events only, never read), `read`, `approve` (read + approvals and
rollbacks), `admin` (everything). A token is shown once, when created; only its SHA-256 is kept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from flightlog.errors import ConfigError
from flightlog.home import private_dir, write_private_file

__all__ = ["ROLES", "Token", "TokenStore", "role_allows"]

ROLES: Final = ("ingest", "read", "approve", "admin")
_GRANTS: Final = {
    "ingest": {"ingest"},
    "read": {"read"},
    "approve": {"read", "approve"},
    "admin": {"ingest", "read", "approve", "admin"},
}
_PREFIX: Final = "flt_"


def role_allows(role: str, need: str) -> bool:
    """Return whether a token of `role` may do what needs `need` (one of ROLES)."""
    return need in _GRANTS.get(role, set())


@dataclass(frozen=True)
class Token:
    """A stored token: its id, name, role, creation time and the SHA-256 of the secret."""

    token_id: str
    name: str
    role: str
    created: str
    sha256: str


class TokenStore:
    """The token file; reads it on each check so `tokens revoke` takes effect at once."""

    def __init__(self, home: Path) -> None:
        self.path = home / "tokens.json"

    def tokens(self) -> list[Token]:
        """Return every token (hashes only)."""
        try:
            return [Token(**row) for row in json.loads(self.path.read_text("utf-8"))]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.path} is not a valid token file: {exc}") from None

    def create(self, role: str, name: str = "") -> tuple[Token, str]:
        """Create a token and return it with its secret (shown to the user once)."""
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        secret = _PREFIX + secrets.token_urlsafe(32)
        token = Token(
            token_id=secrets.token_hex(4),
            name=name,
            role=role,
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            sha256=hashlib.sha256(secret.encode()).hexdigest(),
        )
        self._write([*self.tokens(), token])
        return token, secret

    def revoke(self, token_id: str) -> bool:
        """Remove a token by id; return whether it existed."""
        kept = [t for t in self.tokens() if t.token_id != token_id]
        if len(kept) == len(self.tokens()):
            return False
        self._write(kept)
        return True

    def lookup(self, secret: str) -> Token | None:
        """Return the token whose secret this is, comparing hashes in constant time."""
        digest = hashlib.sha256(secret.encode()).hexdigest()
        found = None
        for token in self.tokens():
            if hmac.compare_digest(token.sha256, digest):
                found = token
        return found

    def _write(self, tokens: list[Token]) -> None:
        private_dir(self.path.parent)
        write_private_file(self.path, json.dumps([asdict(t) for t in tokens], indent=1).encode())
