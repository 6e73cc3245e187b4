"""The pieces of the pages where a person signs in or chooses a password (sign-in,
first-run setup, an invitation, a reset link): plain form fields that work without
scripts, and the refusal shown above them."""

from stario import h
from stario.markup import HtmlElement

from app.accounts.passwords import MIN_PASSWORD_CHARS


def refusal(error_id: str, message: str | None) -> HtmlElement:
    return h.P({"id": error_id, "class": "error", "role": "alert"}, message or "")


def field(label: str, name: str, kind: str, autocomplete: str, **extra: str | int) -> HtmlElement:
    return h.Label(
        {"class": "field"},
        h.Span(label),
        h.Input(
            {"type": kind, "name": name, "required": True, "autocomplete": autocomplete, **extra}
        ),
    )


def account_name_field(name: str) -> HtmlElement:
    """The name of a new account, as `check_name` takes it."""
    return field(
        "Name (letters, digits, . _ -)", "name", "text", "username",
        value=name, maxlength=64, pattern="[A-Za-z0-9._\\-]{1,64}",
    )  # fmt: skip


def new_password_fields() -> list[HtmlElement]:
    """A new password, typed twice."""
    return [
        field(
            f"Password (at least {MIN_PASSWORD_CHARS} characters)",
            "password",
            "password",
            "new-password",
            minlength=MIN_PASSWORD_CHARS,
        ),
        field("Password again", "password_again", "password", "new-password"),
    ]
