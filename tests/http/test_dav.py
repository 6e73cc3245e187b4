"""WebDAV at /dav/ through the app (TestClient): every method's happy path and its
refusals, the If header, locks (also against another token of the same account),
dead properties following a MOVE, and the account's limits (507 over quota, 413
over --max-file-bytes)."""

from __future__ import annotations

import base64
import re
from urllib.parse import unquote

import pytest
from tests.support.fixtures import add_account, app_client, bearer, signed_in_client

from app.config import Config

XML = {"content-type": "application/xml"}
PROPFIND_ALL = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
LOCKINFO = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>tests</D:owner></D:lockinfo>"
)


def propfind_body(*props: str) -> bytes:
    inner = "".join(props)
    head = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:">'
    return f"{head}<D:prop>{inner}</D:prop></D:propfind>".encode()


def proppatch_body(sets: str = "", removes: str = "") -> bytes:
    body = '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:test">'
    if sets:
        body += f"<D:set><D:prop>{sets}</D:prop></D:set>"
    if removes:
        body += f"<D:remove><D:prop>{removes}</D:prop></D:remove>"
    return (body + "</D:propertyupdate>").encode()


def hrefs(text: str) -> list[str]:
    return re.findall(r"<D:href>([^<]*)</D:href>", text)


async def propfind(client, path: str, depth: str = "1", body: bytes = PROPFIND_ALL):
    return await client.request("PROPFIND", path, content=body, headers={"depth": depth, **XML})


async def lock(client, path: str, scope: str = "exclusive", **headers: str):
    body = LOCKINFO.format(scope=scope).encode()
    return await client.request("LOCK", path, content=body, headers={**XML, **headers})


async def test_options_says_class_1_and_2(client):
    r = await client.request("OPTIONS", "/dav")
    assert r.status_code == 200
    assert r.headers.get("dav") == "1, 2"
    assert r.headers.get("ms-author-via") == "DAV"
    assert {"PROPFIND", "LOCK", "MOVE", "COPY", "MKCOL"} <= {
        m.strip() for m in (r.headers.get("allow") or "").split(",")
    }


async def test_sign_in_is_basic_with_a_token_never_the_password(config, owner):
    _, token = owner
    async with app_client(config) as anonymous:
        r = await anonymous.request("PROPFIND", "/dav", headers={"depth": "0"})
        assert r.status_code == 401
        assert r.headers.get("www-authenticate") == 'Basic realm="stowage", charset="UTF-8"'
        assert "API token" in r.text and "stowage tokens add" in r.text
        with_password = base64.b64encode(b"owner:correct horse battery staple").decode()
        r = await anonymous.request(
            "PROPFIND", "/dav", headers={"depth": "0", "authorization": f"Basic {with_password}"}
        )
        assert r.status_code == 401 and "not valid" in r.text
        basic = base64.b64encode(f"anyone:{token}".encode()).decode()
        r = await anonymous.request(
            "PROPFIND", "/dav", headers={"depth": "0", "authorization": f"Basic {basic}"}
        )
        assert r.status_code == 207


async def test_mkcol_put_propfind_get_with_stored_names(client):
    assert (await client.request("MKCOL", "/dav/Photos")).status_code == 201
    assert (await client.request("MKCOL", "/dav/Photos/2026")).status_code == 201
    put = await client.put("/dav/photos/2026/a%20b%C3%A9.txt", content=b"hello dav")
    assert put.status_code == 201
    listing = await propfind(client, "/dav/PHOTOS/2026")
    assert listing.status_code == 207
    assert listing.headers.get("content-type", "").startswith("application/xml")
    text = listing.text
    # Stored names, percent-encoded; a collection ends in /; found ignoring case.
    assert hrefs(text) == ["/dav/Photos/2026/", "/dav/Photos/2026/a%20b%C3%A9.txt"]
    assert "<D:getcontentlength>9</D:getcontentlength>" in text
    assert "<D:collection/>" in text
    got = await client.get("/dav/Photos/2026/a%20b%C3%A9.txt")
    assert got.status_code == 200 and got.content == b"hello dav"
    etag = re.search(r"<D:getetag>([^<]*)</D:getetag>", text)
    assert etag is not None and unquote(etag.group(1)).replace("&quot;", '"') == got.headers.get(
        "etag"
    )
    # The same file through the files API, in its folder.
    files = (await client.get("/api/files")).json()["files"]
    assert [(f["name"], f["path"]) for f in files] == [("a bé.txt", "/Photos/2026/a bé.txt")]
    ranged = await client.get("/dav/Photos/2026/a%20b%C3%A9.txt", headers={"range": "bytes=0-4"})
    assert ranged.status_code == 206 and ranged.content == b"hello"
    head = await client.head("/dav/Photos/2026/a%20b%C3%A9.txt")
    assert head.status_code == 200 and head.headers.get("content-length") == "9"
    folder = await client.get("/dav/Photos")
    assert folder.status_code == 200 and "2026/" in folder.text


