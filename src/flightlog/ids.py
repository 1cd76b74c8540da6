"""Ids: fresh UUIDv7 event ids, and ids derived from a seed so that a retried or re-imported
record maps to the same event (the ledger skips an event id it already holds).

Kept free of heavy imports: the Claude Code hook loads it on every tool call.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

__all__ = ["derive_id", "new_event_id", "stable_event_id", "unix_ms"]

_id_lock = threading.Lock()
_last_ms = 0
_counter = 0
# Random bits drawn from the OS 4 KiB at a time: a getrandom call per id stood out in profiles
# of OTLP ingest. A forked child must not reuse its parent's pool (it would repeat its ids).
_POOL_BYTES = 4096
_pool = b""
_pool_at = 0


def _forget_pool() -> None:
    global _pool, _pool_at
    _pool, _pool_at = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def _uuid7(ms: int, counter: int, rand: int) -> str:
    value = (ms << 80) | (0x7 << 76) | ((counter & 0xFFF) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_event_id() -> str:
    """Return a new UUIDv7 (RFC 9562 §5.7): 48-bit Unix ms, then a 12-bit counter that keeps ids
    strictly increasing within one process, then 62 random bits."""
    global _last_ms, _counter, _pool, _pool_at
    with _id_lock:
        if _pool_at + 8 > len(_pool):
            _pool, _pool_at = os.urandom(_POOL_BYTES), 0
        rand = int.from_bytes(_pool[_pool_at : _pool_at + 8], "big")
        _pool_at += 8
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                ms, _counter = ms + 1, 0
        else:
            _counter = 0
        _last_ms = ms
        counter = _counter
    return _uuid7(ms, counter, rand)


def derive_id(seed: str, size: int) -> str:
    """Return `size` bytes of sha256(seed) as hex, never all zero (a W3C-valid trace or span id
    for size 16 or 8)."""
    digest = bytearray(hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest()[:size])
    if not any(digest):
        digest[-1] = 1
    return digest.hex()


def stable_event_id(seed: str, unix_ms: int) -> str:
    """Return a UUIDv7 whose time is `unix_ms` (when the record happened, so ids still sort by
    time) and whose other 74 bits come from sha256(seed): the same record always gets the
    same id."""
    bits = int.from_bytes(hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest()[:10], "big")
    return _uuid7(max(0, min(unix_ms, (1 << 48) - 1)), bits >> 62, bits)


def unix_ms(timestamp: str) -> int:
    """Return an RFC 3339 timestamp as Unix milliseconds, 0 when it is not one (for
    `stable_event_id`, which clamps the time it is given)."""
    from datetime import datetime  # here, not at the top: a millisecond on the hook's path

    try:
        return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00").replace("z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0
