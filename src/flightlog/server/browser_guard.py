"""Which anonymous loopback requests come from a web page rather than from a local program.

Loopback clients need no token by default, and a browser on the same machine is such a
client: a page on any site can send it "simple" cross-origin requests (a POST with a
`text/plain` body needs no CORS preflight), and through DNS rebinding (a name that first
resolves to the site, then to 127.0.0.1) it can even read the answers. Both carry a tell: the
page's `Origin` (or `Sec-Fetch-Site`, which browsers send with every request), and for
rebinding a `Host` that is the page's DNS name. A bearer token needs neither check: a page
cannot make the browser send one.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Mapping

__all__ = ["foreign_page", "loopback_client"]


def foreign_page(headers: Mapping[str, str]) -> str | None:
    """Why an anonymous loopback request with these headers is refused (it names a host that
    is not this machine's loopback, as a web page's request would), or None."""
    host = headers.get("host", "")
    if not _local_name(urllib.parse.urlsplit(f"//{host}").hostname):
        return (
            "anonymous access needs a Host of localhost, an IP address or this machine's name; "
            "other names need a bearer token"
        )
    # Browsers say where a request comes from, also for a GET an <img> makes, which has no Origin.
    if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return "requests from other web pages need a bearer token"
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


def _local_name(name: str | None) -> bool:
    # A name a rebinding page cannot have: an address written out (DNS is not asked), localhost
    # (RFC 6761), or this machine's own name (Debian maps it to 127.0.1.1).
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost") or name == socket.gethostname().lower():
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
