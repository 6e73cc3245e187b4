"""The page's resumable uploads (assets/resumable.js over tus) in real Chromium against
a real `stowage serve`, through a counting TCP proxy on 127.0.0.1.

The proxy counts every byte the browser sends towards the server and holds the upload
to a few MB/s, so "midway" is a moment a test can reach. "The server received less
than 1.5x the file" is measured there: an upload that started over after being cut
past 60% would have sent at least 1.6x.
"""

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, expect
from tests.support.browser import Console, browser, sign_in, wait_until_live
from tests.support.fixtures import RunningServer, free_port, start_server, write_random_file

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["browser"]  # the module-scoped Chromium fixture

MiB = 1024 * 1024
# Appends of 4 MiB (the page never sends more than the request body cap in one), so
# a 24 MB file takes six of them.
BODY_CAP = 4 * MiB
FILE_MB = 24
FILE_BYTES = FILE_MB * 1_000_000


class CountingProxy:
    """127.0.0.1:port -> the server: counts the bytes sent towards the server and
    slows them to `rate` bytes a second (None: full speed)."""

    def __init__(self, target_port: int, rate: float | None = 6e6) -> None:
        self.target_port = target_port
        self.rate = rate
        self.port = free_port()
        self.sent_to_server = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("the proxy did not start")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Small buffers (inherited by each accepted socket), so what the browser counts
        # as sent is close to what went on to the server.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        listener.bind(("127.0.0.1", self.port))
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, sock=listener)
        )
        self._ready.set()
        self._loop.run_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, towards_server=True),
            self._pipe(up_reader, writer, towards_server=False),
        )

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, towards_server: bool
    ) -> None:
        try:
            while data := await source.read(16 * 1024):
                if towards_server:
                    self.sent_to_server += len(data)
                    if self.rate:
                        await asyncio.sleep(len(data) / self.rate)
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            # HTTP/1.1 never half-closes: one side gone ends the connection.
            sink.close()

    def wait_quiet(self, quiet: float = 0.5, timeout: float = 10.0) -> None:
        """Until nothing has gone towards the server for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            before = self.sent_to_server
            time.sleep(quiet)
            if self.sent_to_server == before:
                return
            assert time.monotonic() < deadline, "the transfer never stopped"

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RunningServer, CountingProxy]]:
    # The proxy's port is another Host than the server's: the name alone is allowed.
    for server in start_server(
        tmp_path, "--max-request-body-bytes", str(BODY_CAP), "--allowed-hosts", "127.0.0.1"
    ):
        proxy = CountingProxy(int(server.base_url.rsplit(":", 1)[1]))
        try:
            yield server, proxy
        finally:
            proxy.close()


@pytest.fixture
def big_file(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "holiday.mov"
    return path, write_random_file(path, FILE_MB)


def open_through(browser, proxy: CountingProxy, **expect_errors) -> tuple[Page, Console]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    console = Console(page, **expect_errors)
    sign_in(page, SimpleNamespace(base_url=proxy.base_url))  # type: ignore[arg-type]
    wait_until_live(page)
    return page, console


def upload_row(page: Page, name: str):
    return page.locator("#resumable .transfer", has_text=name)


def wait_for_share(page: Page, name: str, fraction: float) -> None:
    """Until this tab's bar for `name` has passed `fraction` of the file."""
    bar = upload_row(page, name).locator("progress")
    page.wait_for_function(
        "([bar, fraction]) => bar && bar.max > 1 && bar.value >= bar.max * fraction",
        arg=[bar.element_handle(), fraction],
        timeout=20000,
    )


def stored(server: RunningServer, name: str) -> dict:
    with server.http() as http:
        files = http.get("/api/files").json()["files"]
    return next(f for f in files if f["name"] == name)


def assert_stored_intact(server: RunningServer, name: str, digest: str) -> None:
    found = stored(server, name)
    assert found["size"] == FILE_BYTES
    assert found["sha256"] == digest


# Failed loads Chromium logs while the network is cut or a request is ended on purpose.
CUT = ("ERR_INTERNET_DISCONNECTED", "ERR_CONNECTION", "ERR_NETWORK_CHANGED", "status of 413")


