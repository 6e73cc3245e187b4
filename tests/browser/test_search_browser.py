"""Search, sort and rename on the page in real Chromium against a real `stowage serve`."""

import pytest
from playwright.sync_api import expect
from tests.support.browser import browser, open_page, row  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def names_shown(page) -> list[str]:
    return page.locator("#files .file-name").all_text_contents()


def test_typing_filters_live_sorting_and_renaming_in_the_browser(browser, server):  # noqa: F811
    with server.http() as http:

        def put(name: str, body: bytes = b"x\n") -> None:
            assert http.put(f"/uploads/{name}", content=body).status_code == 201

        for name in ("holiday-a.txt", "notes.txt", "holiday-b.txt"):
            put(name)
        page, console = open_page(browser, server)
        expect(page.locator("#files .file-name")).to_have_count(3)

        page.get_by_label("Search names").press_sequentially("holi", delay=30)
        expect(page.locator("#files .file-name")).to_have_count(2)
        assert names_shown(page) == ["holiday-b.txt", "holiday-a.txt"]
        expect(page.locator("#files")).to_contain_text("2 files match")
        expect(page).to_have_url(server.base_url + "/?q=holi")

        # Other clients' uploads repaint the list through this tab's own search.
        put("zzz-unrelated.txt")
        put("holiday-c.txt")
        expect(row(page, "holiday-c.txt")).to_be_visible()
        assert "zzz-unrelated.txt" not in names_shown(page)

        page.get_by_label("Sort").select_option("name-asc")
        expect(page.locator("#files .file-name").first).to_have_text("holiday-a.txt")
        assert names_shown(page) == ["holiday-a.txt", "holiday-b.txt", "holiday-c.txt"]

        page.get_by_label("Type").select_option("images")
        expect(page.locator("#files")).to_contain_text("No files match.")
        page.get_by_label("Type").select_option("")
        expect(page.locator("#files .file-name")).to_have_count(3)

        row(page, "holiday-b.txt").get_by_role("link", name="Rename holiday-b.txt").click()
        field = page.locator("#rename-name")
        expect(field).to_be_visible()
        expect(field).to_have_value("holiday-b.txt")
        field.fill("holiday-renamed.txt")
        page.locator("#rename-form").get_by_role("button", name="Save").click()
        expect(row(page, "holiday-renamed.txt")).to_be_visible()
        expect(page.locator("#rename-form")).to_be_hidden()
        assert [f["name"] for f in http.get("/api/files?q=renamed").json()["files"]] == [
            "holiday-renamed.txt"
        ]

        # Clearing the search shows every file again (still sorted by name).
        page.get_by_label("Search names").fill("")
        expect(page.locator("#files .file-name")).to_have_count(5)
        expect(page).to_have_url(server.base_url + "/?sort=name-asc")
        assert console.errors == []
