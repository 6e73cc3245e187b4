"""The live page through the production bootstrap: the document, its CSP, the stream
that repaints it, and the delete command."""

import asyncio
import base64
import re
import time
from dataclasses import replace

import pytest
from stario import Relay
from tests.support.fixtures import add_account, signed_in_client, stored_blobs
from tests.support.page import DATASTAR, IDENTITY, next_data, upload

from app.catalog.open import open_catalog
from app.config import Config
from app.features.home.urls import HOME, HOME_LIVE
from app.files.store import add_files
from app.ingest.pipeline import IngestedFile
from app.ingest.progress import Progress, progress_changed


async def test_page_loads_with_a_strict_csp(client):
    r = await client.get(HOME.href())
    assert r.status_code == 200
    assert r.headers.get("content-type", "").startswith("text/html")
    csp = r.headers.get("content-security-policy") or ""
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    nonce = re.search(r"'nonce-([^']+)'", directives["script-src"])
    assert nonce is not None
    # Datastar's CSP mode: it reads the nonce from <html data-nonce> and runs
    # expressions as nonce'd scripts instead of through Function.
    assert f'<html lang="en" data-nonce="{nonce.group(1)}">' in r.text
    assert (await client.get(HOME.href())).headers.get("content-security-policy") != csp
    # Nothing is loaded from another host.
    for url in re.findall(r'(?:src|href)="([^"]*)"', r.text):
        assert url.startswith("/"), url
    assert re.search(r'<script type="module" src="/static/vendor/datastar\.[0-9a-f]+\.js">', r.text)
    assert re.search(r'<link rel="stylesheet" href="/static/style\.[0-9a-f]+\.css"/>', r.text)
    assert 'data-init="@get(&#39;/live?page=1' in r.text or "@get('/live?page=1" in r.text
    assert 'id="files"' in r.text and "No files yet" in r.text
    assert 'aria-live="polite"' in r.text and '<label for="picker"' in r.text


async def test_page_hands_files_too_large_for_signals_to_the_resumable_module(client, owner):
    r = await client.get(HOME.href())
    # Our own module, from our own origin (script-src 'self').
    assert re.search(r'<script type="module" src="/static/resumable\.[0-9a-f]+\.js">', r.text)
    panel = re.search(r'<div id="resumable"[^>]*>', r.text)
    assert panel is not None
    assert 'data-tus-endpoint="/tus"' in panel.group(0)
    assert f'data-account="{owner[0].id}"' in panel.group(0)
    # Appends of 64 MiB, under a 100 MB proxy cap and this server's 1 GiB body cap.
    assert f'data-append-bytes="{64 * 1024 * 1024}"' in panel.group(0)
    # The picker hands the module every file: its queue sends small ones in one
    # request each (to the form's action), the others resumably, and refuses a file
    # over the page's limit before sending it.
    assert "upload-files" in r.text
    assert 'data-url="/uploads"' in panel.group(0)
    assert 'data-max-file-bytes="' in panel.group(0)
    js = await client.get(re.search(r'src="(/static/resumable\.[0-9a-f]+\.js)"', r.text).group(1))
    assert js.status_code == 200 and "Upload-Offset" in js.text


async def test_appends_never_exceed_the_request_body_cap(config, tmp_path):
    small = replace(config, max_request_body_bytes=4 * 1024 * 1024)
    async with signed_in_client(small) as client:
        r = await client.get(HOME.href())
    assert f'data-append-bytes="{4 * 1024 * 1024}"' in r.text


async def test_live_stream_paints_then_repaints_after_upload_and_delete(client, config):
    async with client.stream("GET", HOME_LIVE.href(), headers=IDENTITY) as live:
        assert live.headers.get("content-type") == "text/event-stream"
        events = live.iter_events()
        assert '"_offline":false' in (await anext(events))["data"]
        assert 'id="progress"' in (await anext(events))["data"]
        assert "No files yet" in (await anext(events))["data"]

        file_id = await upload(client, "notes.txt", b"hello from curl")
        painted = await next_data(events, containing='id="files"')
        assert "notes.txt" in painted and f"/files/{file_id}?download=1" in painted
        assert "15 bytes" in painted and "text/plain" in painted and " UTC</time>" in painted

        r = await client.delete(f"/files/{file_id}", headers=DATASTAR)
        assert r.status_code == 204
        painted = await next_data(events, containing='id="files"')
        assert "notes.txt" not in painted and "No files yet" in painted
    assert stored_blobs(config) == []


