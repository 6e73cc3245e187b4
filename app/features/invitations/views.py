"""The invitation and reset pages: plain HTML forms, so they work without scripts."""

from stario import h
from stario.markup import HtmlElement

from app.common.shell import PageAssets, page
from app.features.auth.panel import account_name_field, new_password_fields, refusal
from app.features.auth.urls import LOGIN
from app.features.invitations.urls import INVITE_SUBMIT, RESET_SUBMIT

ERROR_ID = "link-error"


def invite_page(
    assets: PageAssets, *, token: str, admin: bool, name: str = "", error: str | None = None
) -> HtmlElement:
    return page(
        assets,
        "Invitation · Stowage",
        h.Main(
            {"id": "invite", "class": "auth"},
            h.H1("Stowage"),
            h.Form(
                {"method": "post", "action": INVITE_SUBMIT.href(), "class": "auth-form"},
                h.H2("Create your account"),
                h.P(
                    {"class": "hint"},
                    "You were invited to this server"
                    + (" as an administrator" if admin else "")
                    + ". This link works only until it is used.",
                ),
                refusal(ERROR_ID, error),
                account_name_field(name),
                *new_password_fields(),
                h.Input({"type": "hidden", "name": "token", "value": token}),
                h.Button({"type": "submit", "class": "button primary"}, "Create account"),
            ),
        ),
    )


def reset_page(
    assets: PageAssets, *, token: str, name: str, error: str | None = None
) -> HtmlElement:
    return page(
        assets,
        "New password · Stowage",
        h.Main(
            {"id": "reset", "class": "auth"},
            h.H1("Stowage"),
            h.Form(
                {"method": "post", "action": RESET_SUBMIT.href(), "class": "auth-form"},
                h.H2("Choose a new password"),
                h.P(
                    {"class": "hint"},
                    "For the account ",
                    h.Strong(name),
                    ". Every place it is signed in is signed out. "
                    "This link works only until it is used.",
                ),
                refusal(ERROR_ID, error),
                # Lets a password manager file the new password under the right name.
                h.Input(
                    {"type": "text", "name": "username", "value": name, "autocomplete":
                     "username", "hidden": True, "aria-hidden": "true", "tabindex": "-1",
                     "readonly": True}
                ),
                *new_password_fields(),
                h.Input({"type": "hidden", "name": "token", "value": token}),
                h.Button({"type": "submit", "class": "button primary"}, "Set password"),
            ),
        ),
    )  # fmt: skip


def reset_done_page(assets: PageAssets, name: str) -> HtmlElement:
    return page(
        assets,
        "Password set · Stowage",
        h.Main(
            {"id": "reset-done", "class": "auth"},
            h.H1("Stowage"),
            h.Div(
                {"class": "auth-form", "role": "status"},
                h.H2("Your password is set"),
                h.P("The account ", h.Strong(name), " now signs in with the new password."),
                h.A({"class": "button primary", "href": LOGIN.href()}, "Sign in"),
            ),
        ),
    )


def gone_page(assets: PageAssets) -> HtmlElement:
    return page(
        assets,
        "Link not valid · Stowage",
        h.Main(
            {"id": "link-gone", "class": "auth"},
            h.H1("Stowage"),
            h.Div(
                {"class": "auth-form"},
                h.H2("This link does not work"),
                h.P(
                    "It was used already, has expired, or never existed. "
                    "Ask an administrator of this server for a new one."
                ),
            ),
        ),
    )
