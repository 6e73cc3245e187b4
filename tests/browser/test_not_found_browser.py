"""Links that lead nowhere, opened in Chromium: a revoked share's Download button and
an unknown address show a page in words (no raw text or JSON), with no console error
but the failed load itself."""

import pytest
from playwright.sync_api import expect
from tests.support.axe import axe_violations
from tests.support.browser import Console, browser, sign_in  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_revoked_links_download_and_an_unknown_path_show_pages(browser, server):  # noqa: F811
    with server.http() as http:
        put = http.put("/uploads/report.txt", content=b"quarterly figures\n")
        assert put.status_code == 201, put.text
        made = http.post(f"/api/files/{put.json()['files'][0]['id']}/shares", json={})
        assert made.status_code == 201, made.text
    share = made.json()["share"]
    guest = browser.new_context(viewport={"width": 375, "height": 667}, bypass_csp=True)
    page = guest.new_page()
    console = Console(page)
    page.goto(server.base_url + share["url"])
    download = page.get_by_role("link", name="Download")
    expect(download).to_be_visible()
    with server.http() as http:
        assert http.delete(f"/api/shares/{share['id']}").status_code == 204
    download.click()  # the link was revoked while its page stayed open
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("revoked")
    assert axe_violations(page) == []
    page.goto(server.base_url + "/no/such/page")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_role("link", name="Sign in to Stowage")).to_be_visible()
    assert axe_violations(page) == []
    refused = [e for e in console.errors if "404" not in e and "410" not in e]
    assert refused == []
    # Signed in, the same address is a page under the navigation.
    person = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    person_console = Console(person)
    sign_in(person, server)
    person.goto(server.base_url + "/no/such/page")
    expect(person.get_by_role("heading", name="Not found")).to_be_visible()
    expect(person.get_by_role("navigation", name="Screens")).to_be_visible()
    person.get_by_role("link", name="Back to your files").click()
    expect(person).to_have_url(server.base_url + "/")
    assert [e for e in person_console.errors if "404" not in e] == []