def test_network_cut_midway_resumes_without_starting_over(browser, served, big_file):
    server, proxy = served
    path, digest = big_file
    page, console = open_through(browser, proxy, expected=CUT)
    page.set_input_files("#picker", str(path))
    wait_for_share(page, path.name, 0.6)
    # Slower for the cut: at full rate the rest took ~1.6 s, too little on a loaded
    # machine (the suite runs on two workers) to cut it before it was done.
    proxy.rate = 1e6

    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(f"{request.method} {request.failure}"))
    page.context.set_offline(True)
    proxy.rate = 6e6
    row = upload_row(page, path.name)
    expect(row).to_have_attribute("data-state", "retrying", timeout=10000)
    expect(row).to_contain_text("Connection lost at")
    # Failed tries while offline, 0.5, 1, 2 and 4 s apart; then the next is 8 s away.
    expect(row).to_contain_text("retrying in 4 s", timeout=10_000)
    expect(row).to_contain_text("retrying in 8 s", timeout=10_000)
    page.context.set_offline(False)
    # Back online, it goes on at once, not when the 8 s wait is over.
    expect(row).to_have_attribute("data-state", "sending", timeout=5000)

    expect(row).to_have_attribute("data-state", "done", timeout=20000)
    expect(row).to_contain_text("Stored")
    expect(page.locator("#files li.file", has_text=path.name)).to_be_visible()
    assert_stored_intact(server, path.name, digest)
    ratio = proxy.sent_to_server / FILE_BYTES
    assert any(f.startswith("PATCH") for f in failed), "the cut came between appends"
    print(f"network cut: sent {proxy.sent_to_server:,} bytes for {FILE_BYTES:,} ({ratio:.3f}x)")
    assert ratio < 1.5
    assert page.evaluate("Object.keys(localStorage)") == [], "a finished upload is forgotten"
    assert console.errors == [], console.errors


def patch_offsets(page: Page) -> list[int]:
    """The Upload-Offset of every PATCH `page` sends, as it sends it."""
    offsets: list[int] = []
    page.on(
        "request",
        lambda r: offsets.append(int(r.headers["upload-offset"])) if r.method == "PATCH" else None,
    )
    return offsets


def choose_again_and_continue(page: Page, path: Path, at_least: float) -> None:
    """After a reload or restart: the row offers to continue; the same file, chosen
    again, goes on from the server's offset (its first PATCH), not from zero."""
    row = upload_row(page, path.name)
    expect(row).to_have_attribute("data-state", "unfinished")
    # The page asked the server how much it has.
    expect(row).to_contain_text(re.compile(r"Unfinished: the server has [\d.]+ MiB of 22.9 MiB"))
    expect(row).to_contain_text("Choose this file again to continue")
    offsets = patch_offsets(page)
    page.set_input_files("#picker", str(path))
    expect(row).to_have_attribute("data-state", "sending")
    deadline = time.monotonic() + 10
    while not offsets:
        assert time.monotonic() < deadline, "no append after choosing the file again"
        page.wait_for_timeout(50)
    assert offsets[0] >= at_least * FILE_BYTES, (offsets[0], at_least)