async def test_dotfiles_and_dot_folders_are_kept_as_named(client):
    """What a sync tool or a file manager writes: `.gitignore`, macOS's `._name` and
    `.DS_Store`, a `.config` folder; a trailing dot or a name of dots is refused."""
    assert (await client.request("MKCOL", "/dav/.config")).status_code == 201
    for path in ("/dav/.gitignore", "/dav/._photo.jpg", "/dav/.DS_Store", "/dav/.config/.x"):
        assert (await client.put(path, content=b"dot")).status_code == 201, path
        got = await client.get(path)
        assert got.status_code == 200 and got.content == b"dot", path
    listing = await propfind(client, "/dav")
    assert sorted(hrefs(listing.text)) == sorted(
        ["/dav/", "/dav/.config/", "/dav/.DS_Store", "/dav/.gitignore", "/dav/._photo.jpg"]
    )
    files = (await client.get("/api/files")).json()["files"]
    assert sorted(f["path"] for f in files) == sorted(
        ["/.DS_Store", "/._photo.jpg", "/.config/.x", "/.gitignore"]
    )
    for refused in ("/dav/notes.", "/dav/..."):
        r = await client.put(refused, content=b"x")
        assert r.status_code == 400, refused


async def test_propfind_depths_props_and_bad_bodies(client):
    await client.put("/dav/a.txt", content=b"a")
    r = await propfind(client, "/dav", depth="infinity")
    assert r.status_code == 403 and "<D:propfind-finite-depth/>" in r.text
    r = await client.request("PROPFIND", "/dav", headers={"depth": "1"})
    assert r.status_code == 207 and hrefs(r.text) == ["/dav/", "/dav/a.txt"]
    r = await propfind(
        client,
        "/dav/a.txt",
        "0",
        propfind_body(
            "<D:getcontentlength/>", "<D:quota-used-bytes/>", '<Z:nope xmlns:Z="urn:z"/>'
        ),
    )
    assert r.status_code == 207
    assert "<D:getcontentlength>1</D:getcontentlength>" in r.text
    assert "<D:quota-used-bytes>1</D:quota-used-bytes>" in r.text
    assert "HTTP/1.1 404 Not Found" in r.text and "nope" in r.text
    assert (await propfind(client, "/dav", "0", b"<D:propfind")).status_code == 400
    doctype = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><D:propfind xmlns:D="DAV:"/>'
    r = await propfind(client, "/dav", "0", doctype)
    assert r.status_code == 400 and "DOCTYPE" in r.text
    assert (await propfind(client, "/dav/missing", "0")).status_code == 404


async def test_put_replaces_and_refuses_what_it_must(client):
    assert (await client.put("/dav/r.txt", content=b"one")).status_code == 201
    again = await client.put("/dav/R.TXT", content=b"two!")
    assert again.status_code == 204
    files = (await client.get("/api/files")).json()["files"]
    assert [(f["name"], f["size"]) for f in files] == [("r.txt", 4)]
    assert (await client.put("/dav/no/such/x.txt", content=b"x")).status_code == 409
    ranged = await client.put("/dav/r.txt", content=b"x", headers={"content-range": "bytes 0-0/10"})
    assert ranged.status_code == 400
    await client.request("MKCOL", "/dav/f")
    assert (await client.put("/dav/f", content=b"x")).status_code == 405


