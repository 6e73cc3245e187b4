"""Selection, bulk actions, the grid view and live thumbnails in real Chromium against
a real `stowage serve`."""

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect
from tests.support.browser import browser, open_page, open_tab, row  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def png(width: int = 64, height: int = 40) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 30)).save(out, "PNG")
    return out.getvalue()


def test_three_picked_files_download_as_one_zip_and_two_delete_everywhere(
    browser,  # noqa: F811
    server,
    tmp_path: Path,
):
    bodies = {
        "report-jan.txt": b"january figures\n",
        "report-feb.txt": b"february figures\n" * 100,
        "report-mar.csv": b"month,total\nmarch,3\n",
        "report-apr.txt": b"april\n",
        "holiday.txt": b"not a report\n",
    }
    with server.http() as http:
        for name, body in bodies.items():
            assert http.put(f"/uploads/{name}", content=body).status_code == 201
        page, console = open_page(browser, server)
        expect(page.locator("#files .file-name")).to_have_count(5)
        page.on("dialog", lambda dialog: dialog.accept())

        page.get_by_label("Search names").press_sequentially("report", delay=20)
        expect(page.locator("#files .file-name")).to_have_count(4)
        zip_button = page.get_by_role("button", name="Download selected as ZIP")
        expect(zip_button).to_be_disabled()
        chosen = ["report-jan.txt", "report-feb.txt", "report-mar.csv"]
        for name in chosen:
            row(page, name).locator(".pick").check()
        expect(page.locator("#selection")).to_contain_text("3 selected")

        with page.expect_download() as waiting:
            zip_button.click()
        saved = tmp_path / "selection.zip"
        waiting.value.save_as(saved)
        with zipfile.ZipFile(saved) as archive:
            assert archive.testzip() is None
            assert sorted(archive.namelist()) == sorted(chosen)
            for name in chosen:
                assert archive.read(name) == bodies[name]

        # Delete two of them: one confirmation, and every open tab repaints.
        other, other_console = open_tab(page, server)
        expect(other.locator("#files .file-name")).to_have_count(5)
        row(page, "report-jan.txt").locator(".pick").uncheck()
        expect(page.locator("#selection")).to_contain_text("2 selected")
        page.get_by_role("button", name="Delete selected").click()
        expect(page.locator("#files .file-name")).to_have_count(2)
        expect(other.locator("#files .file-name")).to_have_count(3)
        expect(page.locator("#selection .picked")).to_have_text(
            "Select files to act on several at once"
        )
        left = sorted(f["name"] for f in http.get("/api/files").json()["files"])
        assert left == ["holiday.txt", "report-apr.txt", "report-jan.txt"]
        assert console.errors == [] and other_console.errors == []


def test_select_all_matching_reaches_past_the_page(browser, server, tmp_path: Path):  # noqa: F811
    with server.http() as http:
        for n in range(53):
            assert http.put(f"/uploads/scan-{n:02d}.txt", content=b"%d\n" % n).status_code == 201
        assert http.put("/uploads/keep.txt", content=b"keep\n").status_code == 201
        page, console = open_page(browser, server)
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_label("Search names").press_sequentially("scan", delay=20)
        expect(page.locator("#files .summary")).to_contain_text("53 files match")
        page.get_by_label("Select all on this page").check()
        expect(page.locator("#selection")).to_contain_text("50 selected")
        page.get_by_role("button", name="Select all 53 matching").click()
        expect(page.locator("#selection")).to_contain_text("All 53 matching selected")
        page.get_by_role("button", name="Delete selected").click()
        expect(page.locator("#files")).to_contain_text("No files match.")
        assert [f["name"] for f in http.get("/api/files").json()["files"]] == ["keep.txt"]
        assert console.errors == []


def test_a_png_shows_its_thumbnail_live_and_the_grid_view_survives_a_reload(
    browser,  # noqa: F811
    server,
):
    with server.http() as http:
        assert http.put("/uploads/notes.txt", content=b"words\n").status_code == 201
        page, console = open_page(browser, server)
        notes = row(page, "notes.txt")
        expect(notes.locator("svg.preview use")).to_have_attribute("href", "#icon-documents")

        # Uploaded while the page is open: the row comes first with an icon, then the
        # stream swaps in the thumbnail once the worker has made it.
        assert http.put("/uploads/sunset.png", content=png()).status_code == 201
        thumbnail = row(page, "sunset.png").locator("img.preview")
        expect(thumbnail).to_be_visible(timeout=30_000)
        expect(thumbnail).to_have_attribute("loading", "lazy")
        page.wait_for_function(
            "() => { const i = document.querySelector('#files img.preview');"
            " return i && i.complete && i.naturalWidth > 0 }"
        )
        assert thumbnail.evaluate("img => img.naturalWidth") == 64

        page.get_by_role("button", name="Grid").click()
        expect(page.locator("#library")).to_have_class("grid")
        cards = page.locator("#files .file")
        assert cards.first.bounding_box()["width"] < 400  # cards, not full-width rows
        page.reload()
        expect(page.locator("#library")).to_have_class("grid")
        expect(page.get_by_role("button", name="Grid")).to_have_attribute("aria-pressed", "true")
        expect(row(page, "sunset.png").locator("img.preview")).to_be_visible()
        page.get_by_role("button", name="List").click()
        expect(page.locator("#library")).not_to_have_class("grid")
        page.reload()
        expect(page.locator("#library")).not_to_have_class("grid")
        assert console.errors == []
