"""What every JSON endpoint answers the same way."""

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


def content_disposition(kind: str, name: str) -> str:
    """RFC 6266: an ASCII `filename` fallback plus the exact name in `filename*`.

    `name` is already a display name (no control characters), so neither part can
    break out of the header."""
    fallback = "".join(char if " " <= char <= "~" else "_" for char in name).strip() or "download"
    fallback = fallback.replace("\\", "\\\\").replace('"', '\\"')
    encoded = quote(name, safe=_ATTR_CHAR_SAFE)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
