"""Setup and sign-in pages: plain HTML forms, so they work without JavaScript."""

from stario import h
from stario.markup import HtmlElement

from app.accounts.passwords import MIN_PASSWORD_CHARS
from app.common.shell import PageAssets, page
from app.features.auth.urls import LOGIN_SUBMIT, SETUP_SUBMIT

ERROR_ID = "auth-error"


def _error(message: str | None) -> HtmlElement:
    return h.P({"id": ERROR_ID, "class": "error", "role": "alert"}, message or "")


def _field(label: str, name: str, kind: str, autocomplete: str, **extra: str | int) -> HtmlElement:
    return h.Label(
        {"class": "field"},
        h.Span(label),
        h.Input(
            {
                "type": kind,
                "name": name,
                "required": True,
                "autocomplete": autocomplete,
                **extra,
            }
        ),
    )


def login_page(
    assets: PageAssets, *, next_path: str, name: str = "", error: str | None = None
) -> HtmlElement:
    return page(
        assets,
        "Sign in · Stowage",
        h.Main(
            {"id": "login", "class": "auth"},
            h.H1("Stowage"),
            h.Form(
                {"method": "post", "action": LOGIN_SUBMIT.href(), "class": "auth-form"},
                h.H2("Sign in"),
                _error(error),
                _field("Name", "name", "text", "username", value=name, maxlength=64),
                _field("Password", "password", "password", "current-password"),
                h.Input({"type": "hidden", "name": "next", "value": next_path}),
                h.Button({"type": "submit", "class": "button primary"}, "Sign in"),
            ),
        ),
    )


def setup_page(
    assets: PageAssets, *, token: str, name: str = "", error: str | None = None
) -> HtmlElement:
    return page(
        assets,
        "Set up · Stowage",
        h.Main(
            {"id": "setup", "class": "auth"},
            h.H1("Stowage"),
            h.Form(
                {"method": "post", "action": SETUP_SUBMIT.href(), "class": "auth-form"},
                h.H2("Create the first account"),
                h.P(
                    {"class": "hint"},
                    "This account is an administrator. Files already stored on this "
                    "server become its files. This link works only until it is used.",
                ),
                _error(error),
                _field(
                    "Name (letters, digits, . _ -)",
                    "name",
                    "text",
                    "username",
                    value=name,
                    maxlength=64,
                    pattern="[A-Za-z0-9._\\-]{1,64}",
                ),
                _field(
                    f"Password (at least {MIN_PASSWORD_CHARS} characters)",
                    "password",
                    "password",
                    "new-password",
                    minlength=MIN_PASSWORD_CHARS,
                ),
                _field("Password again", "password_again", "password", "new-password"),
                h.Input({"type": "hidden", "name": "token", "value": token}),
                h.Button({"type": "submit", "class": "button primary"}, "Create account"),
            ),
        ),
    )
