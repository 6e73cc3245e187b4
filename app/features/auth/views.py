"""Setup and sign-in pages: plain HTML forms, so they work without JavaScript."""

from stario import h
from stario.markup import HtmlElement

from app.common.shell import PageAssets, page
from app.features.auth.panel import account_name_field, field, new_password_fields, refusal
from app.features.auth.urls import LOGIN_SUBMIT, SETUP_SUBMIT

ERROR_ID = "auth-error"


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
                refusal(ERROR_ID, error),
                field("Name", "name", "text", "username", value=name, maxlength=64),
                field("Password", "password", "password", "current-password"),
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
                refusal(ERROR_ID, error),
                account_name_field(name),
                *new_password_fields(),
                h.Input({"type": "hidden", "name": "token", "value": token}),
                h.Button({"type": "submit", "class": "button primary"}, "Create account"),
            ),
        ),
    )
