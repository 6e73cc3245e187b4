"""Which `Host` this server answers to: the first thing every request meets.

A page on evil.example can make a browser resolve that name to 127.0.0.1 (DNS
rebinding) and then read our answers as same-origin. Checking `Host` against the
names this server is really reached by (`--allowed-hosts`) refuses those requests
with 421 before any handler, gate or cookie is looked at.
"""

from __future__ import annotations

from stario import Context, Handler, Writer

from app.common.http import json_error, speaks_json
from app.config import ANY_HOST

# A Host without a port was sent to the scheme's default port; behind a proxy we
# cannot tell which scheme, so either default matches an entry's port.
DEFAULT_PORTS = ("80", "443")


def split_host(value: str) -> tuple[str, str | None] | None:
    """(name, port) of a Host header value, lowercased; None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value.partition("]")
        name += bracket
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else None
    elif value.count(":") > 1:
        return None
    else:
        name, colon, port_text = value.partition(":")
        port = port_text if colon else None
    if port is not None and not (port.isascii() and port.isdigit() and len(port) <= 5):
        return None
    name = name.rstrip(".")
    return (name, port) if name else None


class AllowedHosts:
    def __init__(self, entries: tuple[str, ...]) -> None:
        self.any = ANY_HOST in entries
        self._exact = {entry for entry in entries if entry != ANY_HOST}
        # An entry without a port matches its name on any port.
        self._any_port = {
            found[0]
            for entry in self._exact
            if (found := split_host(entry)) is not None and found[1] is None
        }

    def allows(self, host: str | None) -> bool:
        if self.any:
            return True
        found = split_host(host) if host else None
        if found is None:
            return False
        name, port = found
        if name in self._any_port:
            return True
        ports = DEFAULT_PORTS if port is None else (port,)
        return any(f"{name}:{p}" in self._exact for p in ports)

    def middleware(self, inner: Handler) -> Handler:
        if self.any:
            return inner

        async def check_host(c: Context, w: Writer) -> None:
            if self.allows(c.req.headers.get("host")):
                await inner(c, w)
                return
            message = "this server does not answer to that host name (see --allowed-hosts)"
            w.headers.set("connection", "close")
            if speaks_json(c.req.path):
                json_error(w, 421, message)
            else:
                w.text(f"421 Misdirected Request: {message}\n", 421)

        return check_host
