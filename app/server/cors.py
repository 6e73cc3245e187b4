"""Web apps on other sites (`--cors-origins`): CORS for the API, raw uploads, tus, the
upload draft and file downloads, with an API token and never with a cookie.

- A request from a listed origin that carries `Authorization` is served with
  `Access-Control-Allow-Origin: <that origin>` and the headers clients read exposed;
  `same_origin` (app/server/origin.py) lets it through (`ALLOWED_CROSS_ORIGIN`). The
  gate then resolves the token: with `Authorization` present it never looks at the
  session cookie (app/access/gate.py `identify`).
- The same request without `Authorization` is refused with 403: cookies are never
  honoured from another site, so the page's CSRF rule holds whatever the list says.
  (tus's capability answer, `OPTIONS` without a preflight's headers, is not a
  credentialed request and passes as before.)
- An origin not listed gets no CORS headers; its commands meet `same_origin` as before.
- A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) carries
  no credentials, so it is answered here, before the gate: 204 with exactly the
  methods the route tree has at that path (asked of the app's router, so an `OPTIONS`
  route of its own changes nothing) and the request headers that family of routes
  reads. From an unlisted origin, or for a method the path does not take: 403 in
  JSON, without any `Access-Control-Allow-*`, so the browser stops there.
- No `Access-Control-Allow-Credentials`, ever.

Other paths (pages, share and request links, WebDAV) never get CORS headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from stario import Context, Handler, Writer

from app.common.http import json_error, tag_tus_refusal
from app.server.origin import ALLOWED_CROSS_ORIGIN, from_another_origin
from app.server.peers import request_ended
from app.webdav.methods import DAV_METHODS

# Every method any route may take; a preflight's allowed set is those the router has
# at the path (WebDAV's are here too, for completeness, though /dav is no CORS path).
KNOWN_METHODS = tuple(
    dict.fromkeys(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", *DAV_METHODS))
)

# What a client on another site reads from an answer, beyond what CORS always shows
# (Cache-Control, Content-Language, Content-Length, Content-Type, Expires,
# Last-Modified, Pragma). tus-js-client and Uppy read Location (the new upload's URL),
# Upload-Offset and Upload-Length (where to resume), Tus-Resumable (protocol check),
# Upload-Expires; the tus capability answer is Tus-Version, Tus-Max-Size,
# Tus-Extension, Tus-Checksum-Algorithm; the IETF draft's client reads Upload-Complete,
# Upload-Draft-Interop-Version and Upload-Limit; downloads are read by Content-Disposition
# (the name), ETag and Content-Range/Accept-Ranges (resuming a download); uploads answer
# Stowage-File-Id/-Location; Retry-After says when to try again after 429/503.
EXPOSED_HEADERS = (
    "Location", "Upload-Offset", "Upload-Length", "Upload-Metadata", "Upload-Defer-Length",
    "Upload-Concat", "Upload-Expires", "Tus-Resumable", "Tus-Version", "Tus-Max-Size",
    "Tus-Extension", "Tus-Checksum-Algorithm", "Upload-Complete",
    "Upload-Draft-Interop-Version", "Upload-Limit", "Content-Disposition", "Content-Range",
    "Accept-Ranges", "ETag", "Retry-After", "Stowage-File-Id", "Stowage-File-Location",
)  # fmt: skip

# The request headers each family of routes reads (beyond CORS-safelisted ones, which
# a browser sends without asking; Content-Type is listed because JSON and tus's
# `application/offset+octet-stream` are not safelisted values).
JSON_HEADERS = ("Authorization", "Content-Type")
# Ranges and conditional requests: app/downloads/serve.py and zip_serve.py.
DOWNLOAD_HEADERS = (
    *JSON_HEADERS, "Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since",
    "If-Unmodified-Since",
)  # fmt: skip
# The IETF draft's headers, on /uploads and on an upload resource (/tus/{id}):
# app/features/resumable/ietf.py.
DRAFT_HEADERS = (
    "Upload-Complete", "Upload-Draft-Interop-Version", "Upload-Offset", "Upload-Length",
    "Upload-Metadata",
)  # fmt: skip
# Raw uploads: the name from Content-Disposition (or ?name=), app/features/uploads.
UPLOAD_HEADERS = (*JSON_HEADERS, "Content-Disposition", *DRAFT_HEADERS)
# tus 1.0 (app/features/resumable/tus.py), and the draft on the same upload URLs.
TUS_HEADERS = (
    *JSON_HEADERS, "Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata",
    "Upload-Defer-Length", "Upload-Concat", "Upload-Checksum", "X-HTTP-Method-Override",
    "Upload-Complete", "Upload-Draft-Interop-Version",
)  # fmt: skip

# Seconds a browser may keep a preflight's answer (Chromium keeps at most 7,200).
MAX_AGE_SECONDS = 3600

NEEDS_TOKEN = (
    "from another site, send an API token (Authorization: Bearer TOKEN);"
    " cookies are not honoured cross-origin"
)
NOT_ALLOWED_ORIGIN = "this origin may not call this server from a browser (see --cors-origins)"


@dataclass(frozen=True, slots=True)
class Family:
    """Route patterns that share the request headers they read."""

    patterns: frozenset[str]
    prefix: str | None
    headers: tuple[str, ...]

    def covers(self, pattern: str) -> bool:
        return pattern in self.patterns or (
            self.prefix is not None and pattern.startswith(self.prefix)
        )


# First match wins: a ZIP under /api/archives/{token} is a download, the rest of /api JSON.
FAMILIES = (
    Family(
        frozenset({"/files/{file_id}", "/files/{file_id}/thumbnail", "/api/archives/{token}"}),
        None,
        DOWNLOAD_HEADERS,
    ),
    Family(frozenset(), "/api/", JSON_HEADERS),
    Family(frozenset({"/uploads", "/uploads/{name}"}), None, UPLOAD_HEADERS),
    Family(frozenset({"/tus", "/tus/{upload_id}"}), None, TUS_HEADERS),
)


def family_of(pattern: str) -> Family | None:
    return next((family for family in FAMILIES if family.covers(pattern)), None)


def methods_at(c: Context) -> tuple[str | None, list[str]]:
    """The route pattern at this request's path and the methods the router has there."""
    pattern: str | None = None
    methods = []
    # As sent, still percent-encoded: what Stario routes by (ASCII on the wire).
    path = c.req.raw_path.decode("latin-1")
    for method in KNOWN_METHODS:
        _, route, _ = c.app.find_handler(c.req.host, path, method)
        if route.method == method:
            methods.append(method)
            pattern = route.target
    return pattern, methods


