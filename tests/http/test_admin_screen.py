"""The Admin screen through the TestClient: every action as a plain form post (303
back, or the screen again with the refusal next to its field), as a Datastar post,
refused to other accounts (403); the one-time invitation and reset links; the log;
the live repaint; and what an admin still cannot see of other accounts."""

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from stario.testing import TestClient
from tests.support.accounts import FORM, form, sign_in
from tests.support.fixtures import PASSWORD, SETUP_TOKEN, add_account, bearer, request_policy

from app.accounts.admin import AdminRefusal, remove_by_admin
from app.accounts.store import Account, account_by_name
from app.catalog.open import open_catalog
from app.config import Config
from app.main import make_bootstrap

HTML_FORM = {**FORM, "accept": "text/html"}
DATASTAR = {**FORM, "datastar-request": "true"}
NEW_PASSWORD = "a brand new password here"
ADMIN_POSTS = [
    "/admin/accounts",
    "/admin/invitations",
    "/admin/quota",
    "/admin/resets",
    "/admin/remove",
]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def world(config: Config):
    """An admin ("boss", signed in by token) and an account ("ada") with a file."""
    _, boss = await add_account(config, "boss", admin=True)
    _, ada = await add_account(config, "ada")
    clock = Clock()
    async with TestClient(
        make_bootstrap(config, setup_token=SETUP_TOKEN, clock=clock),
        requests=request_policy(config),
        follow_redirects=False,
        base_url=config.public_url,
    ) as client:
        made = await client.put(
            "/uploads/ada-secret-plans.txt", content=b"private words", headers=bearer(ada)
        )
        assert made.status_code == 201
        yield client, bearer(boss), bearer(ada), clock, made.json()["files"][0]["url"]


async def _account(config: Config, name: str):
    db = await open_catalog(config)
    try:
        return await account_by_name(db, name)
    finally:
        await db.close()


def _link(html: str, path: str) -> str:
    found = re.search(rf"http://[^\s\"<]+{path}\?token=([A-Za-z0-9_-]+)", html)
    assert found, f"no {path} link in the answer"
    return found.group(1)


async def test_other_accounts_get_403_on_every_admin_route(world):
    client, _, ada, _, _ = world
    for url in ("/admin", "/admin/server"):
        assert (await client.get(url, headers=ada)).status_code == 403, url
    async with client.stream("GET", "/admin/live", headers=ada) as live:
        assert live.status_code == 403
    for url in ADMIN_POSTS:
        body = form(name="intruder", password=PASSWORD, account="ada", quota="1GiB", valid="3600")
        refused = await client.post(url, content=body, headers={**ada, **HTML_FORM})
        assert refused.status_code == 403, url
    # Nothing happened.
    assert (await client.get("/api/files", headers=ada)).status_code == 200
    page = await client.get("/admin", headers=world[1])
    assert "intruder" not in page.text and "No admin action yet." in page.text


async def test_create_an_account_without_scripts(world, config):
    client, boss, _, _, _ = world
    made = await client.post(
        "/admin/accounts",
        content=form(name="eve", password=PASSWORD, quota="2GiB", admin="yes"),
        headers={**boss, **HTML_FORM},
    )
    assert made.status_code == 303
    assert made.headers.get("location") == "/admin?done=created"
    eve = await _account(config, "eve")
    assert eve is not None and eve.is_admin and eve.quota_bytes == 2 * 1024**3
    page = await client.get(made.headers.get("location"), headers=boss)
    assert "The account was created." in page.text
    assert re.search(r"<td>boss</td><td>created account</td><td>eve</td>", page.text)
    # The new account signs in.
    assert (await sign_in(client, "eve")).status_code == 303


async def test_a_refused_account_keeps_its_words_next_to_the_field(world, config):
    client, boss, _, _, _ = world
    weak = await client.post(
        "/admin/accounts",
        content=form(name="eve", password="short", quota=""),
        headers={**boss, **HTML_FORM},
    )
    assert weak.status_code == 400
    field = re.search(r'<div class="field"><label for="admin-create-password".*?</div>', weak.text)
    assert field and "at least 10 characters" in field.group(0)
    assert 'aria-describedby="admin-create-error"' in field.group(0)
    assert 'value="eve"' in weak.text  # the name stays; the password is never echoed
    assert "short" not in weak.text.replace("shortened", "")
    taken = await client.post(
        "/admin/accounts",
        content=form(name="ADA", password=PASSWORD),
        headers={**boss, **HTML_FORM},
    )
    assert taken.status_code == 409 and "already exists" in taken.text
    bad_quota = await client.post(
        "/admin/accounts",
        content=form(name="eve", password=PASSWORD, quota="lots"),
        headers={**boss, **HTML_FORM},
    )
    assert bad_quota.status_code == 400 and "must be a number of bytes" in bad_quota.text
    assert await _account(config, "eve") is None


