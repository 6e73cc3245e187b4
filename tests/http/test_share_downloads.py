"""Share download logs: a row for every download through a link or collection (file,
member, ZIP, ranges, cut off), bots marked, previews and HEAD not logged, the
address never kept in clear; the owner's CSV and JSON, and nobody else's."""

import asyncio
import csv
import hashlib
import hmac
import io
import re

import pytest
from stario.testing import TestClient
from tests.support.fixtures import SETUP_TOKEN, add_account, bearer, request_policy

from app.catalog.open import open_catalog
from app.config import Config
from app.main import make_bootstrap
from app.shares.downloads import CLIENT_KEY_SETTING, is_bot

BODY = bytes(range(256)) * 40  # 10,240 bytes
BIG = bytes(range(256)) * 4096 * 8  # 8 MiB: more than one write, so a cut-off shows
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
on_both_catalogs = pytest.mark.parametrize(
    ("storage", "config"), [("local", "sqlite"), ("local", "postgres")], indirect=True
)


@pytest.fixture
async def tokens(config: Config) -> tuple[str, str]:
    _, owner = await add_account(config, "owner")
    _, other = await add_account(config, "other")
    return owner, other


@pytest.fixture
async def app(config: Config, tokens):
    async with TestClient(
        make_bootstrap(config, setup_token=SETUP_TOKEN),
        requests=request_policy(config),
        follow_redirects=False,
        base_url=config.public_url,
    ) as c:
        yield c


