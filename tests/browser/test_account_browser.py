"""The Account and Requests screens in Chromium (lane A of issue 25): at a phone's
375 px and a desktop's 1280 px with no horizontal scroll, no console errors and axe-core
clean; the password changed with the keyboard only; the sessions list repainting live
when another browser signs in; and every form of both screens with JavaScript off."""

import re

import pytest
from playwright.sync_api import Page, expect
from tests.support.axe import axe_violations
from tests.support.browser import Console, browser, sign_in  # noqa: F401
from tests.support.fixtures import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENS = {"desktop": (1280, 800), "phone": (375, 667)}
NEW_PASSWORD = "a different horse battery"
TUS_CREATE = {"tus-resumable": "1.0.0", "upload-length": "10"}


def live(page: Page) -> None:
    """Datastar has started (it removes the nonce attribute once it has read it)."""
    page.wait_for_function("() => !document.documentElement.hasAttribute('data-nonce')")


def no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"scrolls sideways: {widths}"


def a_request_with_an_unfinished_upload(server) -> None:
    with server.http() as http:
        made = http.post("/api/requests", json={"label": "Receipts", "max_files": 3})
        link = made.json()["request"]["url"]
        assert http.post(f"{link}/tus", headers=TUS_CREATE).status_code == 201


@pytest.mark.parametrize("screen", SCREENS)
def test_the_account_and_requests_screens_fit_and_pass_axe(browser, server, screen):  # noqa: F811
    width, height = SCREENS[screen]
    a_request_with_an_unfinished_upload(server)
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    console = Console(page)
    sign_in(page, server)
    found: dict[str, list[str]] = {}

    page.goto(server.base_url + "/account")
    live(page)
    expect(page.locator("#sessions li.session")).to_have_count(1)
    expect(page.locator("#sessions .this-session")).to_be_visible()
    no_horizontal_scroll(page)
    found["account"] = axe_violations(page)

    page.get_by_label("Label").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token-secret")).to_contain_text("stw_")
    expect(page.locator("#tokens")).to_contain_text("laptop")
    no_horizontal_scroll(page)
    found["account with a new token"] = axe_violations(page)

    page.get_by_label("Current password").fill("not it")
    page.get_by_label("New password (at least").fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-current-error")).to_have_text(
        "That is not your current password."
    )
    found["account with a refused password"] = axe_violations(page)

    page.goto(server.base_url + "/requests")
    live(page)
    expect(page.locator("#requests")).to_contain_text("Receipts")
    no_horizontal_scroll(page)
    found["requests"] = axe_violations(page)
    form = page.locator("#request-form")
    form.get_by_label("What to ask for").fill("Tax papers")
    form.get_by_label("Largest file, MiB (optional)").fill("999999999")
    form.get_by_role("button", name="Create request").click()
    expect(page.locator("#request-max-mib-error")).to_contain_text("whole number of MiB")
    found["requests with a refusal"] = axe_violations(page)
    form.get_by_label("Largest file, MiB (optional)").fill("2")
    form.get_by_role("button", name="Create request").click()
    expect(page.locator("#new-request-url")).to_contain_text("/r/")
    expect(page.locator("#request-max-mib-error")).to_have_text("")  # gone once it applies no more
    expect(page.locator("#requests")).to_contain_text("Tax papers")
    no_horizontal_scroll(page)
    found["requests with a new link"] = axe_violations(page)

    problems = {view: v for view, v in found.items() if v}
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())
    assert console.errors == []
    context.close()