def test_reload_or_restart_midway_then_the_same_file_continues_from_the_servers_offset(
    browser, served, big_file
):
    server, proxy = served
    path, digest = big_file
    page, console = open_through(browser, proxy, expected=CUT + ("status of 404",))
    # One the server no longer knows (expired, say): the page forgets it on load.
    page.evaluate(
        """() => {
            const account = document.getElementById('resumable').dataset.account;
            localStorage.setItem(`stowage.resumable ${account} 5 1 gone.bin`, JSON.stringify(
                {url: location.origin + '/tus/' + 'x'.repeat(32), name: 'gone.bin', size: 5}));
        }"""
    )
    page.set_input_files("#picker", str(path))

    # A reload at 40%.
    wait_for_share(page, path.name, 0.4)
    page.reload()
    wait_until_live(page)
    choose_again_and_continue(page, path, 0.3)
    expect(upload_row(page, "gone.bin")).to_have_count(0)
    assert not any("gone.bin" in key for key in page.evaluate("Object.keys(localStorage)"))

    # A browser restart at 75%: a new browser with what the old one kept on disk
    # (its cookies and localStorage).
    wait_for_share(page, path.name, 0.75)
    proxy.rate = 1e6  # the rest (~1 s at full rate) must outlast the close under load
    kept = page.context.storage_state()
    page.context.close()
    proxy.rate = 6e6
    assert console.errors == [], console.errors
    context = browser.new_context(storage_state=kept, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    console = Console(page, expected=CUT)
    page.goto(proxy.base_url + "/")
    wait_until_live(page)
    choose_again_and_continue(page, path, 0.65)

    expect(upload_row(page, path.name)).to_have_attribute("data-state", "done", timeout=20000)
    expect(page.locator("#files li.file", has_text=path.name)).to_be_visible()
    assert_stored_intact(server, path.name, digest)
    ratio = proxy.sent_to_server / FILE_BYTES
    print(f"reload+restart: sent {proxy.sent_to_server:,} bytes for {FILE_BYTES:,} ({ratio:.3f}x)")
    assert ratio < 1.5
    assert console.errors == [], console.errors


def test_pause_resume_and_cancel(browser, served, big_file, tmp_path):
    server, proxy = served
    path, digest = big_file
    page, console = open_through(browser, proxy, expected=CUT)
    other_tab = page.context.new_page()
    other_console = Console(other_tab)
    other_tab.goto(proxy.base_url + "/")
    wait_until_live(other_tab)
    page.bring_to_front()
    page.set_input_files("#picker", str(path))
    wait_for_share(page, path.name, 0.3)
    row = upload_row(page, path.name)

    row.get_by_role("button", name=f"Pause {path.name}").click()
    expect(row).to_have_attribute("data-state", "paused")
    expect(row).to_contain_text("Paused at")
    # Every open page of the account shows it paused, with what the server has.
    elsewhere = other_tab.locator("#progress .transfer.paused", has_text=path.name)
    expect(elsewhere).to_contain_text("Paused")
    expect(elsewhere).to_contain_text("of 22.9 MiB")
    # What was already in the sockets drains; then nothing more goes while paused.
    proxy.wait_quiet(timeout=5)
    before = proxy.sent_to_server
    time.sleep(1.5)
    assert proxy.sent_to_server == before, "nothing is sent while paused"

    row.get_by_role("button", name=f"Resume {path.name}").click()
    expect(row).to_have_attribute("data-state", "done", timeout=20000)
    expect(other_tab.locator("#files li.file", has_text=path.name)).to_be_visible()
    expect(other_tab.locator("#progress .transfer")).to_have_count(0)
    assert_stored_intact(server, path.name, digest)
    assert proxy.sent_to_server / FILE_BYTES < 1.5

    # Cancel: the row goes, and so does the upload on the server (DELETE).
    other = tmp_path / "cancelled.bin"
    write_random_file(other, FILE_MB)
    page.set_input_files("#picker", str(other))
    wait_for_share(page, other.name, 0.2)
    upload_url = page.evaluate(
        "JSON.parse(Object.values(localStorage).find(v => v.includes('cancelled.bin'))).url"
    )
    upload_row(page, other.name).get_by_role("button", name=f"Cancel {other.name}").click()
    expect(upload_row(page, other.name)).to_have_count(0)
    assert page.evaluate("Object.keys(localStorage)") == []
    with server.http() as http:
        path_only = upload_url.split(str(proxy.port), 1)[1]
        deadline = time.monotonic() + 5
        tus = {"tus-resumable": "1.0.0"}
        while (status := http.head(path_only, headers=tus).status_code) != 404:
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        names = [f["name"] for f in http.get("/api/files").json()["files"]]
    assert names == [path.name]
    assert console.errors == [] and other_console.errors == [], console.errors


def test_a_413_on_an_append_halves_the_append_size(browser, served, tmp_path):
    server, proxy = served
    proxy.rate = None
    path = tmp_path / "capped.bin"
    digest = write_random_file(path, 12)
    page, console = open_through(browser, proxy, expected=CUT)
    # A proxy on the way with a 1.5 MB request cap: appends of 4 MiB and 2 MiB are
    # refused before they reach the server.
    refused: list[str] = []
    offsets: list[int] = []

    def cap(route, request) -> None:
        if request.method == "PATCH":
            if len(refused) < 2:
                refused.append(request.headers.get("upload-offset", ""))
                route.fulfill(status=413, body="request too large")
                return
            offsets.append(int(request.headers["upload-offset"]))
        route.continue_()

    page.route("**/tus/*", cap)
    page.set_input_files("#picker", str(path))
    row = upload_row(page, path.name)
    expect(row).to_have_attribute("data-state", "done", timeout=20000)
    assert refused == ["0", "0"]
    assert offsets[:3] == [0, MiB, 2 * MiB], offsets
    found = stored(server, path.name)
    assert (found["size"], found["sha256"]) == (12_000_000, digest)
    assert console.errors == [], console.errors


def test_a_file_request_page_sends_large_files_resumably_too(browser, served, tmp_path):
    server, proxy = served
    with server.http() as http:
        made = http.post("/api/requests", json={"label": "Raw footage"})
        assert made.status_code == 201, made.text
    link = made.json()["request"]["url"]
    path = tmp_path / "footage.mov"
    digest = write_random_file(path, 12)

    # A fresh browser, no account: only the link.
    guest = browser.new_context().new_page()
    console = Console(guest, expected=CUT)
    offsets = patch_offsets(guest)
    guest.goto(proxy.base_url + link)
    guest.set_input_files("#picker", str(path))
    wait_for_share(guest, path.name, 0.5)
    proxy.rate = 1e6  # the rest (~1 s at full rate) must outlast the reload under load
    guest.reload()
    proxy.rate = 6e6
    row = upload_row(guest, path.name)
    expect(row).to_have_attribute("data-state", "unfinished")
    guest.set_input_files("#picker", str(path))
    expect(row).to_have_attribute("data-state", "done", timeout=20000)
    # Choosing it again went on from the server's offset; and nothing links to it.
    assert offsets[0] == 0 and max(offsets) > 0 and sorted(offsets) == offsets
    assert offsets.count(0) == 1
    assert row.locator("a").count() == 0
    found = stored(server, path.name)
    assert (found["size"], found["sha256"]) == (12_000_000, digest)
    assert console.errors == [], console.errors
