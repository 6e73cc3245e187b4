"""Setup link, sign-in, sessions, throttling and API tokens through the TestClient;
the `stowage users` / `stowage tokens` commands as a person runs them."""

import asyncio

from tests.support.accounts import FORM, cookie_header, form, fresh_client, sign_in
from tests.support.fixtures import (
    PASSWORD,
    SETUP_TOKEN,
    add_account,
    bearer,
)

from app.catalog.open import open_catalog
from app.config import Config

# The first run ----------------------------------------------------------------------


async def test_setup_link_creates_the_first_admin_who_gets_the_old_files(config, capsys):
    db = await open_catalog(config)
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO files (id, name, size, sha256, mime, created_at, owner)"
            " VALUES ('AAAAAAAAAAAAAAAAAAAAAA', 'old.txt', 3, '0', 'text/plain', '2026', NULL)"
        )
    await db.close()
    async with fresh_client(config) as client:
        printed = capsys.readouterr().err
        assert f"http://127.0.0.1:8000/setup?token={SETUP_TOKEN}" in printed
        assert (await client.get("/setup")).status_code == 404
        assert (await client.get("/setup?token=wrong")).status_code == 404
        page = await client.get(f"/setup?token={SETUP_TOKEN}")
        assert page.status_code == 200 and "Create the first account" in page.text
        assert (await client.get("/")).status_code == 303

        mismatch = await client.post(
            "/setup",
            content=form(token=SETUP_TOKEN, name="ada", password=PASSWORD, password_again="x"),
            headers=FORM,
        )
        assert mismatch.status_code == 400 and "The two passwords differ." in mismatch.text
        weak = await client.post(
            "/setup",
            content=form(token=SETUP_TOKEN, name="ada", password="short", password_again="short"),
            headers=FORM,
        )
        assert weak.status_code == 400 and "at least 10 characters" in weak.text

        made = await client.post(
            "/setup",
            content=form(token=SETUP_TOKEN, name="ada", password=PASSWORD, password_again=PASSWORD),
            headers=FORM,
        )
        assert made.status_code == 303 and made.headers.get("location") == "/"
        cookie = cookie_header(made)
        assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
        assert "Secure" not in cookie
        home = await client.get("/")
        assert home.status_code == 200 and "ada" in home.text and "(admin)" in home.text
        listed = (await client.get("/api/files")).json()["files"]
        assert [f["name"] for f in listed] == ["old.txt"]
        # Once an account exists, the link is dead for good.
        assert (await client.get(f"/setup?token={SETUP_TOKEN}")).status_code == 404
        again = await client.post(
            "/setup",
            content=form(token=SETUP_TOKEN, name="eve", password=PASSWORD, password_again=PASSWORD),
            headers=FORM,
        )
        assert again.status_code == 404


async def test_an_https_public_url_makes_the_cookie_secure_and_the_links_absolute(tmp_path):
    config = Config.load(
        {"data_dir": str(tmp_path), "public_url": "https://files.example.org"}, environ={}
    )
    await add_account(config)
    async with fresh_client(config) as client:
        signed_in = await sign_in(client)
        assert signed_in.status_code == 303
        assert "Secure" in cookie_header(signed_in)
        home = await client.get("/")
        assert "curl -u :TOKEN -T FILE https://files.example.org/uploads/" in home.text


def test_setup_link_uses_the_public_url(tmp_path):
    config = Config.load(
        {"data_dir": str(tmp_path), "public_url": "https://files.example.org/"}, environ={}
    )
    from app.main import setup_link

    assert setup_link(config, "abc") == "https://files.example.org/setup?token=abc"


# Signing in and out -------------------------------------------------------------------


async def test_sign_in_with_a_plain_form_and_out_again(config, owner):
    async with fresh_client(config) as client:
        assert (await client.get("/")).headers.get("location") == "/login?next=/"
        page = await client.get("/login?next=/%3Fpage%3D2")
        assert page.status_code == 200 and 'name="password"' in page.text
        signed_in = await sign_in(client, next="/?page=2")
        assert (signed_in.status_code, signed_in.headers.get("location")) == (303, "/?page=2")
        session = client.cookies["stowage_session"]
        assert len(session) >= 22  # at least 128 random bits
        assert (await client.get("/api/files")).status_code == 200
        # Signed in, the sign-in page sends you on.
        assert (await client.get("/login")).status_code == 303

        out = await client.post("/logout")
        assert (out.status_code, out.headers.get("location")) == (303, "/login")
        assert "stowage_session" not in client.cookies
        # The old cookie is dead on the server, not only forgotten by the browser.
        stolen = {"cookie": f"stowage_session={session}"}
        assert (await client.get("/api/files", headers=stolen)).status_code == 401
        assert (await client.get("/", headers=stolen)).status_code == 303


async def test_sign_in_with_datastar_signals(config, owner):
    async with fresh_client(config) as client:
        wrong = await client.post(
            "/login",
            json={"name": "owner", "password": "not it at all"},
            headers={"datastar-request": "true"},
        )
        assert wrong.status_code == 200 and "Wrong name or password." in wrong.text
        right = await client.post(
            "/login",
            json={"name": "OWNER", "password": PASSWORD, "next": "/?page=3"},
            headers={"datastar-request": "true"},
        )
        assert right.status_code == 200
        assert "window.location" in right.text and "/?page=3" in right.text
        assert "stowage_session" in client.cookies


