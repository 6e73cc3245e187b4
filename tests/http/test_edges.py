"""The small edges (issue 10, item 5) through the production bootstrap: the Host
allow-list, number parameters, JSON refusals on the API and file routes, and the live
stream's keep-alive and reconnect."""

import asyncio
from urllib.parse import quote, urlencode

import pytest
from tests.support.fixtures import PASSWORD, add_account, app_client, bearer, stored_blobs

import app.common.livescreen as livescreen
from app.access.hosts import AllowedHosts, split_host
from app.config import Config, ConfigError

IDENTITY = {"accept-encoding": "identity"}
REBOUND = {"host": "evil.example"}


# --- Host allow-list ----------------------------------------------------------------


def test_allowed_hosts_default_to_the_listen_address_localhost_and_public_url():
    assert Config.load({}, environ={}).allowed_hosts == ("127.0.0.1:8000", "localhost:8000")
    config = Config.load({"port": "9000", "public_url": "https://Files.Example.org"}, environ={})
    assert config.allowed_hosts == ("127.0.0.1:9000", "localhost:9000", "files.example.org")
    assert Config.load({"host": "::1"}, environ={}).allowed_hosts[0] == "[::1]:8000"
    given = Config.load({"allowed_hosts": "a.example, B.example:81"}, environ={})
    assert given.allowed_hosts == ("a.example", "b.example:81")


@pytest.mark.parametrize("value", ["", " , ", "a b", "a:x", "a/b", "u@a", "a:"])
def test_bad_allowed_hosts_name_the_setting(value):
    with pytest.raises(ConfigError, match="--allowed-hosts"):
        Config.load({"allowed_hosts": value}, environ={})


def test_host_matching_rules():
    hosts = AllowedHosts(("127.0.0.1:8000", "files.example.org", "[::1]:8000", "plain:80"))
    assert hosts.allows("127.0.0.1:8000") and hosts.allows("127.0.0.1:8000".upper())
    assert not hosts.allows("127.0.0.1:8001") and not hosts.allows("127.0.0.1")
    # A name without a port matches any port; a Host without a port is port 80/443.
    assert hosts.allows("files.example.org") and hosts.allows("files.example.org:8443")
    assert hosts.allows("files.example.org.") and hosts.allows("plain")
    assert hosts.allows("[::1]:8000") and not hosts.allows("[::1]:9")
    for hostile in ("evil.example", "evil.example:8000", "", None, "a:b:c", "[::1", "x:99999x"):
        assert not hosts.allows(hostile), hostile
    assert AllowedHosts(("*",)).allows("anything.example")
    assert split_host("[::1]:80") == ("[::1]", "80") and split_host("h:") is None


async def test_a_rebound_host_is_refused_before_anything_runs(client, config):
    # DNS rebinding: a page on evil.example that resolves to 127.0.0.1 sends our
    # session cookie or token along; the Host gives it away.
    listed = await client.get("/api/files", headers=REBOUND)
    assert listed.status_code == 421 and "host" in listed.json()["error"]
    stored = await client.post("/uploads?name=a.txt", content=b"a", headers=REBOUND)
    assert stored.status_code == 421 and "error" in stored.json()
    assert stored_blobs(config) == []
    assert (await client.put("/uploads/a.txt", content=b"a", headers=REBOUND)).status_code == 421
    assert (await client.get("/files/AAAAAAAAAAAAAAAAAAAAAA", headers=REBOUND)).json()["error"]
    page = await client.get("/", headers=REBOUND)
    assert page.status_code == 421 and page.headers.get("content-type", "").startswith("text/plain")
    assert "Misdirected" in page.text and "<" not in page.text
    # Before the gate, too: an anonymous request learns nothing more.
    assert (await client.get("/live", headers={**REBOUND, "authorization": ""})).status_code == 421
    assert (await client.get("/login", headers=REBOUND)).status_code == 421
    # The server's own names pass.
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST:8000"):
        assert (await client.get("/api/files", headers={"host": host})).status_code == 200


