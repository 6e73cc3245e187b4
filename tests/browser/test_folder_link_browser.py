"""A folder link that takes uploads, in real Chromium against a real server: the
owner makes it on the page (the folder's Share button, "take uploads"), a visitor
with no session opens /s/TOKEN, chooses a folder with the directory picker, and the
files land in the shared folder's subfolders. axe-core checks the landing page at a
desktop's 1280 px and a phone's 375 px."""

from pathlib import Path

import pytest
from playwright.sync_api import expect
from tests.support.axe import axe_violations
from tests.support.browser import Console, browser, sign_in, wait_until_live  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENS = {"desktop": (1280, 800), "phone": (375, 667)}


@pytest.mark.parametrize("screen", SCREENS)
def test_a_visitor_drops_a_folder_into_a_shared_folder(
    browser,  # noqa: F811
    server,
    tmp_path: Path,
    screen: str,
):
    width, height = SCREENS[screen]
    with server.http() as http:
        inbox = http.post("/api/folders", json={"name": "Inbox"}).json()["folder"]["id"]
    owner_context = browser.new_context(viewport={"width": 1280, "height": 900})
    owner = owner_context.new_page()
    owner_console = Console(owner)
    sign_in(owner, server)
    wait_until_live(owner)
    owner.get_by_role("link", name="Share folder Inbox").click()
    form = owner.locator("#share-form")
    expect(form).to_be_visible()
    expect(form.locator(".share-what")).to_contain_text("Inbox")
    form.get_by_label("Take uploads").check()
    form.get_by_label("Most files (optional)").fill("10")
    form.get_by_role("button", name="Create link").click()
    url = owner.locator("#new-share-url")
    expect(url).to_contain_text("/s/")
    link = url.inner_text().strip()
    # The new link shows on the Shared screen, in its own tab.
    shared = owner_context.new_page()
    shared.goto(server.base_url + "/shared")
    expect(shared.locator("#shares")).to_contain_text("/Inbox/")
    shared.close()

    tree = tmp_path / "shoot"
    (tree / "day1").mkdir(parents=True)
    (tree / "notes.txt").write_bytes(b"notes\n")
    (tree / "day1" / "beach.txt").write_bytes(b"sand\n" * 10)
    # CSP forbids injected scripts; axe is the test's, not the page's.
    visitor_context = browser.new_context(
        viewport={"width": width, "height": height}, bypass_csp=True
    )
    visitor = visitor_context.new_page()
    # A visitor's page never calls the owner's folders API (no 401 in its console):
    # the files make their folders by their relative paths as they arrive.
    visitor_console = Console(visitor)
    visitor.goto(link)
    expect(visitor.locator("#folder-picker")).to_be_attached()
    found = {"landing": axe_violations(visitor)}
    visitor.locator("#folder-picker").set_input_files(tree)
    expect(visitor.locator("#tree-upload")).to_contain_text("2 of 2 files stored")
    expect(visitor.locator("#tree-upload")).not_to_contain_text("folders not made")
    found["after the drop"] = axe_violations(visitor)

    with server.http() as http:
        top = http.get(f"/api/folders/{inbox}").json()
        assert [f["name"] for f in top["folders"]] == ["shoot"]
        shoot = http.get(f"/api/folders/{top['folders'][0]['id']}").json()
        assert [f["name"] for f in shoot["files"]] == ["notes.txt"]
        assert [f["name"] for f in shoot["folders"]] == ["day1"]
        day1 = http.get(f"/api/folders/{shoot['folders'][0]['id']}").json()
        assert [f["name"] for f in day1["files"]] == ["beach.txt"]
        assert http.get("/api/folders/root").json()["files"] == []
    # The owner's page shows the arrivals live (the folder row's count).
    expect(owner.locator(f"#folder-{inbox}")).to_contain_text("2 files")

    problems = {view: v for view, v in found.items() if v}
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())
    assert owner_console.errors == [] and visitor_console.errors == []
    owner_context.close()
    visitor_context.close()