async def test_set_a_quota_and_refuse_bad_words_next_to_the_field(world, config):
    client, boss, _, _, _ = world
    bad = await client.post(
        "/admin/quota", content=form(account="ada", quota="ten gigs"), headers={**boss, **HTML_FORM}
    )
    assert bad.status_code == 400
    field = re.search(r'<div class="field"><label for="admin-quota-quota".*?</div>', bad.text)
    assert field and "The quota must be a number of bytes" in field.group(0)
    assert (await _account(config, "ada")).quota_kind == "default"
    unknown = await client.post(
        "/admin/quota", content=form(account="nobody", quota="1GiB"), headers={**boss, **HTML_FORM}
    )
    assert unknown.status_code == 404 and "No account named" in unknown.text
    wanted = [
        ("10GiB", "bytes", 10 * 1024**3),
        ("none", "none", None),
        ("1.5 GB", "bytes", 1_500_000_000),
        ("default", "default", None),
    ]
    for words, kind, quota in wanted:
        done = await client.post(
            "/admin/quota", content=form(account="ada", quota=words), headers={**boss, **HTML_FORM}
        )
        assert (done.status_code, done.headers.get("location")) == (303, "/admin?done=quota")
        ada = await _account(config, "ada")
        assert (ada.quota_kind, ada.quota_bytes) == (kind, quota), words
    page = await client.get("/admin", headers=boss)
    assert page.text.count("<td>set quota</td>") == 4


async def test_an_invitation_link_works_once_and_expires(world, config):
    client, boss, _, clock, _ = world
    made = await client.post(
        "/admin/invitations", content=form(valid="3600"), headers={**boss, **HTML_FORM}
    )
    assert made.status_code == 200 and made.headers.get("cache-control") == "private, no-store"
    token = _link(made.text, "/invite")
    assert "it is not shown again" in made.text
    page = await client.get(f"/invite?token={token}")
    assert page.status_code == 200 and "Create your account" in page.text
    weak = await client.post(
        "/invite",
        content=form(token=token, name="zoe", password="short", password_again="short"),
        headers=FORM,
    )
    assert weak.status_code == 400 and "at least 10 characters" in weak.text
    joined = await client.post(
        "/invite",
        content=form(token=token, name="zoe", password=PASSWORD, password_again=PASSWORD),
        headers=FORM,
    )
    assert (joined.status_code, joined.headers.get("location")) == (303, "/")
    assert "stowage_session=" in joined.headers.get("set-cookie", "")
    client.cookies.clear()
    zoe = await _account(config, "zoe")
    assert zoe is not None and not zoe.is_admin
    # Used: gone, in words, as HTML.
    again = await client.get(f"/invite?token={token}")
    assert again.status_code == 404 and "does not work" in again.text
    assert again.headers.get("content-type", "").startswith("text/html")
    reuse = await client.post(
        "/invite",
        content=form(token=token, name="zed", password=PASSWORD, password_again=PASSWORD),
        headers=FORM,
    )
    assert reuse.status_code == 404 and await _account(config, "zed") is None
    # Another, left until it expires.
    late = _link(
        (
            await client.post(
                "/admin/invitations", content=form(valid="3600", admin="yes"),
                headers={**boss, **HTML_FORM},
            )
        ).text,
        "/invite",
    )  # fmt: skip
    assert "as an administrator" in (await client.get(f"/invite?token={late}")).text
    clock.now += 3601
    assert (await client.get(f"/invite?token={late}")).status_code == 404
    expired = await client.post(
        "/invite",
        content=form(token=late, name="zed", password=PASSWORD, password_again=PASSWORD),
        headers=FORM,
    )
    assert expired.status_code == 404 and await _account(config, "zed") is None
    assert (await client.get("/invite?token=nonsense")).status_code == 404
    bad_time = await client.post(
        "/admin/invitations", content=form(valid="999"), headers={**boss, **HTML_FORM}
    )
    assert bad_time.status_code == 400 and "A link lasts one of" in bad_time.text
    log = (await client.get("/admin", headers=boss)).text
    assert "<td>zoe</td><td>accepted invitation</td>" in log
    assert log.count("<td>made invitation link</td>") == 2