async def test_a_signal_upload_from_the_page_repaints_every_stream(client):
    payload = {"files": [{"name": "a.txt", "contents": base64.b64encode(b"A").decode()}]}
    async with (
        client.stream("GET", HOME_LIVE.href(), headers=IDENTITY) as first,
        client.stream("GET", HOME_LIVE.href(), headers=IDENTITY) as second,
    ):
        streams = [first.iter_events(), second.iter_events()]
        for events in streams:
            await next_data(events, containing="No files yet")
        r = await client.post("/uploads", json=payload, headers=DATASTAR)
        assert r.status_code == 200 and "upload-results" in r.text
        for events in streams:
            assert "a.txt" in await next_data(events, containing='id="files"')


async def test_delete_removes_the_row_and_the_blob(client, config):
    keep = await upload(client, "keep.txt", b"keep me")
    gone = await upload(client, "gone.txt", b"delete me")
    assert len(stored_blobs(config)) == 2
    assert (await client.delete(f"/files/{gone}")).status_code == 204
    assert [p.name for p in stored_blobs(config)] == [keep]
    assert (await client.get(f"/files/{gone}")).status_code == 404
    listed = (await client.get("/api/files")).json()["files"]
    assert [f["name"] for f in listed] == ["keep.txt"]
    # Deleting again is a 404, not a second success.
    assert (await client.delete(f"/files/{gone}")).status_code == 404


@pytest.mark.parametrize("file_id", ["AAAAAAAAAAAAAAAAAAAAAA", "not-an-id", "..%2Fstowage.db"])
async def test_delete_unknown_id_is_404(client, file_id):
    r = await client.delete(f"/files/{file_id}")
    assert r.status_code == 404
    assert r.json() == {"error": "no such file"}


