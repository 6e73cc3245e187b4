"""What WebDAV answers with: the multistatus XML of PROPFIND and PROPPATCH, a lock's
discovery, the DAV:error bodies of refused preconditions, and a folder's listing
for a plain GET. `D:` is always the DAV: namespace; dead properties are written as
they were stored (each element declares its own namespaces), so no default
namespace is ever declared and an element without one stays without one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from http import HTTPStatus
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from app.downloads.validators import http_date, modified_at, strong_etag
from app.files.store import FileRow
from app.webdav.locks import Lock
from app.webdav.properties import PropertyName
from app.webdav.tree import Resource

DAV = "DAV:"
XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
XML_TYPE = b"application/xml; charset=utf-8"

# RFC 4331's quota properties are live but not part of allprop (its §3).
QUOTA_PROPERTIES = frozenset({(DAV, "quota-used-bytes"), (DAV, "quota-available-bytes")})
LIVE_PROPERTIES = frozenset(
    {(DAV, name) for name in (
        "creationdate", "displayname", "getcontentlength", "getcontenttype", "getetag",
        "getlastmodified", "resourcetype", "supportedlock", "lockdiscovery",
    )} | QUOTA_PROPERTIES
)  # fmt: skip

SUPPORTED_LOCK = (
    "<D:supportedlock>"
    + "".join(
        f"<D:lockentry><D:lockscope><D:{scope}/></D:lockscope>"
        "<D:locktype><D:write/></D:locktype></D:lockentry>"
        for scope in ("exclusive", "shared")
    )
    + "</D:supportedlock>"
)


def href_of(parts: Sequence[str], *, folder: bool) -> str:
    """The URL path of a resource: stored names percent-encoded, a folder ending in /."""
    if not parts:
        return "/dav/"
    path = "/dav/" + "/".join(quote(part, safe="") for part in parts)
    return path + "/" if folder else path


def status_line(status: int) -> str:
    return f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"


def empty_element(name: PropertyName) -> str:
    namespace, local = name
    if namespace == DAV:
        return f"<D:{local}/>"
    if namespace == "":
        return f'<{local} xmlns=""/>'
    return f"<R:{local} xmlns:R={quoteattr(namespace)}/>"


def element(name: PropertyName, inner: str) -> str:
    """A DAV: element holding `inner` (already XML)."""
    return f"<D:{name[1]}>{inner}</D:{name[1]}>"


def multistatus(responses: Iterable[str]) -> bytes:
    return (XML_HEAD + '<D:multistatus xmlns:D="DAV:">' + "".join(responses)
            + "</D:multistatus>").encode()  # fmt: skip


def response(href: str, propstats: Sequence[tuple[int, Sequence[str]]]) -> str:
    """One D:response: a propstat per status that has properties."""
    body = "".join(
        f"<D:propstat><D:prop>{''.join(props)}</D:prop>"
        f"<D:status>{status_line(status)}</D:status></D:propstat>"
        for status, props in propstats
        if props
    )
    return f"<D:response><D:href>{escape(href)}</D:href>{body}</D:response>"


def status_response(href: str, status: int) -> str:
    return (
        f"<D:response><D:href>{escape(href)}</D:href>"
        f"<D:status>{status_line(status)}</D:status></D:response>"
    )


def error_body(condition: str) -> bytes:
    """A DAV:error naming the precondition that failed (RFC 4918 §16)."""
    return (XML_HEAD + f'<D:error xmlns:D="DAV:">{condition}</D:error>').encode()


def active_lock(lock: Lock, now: float) -> str:
    return (
        "<D:activelock>"
        f"<D:locktype><D:write/></D:locktype><D:lockscope><D:{lock.scope}/></D:lockscope>"
        f"<D:depth>{lock.depth}</D:depth>{lock.lock_owner}"
        f"<D:timeout>Second-{lock.seconds_left(now)}</D:timeout>"
        f"<D:locktoken><D:href>{escape(lock.token)}</D:href></D:locktoken>"
        f"<D:lockroot><D:href>{escape(lock.path)}</D:href></D:lockroot>"
        "</D:activelock>"
    )


def lock_discovery(locks: Sequence[Lock], now: float) -> str:
    return "<D:lockdiscovery>" + "".join(active_lock(x, now) for x in locks) + "</D:lockdiscovery>"


def lock_answer(lock: Lock, now: float) -> bytes:
    """The body of a LOCK's answer: the lock's discovery."""
    return (
        XML_HEAD + '<D:prop xmlns:D="DAV:">' + lock_discovery([lock], now) + "</D:prop>"
    ).encode()


def creation_date(created_at: str) -> str:
    return modified_at(created_at).strftime("%Y-%m-%dT%H:%M:%SZ")


def live_properties(
    resource: Resource, locks: Sequence[Lock], now: float, quota: tuple[int, int | None]
) -> dict[PropertyName, str]:
    """Every live property of the resource, each as its element. `quota`: the
    account's used bytes and the bytes still free (None: no limit)."""
    found: dict[PropertyName, str] = {}
    name = resource.parts[-1] if resource.parts else ""
    found[(DAV, "displayname")] = f"<D:displayname>{escape(name)}</D:displayname>"
    row: FileRow | None = resource.file
    created = row.created_at if row is not None else resource.folder.created_at  # type: ignore[union-attr]
    found[(DAV, "creationdate")] = f"<D:creationdate>{creation_date(created)}</D:creationdate>"
    found[(DAV, "getlastmodified")] = (
        f"<D:getlastmodified>{http_date(modified_at(created))}</D:getlastmodified>"
    )
    if row is not None:
        found[(DAV, "resourcetype")] = "<D:resourcetype/>"
        found[(DAV, "getcontentlength")] = f"<D:getcontentlength>{row.size}</D:getcontentlength>"
        found[(DAV, "getcontenttype")] = f"<D:getcontenttype>{escape(row.mime)}</D:getcontenttype>"
        found[(DAV, "getetag")] = f"<D:getetag>{escape(strong_etag(row.sha256))}</D:getetag>"
    else:
        found[(DAV, "resourcetype")] = "<D:resourcetype><D:collection/></D:resourcetype>"
    found[(DAV, "supportedlock")] = SUPPORTED_LOCK
    found[(DAV, "lockdiscovery")] = lock_discovery(locks, now)
    used, available = quota
    found[(DAV, "quota-used-bytes")] = f"<D:quota-used-bytes>{used}</D:quota-used-bytes>"
    if available is not None:
        found[(DAV, "quota-available-bytes")] = (
            f"<D:quota-available-bytes>{available}</D:quota-available-bytes>"
        )
    return found


def folder_listing(name: str, folders: Sequence[str], files: Sequence[str]) -> str:
    """A plain GET of a folder: what it holds, in words (folders end in /)."""
    lines = (
        [f"{name or 'Your files'} holds:"]
        + [f"  {x}/" for x in folders]
        + [f"  {x}" for x in files]
    )
    if not folders and not files:
        lines.append("  nothing yet")
    return "\n".join(lines) + "\n"