async def test_mkcol_refusals(client):
    assert (await client.request("MKCOL", "/dav/m")).status_code == 201
    assert (await client.request("MKCOL", "/dav/M")).status_code == 405
    assert (await client.request("MKCOL", "/dav/x/y")).status_code == 409
    assert (await client.request("MKCOL", "/dav/b", content=b"<x/>")).status_code == 415


async def test_delete_a_folder_with_all_it_holds(client):
    await client.request("MKCOL", "/dav/d")
    await client.request("MKCOL", "/dav/d/e")
    await client.put("/dav/d/e/f.txt", content=b"f" * 100)
    assert (await client.delete("/dav/d")).status_code == 204
    assert (await client.get("/api/files")).json()["files"] == []
    assert (await propfind(client, "/dav/d", "0")).status_code == 404
    assert (await client.delete("/dav/d")).status_code == 404
    assert (await client.delete("/dav")).status_code == 403


async def test_copy_and_move_with_overwrite(client):
    await client.request("MKCOL", "/dav/src")
    await client.put("/dav/src/a.txt", content=b"A")
    await client.request("MKCOL", "/dav/src/sub")
    await client.put("/dav/src/sub/b.txt", content=b"BB")
    r = await client.request("COPY", "/dav/src", headers={"destination": "/dav/dst"})
    assert r.status_code == 201
    assert (await client.get("/dav/dst/sub/b.txt")).content == b"BB"
    files = (await client.get("/api/files")).json()["files"]
    assert len({f["id"] for f in files}) == 4  # new blobs, counted
    taken = await client.request(
        "COPY", "/dav/src/a.txt", headers={"destination": "/dav/dst/sub/b.txt", "overwrite": "F"}
    )
    assert taken.status_code == 412
    over = await client.request(
        "COPY",
        "/dav/src/a.txt",
        headers={"destination": "http://127.0.0.1:8000/dav/dst/sub/b.txt"},
    )
    assert over.status_code in (204, 502)  # the host decides: ours or another's
    away = await client.request(
        "COPY", "/dav/src/a.txt", headers={"destination": "http://elsewhere.example/dav/x"}
    )
    assert away.status_code == 502
    moved = await client.request("MOVE", "/dav/src", headers={"destination": "/dav/dst/src2"})
    assert moved.status_code == 201
    assert (await client.get("/dav/dst/src2/sub/b.txt")).content == b"BB"
    assert (await propfind(client, "/dav/src", "0")).status_code == 404
    renamed = await client.request(
        "MOVE", "/dav/dst/src2/a.txt", headers={"destination": "/dav/dst/renamed.txt"}
    )
    assert renamed.status_code == 201
    assert (await client.get("/dav/dst/renamed.txt")).content == b"A"
    inside = await client.request("MOVE", "/dav/dst", headers={"destination": "/dav/dst/in"})
    assert inside.status_code == 403


async def test_dead_properties_follow_move_and_live_ones_are_protected(client):
    await client.put("/dav/p.txt", content=b"p")
    r = await client.request(
        "PROPPATCH", "/dav/p.txt", content=proppatch_body("<Z:colour>blue</Z:colour>"), headers=XML
    )
    assert r.status_code == 207 and "HTTP/1.1 200 OK" in r.text
    await client.request("MOVE", "/dav/p.txt", headers={"destination": "/dav/q.txt"})
    got = await propfind(client, "/dav/q.txt", "0", propfind_body('<Z:colour xmlns:Z="urn:test"/>'))
    assert ">blue</" in got.text and "HTTP/1.1 200 OK" in got.text
    # All or nothing: a live property in the same request fails the whole change.
    refused = await client.request(
        "PROPPATCH",
        "/dav/q.txt",
        content=proppatch_body("<Z:colour>red</Z:colour><D:getetag>x</D:getetag>"),
        headers=XML,
    )
    assert "HTTP/1.1 403 Forbidden" in refused.text
    assert "HTTP/1.1 424 Failed Dependency" in refused.text
    got = await propfind(client, "/dav/q.txt", "0", propfind_body('<Z:colour xmlns:Z="urn:test"/>'))
    assert ">blue</" in got.text
    # A PUT replacing the file keeps them.
    assert (await client.put("/dav/q.txt", content=b"new bytes")).status_code == 204
    got = await propfind(client, "/dav/q.txt", "0", propfind_body('<Z:colour xmlns:Z="urn:test"/>'))
    assert ">blue</" in got.text
    # COPY copies them; a removal removes them.
    await client.request("COPY", "/dav/q.txt", headers={"destination": "/dav/c.txt"})
    got = await propfind(client, "/dav/c.txt", "0", propfind_body('<Z:colour xmlns:Z="urn:test"/>'))
    assert ">blue</" in got.text
    await client.request(
        "PROPPATCH", "/dav/c.txt", content=proppatch_body(removes="<Z:colour/>"), headers=XML
    )
    got = await propfind(client, "/dav/c.txt", "0", propfind_body('<Z:colour xmlns:Z="urn:test"/>'))
    assert "HTTP/1.1 404 Not Found" in got.text


