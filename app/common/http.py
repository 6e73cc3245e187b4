"""What every JSON endpoint answers the same way."""

import unicodedata
from typing import Literal
from urllib.parse import quote

from stario import Context, Handler, Writer


def path_param(c: Context, name: str) -> str:
    """A route capture; stario's Match declares `params` only in `__slots__`."""
    return str(c.match.params[name])  # type: ignore[attr-defined]


def json_error(w: Writer, status: int, message: str, *, close: bool = False) -> None:
    """`{"error": message}`; `close` drops the connection so an unread body is not drained."""
    if close:
        w.headers.set("connection", "close")
    w.json({"error": message}, status)


def json_errors(inner: Handler) -> Handler:
    """Turn an unexpected failure into a JSON 500 instead of a bare text one."""

    async def handler(c: Context, w: Writer) -> None:
        try:
            await inner(c, w)
        except Exception as exc:
            if w.started:
                raise
            c.span.exception(exc)
            json_error(w, 500, "the server failed to handle this request", close=True)

    return handler


# RFC 8187 attr-char: what may stand unencoded in `filename*`.
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"


def _ascii_fallback(name: str) -> str:
    """The `filename` for agents without RFC 8187: accents dropped (é -> e), every other
    non-printable-ASCII character and `%` (read as an escape by some, RFC 6266 App. D)
    replaced by `_`, then quoted-string escaped."""
    plain = "".join(
        char for char in unicodedata.normalize("NFKD", name) if not unicodedata.combining(char)
    )
    fallback = "".join(char if " " <= char <= "~" and char != "%" else "_" for char in plain)
    fallback = fallback.strip() or "download"
    return fallback.replace("\\", "\\\\").replace('"', '\\"')


def content_disposition(kind: Literal["inline", "attachment"], name: str) -> str:
    """RFC 6266: an ASCII `filename` fallback plus the exact name in `filename*`
    (RFC 8187, UTF-8, percent-encoded). Whatever `name` holds, the value is printable
    ASCII: control characters come out as `_` or `%0D`-style escapes, never raw."""
    encoded = quote(name, safe=_ATTR_CHAR_SAFE) or "download"
    return f"{kind}; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{encoded}"
