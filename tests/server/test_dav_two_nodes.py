"""WebDAV locks and dead properties live in the catalog: a lock taken through node a
is honoured by node b (two `stowage serve` processes on one PostgreSQL catalog and
one bucket), and b can refresh and release it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.server.test_two_nodes import two_nodes
from tests.support.postgres import Cluster
from tests.support.seaweed import Seaweed

pytestmark = pytest.mark.slow

LOCKINFO = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
    b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
)
PROPPATCH = (
    b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
    b'<Z:tag xmlns:Z="urn:nodes">from a</Z:tag></D:prop></D:set></D:propertyupdate>'
)


def test_a_lock_taken_on_node_a_holds_on_node_b(
    tmp_path: Path, postgres: Cluster, seaweed: Seaweed
) -> None:
    with two_nodes(tmp_path, postgres, seaweed, "dav-locks") as (a, b, _database, _storage):
        auth = httpx.BasicAuth("dav", a.token)
        with (
            httpx.Client(base_url=a.base_url, auth=auth) as on_a,
            httpx.Client(base_url=b.base_url, auth=auth) as on_b,
        ):
            assert on_a.put("/dav/shared.txt", content=b"one").status_code == 201
            taken = on_a.request("LOCK", "/dav/shared.txt", content=LOCKINFO)
            assert taken.status_code == 200, taken.text
            token = taken.headers["lock-token"].strip("<>")
            refused = on_b.put("/dav/shared.txt", content=b"two")
            assert refused.status_code == 423, refused.text
            assert on_b.request("LOCK", "/dav/shared.txt", content=LOCKINFO).status_code == 423
            found = on_b.request("PROPFIND", "/dav/shared.txt", headers={"depth": "0"})
            assert token in found.text
            allowed = on_b.put("/dav/shared.txt", content=b"two", headers={"if": f"(<{token}>)"})
            assert allowed.status_code == 204, allowed.text
            patched = on_a.request(
                "PROPPATCH", "/dav/shared.txt", content=PROPPATCH, headers={"if": f"(<{token}>)"}
            )
            assert patched.status_code == 207 and "200 OK" in patched.text
            seen = on_b.request("PROPFIND", "/dav/shared.txt", headers={"depth": "0"})
            assert ">from a</" in seen.text
            released = on_b.request(
                "UNLOCK", "/dav/shared.txt", headers={"lock-token": f"<{token}>"}
            )
            assert released.status_code == 204
            assert on_a.put("/dav/shared.txt", content=b"three").status_code == 204
            assert on_b.get("/dav/shared.txt").content == b"three"