async def test_locks_and_the_if_header(config, client, owner):
    await client.put("/dav/l.txt", content=b"l")
    taken = await lock(client, "/dav/l.txt", timeout="Second-600")
    assert taken.status_code == 200
    token = (taken.headers.get("lock-token") or "").strip("<>")
    assert token.startswith("opaquelocktoken:")
    assert "<D:timeout>Second-600</D:timeout>" in taken.text
    assert (await client.put("/dav/l.txt", content=b"x")).status_code == 423
    assert (await client.delete("/dav/l.txt")).status_code == 423
    # Another token of the same account, without the lock's token: refused too.
    async with app_client(config) as second:
        from app.accounts.store import create_token
        from app.catalog.open import open_catalog

        db = await open_catalog(config)
        try:
            _, other_token = await create_token(db, owner[0].id, "second device")
        finally:
            await db.close()
        r = await second.put("/dav/l.txt", content=b"y", headers=bearer(other_token))
        assert r.status_code == 423 and "lock-token-submitted" in r.text
    etag = (await client.head("/dav/l.txt")).headers.get("etag")
    ok = await client.put("/dav/l.txt", content=b"z", headers={"if": f"(<{token}> [{etag}])"})
    assert ok.status_code == 204
    stale = await client.put("/dav/l.txt", content=b"w", headers={"if": f"(<{token}> [{etag}])"})
    assert stale.status_code == 412  # the etag changed with the bytes
    tagged = await client.put(
        "/dav/l.txt", content=b"t", headers={"if": f"<http://x/dav/l.txt> (<{token}>)"}
    )
    assert tagged.status_code in (204, 412)
    assert (await lock(client, "/dav/l.txt", "shared")).status_code == 423
    refreshed = await client.request(
        "LOCK", "/dav/l.txt", headers={"if": f"(<{token}>)", "timeout": "Second-99999"}
    )
    assert refreshed.status_code == 200 and "Second-3600" in refreshed.text
    assert (
        await client.put("/dav/l.txt", content=b"x", headers={"if": "(<DAV:no-lock>)"})
    ).status_code == 412
    assert (
        await client.put("/dav/l.txt", content=b"x", headers={"if": "(<bad"})
    ).status_code == 400
    wrong = await client.request("UNLOCK", "/dav/other", headers={"lock-token": f"<{token}>"})
    assert wrong.status_code == 409
    unlocked = await client.request("UNLOCK", "/dav/l.txt", headers={"lock-token": f"<{token}>"})
    assert unlocked.status_code == 204
    assert (await client.put("/dav/l.txt", content=b"free")).status_code == 204


