"""The Account screen's commands (lane A of issue 25): change password, list and end
sessions, create and revoke API tokens; each as a plain form (no scripts: 303 back,
or the screen with the error next to its field) and as Datastar sends it."""

import hashlib
import re

from tests.support.accounts import FORM, form, fresh_client, sign_in
from tests.support.fixtures import PASSWORD, add_account, bearer

from app.accounts.devices import describe_device
from app.catalog.open import open_catalog

NEW_PASSWORD = "a different horse battery"
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
HTML = {**FORM, "accept": "text/html"}
DATASTAR = {**FORM, "datastar-request": "true"}


class Browser:
    """One signed-in browser on the shared app: its session cookie and user agent."""

    def __init__(self, app, secret: str, user_agent: str) -> None:
        self.app, self.secret = app, secret
        self.headers = {"cookie": f"stowage_session={secret}", "user-agent": user_agent}
        self.handle = hashlib.sha256(secret.encode()).hexdigest()[:16]

    async def get(self, url: str):
        return await self.app.get(url, headers=self.headers)

    async def post(self, url: str, content: bytes = b"", headers: dict | None = None):
        sent = {**self.headers, **(headers or {})}
        return await self.app.post(url, content=content, headers=sent)


async def browser(app, user_agent: str = CHROME_LINUX, name: str = "owner", password=PASSWORD):
    made = await app.post(
        "/login",
        content=form(name=name, password=password),
        headers={**FORM, "user-agent": user_agent},
    )
    assert made.status_code == 303, made.text
    return Browser(app, app.cookies.pop("stowage_session"), user_agent)


async def signs_in(app, password: str) -> int:
    made = await sign_in(app, "owner", password)
    app.cookies.clear()
    return made.status_code


def test_user_agents_are_described_briefly():
    assert describe_device(CHROME_LINUX) == "Chrome 131 on Linux"
    assert describe_device(FIREFOX_WINDOWS) == "Firefox 133 on Windows"
    edge = CHROME_LINUX.replace("X11; Linux x86_64", "Windows NT 10.0; Win64; x64") + " Edg/131.0"
    assert describe_device(edge) == "Edge 131 on Windows"
    iphone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
    )
    assert describe_device(iphone) == "Safari 17 on iPhone"
    android = (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/131.0.0.0 Mobile Safari/537.36"
    )
    assert describe_device(android) == "Chrome 131 on Android"
    assert describe_device("curl/8.5.0") == "curl 8.5"
    assert describe_device("") == "Unknown device"
    assert describe_device(None) == "Unknown device"
    assert len(describe_device("x" * 10_000 + " Linux")) <= 60


async def test_sessions_are_listed_with_device_address_and_this_one_marked(config, owner):
    async with fresh_client(config) as app:
        laptop = await browser(app)
        phone = await browser(app, FIREFOX_WINDOWS)
        page = await laptop.get("/account")
        assert page.status_code == 200
        assert "Chrome 131 on Linux" in page.text and "Firefox 133 on Windows" in page.text
        item = re.search(rf'<li[^>]*id="session-{laptop.handle}".*?</li>', page.text, re.S)
        assert item and "(this session)" in item.group(0)
        other = re.search(rf'<li[^>]*id="session-{phone.handle}".*?</li>', page.text, re.S)
        assert other and "(this session)" not in other.group(0)
        assert 'aria-label="Sign out the session Firefox 133 on Windows from' in page.text
        # The address TestClient has (no socket), and the last sign-in, are kept.
        assert "from unknown" in page.text
        db = await open_catalog(config)
        try:
            row = db.read_one("SELECT last_sign_in_at FROM users WHERE name_key = 'owner'")
        finally:
            await db.close()
        assert row is not None and row[0] is not None


