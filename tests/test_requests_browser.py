"""A file request in real Chromium against a real `stowage serve`: the owner makes a
request on the page; a fresh context with no cookies opens its link and uploads a
file with the picker; the file appears live on the owner's page, tagged with the
request's label, and the request's count goes up. Every page's console is watched:
a CSP violation or a script error fails the test."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, RunningServer, require_chromium, start_server
from tests.test_shares_browser import sign_in, watch_console

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path)


def test_a_fresh_browser_uploads_through_a_request_and_the_owner_sees_it_live(
    server: RunningServer, tmp_path: Path
) -> None:
    require_chromium()
    source = tmp_path / "tax return.pdf"
    source.write_bytes(b"%PDF-1.4\n" + b"0" * 20_000)
    too_big = tmp_path / "too big.bin"
    too_big.write_bytes(b"1" * (2 * 1024 * 1024 + 1))
    with server.http() as http:
        assert http.put("/uploads/owners-own.txt", content=b"private").is_success

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            owner_context = browser.new_context(viewport={"width": 1100, "height": 900})
            owner = owner_context.new_page()
            owner_errors = watch_console(owner)
            sign_in(owner, server)

            form = owner.locator("#request-form")
            form.get_by_label("What to ask for").fill("Tax papers")
            form.get_by_label("Most files (optional)").fill("3")
            form.get_by_label("Largest file, MiB (optional)").fill("2")
            form.get_by_role("button", name="Create request").click()
            url = owner.locator("#new-request-url")
            expect(url).to_contain_text("/r/")
            link = url.inner_text().strip()
            assert link.startswith(server.base_url + "/r/")
            requests = owner.locator("#requests")
            expect(requests).to_contain_text("Tax papers")
            expect(requests).to_contain_text("0 of 3 files received")

            guest_context = browser.new_context()
            assert guest_context.cookies() == []
            guest = guest_context.new_page()
            guest_errors = watch_console(guest)
            guest.goto(link)
            expect(guest.locator("h1")).to_have_text("Tax papers")
            expect(guest.locator(".request-owner")).to_have_text("owner")
            expect(guest.locator("#limits")).to_contain_text("3 more files (of 3)")
            expect(guest.locator("body")).not_to_contain_text("owners-own.txt")

            # Over the request's per-file cap: refused in the browser, nothing sent.
            guest.locator("#picker").set_input_files(str(too_big))
            expect(guest.locator("#upload-error")).to_contain_text("larger than this request")

            guest.locator("#picker").set_input_files(str(source))
            results = guest.locator("#upload-results")
            expect(results).to_contain_text("Stored 1 file")
            expect(results).to_contain_text("tax return.pdf")
            assert results.locator("a").count() == 0  # nothing to open
            expect(guest.locator("#upload-error")).to_have_text("")

            # The owner's page: the file, tagged, and the count, live.
            row = owner.locator("#files li", has_text="tax return.pdf")
            expect(row).to_be_visible(timeout=10_000)
            expect(row.locator(".request-tag")).to_have_text("via Tax papers")
            expect(requests).to_contain_text("1 of 3 files received", timeout=10_000)
            assert owner_errors == []
            assert guest_errors == []
        finally:
            browser.close()