async def test_shared_locks_depth_infinity_and_unmapped_urls(client):
    await client.request("MKCOL", "/dav/coll")
    first = await lock(client, "/dav/coll", "shared", depth="infinity")
    second = await lock(client, "/dav/coll", "shared", depth="infinity")
    assert first.status_code == second.status_code == 200
    assert (await lock(client, "/dav/coll", "exclusive")).status_code == 423
    t1 = (first.headers.get("lock-token") or "").strip("<>")
    t2 = (second.headers.get("lock-token") or "").strip("<>")
    # Below a depth-infinity lock, a write needs a token of the locks on it; of
    # shared locks, any one holder's.
    assert (await client.put("/dav/coll/in.txt", content=b"i")).status_code == 423
    r = await client.put("/dav/coll/in.txt", content=b"i", headers={"if": f"(<{t2}>)"})
    assert r.status_code == 201
    for token in (t1, t2):
        await client.request("UNLOCK", "/dav/coll", headers={"lock-token": f"<{token}>"})
    # A lock on an unmapped URL makes an empty file (201).
    made = await lock(client, "/dav/coll/new.txt")
    assert made.status_code == 201
    assert (await client.get("/dav/coll/new.txt")).content == b""
    assert (await lock(client, "/dav/nowhere/new.txt")).status_code == 409


async def test_quota_is_507_and_the_file_limit_413(tmp_path):
    config = Config.load(
        {"data_dir": str(tmp_path / "data"), "default_quota": "1KiB", "max_file_bytes": "2048"},
        environ={},
    )
    _, token = await add_account(config, "owner", admin=False)
    async with signed_in_client(config, token) as client:
        assert (await client.put("/dav/a.bin", content=b"a" * 1000)).status_code == 201
        full = await client.put("/dav/b.bin", content=b"b" * 100)
        assert full.status_code == 507 and "quota" in full.text
        copy = await client.request("COPY", "/dav/a.bin", headers={"destination": "/dav/c.bin"})
        assert copy.status_code == 507
        big = await client.put("/dav/big.bin", content=b"c" * 3000)
        assert big.status_code == 413


async def test_a_refused_copy_or_move_over_a_target_loses_nothing(tmp_path):
    """The target of COPY or MOVE with Overwrite: T goes only once the new thing is in
    place: a copy refused on quota leaves the target as it was, and a folder's copy
    that fails partway leaves no half copy behind."""
    config = Config.load({"data_dir": str(tmp_path / "data"), "default_quota": "2KiB"}, environ={})
    _, token = await add_account(config, "owner", admin=False)
    async with signed_in_client(config, token) as client:
        assert (await client.put("/dav/big.bin", content=b"a" * 1200)).status_code == 201
        assert (await client.put("/dav/keep.txt", content=b"kept")).status_code == 201
        over = {"destination": "/dav/keep.txt", "overwrite": "T"}
        assert (await client.request("COPY", "/dav/big.bin", headers=over)).status_code == 507
        assert (await client.get("/dav/keep.txt")).content == b"kept"
        # A folder over a file, and over a folder: refused partway, nothing lost or left.
        assert (await client.request("MKCOL", "/dav/src")).status_code == 201
        assert (await client.put("/dav/src/small.txt", content=b"s")).status_code == 201
        assert (await client.put("/dav/src/z.bin", content=b"z" * 700)).status_code == 201
        assert (await client.request("MKCOL", "/dav/dst")).status_code == 201
        assert (await client.put("/dav/dst/old.txt", content=b"old")).status_code == 201
        for target in ("/dav/keep.txt", "/dav/dst"):
            moved = {"destination": target, "overwrite": "T"}
            r = await client.request("COPY", "/dav/src", headers=moved)
            assert r.status_code == 507
        assert (await client.get("/dav/keep.txt")).content == b"kept"
        assert (await client.get("/dav/dst/old.txt")).content == b"old"
        listing = await client.request("PROPFIND", "/dav/", headers={"depth": "1"})
        assert "stowage-" not in listing.text
        # A move over a folder replaces it once the move is done.
        r = await client.request("MOVE", "/dav/src", headers={"destination": "/dav/dst"})
        assert r.status_code == 204
        assert (await client.get("/dav/dst/small.txt")).content == b"s"
        assert (await client.get("/dav/dst/old.txt")).status_code == 404
        assert (await client.get("/dav/src/small.txt")).status_code == 404


