"""Commands from another site are refused: Stario's `same_origin()` rule, answered
in JSON on the API and file routes (Stario's own middleware answers in plain text)."""

from __future__ import annotations

from stario import Context, Handler, Writer

from app.common.http import json_error, speaks_json

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SITES_OK = frozenset({"same-origin", "none"})
# In a request's state: from a listed origin with a token (set by app/server/cors.py).
ALLOWED_CROSS_ORIGIN = "stowage.cors_allowed"
CROSS_ORIGIN = "cross-origin request refused: send it from this site's own pages"


def _authority(value: str) -> str:
    """`host[:port]`, lowercased, default ports dropped (as stario.http.middleware)."""
    value = value.strip()
    if "://" in value:
        value = value.split("://", 1)[1]
    authority = value.split("/", 1)[0].rsplit("@", 1)[-1].lower()
    if authority.endswith(":80") or authority.endswith(":443"):
        authority = authority.rsplit(":", 1)[0]
    return authority


def is_cross_origin(c: Context) -> bool:
    """The rule of `stario.http.same_origin()` (5.1.1): on a state-changing method,
    `Sec-Fetch-Site` must be same-origin or none; without it, an `Origin` must match
    `Host`; a request with neither (curl, scripts) passes."""
    if c.req.method.upper() in SAFE_METHODS:
        return False
    origin = c.req.headers.get("origin")
    if origin is None and "sec-fetch-site" not in c.req.headers:
        return False
    return from_another_origin(c, origin or "null")


def from_another_origin(c: Context, origin: str) -> bool:
    """A browser's request that is not from this server's own pages: `Sec-Fetch-Site`
    when the browser sends it, else `origin` (its `Origin` header) against `Host`."""
    fetch_site = c.req.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.lower() not in SITES_OK
    host = c.req.headers.get("host") or ""
    return origin.strip() == "null" or _authority(origin) != _authority(host)


def same_origin(inner: Handler) -> Handler:
    async def check_origin(c: Context, w: Writer) -> None:
        # A listed origin's request with a token (app/server/cors.py): no cookie acts.
        if not is_cross_origin(c) or c.state.get(ALLOWED_CROSS_ORIGIN):
            await inner(c, w)
        elif speaks_json(c.req.path):
            json_error(w, 403, CROSS_ORIGIN)
        else:
            w.text(f"403 Forbidden: {CROSS_ORIGIN}\n", 403)

    return check_origin