async def upload(app: TestClient, token: str, body: bytes = BODY, name: str = "data.bin") -> str:
    r = await app.put(f"/uploads/{name}", content=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    return str(r.json()["files"][0]["id"])


async def link(app: TestClient, token: str, file_id: str, **fields: object) -> tuple[str, str]:
    """(share id, /s/TOKEN) of a new link to one file."""
    r = await app.post(f"/api/files/{file_id}/shares", json=fields, headers=bearer(token))
    assert r.status_code == 201, r.text
    return r.json()["share"]["id"], r.json()["share"]["url"]


async def collection(app: TestClient, token: str, ids: list[str]) -> tuple[str, str]:
    r = await app.post("/api/shares", json={"ids": ids}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return r.json()["share"]["id"], r.json()["share"]["url"]


async def logged(app: TestClient, token: str, share_id: str) -> list[dict]:
    """The link's rows once every queued one is written."""
    await app.drain_tasks()
    r = await app.get(f"/api/shares/{share_id}/downloads", headers=bearer(token))
    assert r.status_code == 200, r.text
    rows: list[dict] = r.json()["downloads"]
    return rows


@on_both_catalogs
async def test_a_file_download_writes_one_row(app, tokens):
    owner, _ = tokens
    file_id = await upload(app, owner)
    share_id, url = await link(app, owner, file_id)
    got = await app.get(url + "/file", headers={"user-agent": FIREFOX})
    assert (got.status_code, got.content) == (200, BODY)
    [row] = await logged(app, owner, share_id)
    assert row["what"] == "file"
    assert row["file_id"] == file_id and row["name"] == "data.bin"
    assert row["bytes_sent"] == len(BODY) and row["completed"] is True
    assert row["bot"] is False and row["user_agent"] == FIREFOX
    assert re.fullmatch(r"[0-9a-f]{16}", row["client"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["at"])


async def test_each_range_is_a_row_with_its_bytes(app, tokens):
    owner, _ = tokens
    share_id, url = await link(app, owner, await upload(app, owner))
    first = await app.get(url + "/file", headers={"range": "bytes=0-99"})
    rest = await app.get(url + "/file", headers={"range": "bytes=100-"})
    assert (first.status_code, rest.status_code) == (206, 206)
    rows = await logged(app, owner, share_id)
    assert sorted(r["bytes_sent"] for r in rows) == [100, len(BODY) - 100]
    assert all(r["completed"] for r in rows)


async def test_head_preview_and_not_modified_write_nothing(app, tokens):
    owner, _ = tokens
    share_id, url = await link(app, owner, await upload(app, owner, name="data.bin"))
    assert (await app.request("HEAD", url + "/file")).status_code == 200
    assert (await app.get(url)).status_code == 200  # the landing page
    whole = await app.get(url + "/file")
    etag = whole.headers.get("etag")
    assert (await app.get(url + "/file", headers={"if-none-match": etag})).status_code == 304
    bad = await app.get(url + "/file", headers={"range": f"bytes={len(BODY) + 5}-"})
    assert bad.status_code == 416
    assert len(await logged(app, owner, share_id)) == 1  # the one whole GET


async def test_a_preview_is_neither_counted_nor_logged(app, tokens):
    owner, _ = tokens
    png = _png()
    share_id, url = await link(app, owner, await upload(app, owner, png, "picture.png"))
    preview = await app.get(url + "/file?preview=1")
    assert preview.status_code == 200 and preview.content == png
    assert await logged(app, owner, share_id) == []
    listed = (await app.get("/api/shares", headers=bearer(owner))).json()["shares"]
    assert [s["downloads"] for s in listed if s["id"] == share_id] == [0]


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), (30, 30, 200)).save(out, "PNG")
    return out.getvalue()


async def test_a_cut_off_download_records_what_left_as_not_completed(app, tokens):
    owner, _ = tokens
    share_id, url = await link(app, owner, await upload(app, owner, BIG, "big.bin"))
    async with app.stream("GET", url + "/file") as response:
        assert response.status_code == 200
        async for _chunk in response.iter_bytes():
            break
        response.disconnect()
    [row] = await logged(app, owner, share_id)
    assert row["completed"] is False
    assert 0 < row["bytes_sent"] < len(BIG)


async def test_collection_members_and_zip_are_logged(app, tokens):
    owner, _ = tokens
    a = await upload(app, owner, b"first file", "a.txt")
    b = await upload(app, owner, b"second file", "b.txt")
    share_id, url = await collection(app, owner, [a, b])
    member = await app.get(f"{url}/files/{b}?download=1")
    assert member.status_code == 200 and member.content == b"second file"
    whole = await app.get(url + "/zip")
    assert whole.status_code == 200
    rows = await logged(app, owner, share_id)
    by_what = {r["what"]: r for r in rows}
    assert set(by_what) == {"file", "zip"}
    assert by_what["file"]["file_id"] == b and by_what["file"]["name"] == "b.txt"
    assert by_what["zip"]["file_id"] is None
    assert by_what["zip"]["name"].endswith(".zip")
    assert by_what["zip"]["bytes_sent"] == len(whole.content)
    assert all(r["completed"] for r in rows)


@pytest.mark.parametrize(
    "agent",
    [
        SLACK,
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "TelegramBot (like TwitterBot)",
        "WhatsApp/2.23.20.0",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "Mastodon/4.2.0 (http.rb/5.1.1; +https://mastodon.social/)",
        "Mozilla/5.0 (compatible; Google-PageRenderer Google (+https://developers.google.com/+/web/snippet/))",
    ],
)
def test_link_preview_fetchers_are_bots(agent):
    assert is_bot(agent)


@pytest.mark.parametrize("agent", [FIREFOX, "curl/8.5.0", "Wget/1.21.4", ""])
def test_people_and_their_tools_are_not_bots(agent):
    assert not is_bot(agent)


async def test_a_bot_fetch_is_marked(app, tokens):
    owner, _ = tokens
    share_id, url = await link(app, owner, await upload(app, owner))
    assert (await app.get(url + "/file", headers={"user-agent": SLACK})).status_code == 200
    [row] = await logged(app, owner, share_id)
    assert row["bot"] is True


async def test_the_address_is_kept_only_as_a_keyed_hash(app, tokens, config):
    owner, _ = tokens
    share_id, url = await link(app, owner, await upload(app, owner))
    await app.get(url + "/file")
    [row] = await logged(app, owner, share_id)
    db = await open_catalog(config)
    try:
        key = await db.fetch_one("SELECT value FROM settings WHERE key = ?", (CLIENT_KEY_SETTING,))
        stored = await db.fetch_all("SELECT * FROM share_downloads")
    finally:
        await db.close()
    assert key is not None
    # Under the TestClient every client's address is "unknown".
    expected = hmac.new(bytes.fromhex(str(key[0])), b"unknown", hashlib.sha256).hexdigest()
    assert row["client"] == expected[:16]
    assert all("unknown" not in str(value) for value in stored[0])


async def test_the_csv_export_escapes_hostile_cells(app, tokens):
    owner, other = tokens
    share_id, url = await link(app, owner, await upload(app, owner))
    hostile = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-cmd", "@SUM(1)", 'a,"b"\tc']
    for agent in hostile:
        assert (await app.get(url + "/file", headers={"user-agent": agent})).status_code == 200
    await app.drain_tasks()
    got = await app.get(f"/shared/{share_id}/downloads.csv", headers=bearer(owner))
    assert got.status_code == 200
    assert got.headers.get("content-type").startswith("text/csv")
    assert "attachment" in got.headers.get("content-disposition")
    rows = list(csv.reader(io.StringIO(got.text)))
    assert rows[0] == [
        "time", "client", "user_agent", "bot", "what", "bytes_sent", "completed",
    ]  # fmt: skip
    agents = {r[2] for r in rows[1:]}
    assert agents == {
        "'=HYPERLINK(\"http://evil.example\",\"x\")", "'+1+2", "'-cmd", "'@SUM(1)", 'a,"b" c',
    }  # fmt: skip
    for r in rows[1:]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r[0])
        assert r[3:] == ["no", "data.bin", str(len(BODY)), "yes"]
        assert not r[1].startswith(("=", "+", "-", "@"))


async def test_another_account_gets_404_for_the_log(app, tokens):
    owner, other = tokens
    share_id, url = await link(app, owner, await upload(app, owner))
    await app.get(url + "/file")
    await app.drain_tasks()
    for path in (
        f"/shared/{share_id}/downloads.csv",
        f"/shared/{share_id}/downloads",
        f"/api/shares/{share_id}/downloads",
    ):
        assert (await app.get(path, headers=bearer(other))).status_code == 404, path
        assert (await app.get(path, headers=bearer(owner))).status_code == 200, path
    assert (
        await app.get("/api/shares/000000000000/downloads", headers=bearer(owner))
    ).status_code == 404