@pytest.mark.parametrize("depth", ["0", "1"])
async def test_another_account_sees_only_its_own_tree(config, client, depth):
    await client.request("MKCOL", "/dav/mine")
    _, other = await add_account(config, "other")
    async with app_client(config, headers=bearer(other)) as theirs:
        r = await propfind(theirs, "/dav", depth)
        assert hrefs(r.text) == ["/dav/"]
        assert (await propfind(theirs, "/dav/mine", "0")).status_code == 404
        assert (await theirs.delete("/dav/mine")).status_code == 404
    assert (await propfind(client, "/dav/mine", "0")).status_code == 207


async def test_propname_and_a_body_over_the_cap(client):
    await client.put("/dav/n.txt", content=b"n")
    body = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
    r = await propfind(client, "/dav/n.txt", "0", body)
    assert r.status_code == 207 and "<D:getetag/>" in r.text and "<D:resourcetype/>" in r.text
    huge = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:">' + b" " * (1024 * 1024 + 1)
    assert (await propfind(client, "/dav", "0", huge)).status_code == 413


async def test_expired_locks_are_ignored_and_swept(config, owner):
    from app.catalog.open import open_catalog
    from app.webdav.locks import DavLocks

    now = [1000.0]
    db = await open_catalog(config)
    try:
        locks = DavLocks(db, clock=lambda: now[0])
        account = owner[0].id
        held = await locks.take(
            account, "a", "/dav/a", depth="infinity", scope="exclusive", lock_owner="",
            seconds=60,
        )  # fmt: skip
        assert [x.token for x in await locks.covering(account, "a/b")] == [held.token]
        now[0] += 61
        assert await locks.covering(account, "a/b") == []
        assert await locks.refresh(account, held.token, 60) is None
        again = await locks.take(
            account, "a", "/dav/a", depth="0", scope="exclusive", lock_owner="", seconds=60
        )
        assert again.token != held.token
        rows = await db.fetch_all("SELECT token FROM dav_locks")
        assert [r[0] for r in rows] == [again.token]  # the expired one was swept
    finally:
        await db.close()


# Fixes after the audit of issue 27 -------------------------------------------------------


async def tree_of(client, path: str = "/dav/") -> list[str]:
    r = await client.request("PROPFIND", path, headers={"depth": "1"})
    return hrefs(r.text)


@pytest.mark.parametrize("overwrite", ["T", None])
async def test_copy_or_move_onto_an_ancestor_of_the_source_is_refused(client, overwrite):
    """Apache's rule (403): a destination that holds the source would be removed with
    the source in it; nothing changes."""
    for folder in ("/dav/qq", "/dav/qq/cc"):
        assert (await client.request("MKCOL", folder)).status_code == 201
    await client.put("/dav/qq/cc/f.txt", content=b"f")
    await client.put("/dav/qq/other.txt", content=b"o")
    before = await tree_of(client, "/dav/qq/")
    extra = {} if overwrite is None else {"overwrite": overwrite}
    for method, source, destination in (
        ("COPY", "/dav/qq/cc/", "/dav/qq/"),
        ("MOVE", "/dav/qq/cc/", "/dav/qq/"),
        ("MOVE", "/dav/qq/cc/f.txt", "/dav/qq"),
        ("COPY", "/dav/qq/cc/f.txt", "/dav/QQ/cc"),
        ("MOVE", "/dav/qq/cc", "http://127.0.0.1:8000/dav/QQ/"),
    ):
        r = await client.request(method, source, headers={"destination": destination, **extra})
        assert r.status_code in (403, 502), (method, source, destination, r.status_code)
        if r.status_code == 403:
            assert "holds the source" in r.text
    assert await tree_of(client, "/dav/qq/") == before
    assert (await client.get("/dav/qq/cc/f.txt")).content == b"f"
    assert (await client.get("/dav/qq/other.txt")).content == b"o"


async def test_move_of_a_file_takes_depth_0_but_a_folder_does_not(client):
    await client.put("/dav/m.txt", content=b"m")
    r = await client.request(
        "MOVE", "/dav/m.txt", headers={"destination": "/dav/n.txt", "depth": "0"}
    )
    assert r.status_code == 201
    assert (await client.get("/dav/n.txt")).content == b"m"
    await client.request("MKCOL", "/dav/mf")
    r = await client.request("MOVE", "/dav/mf", headers={"destination": "/dav/mg", "depth": "0"})
    assert r.status_code == 400


