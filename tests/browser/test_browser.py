"""The page in real Chromium (Debian's /usr/bin/chromium) against a real `stowage serve`.

Every test watches the console: a Content-Security-Policy violation or a script
error fails it.
"""

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from tests.support.browser import open_page, open_tab, row
from tests.support.fixtures import (
    PASSWORD,
    ROOT,
    RunningServer,
    start_server,
    stored_blobs,
)

from app.config import Config

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MiB = 1024 * 1024


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_config(server: RunningServer) -> Config:
    return Config.load({"data_dir": str(server.data_dir)}, environ={})


def test_small_files_picked_or_dropped_show_results_and_rows(browser, server, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello from the picker\n")
    photo = tmp_path / "tiny.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    page, console = open_page(browser, server)
    expect(page.locator("#files")).to_contain_text("No files yet")

    page.set_input_files("#picker", [str(notes), str(photo)])
    results = page.locator("#upload-results")
    expect(results).to_contain_text("Stored 2 files.")
    expect(results.locator(".result", has_text="tiny.png")).to_contain_text("image/png")
    expect(results.locator(".result", has_text="notes.txt")).to_contain_text("22 bytes")
    expect(row(page, "notes.txt")).to_contain_text("text/plain")
    expect(row(page, "tiny.png")).to_contain_text("2 KiB")
    expect(page.locator("#picker")).to_be_enabled()

    # A file dropped anywhere on the page goes the same way.
    page.evaluate(
        """() => {
            const list = new DataTransfer();
            list.items.add(new File(['dropped bytes'], 'dropped.txt', {type: 'text/plain'}));
            document.body.dispatchEvent(new DragEvent('drop', {dataTransfer: list, bubbles: true}));
        }"""
    )
    expect(row(page, "dropped.txt")).to_contain_text("13 bytes")
    expect(results).to_contain_text("Stored 1 file.")
    assert console.errors == []


def test_large_upload_shows_progress_everywhere_then_the_row_and_downloads_intact(
    browser, server, tmp_path
):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(30 * MiB))
    uploader, uploader_console = open_page(browser, server)
    watcher, watcher_console = open_page(browser, server, width=375)

    # Loopback is too fast to watch: hold the uploading tab to ~12 MB/s.
    cdp = uploader.context.new_cdp_session(uploader)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 12e6},
    )
    uploader.set_input_files("#picker", str(big))
    # Too large for signals: a resumable upload, with its own row in this tab (the
    # picker stays free for more).
    mine = uploader.locator("#resumable .transfer", has_text="big.bin")
    expect(mine).to_have_attribute("data-state", "sending")
    expect(uploader.locator("#picker")).to_be_enabled()
    for page in (uploader, watcher):
        bar = page.locator("#progress .transfer", has_text="big.bin")
        expect(bar).to_contain_text("of 30 MiB", timeout=5000)
        expect(bar.locator("progress")).to_have_attribute("value", re.compile(r"^\d+$"))
    watcher.screenshot(path=tmp_path / "watcher-during-upload.png")

    # The bars move as bytes arrive; then they go and the row comes.
    expect(mine).to_have_attribute("data-state", "done", timeout=20000)
    expect(mine).to_contain_text("Stored · 30 MiB")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
             "downloadThroughput": -1, "uploadThroughput": -1})  # fmt: skip
    for page in (uploader, watcher):
        expect(row(page, "big.bin")).to_contain_text("30 MiB")
        expect(page.locator("#progress .transfer")).to_have_count(0)
    expect(uploader.locator("#picker")).to_be_enabled()

    with uploader.expect_download() as download:
        row(uploader, "big.bin").get_by_role("link", name="Download big.bin").click()
    saved = tmp_path / "downloaded.bin"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "big.bin"
    assert sha256(saved) == sha256(big)

    uploader.screenshot(path=tmp_path / "page-after-uploads.png", full_page=True)
    assert (tmp_path / "page-after-uploads.png").stat().st_size > 10_000

    # Delete on one page; the other sees it go.
    uploader.on("dialog", lambda dialog: dialog.accept())
    row(uploader, "big.bin").get_by_role("link", name="Delete big.bin").click()
    expect(row(watcher, "big.bin")).to_have_count(0)
    expect(watcher.locator("#files")).to_contain_text("No files yet")
    assert stored_blobs(data_config(server)) == []
    assert uploader_console.errors == [] and watcher_console.errors == []


