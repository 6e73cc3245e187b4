"""Real Chromium for the browser tier: the module-scoped `browser` fixture (Debian's
/usr/bin/chromium, never a downloaded one) and the steps every page test takes."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from tests.support.fixtures import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    RunningServer,
    require_chromium,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Console:
    """Errors a page logged, except the failed loads a test expects."""

    def __init__(self, page: Page, expected: tuple[str, ...] = ()) -> None:
        self.errors: list[str] = []
        self.expected = expected
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self._add(f"page error: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self._add(message.text)

    def _add(self, text: str) -> None:
        if not any(e in text for e in self.expected):
            self.errors.append(text)


def sign_in(page: Page, server: RunningServer, name: str = "owner") -> None:
    """Sign in as a person does: `/` sends a browser without a session to /login, whose
    plain form sets the session cookie and answers 303 back to `/`."""
    page.goto(server.base_url + "/")
    expect(page).to_have_url(server.base_url + "/login?next=/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.base_url + "/")


def wait_until_live(page: Page) -> None:
    # The stream is open once it has painted (and cleared the offline flag).
    expect(page.locator("#files")).to_be_visible()
    page.wait_for_function("() => !document.documentElement.hasAttribute('data-nonce')")


def open_page(
    browser: Browser, server: RunningServer, width: int = 1100, name: str = "owner", **expect_errors
):
    """A new browser (context) signed in as `name`, on the home page."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    console = Console(page, **expect_errors)
    sign_in(page, server, name)
    wait_until_live(page)
    return page, console


def open_tab(page: Page, server: RunningServer):
    """Another tab of `page`'s browser (its session cookie too), on the home page."""
    tab = page.context.new_page()
    console = Console(tab)
    tab.goto(server.base_url + "/")
    wait_until_live(tab)
    return tab, console


def row(page: Page, name: str):
    return page.locator("#files li.file", has=page.locator(".file-name", has_text=name))


def watch_console(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    return errors


def sign_in_until_painted(page: Page, server: RunningServer) -> None:
    page.goto(server.base_url + "/")  # a signed-out browser is sent to sign in
    page.fill("input[name=name]", "owner")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.base_url + "/")
    expect(page.locator("#files")).to_be_visible()
    # The stream has painted once the offline flag is cleared and Datastar has started.
    page.wait_for_function("() => !document.documentElement.hasAttribute('data-nonce')")
