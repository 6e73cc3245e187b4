"""The Admin screen in Chromium: at a phone's 375 px and a desktop's 1280 px no
horizontal scroll (the accounts table scrolls in its own box), no console errors,
axe-core 0 violations (WCAG 2.1 A/AA) with a refusal and a new link on screen, a live
repaint when an account is made elsewhere, keyboard-only account creation; and with
JavaScript off, create an account, set a quota and make a reset link that works."""

import re

import pytest
from playwright.sync_api import Page, expect
from tests.support.axe import axe_violations
from tests.support.browser import Console, browser, sign_in  # noqa: F401  (the fixture)
from tests.support.fixtures import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENS = {"desktop": (1280, 800), "phone": (375, 667)}
NEW_PASSWORD = "another long password"


def no_horizontal_scroll(page: Page) -> None:
    wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page scrolls sideways by {wide} px"


def open_admin(page: Page, base_url: str) -> None:
    page.goto(base_url + "/admin")
    expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()
    # Datastar has started (it removes data-nonce) and the live stream has painted.
    page.wait_for_function("() => !document.documentElement.hasAttribute('data-nonce')")


@pytest.mark.parametrize("screen", SCREENS)
def test_the_admin_screen_at_each_width(browser, server, screen: str):  # noqa: F811
    width, height = SCREENS[screen]
    with server.http() as http:
        made = http.post(
            "/admin/accounts",
            data={"name": "ada.lovelace-with-a-long-name", "password": PASSWORD, "quota": "5GiB"},
        )
        assert made.status_code == 303
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    console = Console(page)
    sign_in(page, server)
    open_admin(page, server.base_url)
    found: dict[str, list[str]] = {}
    accounts = page.locator("#admin-accounts")
    expect(accounts).to_contain_text("ada.lovelace-with-a-long-name")
    expect(accounts).to_contain_text("never")
    no_horizontal_scroll(page)
    found["screen"] = axe_violations(page)

    # A refusal, next to the field it is about; it goes when the form is sent right.
    quota = page.locator("#admin-quota")
    quota.get_by_label("Account").select_option("ada.lovelace-with-a-long-name")
    quota.get_by_label("Quota").fill("plenty")
    quota.get_by_role("button", name="Set quota").click()
    error = page.locator("#admin-quota-error")
    expect(error).to_contain_text("The quota must be a number of bytes")
    expect(quota.get_by_label("Quota")).to_have_attribute("aria-invalid", "true")
    no_horizontal_scroll(page)
    found["refused quota"] = axe_violations(page)
    quota.get_by_label("Account").select_option("ada.lovelace-with-a-long-name")
    quota.get_by_label("Quota").fill("10GiB")
    quota.get_by_role("button", name="Set quota").click()
    expect(page.locator("#admin-done")).to_have_text("The quota was set.")
    expect(error).to_have_count(0)
    expect(accounts).to_contain_text("10 GiB")

    # A reset link, shown once in the form that made it.
    reset = page.locator("#admin-reset")
    reset.get_by_label("Account").select_option("ada.lovelace-with-a-long-name")
    reset.get_by_role("button", name="Make reset link").click()
    link = page.locator("#admin-reset-link-value")
    expect(link).to_contain_text("/reset?token=")
    no_horizontal_scroll(page)
    found["reset link"] = axe_violations(page)
    expect(page.locator("#admin-log")).to_contain_text("made reset link")

    # Live: an account made elsewhere shows without a reload (within a second here; the
    # bound is for a loaded machine, as the suite runs on two workers).
    with server.http() as http:
        assert (
            http.post("/admin/accounts", data={"name": "grace", "password": PASSWORD}).status_code
            == 303
        )
    expect(accounts.get_by_role("rowheader", name="grace")).to_be_visible(timeout=10_000)
    no_horizontal_scroll(page)
    assert found == {key: [] for key in found}, found
    assert console.errors == []
    context.close()


def test_keyboard_only_creates_an_account(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    console = Console(page)
    sign_in(page, server)
    open_admin(page, server.base_url)
    name = page.locator("#admin-create-name")
    for _ in range(40):
        if page.evaluate("() => document.activeElement?.id") == "admin-create-name":
            break
        page.keyboard.press("Tab")
    expect(name).to_be_focused()
    page.keyboard.type("keyboard-person")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#admin-done")).to_have_text("The account was created.")
    expect(page.locator("#admin-accounts")).to_contain_text("keyboard-person")
    expect(name).to_have_value("")
    assert console.errors == []
    context.close()


def test_admin_forms_without_javascript(browser, server):  # noqa: F811
    context = browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 667})
    page = context.new_page()
    sign_in(page, server)
    page.goto(server.base_url + "/admin")

    create = page.locator("#admin-create")
    create.get_by_label("Name").fill("nojs")
    create.get_by_label("Password").fill(PASSWORD)
    create.get_by_role("button", name="Create account").click()
    page.wait_for_url(server.base_url + "/admin?done=created")
    expect(page.locator("#admin-done")).to_have_text("The account was created.")
    expect(page.locator("#admin-accounts")).to_contain_text("nojs")

    quota = page.locator("#admin-quota")
    quota.get_by_label("Account").select_option("nojs")
    quota.get_by_label("Quota").fill("a lot")
    quota.get_by_role("button", name="Set quota").click()
    expect(page.locator("#admin-quota-error")).to_contain_text("The quota must be")
    quota = page.locator("#admin-quota")
    quota.get_by_label("Account").select_option("nojs")
    quota.get_by_label("Quota").fill("2GiB")
    quota.get_by_role("button", name="Set quota").click()
    page.wait_for_url(server.base_url + "/admin?done=quota")
    expect(page.locator("#admin-accounts")).to_contain_text("2 GiB")

    reset = page.locator("#admin-reset")
    reset.get_by_label("Account").select_option("nojs")
    reset.get_by_label("Valid for").select_option(label="1 hour")
    reset.get_by_role("button", name="Make reset link").click()
    link = page.locator("#admin-reset-link-value").inner_text()
    assert re.fullmatch(r"http://\S+/reset\?token=[A-Za-z0-9_-]+", link), link
    no_horizontal_scroll(page)

    # The link, opened by its holder (another browser, also without scripts).
    holder = browser.new_context(java_script_enabled=False).new_page()
    holder.goto(link.replace("http://127.0.0.1:8000", server.base_url))
    holder.get_by_label("Password (at least").fill(NEW_PASSWORD)
    holder.get_by_label("Password again").fill(NEW_PASSWORD)
    holder.get_by_role("button", name="Set password").click()
    expect(holder.get_by_role("heading", name="Your password is set")).to_be_visible()
    holder.goto(link.replace("http://127.0.0.1:8000", server.base_url))
    expect(holder.get_by_role("heading", name="This link does not work")).to_be_visible()
    holder.context.close()
    context.close()