def test_oversize_files_show_readable_errors_and_store_nothing(browser, tmp_path):
    small_cap = tmp_path / "over-file-cap.bin"  # travels as signals; the handler refuses it
    small_cap.write_bytes(os.urandom(100_000))
    # Each fits as signals, together they do not: a streamed form Stario refuses unread.
    body_cap = [tmp_path / "over-body-cap-1.bin", tmp_path / "over-body-cap-2.bin"]
    for part in body_cap:
        part.write_bytes(os.urandom(200_000))
    # Too large for signals alone: a resumable upload, refused at creation.
    resumable = tmp_path / "over-file-cap-resumable.bin"
    resumable.write_bytes(os.urandom(400_000))
    for server in start_server(
        tmp_path, "--max-file-bytes", "50000", "--max-request-body-bytes", "300000"
    ):
        # Failed loads are logged by Chromium; a failed connection also makes
        # Datastar's action reject (FetchFailed) after it has told the page.
        page, console = open_page(
            browser,
            server,
            expected=("status of 413", "status of 507", "ERR_CONNECTION_RESET", "FetchFailed"),
        )

        page.set_input_files("#picker", str(small_cap))
        expect(page.locator("#upload-results")).to_contain_text(
            "Upload refused (413): over-file-cap.bin is larger than the 48.8 KiB limit"
        )

        page.set_input_files("#picker", [str(part) for part in body_cap])
        error = page.locator("#upload-error")
        expect(error).to_have_text(
            "Not stored: 2 files — larger than this server accepts "
            "(at most 48.8 KiB per file and 293 KiB per upload; HTTP 413)."
        )
        expect(page.locator("#upload-results")).to_be_empty()
        expect(page.locator("#picker")).to_be_enabled()

        page.set_input_files("#picker", str(resumable))
        refused = page.locator("#resumable .transfer", has_text=resumable.name)
        expect(refused).to_have_attribute("data-state", "failed")
        expect(refused).to_contain_text("Not stored: ")
        expect(refused).to_contain_text("(HTTP 413)")
        refused.get_by_role("button", name=f"Dismiss {resumable.name}").click()
        expect(refused).to_have_count(0)
        expect(page.locator("#files")).to_contain_text("No files yet")
        page.screenshot(path=tmp_path / "oversize.png")

        # Any other refusal, and a connection that fails, are told in words too.
        tiny = tmp_path / "tiny.txt"
        tiny.write_text("tiny")
        page.route("**/uploads", lambda route: route.fulfill(status=507, body="full"))
        page.set_input_files("#picker", str(tiny))
        expect(error).to_have_text("Not stored: tiny.txt — the server answered HTTP 507.")
        page.unroute("**/uploads")
        page.route("**/uploads", lambda route: route.abort("connectionreset"))
        page.set_input_files("#picker", str(tiny))
        expect(error).to_contain_text("Not stored: tiny.txt — the upload did not reach the server")
        expect(page.locator("#picker")).to_be_enabled()
        assert stored_blobs(data_config(server)) == []
        assert console.errors == [], console.errors


# Records, from now on, every text or attribute on the page that holds one of `names`,
# and every upload progress bar (`.transfer`) that appears: a MutationObserver sees
# even what a repaint shows and takes away again between two looks from the test.
WATCH = """(names) => {
    window.leaks = [];
    window.bars = [];
    const check = (text) => {
        for (const name of names) if (text && text.includes(name)) window.leaks.push(name);
    };
    check(document.documentElement.outerHTML);
    new MutationObserver((records) => {
        for (const r of records) {
            check(r.oldValue);
            if (r.type === 'characterData') check(r.target.data);
            else if (r.type === 'attributes') check(r.target.getAttribute(r.attributeName));
            else for (const node of r.addedNodes) {
                check(node.nodeType === 1 ? node.outerHTML : node.textContent);
                if (node.nodeType === 1 && (node.matches('.transfer')
                        || node.querySelector('.transfer'))) window.bars.push(node.outerHTML);
            }
        }
    }).observe(document, {subtree: true, childList: true, characterData: true,
                          characterDataOldValue: true, attributes: true,
                          attributeOldValue: true});
}"""