async def test_star_allows_any_host(tmp_path):
    config = Config.load({"data_dir": str(tmp_path), "allowed_hosts": "*"}, environ={})
    _, token = await add_account(config)
    async with app_client(config, headers=bearer(token)) as c:
        assert (await c.get("/api/files", headers=REBOUND)).status_code == 200


# --- number parameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "offset=" + "9" * 4_301,
        "offset=" + "1" * 20,
        "limit=%C2%B2",  # ² passes str.isdigit()
        "limit=%D9%A1",  # Arabic-Indic one, too
        "limit=10001",
        "limit=-1",
        "limit=",
        "offset=1e3",
        "limit= 5",
    ],
)
async def test_bad_numbers_are_400_in_words(client, query):
    r = await client.get(f"/api/files?{query}")
    assert r.status_code == 400
    assert "limit must be a whole number" in r.json()["error"]


async def test_good_numbers_page_the_list(client):
    for name in ("a", "b", "c"):
        await client.put(f"/uploads/{name}.txt", content=name.encode())
    r = await client.get("/api/files?limit=1&offset=1")
    assert [f["name"] for f in r.json()["files"]] == ["b.txt"]
    assert (await client.get("/api/files?limit=0")).json() == {"files": []}
    assert (await client.get("/api/files?offset=" + "9" * 15)).json() == {"files": []}


async def test_page_numbers_never_fail(client):
    for page in ("9" * 4_301, "%C2%B2", "-3", "0"):
        r = await client.get(f"/?page={page}")
        assert r.status_code == 200 and "No files yet" in r.text
        async with client.stream("GET", f"/live?page={page}", headers=IDENTITY) as live:
            assert live.status_code == 200


# --- refusals on the API and file routes are JSON -------------------------------------


async def test_wrong_method_is_json_405_with_allow(client):
    r = await client.delete("/api/files")
    assert r.status_code == 405 and r.headers.get("allow", "") == "GET"
    assert "DELETE is not allowed" in r.json()["error"]
    r = await client.post("/files/AAAAAAAAAAAAAAAAAAAAAA")
    assert r.status_code == 405 and "GET" in r.headers.get("allow", "") and r.json()["error"]
    r = await client.get("/uploads")
    assert r.status_code == 405 and "POST" in r.headers.get("allow", "") and r.json()["error"]


async def test_unknown_api_path_is_json_404(client):
    for path in ("/api/nothing", "/files/a/b", "/uploads/a/b"):
        r = await client.get(path)
        assert r.status_code == 404 and r.json() == {"error": f"nothing here: {path}"}


async def test_cross_origin_refusal_is_json(client, config):
    for headers in ({"sec-fetch-site": "cross-site"}, {"origin": "http://evil.example"}):
        r = await client.post("/uploads?name=a.txt", content=b"a", headers=headers)
        assert r.status_code == 403 and "cross-origin" in r.json()["error"]
    assert stored_blobs(config) == []
    # Same origin, and scripts that send no Origin at all, pass.
    r = await client.post(
        "/uploads?name=a.txt", content=b"a", headers={"origin": config.public_url}
    )
    assert r.status_code == 201


async def test_put_without_a_name_is_the_json_400(client, config):
    # Where `curl -L -T - http://host/uploads/` lands after Stario's 308.
    r = await client.put("/uploads", content=b"no name")
    assert r.status_code == 400 and r.json()["error"].startswith("name the file")
    assert stored_blobs(config) == []
    # Named as a POST would be, it stores.
    r = await client.put("/uploads?name=n.txt", content=b"named")
    assert r.status_code == 201 and r.json()["files"][0]["name"] == "n.txt"


# --- the live stream --------------------------------------------------------------------


