"""A file request in real Chromium against a real `stowage serve`: the owner makes a
request on the page; a fresh context with no cookies opens its link and uploads a
file with the picker; the file appears live on the owner's page, tagged with the
request's label, and the request's count goes up. Every page's console is watched:
a CSP violation or a script error fails the test."""

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
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
            files = owner_context.new_page()  # the Files screen, in its own tab
            owner_errors += watch_console(files)
            files.goto(server.base_url + "/")
            owner.goto(server.base_url + "/requests")

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
            queue = guest.locator("#resumable .transfer")
            expect(queue.filter(has_text="too big.bin")).to_contain_text(
                "Not sent: too big.bin is 2,097,153 bytes; the limit is 2,097,152 bytes a file."
            )

            guest.locator("#picker").set_input_files(str(source))
            stored = queue.filter(has_text="tax return.pdf")
            expect(stored).to_have_attribute("data-state", "done")
            assert stored.locator("a").count() == 0  # nothing to open
            expect(queue).to_have_count(1)  # the refusal went with the new choice
            expect(guest.locator("#limits")).to_contain_text("2 more files (of 3)")

            # The owner's screens, live: the count on Requests, the file, tagged, on Files.
            expect(requests).to_contain_text("1 of 3 files received", timeout=10_000)
            row = files.locator("#files li", has_text="tax return.pdf")
            expect(row).to_be_visible(timeout=10_000)
            expect(row.locator(".request-tag")).to_have_text("via Tax papers")
            assert owner_errors == []
            assert guest_errors == []
        finally:
            browser.close()


def test_the_request_page_shows_a_full_link_and_the_owner_cancels_an_unfinished_upload(
    tmp_path: Path,
) -> None:
    """A link holding as many unfinished uploads as it may: the uploader's page says
    why its file is not taken; the owner sees each unfinished upload, cancels one from
    the page, and the uploader's retry goes through."""
    require_chromium()
    MAX_UNFINISHED_PER_REQUEST = 8  # app/features/requests/handlers.py

    # Signals of at most 64 KiB: the picked file goes resumable (assets/resumable.js).
    servers = start_server(tmp_path, "--max-signals-bytes", "65536")
    server = next(servers)
    source = tmp_path / "scan.tif"
    source.write_bytes(b"II*\x00" + b"1" * 200_000)
    try:
        with server.http() as http:
            made = http.post("/api/requests", json={"label": "Scans"})
            assert made.status_code == 201, made.text
        link = server.base_url + made.json()["request"]["url"]
        header_only = {"tus-resumable": "1.0.0", "upload-length": "1000"}
        for n in range(MAX_UNFINISHED_PER_REQUEST):
            with httpx.Client() as stranger:  # `/tus/` is routed as a connection's first
                name = base64.b64encode(f"{n}.bin".encode()).decode()
                metadata = {"upload-metadata": f"filename {name}"}
                sent = stranger.post(f"{link}/tus/", headers={**header_only, **metadata})
                assert sent.status_code == 201, sent.text

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                guest = browser.new_context().new_page()
                guest_errors = watch_console(guest)
                guest.goto(link)
                guest.locator("#picker").set_input_files(str(source))
                row = guest.locator("#resumable .transfer", has_text="scan.tif")
                expect(row).to_have_attribute("data-state", "failed", timeout=10_000)
                expect(row).to_contain_text(
                    f"Not stored: this request already holds {MAX_UNFINISHED_PER_REQUEST}"
                    " unfinished uploads"
                )

                owner = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
                owner_errors = watch_console(owner)
                sign_in(owner, server)
                owner.goto(server.base_url + "/requests")  # the Requests screen
                waiting = owner.locator("#requests .request-upload")
                expect(waiting).to_have_count(MAX_UNFINISHED_PER_REQUEST)
                expect(waiting.first).to_contain_text("0 bytes of 1000 bytes so far")
                owner.once("dialog", lambda dialog: dialog.accept())
                waiting.first.get_by_role("button", name="Cancel").click()
                expect(waiting).to_have_count(MAX_UNFINISHED_PER_REQUEST - 1)

                row.get_by_role("button", name="Retry").click()
                expect(row).to_have_attribute("data-state", "done", timeout=10_000)
                owner.goto(server.base_url + "/")
                expect(owner.locator("#files li", has_text="scan.tif")).to_be_visible()
                # Chromium logs the refused creation itself; nothing else went wrong.
                assert [e for e in guest_errors if "409" not in e] == []
                assert owner_errors == []
            finally:
                browser.close()
    finally:
        servers.close()