async def test_http_preconditions_on_every_change(client):
    """RFC 9110 §13.1: If-Match, If-None-Match and If-Unmodified-Since are evaluated
    with the ETag and Last-Modified a GET answers; 412 when false, nothing changed."""
    assert (await client.put("/dav/cond.txt", content=b"one")).status_code == 201
    etag = (await client.head("/dav/cond.txt")).headers.get("etag")
    put = client.put
    # PUT: If-None-Match: * only creates; If-Match must name the current ETag.
    assert (
        await put("/dav/cond.txt", content=b"x", headers={"if-none-match": "*"})
    ).status_code == 412
    assert (
        await put("/dav/cond.txt", content=b"x", headers={"if-match": '"0000"'})
    ).status_code == 412
    assert (await put("/dav/new.txt", content=b"n", headers={"if-match": "*"})).status_code == 412
    assert (await client.get("/dav/new.txt")).status_code == 404
    old = {"if-unmodified-since": "Sun, 06 Nov 1994 08:49:37 GMT"}
    assert (await put("/dav/cond.txt", content=b"x", headers=old)).status_code == 412
    assert (await client.get("/dav/cond.txt")).content == b"one"
    assert (
        await put("/dav/new.txt", content=b"n", headers={"if-none-match": "*"})
    ).status_code == 201
    r = await put("/dav/cond.txt", content=b"two", headers={"if-match": etag})
    assert r.status_code == 204
    etag = r.headers.get("etag")
    # DELETE, PROPPATCH, COPY and MOVE (on their source), LOCK on what exists.
    stale = {"if-match": '"0000"'}
    assert (await client.delete("/dav/cond.txt", headers=stale)).status_code == 412
    r = await client.request(
        "PROPPATCH",
        "/dav/cond.txt",
        content=proppatch_body("<Z:a>1</Z:a>"),
        headers={**XML, **stale},
    )
    assert r.status_code == 412
    for method in ("COPY", "MOVE"):
        r = await client.request(
            method, "/dav/cond.txt", headers={"destination": "/dav/c2.txt", **stale}
        )
        assert r.status_code == 412
    assert (await lock(client, "/dav/cond.txt", **stale)).status_code == 412
    assert (await client.request("MKCOL", "/dav/nf", headers={"if-match": "*"})).status_code == 412
    assert (await client.get("/dav/cond.txt")).content == b"two"
    assert (await client.get("/dav/c2.txt")).status_code == 404
    # A folder has no ETag: `If-Match: *` holds on it, any tag fails.
    await client.request("MKCOL", "/dav/fo")
    assert (await client.delete("/dav/fo", headers=stale)).status_code == 412
    assert (await client.delete("/dav/fo", headers={"if-none-match": "*"})).status_code == 412
    assert (await client.delete("/dav/fo", headers={"if-match": "*"})).status_code == 204
    assert (await client.delete("/dav/cond.txt", headers={"if-match": etag})).status_code == 204


async def test_lock_owner_and_lock_counts_are_capped(config, client, owner):
    from app.webdav import locks as locks_module

    big_owner = "<D:owner>" + "x" * 5000 + "</D:owner>"
    body = LOCKINFO.format(scope="shared").replace("<D:owner>tests</D:owner>", big_owner)
    r = await client.request("LOCK", "/dav/l.txt", content=body.encode(), headers=XML)
    assert r.status_code == 400 and "owner" in r.text
    await client.put("/dav/l.txt", content=b"l")
    for _ in range(locks_module.MOST_LOCKS_PER_PATH):
        assert (await lock(client, "/dav/l.txt", "shared")).status_code == 200
    r = await lock(client, "/dav/l.txt", "shared")
    assert r.status_code == 507 and "locks" in r.text
    found = await propfind(client, "/dav/l.txt", "0", propfind_body("<D:lockdiscovery/>"))
    assert found.text.count("<D:activelock>") == locks_module.MOST_LOCKS_PER_PATH


