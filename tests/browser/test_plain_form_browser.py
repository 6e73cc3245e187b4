"""With scripts off, Chromium uploads through the plain form and lands back on the page."""

import pytest
from playwright.sync_api import expect
from tests.support.browser import browser, row, sign_in  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_picker_uploads_without_javascript(browser, server, tmp_path):  # noqa: F811
    notes = tmp_path / "no-script notes.txt"
    notes.write_text("posted by the browser itself\n")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, server)
    page.set_input_files("#picker", str(notes))
    page.get_by_role("button", name="Upload").click()
    # What was stored, in words, and the way back to the list, which shows it.
    expect(page.locator("main")).to_contain_text("Stored 1 file.")
    page.get_by_role("link", name="Back to your files").click()
    page.wait_for_url(server.base_url + "/")
    expect(row(page, "no-script notes.txt")).to_contain_text("29 bytes")
    with server.http() as http:
        [stored] = http.get("/api/files").json()["files"]
        assert stored["name"] == "no-script notes.txt" and stored["size"] == 29
        assert http.put("/uploads/other.txt", content=b"x").status_code == 201

    # The search controls are a plain GET form too.
    page.reload()
    expect(page.locator("#files .file-name")).to_have_count(2)
    page.get_by_label("Search names").fill("notes")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(server.base_url + "/?q=notes&type=&sort=created-desc")
    expect(page.locator("#files .file-name")).to_have_count(1)
    expect(page.locator("#files")).to_contain_text("1 file match")
    context.close()