async def test_an_idle_stream_sends_keep_alive_comments(client, monkeypatch):
    assert livescreen.KEEPALIVE_SECONDS <= 20
    monkeypatch.setattr(livescreen, "KEEPALIVE_SECONDS", 0.05)
    async with client.stream("GET", "/live", headers=IDENTITY) as live:
        seen = b""
        async with asyncio.timeout(5):
            async for chunk in live.iter_bytes():
                seen += chunk
                if seen.count(b": keep-alive\n\n") >= 3:
                    break
    # ... and an event that comes while it idles is still delivered.
    async with client.stream("GET", "/live", headers=IDENTITY) as live:
        events = live.iter_events()
        async with asyncio.timeout(5):
            while "No files yet" not in (await anext(events))["data"]:
                pass
            await asyncio.sleep(0.2)  # several keep-alives go out
            await client.put("/uploads/late.txt", content=b"late")
            while "late.txt" not in (await anext(events)).get("data", ""):
                pass


async def _first_events(client, headers=None, query="") -> list[dict[str, str]]:
    """What a fresh stream sends before it goes quiet."""
    got: list[dict[str, str]] = []
    async with client.stream("GET", f"/live{query}", headers={**IDENTITY, **(headers or {})}) as s:
        events = s.iter_events()
        try:
            async with asyncio.timeout(0.5):
                async for event in events:
                    got.append(event)
        except TimeoutError:
            pass
    return got


async def test_a_reconnect_repaints_only_what_changed(client):
    await client.put("/uploads/a.txt", content=b"a")
    first = await _first_events(client)
    assert any('id="files"' in e.get("data", "") for e in first)
    version = first[0]["id"]
    assert version and all(e.get("id") in (None, "", version) for e in first)

    # Datastar reconnects with Last-Event-ID: nothing changed, so no list is sent.
    again = await _first_events(client, {"last-event-id": version})
    assert not any('id="files"' in e.get("data", "") for e in again)
    assert again[0]["id"] == version and '"_offline":false' in again[0]["data"]

    # The page hands its own version to the stream, so the first connect skips too.
    page = (await client.get("/")).text.replace("&amp;", "&")
    assert f"seen={version}" in page
    assert not any(
        'id="files"' in e.get("data", "")
        for e in await _first_events(client, query=f"?page=1&seen={version}")
    )

    # Once something changed, the reconnect repaints.
    await client.put("/uploads/b.txt", content=b"b")
    changed = await _first_events(client, {"last-event-id": version})
    painted = [e["data"] for e in changed if 'id="files"' in e.get("data", "")]
    assert painted and "b.txt" in painted[0]
    assert changed[0]["id"] != version


async def test_a_name_with_a_control_character_comes_by_the_query(client, config):
    """Stario refuses such a path before routing (the real server's answer, in JSON,
    is in tests/unit/test_early_answers.py; this TestClient drives Stario's bare protocol
    and sees its plain text). The name can come by ?name=."""
    r = await client.put("/uploads/a%0Db.txt", content=b"x")
    assert r.status_code == 400
    assert stored_blobs(config) == []
    r = await client.put("/uploads?name=a%0Db.txt", content=b"x")
    assert r.status_code == 201 and r.json()["files"][0]["name"] == "a b.txt"


# --- text that no database, header or page can hold ---------------------------------------

# A lone UTF-16 surrogate, as JSON writes it: Python's decoder takes it and yields a
# string that SQLite, headers and pages fail to encode.
LONE = "\\ud800"
JSON = {"content-type": "application/json"}
FORM_TYPE = "application/x-www-form-urlencoded"


