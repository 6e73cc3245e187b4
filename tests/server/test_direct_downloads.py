"""Direct downloads on S3 (`--s3-direct all`, the default), against a real SeaweedFS: a
download the request may read answers 302 to a short-lived pre-signed GET whose
overrides make the store present the file as the node would (type, RFC 6266 name,
attachment for anything that could run script, Cache-Control). What must stay with
the node (a link with a download limit, HEAD, 304, previews our pages embed,
`--s3-direct uploads|none`) is still sent by the node."""

import asyncio
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from tests.support.fixtures import (
    RunningServer,
    add_account,
    s3_config,
    start_server,
)
from tests.support.presigned import SHORTEST_SECONDS, seconds_until_expired
from tests.support.seaweed import Seaweed

from app.config import Config
from app.storage.backends import open_store
from app.storage.s3.direct import DirectBucket
from app.storage.s3.store import S3Store

pytestmark = pytest.mark.slow
MiB = 1024 * 1024


def _flags(config: Config, seaweed: Seaweed, *extra: str) -> list[str]:
    storage = f"s3://{config.storage.bucket}/{config.storage.prefix}"
    return ["--storage", storage, "--s3-endpoint-url", seaweed.endpoint_url, *extra]


@pytest.fixture
def direct_server(tmp_path: Path, seaweed: Seaweed) -> Iterator[tuple[RunningServer, Config]]:
    """`stowage serve` on S3 with the default `--s3-direct all`."""
    config = s3_config(tmp_path / "server-data", seaweed)
    for running in start_server(tmp_path, *_flags(config, seaweed), env=seaweed.env):
        yield running, config


def _upload(server: RunningServer, name: str, body: bytes) -> dict:
    with server.http(timeout=60) as http:
        made = http.put("/uploads/" + quote(name), content=body)
    assert made.status_code == 201, made.text
    return made.json()["files"][0]


def _curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=60, check=True)


def test_a_download_is_a_302_that_curl_follows_to_the_bytes(
    direct_server: tuple[RunningServer, Config], seaweed: Seaweed, tmp_path: Path
) -> None:
    server, _ = direct_server
    body = os.urandom(9 * MiB + 123)
    name = "résumé été 2026.bin"
    entry = _upload(server, name, body)
    with server.http() as http:
        found = http.get(entry["url"])
    assert found.status_code == 302
    location = found.headers["location"]
    assert location.startswith(seaweed.endpoint_url + "/")
    assert entry["id"] in location and name.split()[0] not in location
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
    assert found.headers["cache-control"] == "no-store"
    assert int(found.headers["content-length"]) == len(found.content) > 0
    assert "etag" not in found.headers  # the validators describe the file, not this

    # curl -L: the Authorization header stays behind (another host), the bytes arrive.
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run(
        ["curl", "-sS", "-L", "-OJ", "-D", "-", *server.curl_auth, server.base_url + entry["url"]],
        cwd=out, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    headers = done.stdout.decode().lower()
    assert "http/1.1 302" in headers and "http/1.1 200" in headers
    saved = list(out.iterdir())
    # curl -J takes the ASCII `filename` (it ignores RFC 8187 `filename*`, checked below).
    assert [p.name for p in saved] == ["resume ete 2026.bin"]
    assert hashlib.sha256(saved[0].read_bytes()).hexdigest() == entry["sha256"]
    final = headers.rsplit("http/1.1 200", 1)[1]
    assert "content-type: application/octet-stream" in final
    assert "content-disposition: attachment;" in final
    assert "filename*=utf-8''r%c3%a9sum%c3%a9%20%c3%a9t%c3%a9%202026.bin" in final
    assert "cache-control: private, no-cache" in final

    # A Range goes through the redirect: the client re-sends it to the store.
    part = _curl("-L", "-D", "-", "-o", str(tmp_path / "part"), "-r", "1000-1999",
                 *server.curl_auth, server.base_url + entry["url"])  # fmt: skip
    assert "http/1.1 206" in part.stdout.decode().lower()
    assert (tmp_path / "part").read_bytes() == body[1000:2000]
    with server.http(follow_redirects=True) as http:
        tail = http.get(entry["url"], headers={"range": f"bytes={len(body) - 7}-"})
        assert tail.status_code == 206 and tail.content == body[-7:]
        # What the node answers itself: HEAD, 304 and 416 never redirect.
        head = http.head(entry["url"])
        assert head.status_code == 200 and head.headers["etag"] == f'"{entry["sha256"]}"'
        assert int(head.headers["content-length"]) == len(body)
        same = http.get(entry["url"], headers={"if-none-match": head.headers["etag"]})
        assert same.status_code == 304 and same.history == []
        beyond = http.get(entry["url"], headers={"range": f"bytes={len(body)}-"})
        assert beyond.status_code == 416 and beyond.history == []


def test_markup_comes_back_as_an_attachment_with_its_sniffed_type(
    direct_server: tuple[RunningServer, Config],
) -> None:
    """The store cannot send our sandboxing CSP or nosniff: HTML and SVG are
    attachments (as on the node), and so are text and PDF, which the node shows
    inline only under those headers. Images stay inline."""
    server, _ = direct_server
    cases = {
        "page.html": (b"<!doctype html><html><script>alert(1)</script></html>", "text/html"),
        "icon.svg": (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/svg+xml",
        ),
        "notes.txt": (b"just words\n" * 10, "text/plain; charset=utf-8"),
        "doc.pdf": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
                    "application/pdf"),
        "pixel.gif": (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01"
                      b"\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
                      "image/gif"),
    }  # fmt: skip
    with server.http(follow_redirects=True) as http:
        for name, (body, served) in cases.items():
            entry = _upload(server, name, body)
            got = http.get(entry["url"])
            assert [r.status_code for r in got.history] == [302], name
            assert got.status_code == 200 and got.content == body, name
            assert got.headers["content-type"] == served, name
            expected = "inline" if name == "pixel.gif" else "attachment"
            assert got.headers["content-disposition"].startswith(expected + ";"), name
            # ?download=1 makes even an image an attachment.
            forced = http.get(entry["url"], params={"download": "1"})
            assert forced.headers["content-disposition"].startswith("attachment;"), name