async def test_a_revoked_or_deleted_link_keeps_or_drops_its_rows(app, tokens):
    owner, _ = tokens
    file_id = await upload(app, owner)
    share_id, url = await link(app, owner, file_id)
    await app.get(url + "/file")
    assert len(await logged(app, owner, share_id)) == 1
    assert (await app.delete(f"/api/shares/{share_id}", headers=bearer(owner))).status_code == 204
    assert len(await logged(app, owner, share_id)) == 1  # a revoked link's log stays
    assert (await app.delete(f"/files/{file_id}", headers=bearer(owner))).status_code == 204
    gone = await app.get(f"/api/shares/{share_id}/downloads", headers=bearer(owner))
    assert gone.status_code == 404


# The Shared screen ---------------------------------------------------------------------------

IDENTITY = {"accept-encoding": "identity"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def next_data(events, *, containing: str) -> str:
    async with asyncio.timeout(5):
        while True:
            event = await anext(events)
            if containing in event["data"]:
                return str(event["data"])


async def test_the_screen_shows_each_links_log_and_repaints_it_live(app, tokens):
    owner, _ = tokens
    share_id, url = await link(app, owner, await upload(app, owner, name="report.pdf"))
    page = await app.get("/shared", headers=bearer(owner))
    assert f'id="log-{share_id}"' in page.text and "Download log (0 requests)" in page.text
    assert 'data-preserve-attr="open"' in page.text  # a repaint keeps it open
    async with app.stream("GET", "/shared/live", headers={**bearer(owner), **IDENTITY}) as live:
        events = live.iter_events()
        await next_data(events, containing="Download log (0 requests)")
        await app.get(url + "/file", headers={"user-agent": SLACK})
        painted = await next_data(events, containing="Download log (1 request)")
        assert "link-preview bot" in painted and "Slackbot-LinkExpanding" in painted
        assert f"/shared/{share_id}/downloads.csv" in painted


async def test_hostile_user_agents_are_escaped_on_the_screen(app, tokens):
    owner, _ = tokens
    share_id, url = await link(app, owner, await upload(app, owner))
    await app.get(url + "/file", headers={"user-agent": "<script>alert(1)</script>"})
    await app.drain_tasks()
    for path in ("/shared", f"/shared/{share_id}/downloads"):
        page = await app.get(path, headers=bearer(owner))
        assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text


async def test_the_log_pages_a_hundred_at_a_time(app, tokens):
    owner, _ = tokens
    share_id, url = await link(app, owner, await upload(app, owner))
    for _ in range(3):
        await app.get(url + "/file", headers={"range": "bytes=0-0"})
    await app.drain_tasks()
    page = await app.get(f"/shared/{share_id}/downloads?page=1", headers=bearer(owner))
    assert page.status_code == 200 and page.text.count('class="download"') == 3
    assert "3 requests, newest first" in page.text
    later = await app.get(f"/shared/{share_id}/downloads?page=9", headers=bearer(owner))
    assert later.status_code == 200 and "Nobody has downloaded" in later.text
    some = await app.get(f"/api/shares/{share_id}/downloads?limit=2", headers=bearer(owner))
    assert some.json()["total"] == 3 and len(some.json()["downloads"]) == 2


async def test_revoke_works_as_a_plain_form(app, tokens):
    owner, other = tokens
    share_id, url = await link(app, owner, await upload(app, owner, name="plain.bin"))
    refused = await app.post(
        f"/shared/{share_id}/revoke", content=b"", headers={**bearer(other), **FORM}
    )
    assert refused.status_code == 404 and "not one of yours" in refused.text
    assert (await app.get(url + "/file")).status_code == 200  # still works
    done = await app.post(
        f"/shared/{share_id}/revoke", content=b"", headers={**bearer(owner), **FORM}
    )
    assert done.status_code == 303 and done.headers.get("location") == "/shared?done=revoked"
    assert (await app.get(url + "/file")).status_code == 410
    shown = await app.get("/shared?done=revoked", headers=bearer(owner))
    assert "The link was revoked" in shown.text and "plain.bin" not in shown.text
    again = await app.post(
        f"/shared/{share_id}/revoke", content=b"", headers={**bearer(owner), **FORM}
    )
    assert again.status_code == 404 and 'role="alert"' in again.text


async def test_revoke_through_datastar_answers_patches(app, tokens):
    owner, _ = tokens
    share_id, url = await link(app, owner, await upload(app, owner, name="ds.bin"))
    headers = {**bearer(owner), **FORM, **IDENTITY, "datastar-request": "true"}
    got = await app.post(f"/shared/{share_id}/revoke", content=b"", headers=headers)
    assert got.status_code == 200
    assert "text/event-stream" in (got.headers.get("content-type") or "")
    assert "The link was revoked" in got.text and "No shared links." in got.text
    assert (await app.get(url + "/file")).status_code == 410