def _body_follows(c: Context) -> bool:
    return c.req.headers.get("content-length") not in (None, "0") or bool(
        c.req.headers.get("transfer-encoding")
    )


class Cors:
    def __init__(self, origins: tuple[str, ...]) -> None:
        self.origins = frozenset(origins)

    def middleware(self, inner: Handler) -> Handler:
        if not self.origins:
            return inner  # the default: no CORS anywhere, nothing to add

        async def cors(c: Context, w: Writer) -> None:
            pattern = c.match.pattern  # type: ignore[attr-defined]
            origin = (c.req.headers.get("origin") or "").strip()
            preflight = (
                c.req.method == "OPTIONS"
                and bool(origin)
                and c.req.headers.get("access-control-request-method") is not None
            )
            if preflight:
                found, methods = methods_at(c)
                family = None if found is None else family_of(found)
                if family is not None:
                    self._preflight(c, w, origin, methods, family)
                    # The request after it on this connection (tus's POST /tus/) may have
                    # a slashed target: let the connection route it (app/server/peers.py).
                    request_ended(c, w)
                    return
                await inner(c, w)
                return
            family = family_of(pattern.split(" ", 1)[-1]) if pattern else None
            if family is None:
                await inner(c, w)
                return
            # The answer differs by Origin (allowed or not): caches must key on it.
            # `add`: Vary: Accept-Encoding is added to the same answers elsewhere.
            w.headers.add("vary", "Origin")
            if not origin or origin not in self.origins or not from_another_origin(c, origin):
                await inner(c, w)  # same-origin, or an unlisted site: as without CORS
                return
            if c.req.headers.get("authorization") is None:
                if c.req.method == "OPTIONS":
                    await inner(c, w)  # tus's capability answer: no credentials involved
                    return
                tag_tus_refusal(c, w)
                # Its body, if any, is not wanted: close rather than drain it.
                json_error(w, 403, NEEDS_TOKEN, close=_body_follows(c))
                request_ended(c, w)
                return
            c.state[ALLOWED_CROSS_ORIGIN] = True
            w.headers.set("access-control-allow-origin", origin)
            w.headers.set("access-control-expose-headers", ", ".join(EXPOSED_HEADERS))
            await inner(c, w)

        return cors

    def _preflight(
        self, c: Context, w: Writer, origin: str, methods: list[str], family: Family
    ) -> None:
        w.headers.add("vary", "Origin")
        w.headers.add("vary", "Access-Control-Request-Method")
        w.headers.add("vary", "Access-Control-Request-Headers")
        asked = (c.req.headers.get("access-control-request-method") or "").strip()
        if origin not in self.origins:
            json_error(w, 403, NOT_ALLOWED_ORIGIN)
            return
        if asked not in methods:
            w.headers.set("allow", ", ".join(methods))
            json_error(w, 403, f"{asked[:20]!r} is not a method this URL takes")
            return
        w.headers.set("access-control-allow-origin", origin)
        w.headers.set("access-control-allow-methods", ", ".join(methods))
        w.headers.set("access-control-allow-headers", ", ".join(family.headers))
        w.headers.set("access-control-max-age", str(MAX_AGE_SECONDS))
        w.headers.set("cache-control", "no-store")
        w.empty(204)
