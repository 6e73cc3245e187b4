"""The cap on one account's live pages in real Chromium: the oldest page stops updating
with a notice and a Reload button, stays stopped (no reconnect that would close
another page in turn), and the newer pages go on repainting."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from tests.support.browser import browser, open_page, open_tab, row  # noqa: F401
from tests.support.fixtures import RunningServer, start_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def capped_server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path, "--max-live-pages-per-account", "2")


def upload(server: RunningServer, name: str) -> None:
    with server.http() as http:
        assert http.put(f"/uploads/{name}", content=b"x").status_code == 201


def test_the_oldest_page_past_the_cap_stops_with_a_notice_and_stays_stopped(
    browser: Browser,  # noqa: F811
    capped_server: RunningServer,
):
    oldest, oldest_console = open_page(browser, capped_server)
    second, second_console = open_tab(oldest, capped_server)
    upload(capped_server, "before.txt")
    for page in (oldest, second):
        expect(row(page, "before.txt")).to_be_visible()

    newest, newest_console = open_tab(oldest, capped_server)
    notice = oldest.locator("#live-ended")
    expect(notice).to_contain_text("This page stopped updating")
    expect(notice).to_contain_text("more than 2 live pages open")
    expect(notice.get_by_role("link", name="Reload")).to_be_visible()
    # Not "reconnecting": it does not try again (a retry would end another page).
    expect(oldest.locator(".offline")).to_have_text("")
    time.sleep(3)  # Datastar's first retry comes after 1 s
    for page in (second, newest):
        expect(page.locator("#live-ended")).to_have_count(0)

    upload(capped_server, "after.txt")
    for page in (second, newest):
        expect(row(page, "after.txt")).to_be_visible()
    expect(row(oldest, "after.txt")).to_have_count(0)

    # Reload: that page is the newest now, and the oldest of the others stops.
    notice.get_by_role("link", name="Reload").click()
    expect(oldest.locator("#files")).to_be_visible()
    expect(second.locator("#live-ended")).to_contain_text("This page stopped updating")
    upload(capped_server, "reloaded.txt")
    for page in (oldest, newest):
        expect(row(page, "reloaded.txt")).to_be_visible()
    assert oldest_console.errors == second_console.errors == newest_console.errors == []


SHOWN = """() => ({
    summary: document.querySelector('#files .summary')?.textContent ?? '',
    rows: [...document.querySelectorAll('#files li.file')].map(li => [li.id, li.textContent]),
    pager: document.querySelector('#files .pager')?.textContent ?? '',
})"""


def test_repaints_of_changed_rows_leave_the_page_as_a_fresh_one(browser: Browser, server):  # noqa: F811
    page, console = open_page(browser, server)
    with server.http() as http:
        ids = {}
        for name in ("a.txt", "b.txt", "c.txt"):
            r = http.put(f"/uploads/{name}", content=name.encode())
            ids[name] = r.json()["files"][0]["id"]
        expect(row(page, "c.txt")).to_be_visible()
        # Each of these is a repaint of a row or two, not of the list.
        for step in (
            lambda: http.put("/uploads/d.txt", content=b"d"),
            lambda: http.delete(f"/files/{ids['b.txt']}"),
            lambda: http.patch(f"/files/{ids['a.txt']}", json={"name": "renamed.txt"}),
            lambda: http.put("/uploads/e.txt", content=b"e"),
        ):
            assert step().status_code < 300
            time.sleep(0.3)
    expect(row(page, "e.txt")).to_be_visible()
    expect(row(page, "renamed.txt")).to_be_visible()
    expect(row(page, "b.txt")).to_have_count(0)
    fresh, fresh_console = open_tab(page, server)
    assert page.evaluate(SHOWN) == fresh.evaluate(SHOWN)
    assert console.errors == fresh_console.errors == []
