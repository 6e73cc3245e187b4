"""A share link in real Chromium against a real `stowage serve`: the owner makes a
link with a password on the page; a fresh context with no cookies opens it, gives
the password and downloads the very same bytes; the owner's count goes up live.
Every page's console is watched: a CSP violation or a script error fails the test."""

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from tests.support.browser import sign_in_until_painted as sign_in
from tests.support.browser import watch_console
from tests.support.fixtures import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RunningServer,
    require_chromium,
    start_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path)


def test_a_fresh_browser_opens_a_password_link_and_downloads_the_same_bytes(
    server: RunningServer, tmp_path: Path
) -> None:
    require_chromium()
    source = tmp_path / "holiday photos.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    with server.http() as http:
        assert http.put("/uploads/holiday photos.bin", content=source.read_bytes()).is_success

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            owner_context = browser.new_context(viewport={"width": 1100, "height": 900})
            owner = owner_context.new_page()
            owner_errors = watch_console(owner)
            sign_in(owner, server)

            owner.get_by_role("link", name="Share holiday photos.bin").click()
            form = owner.locator("#share-form")
            expect(form).to_be_visible()
            expect(form.locator(".share-what")).to_contain_text("holiday photos.bin")
            form.get_by_label("Password (optional)").fill("open sesame")
            form.get_by_label("Download limit (optional)").fill("3")
            form.get_by_role("button", name="Create link").click()
            url = owner.locator("#new-share-url")
            expect(url).to_contain_text("/s/")
            link = url.inner_text().strip()
            assert link.startswith(server.base_url + "/s/")  # the public origin
            path = link.removeprefix(server.base_url)
            # The Shared screen, in its own tab, lists it and counts live.
            shared = owner_context.new_page()
            shared_errors = watch_console(shared)
            shared.goto(server.base_url + "/shared")
            shares = shared.locator("#shares")
            expect(shares).to_contain_text("holiday photos.bin")
            expect(shares).to_contain_text("0 of 3 downloads")

            # Someone else: a new context, no cookies, no account.
            guest_context = browser.new_context(accept_downloads=True)
            assert guest_context.cookies() == []
            guest = guest_context.new_page()
            guest_errors = watch_console(guest)
            guest.goto(server.base_url + path)
            expect(guest.get_by_role("heading", name="This link needs a password")).to_be_visible()
            expect(guest.locator("body")).not_to_contain_text("holiday photos.bin")
            guest.get_by_label("Password").fill("wrong password")
            guest.get_by_role("button", name="Open").click()
            expect(guest.locator("#share-error")).to_have_text("Wrong password.")
            guest.get_by_label("Password").fill("open sesame")
            guest.get_by_role("button", name="Open").click()
            expect(guest.locator("h1")).to_have_text("holiday photos.bin")
            with guest.expect_download() as download_info:
                guest.get_by_role("link", name="Download").click()
            download = download_info.value
            assert download.suggested_filename == "holiday photos.bin"
            saved = tmp_path / "downloaded.bin"
            download.save_as(saved)
            digest = hashlib.sha256(saved.read_bytes()).hexdigest()
            assert digest == hashlib.sha256(source.read_bytes()).hexdigest()

            # The owner's page counts it, live.
            expect(shares).to_contain_text("1 of 3 downloads", timeout=10_000)
            # The one wrong password was answered 401, which Chromium logs.
            wrong_password = "the server responded with a status of 401"
            assert owner_errors == [] and shared_errors == []
            assert [e for e in guest_errors if wrong_password not in e] == []
            assert len(guest_errors) <= 1
        finally:
            browser.close()