async def test_delete_from_another_site_is_refused(client, config):
    file_id = await upload(client, "a.txt", b"a")
    r = await client.delete(f"/files/{file_id}", headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    assert len(stored_blobs(config)) == 1


async def fill_catalog(config: Config, count: int, owner: str) -> None:
    """Rows straight into the catalog (no blobs): the list only reads rows."""
    db = await open_catalog(config)
    try:
        await add_files(
            db,
            [
                IngestedFile(f"{n:022d}", f"file-{n:04d}.txt", n, "0" * 64, "text/plain", None)
                for n in range(count)
            ],
            owner,
        )
    finally:
        await db.close()


async def test_a_thousand_files_are_paged_fifty_at_a_time(config):
    account, token = await add_account(config)
    await fill_catalog(config, 1000, account.id)
    async with signed_in_client(config, token) as client:
        first = await client.get(HOME.href())
        assert first.text.count('class="file"') == 50
        assert "1,000 files, showing 1–50" in first.text and "Page 1 of 20" in first.text
        assert 'href="/?page=2" rel="next"' in first.text
        # Same insert time for all: the newest rowid comes first.
        assert first.text.index("file-0999.txt") < first.text.index("file-0950.txt")

        last = await client.get(HOME.href(query={"page": 20}))
        assert last.text.count('class="file"') == 50 and "file-0000.txt" in last.text
        assert "@get('/live?page=20&" in last.text.replace("&#39;", "'")
        # Past the end, or nonsense, shows a real page.
        assert "Page 20 of 20" in (await client.get("/?page=999")).text
        assert "Page 1 of 20" in (await client.get("/?page=-3")).text

        async with client.stream("GET", HOME_LIVE.href(query={"page": 20}), headers=IDENTITY) as s:
            events = s.iter_events()
            painted = await next_data(events, containing='id="files"')
        assert painted.count('class="file"') == 50 and "file-0000.txt" in painted
        # A repaint is one page (under 1 KB a row before compression), not the catalog.
        assert len(painted) < 50_000


async def test_progress_is_published_at_most_four_times_a_second():
    relay: Relay[str] = Relay()
    progress = Progress(relay)
    ticks = 0
    async with relay.subscribe(progress_changed("someone")) as events:

        async def count() -> None:
            nonlocal ticks
            async for _ in events:
                ticks += 1

        counter = asyncio.create_task(count())
        with progress.track("big.bin", 1_000_000, "someone") as transfer:
            started = time.monotonic()
            while time.monotonic() - started < 1.0:
                transfer.add("big.bin", 1000)
                await asyncio.sleep(0.005)
            assert [t.label for t in progress.list_transfers("someone")] == ["big.bin"]
        assert progress.list_transfers("someone") == []
        await asyncio.sleep(0.35)
        counter.cancel()
    # ~200 changes in a second became at most one publish per 250 ms (plus the last).
    assert 3 <= ticks <= 6
    progress.close()


async def test_progress_is_told_only_to_its_own_account():
    relay: Relay[str] = Relay()
    progress = Progress(relay, interval=0.01)
    async with relay.subscribe(progress_changed("alice")) as alice_events:
        with progress.track("bob.bin", 10, "bob") as transfer:
            transfer.add("bob.bin", 5)
            await asyncio.sleep(0.05)
            assert progress.list_transfers("alice") == []
            assert [t.label for t in progress.list_transfers("bob")] == ["bob.bin"]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await alice_events.receive()
        with progress.track("alice.bin", 10, "alice"):
            async with asyncio.timeout(1):
                assert (await alice_events.receive())[0] == progress_changed("alice")
    progress.close()


async def test_unfinished_resumable_uploads_show_as_paused_in_every_page(client):
    tus = {"tus-resumable": "1.0.0"}
    created = await client.post(
        "/tus/",
        headers={**tus, "upload-length": "1000", "upload-metadata": "filename aG9saWRheS5tb3Y="},
    )
    url = created.headers.get("location")
    octets = {**tus, "content-type": "application/offset+octet-stream"}
    r = await client.request(
        "PATCH", url, content=b"x" * 400, headers={**octets, "upload-offset": "0"}
    )
    assert r.status_code == 204
    async with client.stream("GET", HOME_LIVE.href(), headers=IDENTITY) as live:
        events = live.iter_events()
        painted = await next_data(events, containing='id="progress"')
        assert "Paused" in painted and "holiday.mov" in painted
        assert "400 bytes of 1000 bytes (40%)" in painted
    page = (await client.get(HOME.href())).text
    assert "Paused <strong>holiday.mov</strong>" in page
    r = await client.request(
        "PATCH", url, content=b"x" * 600, headers={**octets, "upload-offset": "400"}
    )
    assert r.status_code == 204
    # Stored: no longer paused, in the document or the stream.
    assert "holiday.mov</strong>" not in (await client.get(HOME.href())).text
    async with client.stream("GET", HOME_LIVE.href(), headers=IDENTITY) as live:
        painted = await next_data(live.iter_events(), containing='id="progress"')
        assert "Paused" not in painted


async def test_a_file_request_page_hands_large_files_to_the_resumable_module(client):
    made = (await client.post("/api/requests", json={"label": "Scans"})).json()["request"]
    token = made["url"].removeprefix("/r/")
    page = (await client.get(made["url"])).text
    assert re.search(r'<script type="module" src="/static/resumable\.[0-9a-f]+\.js">', page)
    panel = re.search(r'<div id="resumable"[^>]*>', page)
    assert panel is not None
    assert f'data-tus-endpoint="/r/{token}/tus"' in panel.group(0)
    # Remembered in the uploader's browser under the request's id, not its token.
    assert f'data-account="request-{made["id"]}"' in panel.group(0)
    assert 'data-links="false"' in panel.group(0)
