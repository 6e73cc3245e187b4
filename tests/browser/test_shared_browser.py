"""The Shared screen in real Chromium at a phone's 375 px and a desktop's 1280 px: no
horizontal scroll, no console errors, axe-core finds nothing; a link's download log
opens from the keyboard, stays open and repaints live when someone downloads; and
Revoke works with JavaScript off."""

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.support.axe import axe_violations
from tests.support.browser import Console, browser, sign_in  # noqa: F401  (the fixture)
from tests.support.fixtures import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENS = {"desktop": (1280, 800), "phone": (375, 667)}
SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
LONG_AGENT = "Mozilla/5.0 " + "VeryLongUserAgentWithoutSpaces" * 8


def _link(server: RunningServer, name: str) -> tuple[str, str]:
    """(share id, /s/TOKEN) of a new link to a new file called `name`."""
    with server.http() as http:
        made = http.put(f"/uploads/{name}", content=b"the shared words\n" * 100)
        assert made.status_code == 201, made.text
        file_id = made.json()["files"][0]["id"]
        share = http.post(f"/api/files/{file_id}/shares", json={}).json()["share"]
    return share["id"], share["url"]


def _download(server: RunningServer, path: str, agent: str) -> None:
    got = httpx.get(server.base_url + path, headers={"user-agent": agent}, timeout=10)
    assert got.status_code == 200


def _open_shared(page: Page, server: RunningServer) -> None:
    page.goto(server.base_url + "/shared")
    expect(page.locator("#shares")).to_be_visible()
    page.wait_for_function("() => !document.documentElement.hasAttribute('data-nonce')")


def _no_horizontal_scroll(page: Page) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px"


@pytest.mark.parametrize("screen", SCREENS)
def test_the_log_opens_by_keyboard_passes_axe_and_repaints_live(
    browser,  # noqa: F811
    server: RunningServer,
    screen: str,
) -> None:
    width, height = SCREENS[screen]
    share_id, path = _link(server, "quarterly report with a long name.pdf")
    _download(server, path + "/file", SLACK)
    _download(server, path + "/file", LONG_AGENT)
    # CSP forbids injected scripts; axe is the test's, not the page's.
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    console = Console(page)
    sign_in(page, server)
    _open_shared(page, server)

    log = page.locator(f"#log-{share_id}")
    summary = log.locator("summary")
    expect(summary).to_have_text("Download log (2 requests)")
    summary.focus()
    page.keyboard.press("Enter")
    expect(log).to_have_attribute("open", "")
    expect(log.locator(".download")).to_have_count(2)
    expect(log.locator(".download.bot")).to_contain_text("link-preview bot")
    _no_horizontal_scroll(page)
    assert axe_violations(page) == []

    # Someone downloads: the open log repaints within a second or so, and stays open.
    _download(server, path + "/file", "curl/8.5.0")
    expect(summary).to_have_text("Download log (3 requests)", timeout=5_000)
    expect(log).to_have_attribute("open", "")
    expect(log.locator(".download").first).to_contain_text("curl/8.5.0")
    _no_horizontal_scroll(page)

    # The CSV link gives the file.
    with page.expect_download() as got:
        log.get_by_role(
            "link", name="Download log of quarterly report with a long name.pdf as CSV"
        ).click()
    assert got.value.suggested_filename == f"downloads-{share_id}.csv"

    # Revoke with scripts on asks first, then the list repaints.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role(
        "button", name="Revoke the link to quarterly report with a long name.pdf"
    ).click()
    expect(page.locator("#shared-status")).to_have_text("The link was revoked: it no longer works.")
    expect(page.locator("#shares")).to_contain_text("No shared links.")
    assert httpx.get(server.base_url + path + "/file").status_code == 410
    assert console.errors == []
    context.close()


def test_revoke_works_without_javascript(browser, server: RunningServer, tmp_path: Path) -> None:  # noqa: F811
    share_id, path = _link(server, "no-script.txt")
    _download(server, path + "/file", "curl/8.5.0")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 667})
    page = context.new_page()
    sign_in(page, server)
    page.goto(server.base_url + "/shared")
    # Without scripts the log is still a <details> the browser opens itself.
    page.locator(f"#log-{share_id} summary").click()
    expect(page.locator(f"#log-{share_id} .download")).to_have_count(1)
    page.get_by_role("button", name="Revoke the link to no-script.txt").click()
    page.wait_for_url(server.base_url + "/shared?done=revoked")
    expect(page.locator("#shared-status")).to_have_text("The link was revoked: it no longer works.")
    expect(page.locator("#shares")).to_contain_text("No shared links.")
    assert httpx.get(server.base_url + path + "/file").status_code == 410
    _no_horizontal_scroll(page)
    context.close()
