"""The Files screen in real Chromium at 375 and 1280 px: no horizontal scroll, no
console errors, axe-core 0 violations (a dialog open too); the share form opens in view
with focus in it, wherever the row is, and Escape gives focus back; a rename error is
shown beside the field and goes once the name is edited; each action's name says which
file; the first file is on a phone's first screen; a missing file link is an HTML 404;
the main flows by keyboard alone; and with JavaScript off, rename, move, share, delete
and a new folder work as plain forms."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.support.axe import axe_violations
from tests.support.browser import sign_in_until_painted, watch_console
from tests.support.fixtures import PASSWORD, RunningServer, start_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = ((375, 667), (1280, 800))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path)


def _files(server: RunningServer, count: int) -> None:
    with server.http() as http:
        for number in range(count):
            name = f"file-{number:02d}.txt"
            assert http.put(f"/uploads/{name}", content=b"x" * (number + 1)).is_success


def _open(browser: Browser, server: RunningServer, width: int, height: int, **options):
    # axe-core is injected as an inline script, which the page's CSP refuses: the
    # contexts that run it leave CSP aside (the other browser tests keep it).
    options.setdefault("bypass_csp", True)
    context = browser.new_context(viewport={"width": width, "height": height}, **options)
    page = context.new_page()
    return context, page, watch_console(page)


def _no_horizontal_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")


def _in_view(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None
    viewport = page.viewport_size
    assert viewport is not None
    assert 0 <= box["y"] and box["y"] + min(box["height"], 200) <= viewport["height"], box


@pytest.mark.parametrize(("width", "height"), WIDTHS)
def test_the_screen_at_each_width(
    browser: Browser, server: RunningServer, width: int, height: int
) -> None:
    _files(server, 50)
    context, page, errors = _open(browser, server, width, height)
    sign_in_until_painted(page, server)
    _no_horizontal_scroll(page)
    if width == 375:
        # The first file is on the first screen of a phone.
        top = page.evaluate(
            "document.querySelector('#files .file .file-name').getBoundingClientRect().bottom"
        )
        assert top < height, top
    assert axe_violations(page) == []

    # The Share of the 40th row: the dialog opens in view, focus in it.
    row = page.locator("#files .file").nth(39)
    name = row.locator(".file-name").inner_text()
    share = row.get_by_role("link", name=f"Share {name}")
    share.click()
    dialog = page.locator("#share-dialog")
    expect(dialog).to_be_visible()
    _in_view(page, "#share-dialog")
    expect(dialog.locator(".share-what")).to_contain_text(name)
    expect(page.get_by_label("Expires after")).to_be_focused()
    assert axe_violations(page) == []
    _no_horizontal_scroll(page)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(share).to_be_focused()
    assert errors == []
    context.close()


def test_a_rename_error_is_beside_the_field_and_goes_when_edited(
    browser: Browser, server: RunningServer
) -> None:
    _files(server, 2)
    context, page, errors = _open(browser, server, 1280, 800)
    sign_in_until_painted(page, server)
    for verb in ("Share", "Rename", "Delete", "Download"):
        expect(page.get_by_role("link", name=f"{verb} file-00.txt")).to_have_count(1)
    page.get_by_role("link", name="Rename file-00.txt").click()
    field = page.locator("#rename-name")
    expect(field).to_be_focused()
    field.fill("file-01.txt")
    field.press("Enter")
    error = page.locator("#rename-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("already")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", "rename-error")
    _in_view(page, "#rename-error")
    assert axe_violations(page) == []
    field.press("End")
    field.press("Backspace")
    expect(error).to_be_hidden()
    expect(field).to_have_attribute("aria-invalid", "false")
    field.fill("renamed.txt")
    field.press("Enter")
    expect(page.locator("#rename-dialog")).to_be_hidden()
    expect(page.locator("#files")).to_contain_text("renamed.txt")
    expect(page.locator("#notice")).to_have_text("")
    assert errors == []
    context.close()


def test_a_missing_file_link_is_an_html_page(browser: Browser, server: RunningServer) -> None:
    context, page, _ = _open(browser, server, 375, 667)
    sign_in_until_painted(page, server)
    answer = page.goto(server.base_url + "/files/" + "A" * 22)
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("alert")).to_contain_text("does not exist or is not yours")
    expect(page.get_by_role("navigation", name="Screens")).to_be_visible()
    _no_horizontal_scroll(page)
    assert axe_violations(page) == []
    context.close()


def test_keyboard_alone_opens_a_folder_shares_and_deletes(
    browser: Browser, server: RunningServer
) -> None:
    _files(server, 1)
    with server.http() as http:
        assert http.post("/api/folders", json={"name": "Inbox", "parent": "root"}).is_success
    context, page, errors = _open(browser, server, 1280, 800)
    sign_in_until_painted(page, server)

    def tab_to(locator) -> None:  # type: ignore[no-untyped-def]
        for _ in range(80):
            page.keyboard.press("Tab")
            if locator.evaluate("el => el === document.activeElement"):
                return
        raise AssertionError("never reached by Tab")

    share = page.get_by_role("link", name="Share file-00.txt")
    tab_to(share)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Expires after")).to_be_focused()
    tab_to(page.get_by_role("button", name="Create link"))
    page.keyboard.press("Enter")
    expect(page.locator("#new-share-url")).to_contain_text("/s/")
    page.keyboard.press("Escape")
    expect(share).to_be_focused()

    page.on("dialog", lambda dialog: dialog.accept())
    tab_to(page.get_by_role("link", name="Delete file-00.txt"))
    page.keyboard.press("Enter")
    expect(page.locator("#files .file")).to_have_count(0)

    tab_to(page.get_by_role("link", name="Inbox", exact=True))
    page.keyboard.press("Enter")
    page.wait_for_url("**/?folder=*")
    expect(page.locator(".breadcrumb [aria-current=page]")).to_have_text("Inbox")
    assert errors == []
    context.close()


def test_without_javascript_every_action_is_a_form(browser: Browser, server: RunningServer) -> None:
    _files(server, 2)
    context, page, errors = _open(browser, server, 375, 667, java_script_enabled=False)
    page.goto(server.base_url + "/")
    page.get_by_label("Name").fill("owner")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.base_url + "/")

    # New folder.
    page.locator("#new-folder-name").fill("Taxes")
    page.get_by_role("button", name="Make folder").click()
    expect(page.get_by_role("link", name="Taxes", exact=True)).to_be_visible()

    # Rename: a refusal first, beside the field, then a good name.
    page.get_by_role("link", name="Rename file-00.txt").click()
    page.get_by_label("New name").fill("file-01.txt")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("#rename-name-error")).to_contain_text("already")
    page.get_by_label("New name").fill("kept.txt")
    page.get_by_role("button", name="Rename").click()
    page.wait_for_url(server.base_url + "/")
    expect(page.locator("#files")).to_contain_text("kept.txt")

    # Share: the link is on the answer page.
    page.get_by_role("link", name="Share kept.txt").click()
    page.get_by_role("button", name="Create link").click()
    expect(page.locator("#new-share-url")).to_contain_text("/s/")
    page.get_by_role("link", name="Back to your files").click()

    # Move into the folder (from the rename page).
    page.get_by_role("link", name="Rename kept.txt").click()
    page.get_by_role("link", name="Move kept.txt to another folder").click()
    page.get_by_label("Move to").select_option(label="/Taxes/")
    page.get_by_role("button", name="Move").click()
    expect(page.locator("#files")).not_to_contain_text("kept.txt")

    # Delete, after the confirmation page.
    page.get_by_role("link", name="Delete file-01.txt").click()
    expect(page.locator("main")).to_contain_text("It cannot be undone")
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url(server.base_url + "/")
    expect(page.locator("#files .file")).to_have_count(0)
    page.get_by_role("link", name="Taxes", exact=True).click()
    expect(page.locator("#files")).to_contain_text("kept.txt")

    # New folder with a taken name: its form again, the error beside the name.
    page.goto(server.base_url + "/")
    page.locator("#new-folder-name").fill("taxes")
    page.get_by_role("button", name="Make folder").click()
    expect(page.locator("#new-folder-name-error")).to_contain_text("already here")
    expect(page.locator("#new-folder-name")).to_have_value("taxes")
    page.locator("#new-folder-name").fill("Archive")
    page.get_by_role("button", name="Make folder").click()
    page.wait_for_url(server.base_url + "/")

    # A folder moved (from its rename page): into itself refused, then into Archive.
    page.get_by_role("link", name="Rename folder Taxes").click()
    page.get_by_role("link", name="Move folder Taxes to another folder").click()
    page.get_by_label("Move to").select_option(label="/Taxes/")
    page.get_by_role("button", name="Move").click()
    expect(page.locator("#folder-move-to-error")).to_contain_text("inside itself")
    page.get_by_label("Move to").select_option(label="/Archive/")
    page.get_by_role("button", name="Move").click()
    page.wait_for_url(server.base_url + "/")
    expect(page.get_by_role("link", name="Taxes", exact=True)).to_have_count(0)
    page.get_by_role("link", name="Archive", exact=True).click()
    expect(page.get_by_role("link", name="Taxes", exact=True)).to_be_visible()
    # The refused pages came with their status (409): Chromium logs that.
    assert [e for e in errors if "409 (Conflict)" not in e] == []
    context.close()
