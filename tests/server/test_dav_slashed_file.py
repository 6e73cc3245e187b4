"""A file is not at its path written with a trailing slash (RFC 3986: `/dav/a/` and
`/dav/a` are two resources; Apache's mod_dav answers 404). The slash never reaches
Stario's router (app/server/peers.py `_unslash` makes it an empty query), so this is
only seen on a real server; one keep-alive connection shows the mark does not leak
into the next request."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from tests.support.fixtures import RunningServer


def test_a_file_is_not_at_its_path_with_a_trailing_slash(server: RunningServer) -> None:
    where = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    auth = {"authorization": f"Bearer {server.token}"}

    def ask(method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, bytes]:
        connection.request(method, path, body=body, headers={**auth, **headers})
        answer = connection.getresponse()
        return answer.status, answer.read()

    try:
        assert ask("MKCOL", "/dav/d/")[0] == 201
        assert ask("PUT", "/dav/d/f.txt", b"kept")[0] == 201
        for method in ("GET", "DELETE", "MOVE", "COPY"):
            status, _ = ask(method, "/dav/d/f.txt/", destination="/dav/d/g.txt")
            assert status == 404, method
        update = (
            b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><Z:a xmlns:Z="urn:z">1</Z:a>'
            b"</D:prop></D:set></D:propertyupdate>"
        )
        assert ask("PROPPATCH", "/dav/d/f.txt/", update)[0] == 404
        assert ask("PROPFIND", "/dav/d/f.txt/", depth="0")[0] == 404
        status, words = ask("PUT", "/dav/d/f.txt/", b"lost")
        assert status == 409 and b"names a folder" in words
        assert ask("PUT", "/dav/d/new.txt/", b"new")[0] == 409
        # The same paths without the slash, on the same connection: as ever.
        assert ask("GET", "/dav/d/f.txt") == (200, b"kept")
        assert ask("PROPFIND", "/dav/d/", depth="1")[0] == 207
        assert ask("GET", "/dav/d/g.txt")[0] == 404
        assert ask("DELETE", "/dav/d/f.txt")[0] == 204
    finally:
        connection.close()