async def test_a_reset_link_sets_the_password_once_and_ends_the_sessions(world, config):
    client, boss, _, clock, _ = world
    assert (await sign_in(client, "ada")).status_code == 303
    ada_session = {"cookie": f"stowage_session={client.cookies.pop('stowage_session')}"}
    assert (await client.get("/api/files", headers=ada_session)).status_code == 200
    made = await client.post(
        "/admin/resets", content=form(account="ada", valid="86400"), headers={**boss, **HTML_FORM}
    )
    assert made.status_code == 200
    token = _link(made.text, "/reset")
    page = await client.get(f"/reset?token={token}")
    assert page.status_code == 200 and "<strong>ada</strong>" in page.text
    differ = await client.post(
        "/reset",
        content=form(token=token, password=NEW_PASSWORD, password_again="other thing entirely"),
        headers=FORM,
    )
    assert differ.status_code == 400 and "The two passwords differ." in differ.text
    done = await client.post(
        "/reset",
        content=form(token=token, password=NEW_PASSWORD, password_again=NEW_PASSWORD),
        headers=FORM,
    )
    assert done.status_code == 200 and "Your password is set" in done.text
    await asyncio.sleep(0.3)  # the gate looks at the credentials marker every 0.25 s
    assert (await client.get("/api/files", headers=ada_session)).status_code == 401
    assert (await sign_in(client, "ada")).status_code == 401
    assert (await sign_in(client, "ada", NEW_PASSWORD)).status_code == 303
    client.cookies.clear()
    twice = await client.post(
        "/reset",
        content=form(token=token, password=PASSWORD, password_again=PASSWORD),
        headers=FORM,
    )
    assert twice.status_code == 404
    # A newer link replaces one not yet used; links expire.
    first = _link(
        (await client.post("/admin/resets", content=form(account="ada", valid="3600"),
                           headers={**boss, **HTML_FORM})).text, "/reset")  # fmt: skip
    second = _link(
        (await client.post("/admin/resets", content=form(account="ada", valid="3600"),
                           headers={**boss, **HTML_FORM})).text, "/reset")  # fmt: skip
    assert (await client.get(f"/reset?token={first}")).status_code == 404
    assert (await client.get(f"/reset?token={second}")).status_code == 200
    clock.now += 3601
    assert (await client.get(f"/reset?token={second}")).status_code == 404


async def test_remove_follows_the_command_lines_rules(world, config):
    client, boss, ada, _, file_url = world
    me = await client.post(
        "/admin/remove", content=form(account="boss"), headers={**boss, **HTML_FORM}
    )
    assert me.status_code == 409 and "You cannot remove your own account." in me.text
    owns = await client.post(
        "/admin/remove", content=form(account="ada"), headers={**boss, **HTML_FORM}
    )
    assert owns.status_code == 409 and "also delete its files" in owns.text
    assert (await client.get(file_url, headers=ada)).status_code == 200
    gone = await client.post(
        "/admin/remove",
        content=form(account="ada", delete_files="yes"),
        headers={**boss, **HTML_FORM},
    )
    assert (gone.status_code, gone.headers.get("location")) == (303, "/admin?done=removed")
    assert await _account(config, "ada") is None
    await asyncio.sleep(0.3)
    assert (await client.get("/api/files", headers=ada)).status_code == 401
    page = (await client.get("/admin?done=removed", headers=boss)).text
    assert "The account was removed." in page
    assert "<td>removed account</td><td>ada</td><td>with 1 file(s)</td>" in page


async def test_the_last_admin_stays(config, tmp_path):
    """Two admins: one removes the other; the one left cannot be removed by anyone."""
    _, boss = await add_account(config, "boss", admin=True)
    await add_account(config, "deputy", admin=True)
    async with TestClient(
        make_bootstrap(config, setup_token=SETUP_TOKEN),
        requests=request_policy(config), follow_redirects=False, base_url=config.public_url,
    ) as client:  # fmt: skip
        removed = await client.post(
            "/admin/remove", content=form(account="deputy"), headers={**bearer(boss), **HTML_FORM}
        )
        assert removed.status_code == 303
    db = await open_catalog(config)
    try:
        last = await account_by_name(db, "boss")
        assert last is not None
        # Whoever asks (here an actor that is not that admin), the last admin stays.
        someone = Account("someone", "someone", True, "default", None, 0, 0, "")
        with pytest.raises(AdminRefusal, match="last admin"):
            await remove_by_admin(db, someone, last, delete_files=True)
    finally:
        await db.close()


