"""Host and origin checks shared by the HTTP UI and WebDAV: no DNS rebinding, no CSRF."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping

# Sec-Fetch-Site values that say the request comes from the server's own pages or from
# the user (typed URL, bookmark); everything else comes from some other site's page.
_SAME_SITE_VALUES = ("same-origin", "none")


def is_ip_literal(name: str) -> bool:
    """True when a Host name is an IP address (`127.0.0.1`, `[::1]`)."""
    # DNS rebinding needs a name the attacker's DNS answers for; an address cannot be rebound.
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def split_host(header: str) -> str:
    """The name part of a Host header (`[::1]:8090` → `[::1]`, `a:1` → `a`), lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed_host_names(bind_host: str, extra_hosts: Iterable[str] = ()) -> frozenset[str]:
    """The names a server bound to `bind_host` answers to, besides IP literals."""
    names = {bind_host.lower(), "localhost", *(h.lower() for h in extra_hosts)}
    if bind_host in ("0.0.0.0", "::", ""):
        # Bound everywhere: the machine's own names are what people type.
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(names)


def host_allowed(header: str, allowed: frozenset[str]) -> bool:
    """True when a Host header names this server, not someone else's domain."""
    name = split_host(header)
    return bool(name) and (name in allowed or is_ip_literal(name))


def same_origin(headers: Mapping[str, str]) -> bool:
    """False when a browser says the request comes from another site.

    `headers` has lower-case names. Browsers send Origin on every cross-origin write and
    Sec-Fetch-Site on every request; clients that are not browsers (curl, WebDAV
    clients, scripts) send neither and are let through, since a CSRF attack needs a
    victim's browser.
    """
    site = headers.get("sec-fetch-site", "")
    if site and site not in _SAME_SITE_VALUES:
        return False
    origin = headers.get("origin", "")
    if not origin:
        return True
    if origin == "null":
        return False
    scheme, _, rest = origin.partition("://")
    return scheme in ("http", "https") and rest.lower() == headers.get("host", "").lower()


def cross_site(headers: Mapping[str, str]) -> bool:
    """True when a browser says another site's page sent the request (`headers` lower-case)."""
    return headers.get("sec-fetch-site", "") == "cross-site"