async def test_unknown_name_and_wrong_password_answer_alike(config, owner):
    async with fresh_client(config) as client:
        unknown = await sign_in(client, name="nobody", password="whatever it is")
        wrong = await sign_in(client, name="owner", password="whatever it is")
        assert unknown.status_code == wrong.status_code == 401
        assert "Wrong name or password." in unknown.text
        assert _same_but_nonce(unknown.text, wrong.text)


def _same_but_nonce(a: str, b: str) -> bool:
    import re

    def scrub(text: str) -> str:
        return re.sub(r'data-nonce="[^"]*"', "", text).replace("nobody", "owner")

    return scrub(a) == scrub(b)


async def test_only_local_paths_are_followed_after_sign_in(config, owner):
    async with fresh_client(config) as client:
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            signed_in = await sign_in(client, next=target)
            assert signed_in.headers.get("location") == "/", target


async def test_five_failures_lock_the_account_name_with_429(config, owner):
    async with fresh_client(config) as client:
        for _ in range(5):
            assert (await sign_in(client, password="wrong password!")).status_code == 401
        locked = await sign_in(client)  # even the right password, now
        assert locked.status_code == 429
        assert 0 < int(locked.headers.get("retry-after") or 0) <= 15 * 60
        assert "Too many failed sign-ins. Wait 15 minutes and try again." in locked.text
        assert "stowage_session" not in client.cookies


async def test_five_failures_from_one_address_lock_every_name(config, owner):
    """TestClient has no socket, so all its requests share one (unknown) address: five
    failures for five different names lock a sixth name from the same address."""
    await add_account(config, "second")
    async with fresh_client(config) as client:
        for n in range(5):
            assert (await sign_in(client, name=f"guess{n}", password="x" * 12)).status_code == 401
        assert (await sign_in(client, name="second")).status_code == 429


async def test_idle_sessions_end(tmp_path):
    config = Config.load({"data_dir": str(tmp_path), "session_idle": "1"}, environ={})
    await add_account(config)
    async with fresh_client(config) as client:
        await sign_in(client)
        for _ in range(4):  # used every 0.4 s, it stays alive past its 1 s idle limit
            await asyncio.sleep(0.4)
            assert (await client.get("/api/files")).status_code == 200
        await asyncio.sleep(1.2)
        assert (await client.get("/api/files")).status_code == 401


async def test_sessions_end_at_their_absolute_lifetime_however_used(tmp_path):
    config = Config.load({"data_dir": str(tmp_path), "session_lifetime": "1"}, environ={})
    await add_account(config)
    async with fresh_client(config) as client:
        await sign_in(client)
        assert (await client.get("/api/files")).status_code == 200
        for _ in range(3):
            await asyncio.sleep(0.4)
            await client.get("/api/files")
        assert (await client.get("/api/files")).status_code == 401


# API tokens -----------------------------------------------------------------------------


async def test_tokens_are_made_shown_once_used_and_revoked(config, owner):
    _, first_token = owner
    async with fresh_client(config) as client:
        made = await client.post(
            "/api/tokens", json={"label": "backup"}, headers=bearer(first_token)
        )
        assert made.status_code == 201
        secret = made.json()["secret"]
        token = made.json()["token"]
        assert token["label"] == "backup" and secret.startswith("stw_")
        listed = (await client.get("/api/tokens", headers=bearer(secret))).json()["tokens"]
        assert [t["label"] for t in listed] == ["tests", "backup"]
        assert secret not in str(listed)
        import base64

        basic = {"authorization": "Basic " + base64.b64encode(f"any:{secret}".encode()).decode()}
        assert (await client.get("/api/files", headers=basic)).status_code == 200

        other, other_token = await add_account(config, "other")
        foreign = await client.delete(f"/api/tokens/{token['id']}", headers=bearer(other_token))
        assert foreign.status_code == 404
        assert (
            await client.delete(f"/api/tokens/{token['id']}", headers=bearer(first_token))
        ).status_code == 204
        assert (await client.get("/api/files", headers=bearer(secret))).status_code == 401
        # A token is a secret of 256 bits: a near miss is simply wrong.
        assert (
            await client.get(
                "/api/files",
                headers=bearer(first_token[:-1] + ("B" if first_token.endswith("A") else "A")),
            )
        ).status_code in (401,)


async def test_a_token_made_on_the_page_appears_once_in_that_tab(client):
    made = await client.post(
        "/api/tokens", json={"tokenLabel": "laptop"}, headers={"datastar-request": "true"}
    )
    assert made.status_code == 200
    assert "Copy it now: it is shown only this once." in made.text and "stw_" in made.text
    listed = (await client.get("/api/tokens")).json()["tokens"]
    assert "laptop" in [t["label"] for t in listed]


# The command line -----------------------------------------------------------------------


async def test_a_credential_change_from_another_process_is_seen_on_the_next_request(config, owner):
    """The gate keeps what tokens resolve to; a `stowage` command in another process
    revoking one is seen at once, through the credentials marker, even twice within
    one tick of the file clock."""
    from app.accounts.store import create_token, revoke_token

    account, token = owner
    async with fresh_client(config) as client:
        for _ in range(3):
            db = await open_catalog(config)  # what a `stowage tokens` command opens
            info, secret = await create_token(db, account.id, "short-lived")
            assert (await client.get("/api/files", headers=bearer(secret))).status_code == 200
            assert await revoke_token(db, info.id)
            await db.close()
            assert (await client.get("/api/files", headers=bearer(secret))).status_code == 401
            assert (await client.get("/api/files", headers=bearer(token))).status_code == 200