async def test_a_lone_surrogate_in_json_is_a_400_in_words_everywhere(client, anonymous, config):
    stored = (await client.put("/uploads/kept.txt", content=b"kept")).json()["files"][0]
    made = await client.post(f"/api/files/{stored['id']}/shares", json={"password": "p" * 12})
    share = made.json()["share"]["url"]
    for path, body in [
        ("/api/tokens", f'{{"label": "{LONE}"}}'),
        ("/api/tokens", f'{{"{LONE}": "a key"}}'),
        ("/api/archives", f'{{"ids": ["{LONE}"]}}'),
        ("/api/files/delete", f'{{"ids": ["{LONE}"]}}'),
        ("/api/requests", f'{{"label": "{LONE}"}}'),
        ("/uploads", f'{{"files": [{{"name": "{LONE}", "contents": "aGk="}}]}}'),
    ]:
        r = await client.post(path, content=body.encode(), headers=JSON)
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert "lone UTF-16 surrogate" in r.json()["error"], path
    # Raw UTF-8 of a surrogate is no better (Python's decoder passes it through).
    r = await client.post("/api/tokens", content=b'{"label": "\xed\xa0\x80"}', headers=JSON)
    assert r.status_code == 400 and "surrogate" in r.json()["error"]
    # The pages that take JSON bodies answer with their page, the reason on it.
    for path, body in [
        ("/login", f'{{"name": "{LONE}", "password": "x"}}'),
        (share, f'{{"password": "{LONE}"}}'),
    ]:
        r = await anonymous.post(path, content=body.encode(), headers=JSON)
        assert r.status_code == 400, (path, r.status_code, r.text[:200])
        assert "lone UTF-16 surrogate" in r.text, path
    # The list's search from a tab's signals: a bad one is ignored, as bad JSON is.
    r = await client.get(f'/selection?datastar={{"listQ":"{LONE}"}}')
    assert r.status_code == 200
    # A pair is one character, and fine; nothing stored was lost.
    r = await client.post("/api/tokens", content=b'{"label": "\\ud83d\\ude00"}', headers=JSON)
    assert r.status_code == 201 and r.json()["token"]["label"] == "\U0001f600"
    assert [f["name"] for f in (await client.get("/api/files")).json()["files"]] == ["kept.txt"]


@pytest.mark.parametrize("target", ["/a\r\nX-Injected: 1", "/\n", "/a\tb", "/\x7f"])
async def test_control_characters_in_next_are_a_400_in_words(client, anonymous, target):
    """`next` (where to go back to) ends up in `Location`, where CR/LF would split the
    header: Stario raises, which was a 500."""
    words = "must not contain control characters"
    r = await client.get(f"/login?next={quote(target)}", follow_redirects=False)
    assert r.status_code == 400 and words in r.text
    form = urlencode({"name": "owner", "password": PASSWORD, "next": target})
    r = await anonymous.post("/login", content=form.encode(), headers={"content-type": FORM_TYPE})
    assert r.status_code == 400 and words in r.text
    assert "set-cookie" not in r.headers  # not signed in on the way
    r = await client.post(
        "/view", content=urlencode({"view": "grid", "next": target}).encode(),
        headers={"content-type": FORM_TYPE}, follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 400 and words in r.text
    assert "set-cookie" not in r.headers


async def test_a_backslash_in_next_goes_home(client):
    """Stario refuses a backslash in `Location` too: such a `next` is not followed."""
    r = await client.post(
        "/view", content=b"view=grid&next=/a%5Cb", headers={"content-type": FORM_TYPE},
        follow_redirects=False,
    )  # fmt: skip
    assert (r.status_code, r.headers.get("location")) == (303, "/")


async def test_secrets_that_are_not_ascii_are_wrong_not_a_500(config):
    """`hmac.compare_digest` raises for text that is not ASCII: the setup token and a
    share's unlock cookie are compared as bytes."""
    async with app_client(config, follow_redirects=False) as first_run:
        assert (await first_run.get("/setup?token=%C3%A9")).status_code == 404
        r = await first_run.post(
            "/setup", content=b"token=%AA", headers={"content-type": FORM_TYPE}
        )
        assert r.status_code == 404
    _, token = await add_account(config, "owner", admin=True)
    async with app_client(config, headers=bearer(token)) as owner:
        stored = (await owner.put("/uploads/locked.txt", content=b"locked")).json()["files"][0]
        made = await owner.post(f"/api/files/{stored['id']}/shares", json={"password": "p" * 12})
        share = made.json()["share"]["url"]
    async with app_client(config, follow_redirects=False) as visitor:
        cookie = {"cookie": "stowage_share=\xe9t\xe9"}
        r = await visitor.get(share, headers=cookie)
        assert r.status_code == 200 and "password" in r.text.lower()  # the password form
        assert (await visitor.get(f"{share}/file", headers=cookie)).status_code == 401
