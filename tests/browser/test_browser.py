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
    # The page's queue: a row each, stored one after the other.
    queue = page.locator("#resumable .transfer")
    expect(queue.filter(has_text="tiny.png")).to_have_attribute("data-state", "done")
    expect(queue.filter(has_text="notes.txt")).to_contain_text("Stored · 22 bytes")
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
    expect(queue.filter(has_text="dropped.txt")).to_have_attribute("data-state", "done")
    expect(queue).to_have_count(1)  # the earlier rows went with the new choice
    assert console.errors == []


def test_large_upload_shows_progress_everywhere_then_the_row_and_downloads_intact(
    browser, server, tmp_path
):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(30 * MiB))
    uploader, uploader_console = open_page(browser, server)
    watcher, watcher_console = open_page(browser, server, width=375)

    # Loopback is too fast to watch: hold the uploading tab to ~4 MB/s (~8 s for 30 MiB,
    # time for each look below on a loaded machine: the suite runs on two workers).
    cdp = uploader.context.new_cdp_session(uploader)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 4e6},
    )
    uploader.set_input_files("#picker", str(big))
    # Too large for signals: a resumable upload, with its own row in this tab (the
    # picker stays free for more).
    mine = uploader.locator("#resumable .transfer", has_text="big.bin")
    expect(mine).to_have_attribute("data-state", "sending")
    expect(uploader.locator("#picker")).to_be_enabled()
    for page in (uploader, watcher):
        bar = page.locator("#progress .transfer", has_text="big.bin")
        expect(bar).to_contain_text("of 30 MiB", timeout=10_000)
        expect(bar.locator("progress")).to_have_attribute("value", re.compile(r"^\d+$"))
    watcher.screenshot(path=tmp_path / "watcher-during-upload.png")

    # The bars move as bytes arrive; then they go and the row comes.
    expect(mine).to_have_attribute("data-state", "done", timeout=30_000)
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
    # Each over the 50,000-byte file cap: refused in its row before a byte is sent,
    # whatever way it would have gone (one request, or resumably).
    over = [tmp_path / "over-file-cap.bin", tmp_path / "over-file-cap-resumable.bin"]
    over[0].write_bytes(os.urandom(100_000))
    over[1].write_bytes(os.urandom(400_000))
    for server in start_server(
        tmp_path, "--max-file-bytes", "50000", "--max-request-body-bytes", "300000"
    ):
        # Failed loads are logged by Chromium.
        page, console = open_page(
            browser, server, expected=("status of 507", "ERR_CONNECTION_RESET")
        )
        sent: list[str] = []
        page.on(
            "request",
            lambda r, record=sent.append: r.method in ("POST", "PATCH") and record(r.url),
        )
        page.set_input_files("#picker", [str(path) for path in over])
        queue = page.locator("#resumable .transfer")
        expect(queue.filter(has_text="over-file-cap.bin")).to_contain_text(
            "Not sent: over-file-cap.bin is 97.7 KiB; the limit is 48.8 KiB a file."
        )
        refused = queue.filter(has_text="over-file-cap-resumable.bin")
        expect(refused).to_have_attribute("data-state", "refused")
        expect(refused).to_contain_text("is 390.6 KiB; the limit is 48.8 KiB a file.")
        refused.get_by_role("button", name="Dismiss over-file-cap-resumable.bin").click()
        expect(refused).to_have_count(0)
        assert [url for url in sent if "/live" not in url] == []
        expect(page.locator("#files")).to_contain_text("No files yet")
        page.screenshot(path=tmp_path / "oversize.png")

        # Any other refusal, and a connection that fails, are told in words too; only
        # the failure that may go through another time offers Retry.
        tiny = tmp_path / "tiny.txt"
        tiny.write_text("tiny")
        page.route("**/uploads", lambda route: route.fulfill(status=507, body="full"))
        page.set_input_files("#picker", str(tiny))
        failed = queue.filter(has_text="tiny.txt")
        expect(failed).to_contain_text("Not stored: full (HTTP 507)")
        expect(failed.get_by_role("button", name="Retry tiny.txt")).to_be_hidden()
        page.unroute("**/uploads")
        page.route("**/uploads", lambda route: route.abort("connectionreset"))
        page.set_input_files("#picker", str(tiny))
        expect(failed).to_contain_text("Not stored: the upload did not reach the server")
        expect(failed.get_by_role("button", name="Retry tiny.txt")).to_be_visible()
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
                // The server's bars (`#progress`), not this tab's own upload queue.
                const shared = r.target.closest && r.target.closest('#progress');
                if (node.nodeType === 1 && ((shared && node.matches('.transfer'))
                        || node.querySelector('#progress .transfer')
                        || (node.id === 'progress' && node.querySelector('.transfer'))))
                    window.bars.push(node.outerHTML);
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
    mine = page.locator("#resumable .transfer", has_text=path.name)
    expect(mine).to_have_attribute("data-state", "done", timeout=20000)
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
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 4e6},
    )
    bob.set_input_files("#picker", str(bobs["bob-big.bin"]))
    bar = bob_tab.locator("#progress .transfer", has_text="bob-big.bin")
    expect(bar).to_contain_text("of 30 MiB", timeout=10_000)
    expect(bar.locator("progress")).to_have_attribute("value", re.compile(r"^\d+$"))
    looks = 0
    while bar.count():
        assert owner.locator("#progress .transfer").count() == 0
        looks += 1
        time.sleep(0.1)
    assert looks >= 3, "the upload ended before the owner's page was looked at"
    # Too large for signals, it went resumable: its row in Bob's tab says so.
    bobs_row = bob.locator("#resumable .transfer", has_text="bob-big.bin")
    expect(bobs_row).to_have_attribute("data-state", "done", timeout=30_000)
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
        # The name opens a preview; the Download link has the file's URL.
        link = row(bob, name).get_by_role("link", name=f"Download {name}")
        href = (link.get_attribute("href") or "").partition("?")[0]
        assert href.startswith("/files/")
        assert bob.request.get(server.base_url + href).status == 200
        assert owner.request.get(server.base_url + href).status == 404
        assert owner.request.get(server.base_url + href + "?download=1").status == 404
    assert owner_console.errors == [] and bob_console.errors == []
    assert bob_tab_console.errors == []
