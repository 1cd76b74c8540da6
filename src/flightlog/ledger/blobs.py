"""Content-addressed blob store: `blobs/ab/cdef…` files named by the SHA-256 of their bytes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Final

from flightlog.errors import BlobError
from flightlog.home import private_dir, write_private_file

__all__ = ["BlobStore", "blob_digest"]

_DIGEST_RE: Final = re.compile(r"^sha256:[0-9a-f]{64}$")


def blob_digest(data: bytes) -> str:
    """Return the `sha256:<hex>` digest that names `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobStore:
    """Blobs on disk; `put` is durable before it returns, `get` checks the digest."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, digest: str) -> Path:
        """Return where the blob named `digest` lives."""
        if not _DIGEST_RE.match(digest):
            raise BlobError(f"not a blob digest: {digest[:80]!r}")
        hexdigest = digest[7:]
        return self.directory / hexdigest[:2] / hexdigest[2:]

    def put(self, data: bytes) -> str:
        """Store `data` (fsynced, mode 0600) and return its digest; storing twice is a no-op."""
        digest = blob_digest(data)
        path = self.path(digest)
        if not path.exists():
            try:
                private_dir(path.parent)
                write_private_file(path, data)
            except OSError as exc:
                raise BlobError(f"cannot store blob {digest}: {exc.strerror}") from None
        return digest

    def get(self, digest: str) -> bytes:
        """Return the blob's bytes; raise BlobError if it is missing or does not match."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobError(f"blob {digest} is missing") from None
        if blob_digest(data) != digest:
            raise BlobError(f"blob {digest} does not match its digest (changed on disk)")
        return data