def test_the_password_is_changed_with_the_keyboard_and_other_sessions_end_live(
    browser,  # noqa: F811
    server,
):
    mine = browser.new_context(viewport={"width": 1280, "height": 800})
    page = mine.new_page()
    console = Console(page)
    sign_in(page, server)
    page.goto(server.base_url + "/account")
    live(page)
    expect(page.locator("#sessions li.session")).to_have_count(1)

    # Another browser signs in: this page's list shows it, live.
    theirs = browser.new_context()
    other = theirs.new_page()
    sign_in(other, server)
    expect(page.locator("#sessions li.session")).to_have_count(2, timeout=10_000)

    # Tab to the form, as a keyboard user does.
    for _ in range(40):
        if page.evaluate("() => document.activeElement.id") == "password-current":
            break
        page.keyboard.press("Tab")
    else:
        raise AssertionError("Tab never reached the current password")
    page.keyboard.type("a wrong guess")
    page.keyboard.press("Tab")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#password-current-error")).to_have_text(
        "That is not your current password."
    )
    # Focus is on the field the error is about: its wrong guess replaced.
    expect(page.locator("#password-current")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#password-form")).to_contain_text("Your password is changed.")
    expect(page.locator("#password-current-error")).to_have_text("")
    expect(page.locator("#password-new")).to_have_value("")  # nothing typed stays
    # The other browser's session is over (its list here shows one), this one stays.
    expect(page.locator("#sessions li.session")).to_have_count(1, timeout=10_000)
    other.goto(server.base_url + "/account")
    expect(other).to_have_url(re.compile(r"/login\?next=/account$"))
    page.reload()
    expect(page.locator("h1")).to_have_text("Account")
    assert console.errors == []
    theirs.close()
    mine.close()


def test_every_account_and_requests_form_works_without_javascript(browser, server):  # noqa: F811
    a_request_with_an_unfinished_upload(server)
    elsewhere = browser.new_context()
    sign_in(elsewhere.new_page(), server)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 667})
    page = context.new_page()
    sign_in(page, server)
    page.goto(server.base_url + "/account")
    no_horizontal_scroll(page)

    # A wrong current password: the screen again, the reason next to the field.
    page.get_by_label("Current password").fill("not it")
    page.get_by_label("New password (at least").fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-current-error")).to_have_text(
        "That is not your current password."
    )
    expect(page.locator("#password-current")).to_be_focused()

    # A token, shown once in the answer; then revoked.
    page.get_by_label("Label").fill("no-script")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token-secret")).to_contain_text("stw_")
    page.goto(server.base_url + "/account")
    expect(page.locator("#new-token-secret")).to_have_count(0)
    page.get_by_role("button", name="Revoke the token no-script").click()
    expect(page).to_have_url(server.base_url + "/account?done=token")
    expect(page.locator("#account-notice")).to_have_text("The token is revoked.")
    expect(page.locator("#tokens")).not_to_contain_text("no-script")

    # The other browser's session, then every other one.
    expect(page.locator("#sessions li.session")).to_have_count(2)
    page.locator("#sessions li.session", has_not=page.locator(".this-session")).get_by_role(
        "button", name=re.compile("^Sign out the session")
    ).click()
    expect(page).to_have_url(server.base_url + "/account?done=session")
    expect(page.locator("#sessions li.session")).to_have_count(1)
    page.get_by_role("button", name="Sign out all other sessions").click()
    expect(page).to_have_url(server.base_url + "/account?done=others")

    # The password, rightly.
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password (at least").fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(server.base_url + "/account?done=password")
    expect(page.locator("#account-notice")).to_contain_text("Your password is changed.")

    # Requests: refused by its field, made (the link once), cancelled, closed.
    page.goto(server.base_url + "/requests")
    no_horizontal_scroll(page)
    form = page.locator("#request-form")
    form.get_by_label("Largest file, MiB (optional)").fill("999999999")
    form.get_by_label("What to ask for").fill("Tax papers")
    form.get_by_role("button", name="Create request").click()
    expect(page.locator("#request-max-mib-error")).to_contain_text("whole number of MiB")
    expect(form.get_by_label("What to ask for")).to_have_value("Tax papers")
    expect(form.get_by_label("Largest file, MiB (optional)")).to_be_focused()
    form.get_by_label("Largest file, MiB (optional)").fill("2")
    form.get_by_role("button", name="Create request").click()
    expect(page.locator("#new-request-url")).to_contain_text("/r/")
    expect(page.locator("#request-max-mib-error")).to_have_text("")
    page.goto(server.base_url + "/requests")
    page.get_by_role("button", name=re.compile("^Cancel the unfinished upload")).click()
    expect(page).to_have_url(server.base_url + "/requests?done=cancelled")
    page.get_by_role("button", name="Close the request Receipts").click()
    expect(page).to_have_url(server.base_url + "/requests?done=closed")
    expect(page.locator("#requests")).not_to_contain_text("Receipts")
    expect(page.locator("#requests")).to_contain_text("Tax papers")
    context.close()
    elsewhere.close()
