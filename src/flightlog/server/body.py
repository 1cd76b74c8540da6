"""Reading request bodies safely: a size cap before and after gzip, no unbounded buffers."""

from __future__ import annotations

import json
import zlib

from starlette.requests import Request

from flightlog.capture.jsonlines import load_json
from flightlog.errors import ValidationError

__all__ = ["BodyError", "parse_json", "read_body"]


class BodyError(Exception):
    """The body cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(request: Request, limit: int) -> bytes:
    """Return the request body, gunzipped if `Content-Encoding: gzip`, at most `limit` bytes.

    Raises BodyError 413 when the body (compressed or not) is over `limit`, 400 for bad gzip,
    415 for an encoding other than gzip or identity. Decompression stops at `limit` bytes, so
    a gzip bomb costs at most `limit` bytes of memory.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, f"body is {declared} bytes, over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise BodyError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, f"body is not valid gzip: {exc}") from None
    if len(data) > limit:
        raise BodyError(413, f"decompressed body is over the {limit}-byte limit")
    if not inflater.eof:
        raise BodyError(400, "body is truncated gzip")
    return data


class _DuplicateMember(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _unique_members(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in pairs:
        if name in out:
            raise _DuplicateMember(name)
        out[name] = value
    return out


def parse_json(
    text: str | bytes, where: str = "", *, unique_members: bool = False, numbers_as_text: bool = False
) -> object:
    """Return the JSON value in `text`; raise ValidationError("$", reason) with the position of
    a syntax error, or saying it is nested too deeply for the parser.

    With `unique_members`, an object naming a member twice is refused: parsers disagree on which
    one counts (`{"dry_run": true, "dry_run": false}`), so a body that acts must say it once.
    With `numbers_as_text`, integers beyond ±(2**53 - 1) and NaN/Infinity are kept as their
    text (`load_json`): for input the collector records but did not choose, such as a tool's."""
    try:
        if numbers_as_text:
            return load_json(text)
        return json.loads(text, object_pairs_hook=_unique_members) if unique_members else json.loads(text)
    except _DuplicateMember as exc:
        raise ValidationError("$", f"{where}member {exc.name[:80]!r} is given twice") from None
    except UnicodeDecodeError as exc:
        raise ValidationError("$", f"{where}not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValidationError("$", f"{where}invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # an integer of over 4,300 digits (Python's conversion limit)
        raise ValidationError("$", f"{where}invalid JSON: {str(exc)[:120]}") from None
    except RecursionError:
        raise ValidationError("$", f"{where}nested too deeply") from None
