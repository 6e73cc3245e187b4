"""Chromium downloads a file on S3 storage (SeaweedFS) from the Files screen's Download
link: the node answers 302 to a pre-signed GET, the store sends the bytes with the
node's Content-Disposition, and the download arrives whole with its own name."""

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from tests.support.browser import browser, open_page, row  # noqa: F401
from tests.support.fixtures import RunningServer, s3_config, start_server
from tests.support.seaweed import Seaweed

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path, seaweed: Seaweed) -> Iterator[RunningServer]:
    config = s3_config(tmp_path / "server-data", seaweed)
    flags = ["--storage", f"s3://{config.storage.bucket}/{config.storage.prefix}"]
    flags += ["--s3-endpoint-url", seaweed.endpoint_url]  # --s3-direct all: the default
    yield from start_server(tmp_path, *flags, env=seaweed.env)


def test_the_download_link_fetches_from_the_store_with_the_right_name(
    browser,  # noqa: F811
    server: RunningServer,
    seaweed: Seaweed,
    tmp_path: Path,
) -> None:
    body = os.urandom(5 * 1024 * 1024 + 11)
    name = "Überblick März.bin"
    with server.http() as http:
        made = http.put("/uploads/" + quote(name), content=body)
        assert made.status_code == 201, made.text
        assert http.get(made.json()["files"][0]["url"]).status_code == 302
    page, console = open_page(browser, server)
    fetched: list[tuple[str, int]] = []
    page.on("response", lambda r: fetched.append((r.url, r.status)))
    with page.expect_download() as waiting:
        row(page, name).get_by_role("link", name=f"Download {name}").click()
    download = waiting.value
    saved = tmp_path / "saved.bin"
    download.save_as(saved)
    assert download.suggested_filename == name
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == hashlib.sha256(body).hexdigest()
    # The bytes came from the store's own address, not the node's.
    assert download.url.startswith(seaweed.endpoint_url + "/"), (download.url, fetched)
    assert console.errors == []
    page.context.close()