def _share(server: RunningServer, file_id: str, **settings: object) -> dict:
    with server.http() as http:
        made = http.post(f"/api/files/{file_id}/shares", json=settings)
    assert made.status_code == 201, made.text
    return made.json()["share"]


def _share_state(server: RunningServer, share_id: str) -> tuple[int, list[dict]]:
    with server.http() as http:
        shares = {s["id"]: s for s in http.get("/api/shares").json()["shares"]}
        log = http.get(f"/api/shares/{share_id}/downloads").json()["downloads"]
    return shares[share_id]["downloads"], log


def test_links_without_a_limit_redirect_and_links_with_one_count_through_the_node(
    direct_server: tuple[RunningServer, Config],
) -> None:
    server, _ = direct_server
    body = os.urandom(2 * MiB + 5)
    entry = _upload(server, "shared.bin", body)
    free = _share(server, entry["id"])
    limited = _share(server, entry["id"], max_downloads=2)
    with httpx.Client(base_url=server.base_url, timeout=30) as anyone:
        moved = anyone.get(free["url"] + "/file")
        assert moved.status_code == 302
        got = anyone.get(free["url"] + "/file", follow_redirects=True)
        assert got.content == body and got.history[0].status_code == 302
        # A preview our pages embed stays with the node (their CSP: our origin only).
        preview = anyone.get(free["url"] + "/file", params={"preview": "1"})
        assert preview.status_code in (200, 404) and preview.history == []
        # An <img>/<video> of a page is a subresource: the node sends it.
        embedded = anyone.get(free["url"] + "/file", headers={"sec-fetch-dest": "video"})
        assert embedded.status_code == 200 and embedded.content == body

        counted = anyone.get(limited["url"] + "/file")
        assert counted.status_code == 200 and counted.content == body
        assert "etag" in counted.headers
        anyone.get(limited["url"] + "/file")
        assert anyone.get(limited["url"] + "/file").status_code == 410
    # The log's rows are written by a task, in batches: waited for, up to 10 s.
    deadline = time.monotonic() + 10
    while True:
        count, log = _share_state(server, limited["id"])
        free_count, free_log = _share_state(server, free["id"])
        settled = len(log) == 2 and all(row["completed"] for row in log) and len(free_log) == 3
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert count == 2 and len(log) == 2 and all(row["completed"] for row in log)
    count, log = free_count, free_log
    # Handed out twice (302s), sent once by the node (the embedded one).
    assert count == 3 and len(log) == 3


@pytest.mark.parametrize("setting", ["uploads", "none"])
def test_direct_downloads_off_means_the_node_sends_the_bytes(
    tmp_path: Path, seaweed: Seaweed, setting: str
) -> None:
    config = s3_config(tmp_path / "server-data", seaweed)
    flags = _flags(config, seaweed, "--s3-direct", setting)
    for server in start_server(tmp_path, *flags, env=seaweed.env):
        body = os.urandom(MiB + 1)
        entry = _upload(server, "proxied.bin", body)
        with server.http() as http:
            got = http.get(entry["url"])
        assert got.status_code == 200 and got.content == body
        assert got.headers["etag"] == f'"{entry["sha256"]}"'


def test_an_expired_url_is_refused_by_the_store(
    direct_server: tuple[RunningServer, Config],
) -> None:
    server, config = direct_server
    entry = _upload(server, "soon.bin", b"gone in a moment")

    async def signed_for_a_moment() -> str:
        store = await open_store(config)
        try:
            assert isinstance(store, S3Store)
            return await DirectBucket(store).get_url(
                entry["id"],
                content_type="application/octet-stream",
                content_disposition="attachment",
                cache_control="no-store",
                seconds=SHORTEST_SECONDS,
            )
        finally:
            await store.aclose()

    url = asyncio.run(signed_for_a_moment())
    assert httpx.get(url).content == b"gone in a moment"
    time.sleep(seconds_until_expired(url))
    late = httpx.get(url)
    assert late.status_code == 403 and "expired" in late.text.lower()
    # Edited to another key (another file of the bucket): refused too.
    other = _upload(server, "other.bin", b"another file")
    forged = httpx.get(url.replace(entry["id"], other["id"]))
    assert forged.status_code == 403


def test_another_account_gets_no_url_for_a_file_not_its_own(
    direct_server: tuple[RunningServer, Config],
) -> None:
    server, _ = direct_server
    entry = _upload(server, "mine.bin", b"private bytes")
    _, token = asyncio.run(
        add_account(Config.load({"data_dir": str(server.data_dir)}, environ={}), "other")
    )
    with httpx.Client(
        base_url=server.base_url, headers={"authorization": f"Bearer {token}"}
    ) as other:
        refused = other.get(entry["url"])
        assert refused.status_code == 404 and "location" not in refused.headers
    with httpx.Client(base_url=server.base_url) as anonymous:
        refused = anonymous.get(entry["url"])
        assert refused.status_code in (401, 303, 404) and "x-amz" not in refused.headers.get(
            "location", ""
        )
