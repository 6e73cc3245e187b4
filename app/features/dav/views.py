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

from app.downloads.validators import modified_at, strong_etag
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
    return href_in(href_of(parts[:-1], folder=True), parts[-1], folder=folder)


def href_in(folder_href: str, name: str, *, folder: bool) -> str:
    """The URL path of `name` in the folder at `folder_href` (which ends in /)."""
    return folder_href + quote(name, safe="") + ("/" if folder else "")


def xml_text(value: str) -> str:
    """`value` as XML character data (most names need no escaping: no copy then)."""
    if "&" in value or "<" in value or ">" in value:
        return escape(value)
    return value


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# (creationdate, getlastmodified) elements by the second they name: the rows of one
# listing, often uploaded together, share them (one dict per request).
type DateCache = dict[str, tuple[str, str]]


def date_elements(created_at: str, cache: DateCache) -> tuple[str, str]:
    """The creationdate (RFC 3339) and getlastmodified (RFC 1123) elements of a row's
    upload time, cut to whole seconds as HTTP dates are (the download's Last-Modified)."""
    found = cache.get(created_at[:19])
    if found is not None:
        return found
    m = modified_at(created_at)
    made = (
        f"<D:creationdate>{m.year:04}-{m.month:02}-{m.day:02}T{m.hour:02}:{m.minute:02}:"
        f"{m.second:02}Z</D:creationdate>",
        f"<D:getlastmodified>{_DAYS[m.weekday()]}, {m.day:02} {_MONTHS[m.month - 1]} {m.year}"
        f" {m.hour:02}:{m.minute:02}:{m.second:02} GMT</D:getlastmodified>",
    )
    if len(cache) < 100_000:
        cache[created_at[:19]] = made
    return made


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


def response(
    href: str, propstats: Sequence[tuple[int, Sequence[str]]], description: str = ""
) -> str:
    """One D:response: a propstat per status that has properties, and why in words
    (its responsedescription) when there is something to say."""
    body = "".join(
        f"<D:propstat><D:prop>{''.join(props)}</D:prop>"
        f"<D:status>{status_line(status)}</D:status></D:propstat>"
        for status, props in propstats
        if props
    )
    if description:
        body += f"<D:responsedescription>{xml_text(description)}</D:responsedescription>"
    return f"<D:response><D:href>{xml_text(href)}</D:href>{body}</D:response>"


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


def live_properties(
    resource: Resource,
    locks: Sequence[Lock],
    now: float,
    quota: tuple[int, int | None],
    dates: DateCache,
) -> dict[PropertyName, str]:
    """Every live property of the resource, each as its element. `quota`: the
    account's used bytes and the bytes still free (None: no limit)."""
    found: dict[PropertyName, str] = {}
    name = resource.parts[-1] if resource.parts else ""
    found[(DAV, "displayname")] = f"<D:displayname>{xml_text(name)}</D:displayname>"
    row: FileRow | None = resource.file
    created = row.created_at if row is not None else resource.folder.created_at  # type: ignore[union-attr]
    found[(DAV, "creationdate")], found[(DAV, "getlastmodified")] = date_elements(created, dates)
    if row is not None:
        found[(DAV, "resourcetype")] = "<D:resourcetype/>"
        found[(DAV, "getcontentlength")] = f"<D:getcontentlength>{row.size}</D:getcontentlength>"
        found[(DAV, "getcontenttype")] = (
            f"<D:getcontenttype>{xml_text(row.mime)}</D:getcontenttype>"
        )
        found[(DAV, "getetag")] = f"<D:getetag>{xml_text(strong_etag(row.sha256))}</D:getetag>"
    else:
        found[(DAV, "resourcetype")] = "<D:resourcetype><D:collection/></D:resourcetype>"
    found[(DAV, "supportedlock")] = SUPPORTED_LOCK
    found[(DAV, "lockdiscovery")] = lock_discovery(locks, now) if locks else "<D:lockdiscovery/>"
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