async def test_datastar_posts_patch_the_form(world, config):
    client, boss, _, _, _ = world
    refused = await client.post(
        "/admin/quota", content=form(account="ada", quota="much"), headers={**boss, **DATASTAR}
    )
    assert refused.status_code == 200
    assert refused.headers.get("content-type", "").startswith("text/event-stream")
    assert 'id="admin-quota"' in refused.text and "The quota must be" in refused.text
    done = await client.post(
        "/admin/quota", content=form(account="ada", quota="3GiB"), headers={**boss, **DATASTAR}
    )
    assert done.status_code == 200 and "The quota was set." in done.text
    link = await client.post(
        "/admin/invitations", content=form(valid="3600"), headers={**boss, **DATASTAR}
    )
    assert 'id="admin-invite-link"' in link.text and "/invite?token=" in link.text


async def _next(events: AsyncIterator[dict[str, str]], containing: str) -> str:
    async with asyncio.timeout(5):
        while True:
            event = await anext(events)
            if containing in event["data"]:
                return event["data"]


async def test_the_screen_repaints_when_accounts_change(world):
    client, boss, _, _, _ = world
    async with client.stream(
        "GET", "/admin/live", headers={**boss, "accept-encoding": "identity"}
    ) as live:
        events = live.iter_events()
        await _next(events, 'id="admin-accounts"')
        made = await client.post(
            "/admin/accounts", content=form(name="newcomer", password=PASSWORD),
            headers={**boss, **HTML_FORM},
        )  # fmt: skip
        assert made.status_code == 303
        loop = asyncio.get_running_loop()
        started = loop.time()
        painted = await _next(events, "newcomer")
        assert loop.time() - started < 1.0
        assert 'id="admin-accounts"' in painted or 'id="admin-log"' in painted


async def test_the_server_panel(world, config):
    client, boss, _, _, _ = world
    page = (await client.get("/admin", headers=boss)).text
    for words in ("Version", "0.1.0", "Catalog", "Free space", "Kept free (--min-free-bytes)",
                  "Open connections (this node)", "Uploads in flight (this node)"):  # fmt: skip
        assert words in page, words
    assert "data-on-interval__duration.5s" in page
    panel = await client.get("/admin/server", headers=boss)
    assert panel.headers.get("content-type", "").startswith("text/event-stream")
    assert 'id="admin-server"' in panel.text
    if config.database is not None:
        assert "PostgreSQL" in panel.text and "@" not in panel.text.split("PostgreSQL")[1][:80]


async def test_an_admin_still_cannot_read_other_accounts_files(world):
    client, boss, _, _, file_url = world
    assert (await client.get(file_url, headers=boss)).status_code == 404
    assert (await client.get(f"{file_url}/thumbnail", headers=boss)).status_code == 404
    page = (await client.get("/admin", headers=boss)).text
    file_id = file_url.rsplit("/", 1)[-1]
    assert "ada-secret-plans" not in page and file_id not in page
    async with client.stream(
        "GET", "/admin/live", headers={**boss, "accept-encoding": "identity"}
    ) as live:
        painted = await _next(live.iter_events(), 'id="admin-accounts"')
        assert "ada-secret-plans" not in painted and file_id not in painted


async def test_the_accounts_table_follows_uploads_and_sign_ins(world):
    """Usage, files and last sign-in are the accounts' own doing, not an admin's: the
    table repaints on them too (and no file name of theirs reaches the screen)."""
    client, boss, ada, _, _ = world
    async with client.stream(
        "GET", "/admin/live", headers={**boss, "accept-encoding": "identity"}
    ) as live:
        events = live.iter_events()
        first = _row_of("ada", await _next(events, 'id="admin-accounts"'))
        assert "never" in first  # not signed in on the web yet
        put = await client.put("/uploads/more-plans.txt", content=b"x" * 5000, headers=ada)
        assert put.status_code == 201
        painted = await _next(events, 'id="admin-accounts"')
        assert _row_of("ada", painted) != first and "more-plans" not in painted
        signed = await client.post(
            "/login", content=form(name="ada", password=PASSWORD), headers=HTML_FORM
        )
        assert signed.status_code == 303
        painted = await _next(events, 'id="admin-accounts"')
        assert "never" not in _row_of("ada", painted)


def _row_of(name: str, html: str) -> str:
    rows = re.findall(r"<tr[^>]*>.*?</tr>", html, re.S)
    [row] = [r for r in rows if f">{name}<" in r or f">{name} " in r]
    return row
