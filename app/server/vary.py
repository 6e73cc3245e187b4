"""`Vary: Accept-Encoding` on every answer Stario may compress.

Stario 5.1.1 compresses a body it writes itself (zstd, br or gzip, when the client
offers one, the type is compressible and the body is 512 bytes or more, or streams)
and only then adds `vary: accept-encoding` (measured): a small JSON answer, or one to
a client that offered no encoding, went out without it, so a cache could hand the
identity copy to a client that asked for zstd, or the reverse. Which answers Stario
will compress is known only once the handler has written, after the head is gone; so
`vary_on_encoding` puts the field on every answer up front. Stario's own merge sees
the field and adds no second line (measured). An answer with a Content-Length of its
own (a download, a ZIP) is never compressed: it takes the field off again
(`app.common.http.never_compressed`), keeping any other field name (`Origin`).
"""

from stario import Context, Handler, Writer


def vary_on_encoding(inner: Handler) -> Handler:
    """Middleware: `Vary: Accept-Encoding` added (never set: another field such as
    `Origin` stays) before the handler runs."""

    async def handler(c: Context, w: Writer) -> None:
        w.headers.add("vary", "Accept-Encoding")
        await inner(c, w)

    return handler
