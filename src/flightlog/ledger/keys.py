"""The log's Ed25519 signing keys under `$FLIGHTLOG_HOME/keys/`: creation, rotation, export.

`keys/signing.key` holds the active private key (PKCS#8 PEM, mode 0600); `keys/keys.json` lists
every key the log has used, so checkpoints signed before a rotation still verify.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flightlog.errors import KeyError_
from flightlog.home import private_dir, write_private_file
from flightlog.ledger.checkpoint import format_verifier_key

__all__ = ["KeyInfo", "KeyRing"]


@dataclass(frozen=True)
class KeyInfo:
    """One signing key the log has used; `verifier_key` is its public verifier key string."""

    verifier_key: str
    created: str
    retired: str | None = None


class KeyRing:
    """The active signing key and the public keys of all earlier ones."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self._private: Ed25519PrivateKey | None = None

    @property
    def _key_path(self) -> Path:
        return self.directory / "signing.key"

    @property
    def _list_path(self) -> Path:
        return self.directory / "keys.json"

    def keys(self) -> list[KeyInfo]:
        """Return every key, oldest first; the last one without `retired` is active."""
        try:
            rows = json.loads(self._list_path.read_text("utf-8"))
            return [KeyInfo(**row) for row in rows]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError) as exc:
            raise KeyError_(f"{self._list_path} is not a valid key list: {exc}") from None

    def verifier_keys(self) -> list[str]:
        """Return the verifier key strings of every key, active and retired."""
        return [k.verifier_key for k in self.keys()]

    def private_key(self) -> Ed25519PrivateKey:
        """Return the active private key, creating the first one on first use."""
        if self._private is None:
            if not self._key_path.exists():
                self._private = self._create()
            else:
                self._private = self._load()
        return self._private

    def active_verifier_key(self) -> str:
        """Return the verifier key string of the active key."""
        public = self.private_key().public_key().public_bytes_raw()
        return format_verifier_key(self.name, public)

    def rotate(self) -> KeyInfo:
        """Retire the active key (its public key is kept) and make a new one active."""
        self.private_key()
        now = _now()
        kept = [k if k.retired else KeyInfo(k.verifier_key, k.created, now) for k in self.keys()]
        self._private = None
        self._key_path.unlink()
        self._private = self._create(kept)
        return self.keys()[-1]

    def _create(self, previous: list[KeyInfo] | None = None) -> Ed25519PrivateKey:
        private_dir(self.directory)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        info = KeyInfo(format_verifier_key(self.name, key.public_key().public_bytes_raw()), _now())
        rows = [*(previous if previous is not None else self.keys()), info]
        # The list first: a crash in between leaves a listed key with no private file, which
        # the next start replaces; never a private key whose public half is unlisted.
        write_private_file(self._list_path, json.dumps([asdict(r) for r in rows], indent=1).encode())
        write_private_file(self._key_path, pem)
        return key

    def _load(self) -> Ed25519PrivateKey:
        mode = os.stat(self._key_path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyError_(f"{self._key_path} is readable by others; chmod 600 it")
        try:
            key = serialization.load_pem_private_key(self._key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeyError_(f"{self._key_path} is not a valid private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyError_(f"{self._key_path} is not an Ed25519 key")
        vkey = format_verifier_key(self.name, key.public_key().public_bytes_raw())
        if vkey not in self.verifier_keys():
            raise KeyError_(f"{self._key_path} is not listed in {self._list_path}")
        return key


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