async def test_a_wrong_current_password_is_refused_next_to_its_field(config, owner):
    async with fresh_client(config) as app:
        me = await browser(app)
        body = form(current="not my password", new=NEW_PASSWORD, again=NEW_PASSWORD)
        refused = await me.post("/account/password", body, HTML)
        assert refused.status_code == 400
        field = re.search(
            r'<input[^>]*id="password-current"[^>]*>\s*<p id="password-current-error"[^>]*>'
            r"([^<]*)</p>",
            refused.text,
        )
        assert field and field.group(1) == "That is not your current password."
        assert 'aria-invalid="true"' in field.group(0)
        assert NEW_PASSWORD not in refused.text  # passwords are never echoed
        assert await signs_in(app, PASSWORD) == 303  # nothing changed

        weak = form(current=PASSWORD, new="short", again="short")
        refused = await me.post("/account/password", weak, HTML)
        assert refused.status_code == 400 and "at least 10 characters" in refused.text
        differ = form(current=PASSWORD, new=NEW_PASSWORD, again=NEW_PASSWORD + "x")
        refused = await me.post("/account/password", differ, HTML)
        assert refused.status_code == 400 and "The two new passwords differ." in refused.text

        # Datastar gets the form back, the error next to the field.
        body = form(current="wrong again", new=NEW_PASSWORD, again=NEW_PASSWORD)
        patched = await me.post("/account/password", body, DATASTAR)
        assert patched.status_code == 200
        assert "event: datastar-patch-elements" in patched.text
        assert "That is not your current password." in patched.text


async def test_a_form_of_too_many_fields_is_refused_in_words(config, owner):
    """Over 20 fields was a 500 (parse_qs's ValueError); now a 400 next to the form,
    and nothing changed."""
    async with fresh_client(config) as app:
        me = await browser(app)
        fields = {f"extra{n}": "x" for n in range(21)}
        body = form(current=PASSWORD, new=NEW_PASSWORD, again=NEW_PASSWORD, **fields)
        refused = await me.post("/account/password", body, HTML)
        assert refused.status_code == 400
        assert "The form has more than 20 fields." in refused.text
        assert await signs_in(app, PASSWORD) == 303


async def test_wrong_current_passwords_are_throttled_like_sign_ins(config, owner):
    async with fresh_client(config) as app:
        me = await browser(app)
        body = form(current="guess", new=NEW_PASSWORD, again=NEW_PASSWORD)
        for _ in range(5):
            assert (await me.post("/account/password", body, HTML)).status_code == 400
        throttled = await me.post("/account/password", body, HTML)
        assert throttled.status_code == 429 and "Too many wrong passwords" in throttled.text
        assert throttled.headers.get("retry-after")
        # And sign-ins with that name wait too: the same throttle.
        assert await signs_in(app, PASSWORD) == 429


async def test_a_new_password_ends_every_other_session_and_keeps_this_one(config, owner):
    async with fresh_client(config) as app:
        this = await browser(app)
        other = await browser(app, FIREFOX_WINDOWS)
        body = form(current=PASSWORD, new=NEW_PASSWORD, again=NEW_PASSWORD)
        changed = await this.post("/account/password", body, HTML)
        assert changed.status_code == 303
        assert changed.headers.get("location") == "/account?done=password"
        page = await this.get("/account?done=password")
        assert page.status_code == 200 and "Your password is changed." in page.text
        assert "Firefox 133 on Windows" not in page.text
        assert (await other.get("/account")).status_code == 303  # to sign in
        assert await signs_in(app, PASSWORD) == 401
        assert await signs_in(app, NEW_PASSWORD) == 303


async def test_one_session_or_all_others_are_signed_out(config, owner):
    async with fresh_client(config) as app:
        this = await browser(app)
        second = await browser(app, FIREFOX_WINDOWS)
        third = await browser(app, "curl/8.5.0")
        ended = await this.post(f"/account/sessions/{second.handle}/end", headers=HTML)
        assert ended.status_code == 303 and ended.headers.get("location") == "/account?done=session"
        assert (await second.get("/account")).status_code == 303
        assert (await third.get("/account")).status_code == 200
        # Ended already: 404, said on the screen.
        again = await this.post(f"/account/sessions/{second.handle}/end", headers=HTML)
        assert again.status_code == 404 and "That session is not signed in" in again.text
        # Datastar: the list comes back patched.
        all_others = await this.post("/account/sessions/end-others", headers=DATASTAR)
        assert all_others.status_code == 200 and 'id="sessions"' in all_others.text
        assert (await third.get("/account")).status_code == 303
        assert (await this.get("/account")).status_code == 200
        # Its own session: signed out, to the sign-in page.
        own = await this.post(f"/account/sessions/{this.handle}/end", headers=HTML)
        assert own.status_code == 303 and own.headers.get("location") == "/login"
        assert (await this.get("/account")).status_code == 303


