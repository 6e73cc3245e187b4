"""The page as a folder browser in real Chromium against a real `stowage serve`:
into a folder and back, making one, uploading a whole folder with the directory
picker, and the question before a folder is deleted."""

from pathlib import Path

import pytest
from playwright.sync_api import expect
from tests.support.browser import browser, open_page  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_into_a_folder_and_back_and_making_one(browser, server):  # noqa: F811
    with server.http() as http:
        made = http.post("/api/folders", json={"name": "Photos"})
        assert made.status_code == 201, made.text
        photos = made.json()["folder"]["id"]
        assert http.put("/uploads/top.txt", content=b"root file").status_code == 201
        page, console = open_page(browser, server)
        expect(page.locator("#files .folder-name")).to_have_text(["Photos"])
        expect(page.locator("#files .file-name")).to_have_text(["top.txt"])

        page.get_by_role("link", name="Photos").click()
        page.wait_for_url(f"{server.base_url}/?folder={photos}")
        expect(page.locator(".breadcrumb [aria-current=page]")).to_have_text("Photos")
        expect(page.locator("#files .file-name")).to_have_count(0)

        # A folder made here appears here, live, without a reload.
        page.get_by_label("New folder").fill("Trip")
        page.get_by_role("button", name="Make folder").click()
        expect(page.locator("#files .folder-name")).to_have_text(["Trip"])
        expect(page.get_by_label("New folder")).to_have_value("")

        page.go_back()
        page.wait_for_url(f"{server.base_url}/")
        expect(page.locator("#files .file-name")).to_have_text(["top.txt"])
        page.go_forward()
        page.wait_for_url(f"{server.base_url}/?folder={photos}")
        expect(page.locator("#files .folder-name")).to_have_text(["Trip"])
        # The breadcrumb leads back to the root.
        page.locator(".breadcrumb").get_by_role("link", name="Files").click()
        page.wait_for_url(f"{server.base_url}/")
        row = page.locator("#files li.folder", has_text="Photos")
        expect(row).to_contain_text("1 folder")
        assert console.errors == []


def test_a_folder_delete_first_says_what_will_go(browser, server):  # noqa: F811
    with server.http() as http:
        photos = http.post("/api/folders", json={"name": "Photos"}).json()["folder"]["id"]
        http.post("/api/folders", json={"name": "Trip", "parent": photos})
        for name in ("a.txt", "b.txt"):
            stored = http.put(f"/uploads/{name}", content=b"x" * 1024).json()["files"][0]
            moved = http.post("/api/files/move", json={"ids": [stored["id"]], "to": photos})
            assert moved.status_code == 200, moved.text
        page, console = open_page(browser, server)
        row = page.locator("#files li.folder", has_text="Photos")
        row.get_by_role("button", name="Delete folder Photos").click()
        question = page.locator("#delete-confirm")
        expect(question).to_be_visible()
        expect(question).to_contain_text("Delete 2 folders and 2 files, 2 KiB?")
        question.get_by_role("button", name="Cancel").click()
        expect(question).to_be_hidden()
        expect(row).to_be_visible()

        row.locator(".pick").check()
        page.get_by_role("button", name="Delete selected").click()
        expect(question).to_contain_text("Delete 2 folders and 2 files, 2 KiB?")
        question.get_by_role("button", name="Delete").click()
        expect(page.locator("#files li.folder")).to_have_count(0)
        expect(question).to_be_hidden()
        assert http.get(f"/api/folders/{photos}").status_code == 404
        assert console.errors == []


def test_uploading_a_folder_keeps_its_paths(browser, server, tmp_path: Path):  # noqa: F811
    tree = tmp_path / "trip"
    (tree / "day1").mkdir(parents=True)
    (tree / "notes.txt").write_bytes(b"notes\n")
    (tree / "day1" / "beach.txt").write_bytes(b"sand\n" * 10)
    with server.http() as http:
        page, console = open_page(browser, server)
        page.locator("#folder-picker").set_input_files(tree)
        panel = page.locator("#tree-upload")
        expect(panel).to_contain_text("Folder trip: 2 of 2 files stored")
        expect(panel.locator("li[data-state=done]")).to_have_count(2)
        # Each file shows with its path (the part's filename), and where the
        # transports keep paths (they do once the server makes the folders a path
        # names) the tree is there to open.
        names = sorted(panel.locator(".tree-name").all_text_contents())
        assert names == ["trip/day1/beach.txt", "trip/notes.txt"]
        stored = {f["name"]: f.get("path") for f in http.get("/api/files").json()["files"]}
        assert len(stored) == 2
        if stored.get("beach.txt") == "/trip/day1/beach.txt":
            page.get_by_role("link", name="trip").click()
            expect(page.locator("#files .folder-name")).to_have_text(["day1"])
            expect(page.locator("#files .file-name")).to_have_text(["notes.txt"])
        assert console.errors == []
