"""Every screen and every page a person meets, in Chromium at a phone's 375 px and a
desktop's 1280 px: no horizontal scroll, no console errors, axe-core 0 violations
(WCAG 2.1 A/AA). And the screens as one app: the navigation marks where you are, and
the browser's back and forward move between screens as between any pages."""

import pytest
from playwright.sync_api import Page, expect
from tests.support.axe import axe_violations
from tests.support.browser import Console, browser, sign_in  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = {"desktop": (1280, 800), "phone": (375, 667)}
# (path, its heading): every signed-in screen, in the navigation's order.
SCREENS = [
    ("/", "Files"),
    ("/shared", "Shared links"),
    ("/requests", "File requests"),
    ("/account", "Account"),
    ("/admin", "Admin"),
]


def sideways(page: Page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def settled(page: Page) -> None:
    """Datastar has started (it removes data-nonce) where the page runs it."""
    page.wait_for_function("() => !document.documentElement.hasAttribute('data-nonce')")


def things(server) -> dict[str, str]:  # noqa: ANN001
    """A file, a folder, a link, a collection and a request of the owner's, through the API."""
    with server.http() as http:
        put = http.put("/uploads/notes from the meeting.txt", content=b"line one\nline two\n")
        assert put.status_code == 201, put.text
        file_id = put.json()["files"][0]["id"]
        folder = http.post("/api/folders", json={"name": "Holiday photos"})
        assert folder.status_code == 201, folder.text
        link = http.post(f"/api/files/{file_id}/shares", json={})
        assert link.status_code == 201, link.text
        collection = http.post("/api/shares", json={"ids": [file_id]})
        assert collection.status_code == 201, collection.text
        request = http.post("/api/requests", json={"label": "Receipts for March"})
        assert request.status_code == 201, request.text
    return {
        "file": file_id,
        "link": link.json()["share"]["url"],
        "collection": collection.json()["share"]["url"],
        "request": request.json()["request"]["url"],
    }


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_at_each_width(browser, server, width: str):  # noqa: F811
    made = things(server)
    size = dict(zip(("width", "height"), WIDTHS[width], strict=True))
    # axe is injected as a script, which the pages' CSP would refuse.
    context = browser.new_context(viewport=size, bypass_csp=True)
    page = context.new_page()
    console = Console(page)
    problems: dict[str, list[str]] = {}

    def look(name: str) -> None:
        wide = sideways(page)
        found = axe_violations(page)
        if wide > 0:
            found.append(f"scrolls sideways by {wide} px")
        if found:
            problems[name] = found

    page.goto(server.base_url + "/login")
    look("sign-in")
    sign_in(page, server)
    for path, heading in SCREENS:
        page.goto(server.base_url + path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        settled(page)
        look(path)
    file_id = made["file"]
    for path in (f"/?preview={file_id}", f"/files/{file_id}/rename", f"/files/{file_id}/share",
                 f"/files/{file_id}/delete", "/files/no-such-file"):  # fmt: skip
        page.goto(server.base_url + path)
        look(path)
    # The pages of those holding a link: no account, a browser of their own.
    guest = browser.new_context(viewport=size, bypass_csp=True).new_page()
    guest_console = Console(guest)
    for name in ("link", "collection", "request"):
        guest.goto(server.base_url + made[name])
        wide = sideways(guest)
        found = axe_violations(guest) + ([f"scrolls sideways by {wide} px"] if wide > 0 else [])
        if found:
            problems[name] = found
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())
    # The missing file's 404 is the one error a browser logs here.
    assert [e for e in console.errors if "404" not in e] == []
    assert guest_console.errors == []


def test_the_navigation_and_the_browsers_back_and_forward(browser, server):  # noqa: F811
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    console = Console(page)
    sign_in(page, server)
    nav = page.get_by_role("navigation", name="Screens")
    for path, heading in SCREENS[1:]:
        label = {"/shared": "Shared", "/requests": "Requests", "/account": "Account",
                 "/admin": "Admin"}[path]  # fmt: skip
        nav.get_by_role("link", name=label, exact=True).click()
        expect(page).to_have_url(server.base_url + path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(nav.get_by_role("link", name=label, exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        settled(page)
    # Back through every screen to Files, then forward again to Admin.
    for path, heading in reversed(SCREENS[:-1]):
        page.go_back()
        expect(page).to_have_url(server.base_url + path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    for path, heading in SCREENS[1:]:
        page.go_forward()
        expect(page).to_have_url(server.base_url + path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    assert console.errors == []