async def test_another_accounts_session_cannot_be_ended(config, owner):
    _, token = owner
    await add_account(config, "other")
    async with fresh_client(config) as app:
        mine = await browser(app)
        theirs = await browser(app, FIREFOX_WINDOWS, name="other")
        refused = await mine.post(f"/account/sessions/{theirs.handle}/end", headers=HTML)
        assert refused.status_code == 404
        unknown = await mine.post(f"/account/sessions/{'0' * 16}/end", headers=HTML)
        assert (unknown.status_code, len(unknown.text)) == (404, len(refused.text))
        assert (await theirs.get("/account")).status_code == 200
        # With a token (no session of its own), "all others" is every session of its
        # account, and of no other.
        ended = await app.post("/account/sessions/end-others", headers={**HTML, **bearer(token)})
        assert ended.status_code == 303
        assert (await mine.get("/account")).status_code == 303
        assert (await theirs.get("/account")).status_code == 200


async def test_tokens_are_made_and_revoked_by_plain_forms(config, owner):
    _, token = owner
    async with fresh_client(config, headers=bearer(token)) as client:
        made = await client.post("/account/tokens", content=form(label="backup"), headers=HTML)
        assert made.status_code == 200
        [secret] = re.findall(r'id="new-token-secret">(stw_[^<]+)<', made.text)
        assert "shown only this once" in made.text
        assert (await client.get("/api/files", headers=bearer(secret))).status_code == 200
        listed = (await client.get("/api/tokens")).json()["tokens"]
        [new] = [t for t in listed if t["label"] == "backup"]

        too_long = await client.post("/account/tokens", content=form(label="x" * 101), headers=HTML)
        assert too_long.status_code == 400
        assert re.search(r'id="token-label-error"[^>]*>A token label is at most', too_long.text)
        assert 'value="' + "x" * 101 + '"' in too_long.text  # kept as typed

        revoked = await client.post(f"/account/tokens/{new['id']}/revoke", headers=HTML)
        assert revoked.status_code == 303
        assert revoked.headers.get("location") == "/account?done=token"
        assert (await client.get("/api/files", headers=bearer(secret))).status_code == 401
        again = await client.post(f"/account/tokens/{new['id']}/revoke", headers=HTML)
        assert again.status_code == 404

        # Datastar: the same form, answered with patches (the secret once, in this tab).
        patched = await client.post(
            "/account/tokens", content=form(label="laptop"), headers=DATASTAR
        )
        assert patched.status_code == 200 and "stw_" in patched.text
        assert 'id="tokens"' in patched.text


async def test_another_accounts_token_cannot_be_revoked(config, owner):
    _, token = owner
    _, other_token = await add_account(config, "other")
    async with fresh_client(config) as client:
        theirs = (await client.get("/api/tokens", headers=bearer(other_token))).json()["tokens"]
        refused = await client.post(
            f"/account/tokens/{theirs[0]['id']}/revoke", headers={**HTML, **bearer(token)}
        )
        assert refused.status_code == 404
        assert (await client.get("/api/files", headers=bearer(other_token))).status_code == 200


async def test_a_session_past_its_idle_time_is_not_listed(config, owner):
    """It can sign nobody in any more, so the list leaves it out (a sign-in sweeps it)."""
    async with fresh_client(config) as app:
        laptop = await browser(app)
        phone = await browser(app, FIREFOX_WINDOWS)
        db = await open_catalog(config)
        try:
            async with db.transaction() as conn:
                await conn.execute(
                    "UPDATE sessions SET last_seen = last_seen - ?"
                    " WHERE substr(id_hash, 1, 16) = ?",
                    (config.session_idle + 60, phone.handle),
                )
        finally:
            await db.close()
        page = await laptop.get("/account")
        assert f'id="session-{laptop.handle}"' in page.text
        assert f'id="session-{phone.handle}"' not in page.text
