"""Which anonymous loopback requests come from a web page rather than from a local program.

Loopback clients need no token by default, and a browser on the same machine is such a
client: a page on any site can send it "simple" cross-origin requests (a POST with a
`text/plain` body needs no CORS preflight), and through DNS rebinding (a name that first
resolves to the site, then to 127.0.0.1) it can even read the answers. Both carry a tell: the
page's `Origin`, and for rebinding a `Host` that is the page's name, not a loopback one. A
bearer token needs neither check: a page cannot make the browser send one.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping

__all__ = ["foreign_page", "loopback_client"]


def foreign_page(headers: Mapping[str, str]) -> str | None:
    """Why an anonymous loopback request with these headers is refused (it names a host that
    is not this machine's loopback, as a web page's request would), or None."""
    host = headers.get("host", "")
    if not _is_loopback(urllib.parse.urlsplit(f"//{host}").hostname):
        return "anonymous access needs a loopback Host (localhost, 127.0.0.1, [::1]); other names need a bearer token"
    origin = headers.get("origin")
    if origin is not None and _netloc(origin) != _netloc(f"http://{host}"):
        # Not only other sites: another local web app (a dev server showing untrusted pages) too.
        return "requests from other web origins need a bearer token"
    return None


def _netloc(url: str) -> tuple[str | None, int | None] | None:
    """(host, port) of a URL, the scheme's default port filled in; None if it has none."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None


def loopback_client(address: str | None) -> bool:
    """True when a client's address is a loopback one (127.0.0.0/8, ::1, or IPv4-mapped
    ::ffff:127.x): the same machine. A name or no address is not known to be."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _is_loopback(name: str | None) -> bool:
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