def add_user(server: RunningServer, name: str) -> None:
    """`stowage users add` while the server runs, the password on stdin."""
    subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "add", name, "--data-dir", str(server.data_dir)],
        input=PASSWORD + "\n", text=True, cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip


def upload_through_picker(page: Page, path: Path) -> None:
    page.set_input_files("#picker", str(path))
    expect(page.locator("#upload-results")).to_contain_text("Stored 1 file.", timeout=20000)
    expect(row(page, path.name)).to_be_visible()


def test_two_accounts_never_see_each_others_files_or_uploads(browser, server, tmp_path):
    add_user(server, "bob")
    mine = {name: tmp_path / name for name in ("owner-notes.txt", "owner-late.txt")}
    bobs = {name: tmp_path / name for name in ("bob-notes.txt", "bob-big.bin")}
    for path in (*mine.values(), bobs["bob-notes.txt"]):
        path.write_text(f"{path.name} belongs to its account\n")
    bobs["bob-big.bin"].write_bytes(os.urandom(30 * MiB))

    owner, owner_console = open_page(browser, server)
    bob, bob_console = open_page(browser, server, name="bob")
    bob_tab, bob_tab_console = open_tab(bob, server)
    owner.evaluate(WATCH, list(bobs))
    for page in (bob, bob_tab):
        page.evaluate(WATCH, list(mine))

    # Each stores a file; each list shows its own, and only that.
    upload_through_picker(owner, mine["owner-notes.txt"])
    upload_through_picker(bob, bobs["bob-notes.txt"])
    expect(row(bob_tab, "bob-notes.txt")).to_be_visible()
    for page in (owner, bob, bob_tab):
        expect(page.locator("#files li.file")).to_have_count(1)
        expect(page.locator("#progress .transfer")).to_have_count(0)
    owner.evaluate("window.bars = []")  # the owner's own upload may have shown one

    # Bob's slow upload: his other tab shows its bar, the owner's page never shows one.
    cdp = bob.context.new_cdp_session(bob)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 12e6},
    )
    bob.set_input_files("#picker", str(bobs["bob-big.bin"]))
    bar = bob_tab.locator("#progress .transfer", has_text="bob-big.bin")
    expect(bar).to_contain_text("of 30 MiB", timeout=5000)
    expect(bar.locator("progress")).to_have_attribute("value", re.compile(r"^\d+$"))
    looks = 0
    while bar.count():
        assert owner.locator("#progress .transfer").count() == 0
        looks += 1
        time.sleep(0.1)
    assert looks >= 3, "the upload ended before the owner's page was looked at"
    # Too large for signals, it went resumable: its row in Bob's tab says so.
    bobs_row = bob.locator("#resumable .transfer", has_text="bob-big.bin")
    expect(bobs_row).to_have_attribute("data-state", "done", timeout=20000)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
             "downloadThroughput": -1, "uploadThroughput": -1})  # fmt: skip
    for page in (bob, bob_tab):
        expect(row(page, "bob-big.bin")).to_contain_text("30 MiB")
        expect(page.locator("#files li.file")).to_have_count(2)

    # The owner's stream is still live: their next upload shows there, not in Bob's tabs.
    upload_through_picker(owner, mine["owner-late.txt"])
    expect(owner.locator("#files li.file")).to_have_count(2)
    expect(bob_tab.locator("#files li.file")).to_have_count(2)
    assert owner.evaluate("window.bars") == []
    for page in (owner, bob, bob_tab):
        assert page.evaluate("window.leaks") == []

    # Bob's file URL is his alone: the owner's browser gets 404, as for no file at all.
    for name in bobs:
        href = row(bob, name).locator("a.file-name").get_attribute("href")
        assert href and href.startswith("/")
        assert bob.request.get(server.base_url + href).status == 200
        assert owner.request.get(server.base_url + href).status == 404
        assert owner.request.get(server.base_url + href + "?download=1").status == 404
    assert owner_console.errors == [] and bob_console.errors == []
    assert bob_tab_console.errors == []
