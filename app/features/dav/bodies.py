"""WebDAV request bodies: XML read with the standard library, refusing any DOCTYPE
(and so any entity declaration: no entity expansion, no external entities) whatever
the body's encoding, capped in size; and what PROPFIND, PROPPATCH and LOCK ask for in
them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal
from xml.parsers import expat

from app.webdav.properties import Change, PropertyName

DAV = "DAV:"
# A WebDAV request body is a few properties or a lock's owner: far below this.
MOST_BODY_BYTES = 1024 * 1024
# A lock's DAV:owner (who holds it, for humans: a name or a URL) is kept with the lock
# and sent in every lockdiscovery of what it covers: a few hundred bytes in practice.
MOST_LOCK_OWNER_CHARS = 4096


class BadBody(ValueError):
    """A body refused (400 unless `status` says otherwise); the message says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def name_of(element: ET.Element) -> PropertyName:
    """(namespace, local name) of an element ('' for no namespace)."""
    tag = element.tag
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def parse_xml(body: bytes) -> ET.Element | None:
    """The body's root element; None for an empty body; BadBody for one that is not
    well-formed or declares a DOCTYPE or entities."""
    if not body.strip():
        return None
    _refuse_doctype(body)
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadBody(f"the body is not well-formed XML: {exc}") from None


class _Doctype(Exception):
    pass


def _refuse_doctype(body: bytes) -> None:
    """BadBody if the body has a DOCTYPE. Told by expat as it reads the document in its
    own encoding (a byte search misses `<!DOCTYPE` in UTF-16), before anything of it
    is expanded; the tree is built only from a body that passed."""

    def refuse(*_: object) -> None:
        raise _Doctype

    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = refuse
    scanner.EntityDeclHandler = refuse
    scanner.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        scanner.Parse(body, True)
    except _Doctype:
        raise BadBody(
            "the body declares a DOCTYPE or entities, which WebDAV bodies never need"
        ) from None
    except expat.ExpatError as exc:
        raise BadBody(f"the body is not well-formed XML: {exc}") from None
    except (ValueError, LookupError) as exc:  # an encoding expat cannot read
        raise BadBody(f"the body's XML cannot be read: {exc}") from None


def element_xml(element: ET.Element) -> str:
    """An element alone (its text and children, not what follows it) as XML text."""
    tail, element.tail = element.tail, None
    try:
        return ET.tostring(element, encoding="unicode")
    finally:
        element.tail = tail


@dataclass(frozen=True, slots=True)
class Propfind:
    kind: Literal["allprop", "propname", "prop"]
    names: tuple[PropertyName, ...] = ()


def propfind_of(root: ET.Element | None) -> Propfind:
    if root is None:
        return Propfind("allprop")
    if name_of(root) != (DAV, "propfind"):
        raise BadBody("a PROPFIND body is a DAV:propfind element")
    for child in root:
        kind = name_of(child)
        if kind == (DAV, "allprop"):
            return Propfind("allprop")
        if kind == (DAV, "propname"):
            return Propfind("propname")
        if kind == (DAV, "prop"):
            return Propfind("prop", tuple(name_of(p) for p in child))
    raise BadBody("a DAV:propfind holds DAV:allprop, DAV:propname or DAV:prop")


def proppatch_of(root: ET.Element | None) -> list[Change]:
    """The changes of a DAV:propertyupdate, in document order."""
    if root is None or name_of(root) != (DAV, "propertyupdate"):
        raise BadBody("a PROPPATCH body is a DAV:propertyupdate element")
    changes: list[Change] = []
    for instruction in root:
        kind = name_of(instruction)
        if kind not in ((DAV, "set"), (DAV, "remove")):
            continue
        for prop in instruction:
            if name_of(prop) != (DAV, "prop"):
                continue
            for one in prop:
                value = element_xml(one) if kind == (DAV, "set") else None
                changes.append(Change(name_of(one), value))
    if not changes:
        raise BadBody("a DAV:propertyupdate changes no property")
    return changes


@dataclass(frozen=True, slots=True)
class LockInfo:
    scope: Literal["exclusive", "shared"]
    owner: str  # the DAV:owner element as XML, '' when none


def lockinfo_of(root: ET.Element) -> LockInfo:
    if name_of(root) != (DAV, "lockinfo"):
        raise BadBody("a LOCK body is a DAV:lockinfo element")
    scope: Literal["exclusive", "shared"] | None = None
    write = False
    owner = ""
    for child in root:
        kind = name_of(child)
        if kind == (DAV, "lockscope"):
            for one in child:
                if name_of(one) == (DAV, "exclusive"):
                    scope = "exclusive"
                elif name_of(one) == (DAV, "shared"):
                    scope = "shared"
        elif kind == (DAV, "locktype"):
            write = any(name_of(one) == (DAV, "write") for one in child)
        elif kind == (DAV, "owner"):
            owner = element_xml(child)
            if len(owner) > MOST_LOCK_OWNER_CHARS:
                raise BadBody(
                    f"a lock's DAV:owner is at most {MOST_LOCK_OWNER_CHARS} characters"
                    f" of XML (this one is {len(owner)})"
                )
    if scope is None:
        raise BadBody("a DAV:lockinfo needs a DAV:lockscope of exclusive or shared")
    if not write:
        raise BadBody("only write locks exist (DAV:locktype DAV:write)")
    return LockInfo(scope, owner)
