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

        page.get_by_role("link", name="Photos", exact=True).click()
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
        row.get_by_role("link", name="Delete folder Photos").click()
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
            page.get_by_role("link", name="trip", exact=True).click()
            expect(page.locator("#files .folder-name")).to_have_text(["day1"])
            expect(page.locator("#files .file-name")).to_have_text(["notes.txt"])
        assert console.errors == []


def test_choosing_a_folder_again_sends_only_what_is_not_there(
    browser,  # noqa: F811
    server,
    tmp_path: Path,
):
    """A reload mid-drop loses the page's batches; choosing the folder again skips
    each file already stored at its path with the same bytes (by SHA-256), so nothing
    is lost and nothing doubled."""
    tree = tmp_path / "shoot"
    (tree / "raw").mkdir(parents=True)
    for n in range(6):
        (tree / "raw" / f"img-{n}.txt").write_bytes(f"frame {n}\n".encode() * (n + 1))
    (tree / "list.txt").write_bytes(b"list\n")
    with server.http() as http:
        page, console = open_page(browser, server)
        page.locator("#folder-picker").set_input_files(tree)
        panel = page.locator("#tree-upload")
        expect(panel).to_contain_text("Folder shoot: 7 of 7 files stored")
        # As if the first drop had stopped after some files: two are gone, one changed.
        listed = {f["path"]: f["id"] for f in http.get("/api/files").json()["files"]}
        for path in ("/shoot/raw/img-1.txt", "/shoot/list.txt"):
            assert http.delete(f"/files/{listed[path]}").status_code == 204
        (tree / "raw" / "img-2.txt").write_bytes(b"frame X\n" * 3)  # same size, new bytes
        page.reload()
        page.locator("#folder-picker").set_input_files(tree)
        expect(panel).to_contain_text("7 of 7 files stored")
        expect(panel).to_contain_text("4 already there")
        paths = sorted(f["path"] for f in http.get("/api/files").json()["files"])
        assert paths == sorted(
            ["/shoot/list.txt", "/shoot/raw/img-2 (2).txt"]
            + [f"/shoot/raw/img-{n}.txt" for n in range(6)]
        )
        assert console.errors == []


# A drop's FileSystemEntry tree, made in the page: Playwright cannot drop real folders,
# so the page's module gets entries shaped as Chromium's (an empty folder included).
FAKE_DROP = """() => {
  const file = (name, text) => ({isFile: true, isDirectory: false, name,
    file: (ok) => ok(new File([text], name))});
  const dir = (name, children) => ({isFile: false, isDirectory: true, name,
    createReader: () => { let given = false;
      return {readEntries: (ok) => { ok(given ? [] : children); given = true; }}; }});
  const tree = dir('album', [file('cover.txt', 'cover'), dir('empty', []),
    dir('disc 1', [dir('bonus', []), file('track.txt', 'la la')])]);
  document.getElementById('upload-form').dispatchEvent(new CustomEvent('folder-drop',
    {bubbles: true, cancelable: true, detail: [tree]}));
}"""


def test_a_dropped_folder_keeps_its_empty_folders(browser, server):  # noqa: F811
    with server.http() as http:
        page, console = open_page(browser, server)
        page.evaluate(FAKE_DROP)
        expect(page.locator("#tree-upload")).to_contain_text("Folder album: 2 of 2 files stored")
        album = next(
            f for f in http.get("/api/folders/root").json()["folders"] if f["name"] == "album"
        )
        inside = http.get(f"/api/folders/{album['id']}").json()
        assert sorted(f["name"] for f in inside["folders"]) == ["disc 1", "empty"]
        disc = next(f for f in inside["folders"] if f["name"] == "disc 1")
        below = http.get(f"/api/folders/{disc['id']}").json()
        assert [f["name"] for f in below["folders"]] == ["bonus"]
        assert [f["name"] for f in below["files"]] == ["track.txt"]
        expect(page.locator("#files .folder-name")).to_have_text(["album"])
        assert console.errors == []


def test_a_folder_of_more_files_than_a_form_may_hold(browser, server, tmp_path: Path):  # noqa: F811
    """The server takes at most 100 parts in a form (app/ingest/multipart.py): the
    page's batches stay within it, so a folder of 150 small files all arrive."""
    tree = tmp_path / "many"
    (tree / "sub").mkdir(parents=True)
    for n in range(150):
        where = tree / "sub" if n % 2 else tree
        (where / f"f-{n:03d}.txt").write_bytes(f"file {n}\n".encode())
    with server.http() as http:
        page, console = open_page(browser, server)
        page.locator("#folder-picker").set_input_files(tree)
        panel = page.locator("#tree-upload")
        expect(panel).to_contain_text("Folder many: 150 of 150 files stored")
        expect(panel).to_have_attribute("data-state", "done")
        paths = {f["path"] for f in http.get("/api/files").json()["files"]}
        assert len(paths) == 150
        assert "/many/sub/f-001.txt" in paths and "/many/f-000.txt" in paths
        assert console.errors == []


def test_more_files_chosen_at_once_than_a_request_may_hold(browser, server, tmp_path: Path):  # noqa: F811
    """150 small files through "Choose files" (not a folder): more than one request of
    signals or one form may hold (100), so they go in batches like a folder's, into
    the folder shown, and all arrive."""
    picked = []
    for n in range(150):
        path = tmp_path / f"pick-{n:03d}.txt"
        path.write_bytes(f"picked {n}\n".encode())
        picked.append(path)
    with server.http() as http:
        page, console = open_page(browser, server)
        page.locator("#picker").set_input_files(picked)
        panel = page.locator("#tree-upload")
        expect(panel).to_contain_text("These files: 150 of 150 files stored")
        listed = http.get("/api/files", params={"limit": 1000}).json()["files"]
        assert sorted(f["path"] for f in listed) == [f"/pick-{n:03d}.txt" for n in range(150)]
        assert console.errors == []