async def test_locks_per_account_are_capped(config, owner, monkeypatch):
    from app.catalog.open import open_catalog
    from app.webdav import locks as locks_module
    from app.webdav.locks import DavLocks, TooManyLocks

    monkeypatch.setattr(locks_module, "MOST_LOCKS_PER_ACCOUNT", 3)
    db = await open_catalog(config)
    try:
        locks = DavLocks(db)
        account = owner[0].id
        for name in ("a", "b", "c"):
            await locks.take(
                account, name, f"/dav/{name}", depth="0", scope="exclusive", lock_owner="",
                seconds=60,
            )  # fmt: skip
        with pytest.raises(TooManyLocks, match="3 locks"):
            await locks.take(
                account, "d", "/dav/d", depth="0", scope="exclusive", lock_owner="", seconds=60
            )
    finally:
        await db.close()


async def test_dead_property_values_and_totals_are_capped(client):
    from app.webdav.properties import MOST_TOTAL_CHARS, MOST_VALUE_CHARS

    await client.request("MKCOL", "/dav/kc")
    big = "<Z:big>" + "b" * MOST_VALUE_CHARS + "</Z:big>"
    r = await client.request(
        "PROPPATCH", "/dav/kc", content=proppatch_body(big + "<Z:ok>1</Z:ok>"), headers=XML
    )
    assert r.status_code == 207
    assert "507 Insufficient Storage" in r.text and "424 Failed Dependency" in r.text
    assert "at most" in r.text  # in words
    r = await propfind(
        client,
        "/dav/kc",
        "0",
        propfind_body('<Z:big xmlns:Z="urn:test"/>', '<Z:ok xmlns:Z="urn:test"/>'),
    )
    assert "bbbb" not in r.text and "404 Not Found" in r.text
    # Many values that are each under the cap, but not all together.
    each = MOST_VALUE_CHARS // 2
    count = MOST_TOTAL_CHARS // each + 1
    sets = "".join(f"<Z:p{n}>" + "v" * each + f"</Z:p{n}>" for n in range(count))
    r = await client.request("PROPPATCH", "/dav/kc", content=proppatch_body(sets), headers=XML)
    assert r.status_code == 207 and "507 Insufficient Storage" in r.text
    r = await propfind(client, "/dav/kc", "0", propfind_body('<Z:p0 xmlns:Z="urn:test"/>'))
    assert "vvvv" not in r.text


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-le"])
async def test_a_doctype_is_refused_whatever_the_encoding(client, encoding):
    await client.request("MKCOL", "/dav/kd")
    declared = "utf-16" if encoding.startswith("utf-16") else encoding
    text = (
        f'<?xml version="1.0" encoding="{declared}"?>'
        '<!DOCTYPE D:propertyupdate [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;">]>'
        '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:test">'
        "<D:set><D:prop><Z:e>&b;</Z:e></D:prop></D:set></D:propertyupdate>"
    )
    body = text.encode(encoding)
    if encoding == "utf-16-le":
        body = b"\xff\xfe" + body
    r = await client.request("PROPPATCH", "/dav/kd", content=body, headers=XML)
    assert r.status_code == 400 and "DOCTYPE" in r.text
    r = await propfind(client, "/dav/kd", "0", propfind_body('<Z:e xmlns:Z="urn:test"/>'))
    assert "aaaa" not in r.text


async def test_a_folder_over_the_listing_cap_is_refused_in_words_not_listed_in_part(
    client, monkeypatch
):
    """A sync client takes a file missing from a listing for a deleted one."""
    from app.webdav import tree

    monkeypatch.setattr(tree, "MOST_FILES_LISTED", 3)
    assert (await client.request("MKCOL", "/dav/many")).status_code == 201
    for n in range(4):
        assert (await client.put(f"/dav/many/{n}.txt", content=b"x")).status_code == 201
    listed = await client.request("PROPFIND", "/dav/many/", headers={"depth": "1"})
    assert listed.status_code == 507 and "more than 3 files" in listed.text
    assert (await client.get("/dav/many/")).status_code == 507
    alone = await client.request("PROPFIND", "/dav/many/", headers={"depth": "0"})
    assert alone.status_code == 207
