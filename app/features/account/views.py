"""What the Account screen shows: the password form, the sessions list (the stream
repaints it) and the API tokens panel. Every action is a plain form that works
without scripts; Datastar sends the same forms and patches what they change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from stario import h
from stario.datastar import data
from stario.markup import HtmlElement

from app.accounts.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from app.accounts.store import SessionInfo, TokenInfo
from app.common.forms import form_field, post_form
from app.features.account.urls import (
    ACCOUNT_PASSWORD,
    ACCOUNT_SESSION_END,
    ACCOUNT_SESSIONS_END_OTHERS,
)
from app.features.tokens.panel import tokens_panel

NOTICE_ID = "account-notice"
PASSWORD_FORM_ID = "password-form"
SESSIONS_ID = "sessions"
SESSIONS_ERROR_ID = "sessions-error"
# The page's signal holding its own session's handle: every tab of the account gets
# the same repaint of the list, and each marks its own session from this.
SESSION_SIGNAL = "_session"

# `?done=` codes of the plain forms' redirects and what the screen then says.
DONE = {
    "password": "Your password is changed. Every other session of your account is signed out.",
    "session": "That session is signed out.",
    "others": "Every other session of your account is signed out.",
    "token": "The token is revoked.",
}


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def notice_part(message: str | None = None) -> HtmlElement:
    return h.Div({"id": NOTICE_ID, "class": "notice", "role": "status"}, message or "")


@dataclass(frozen=True, slots=True)
class PasswordErrors:
    """A refusal of the password form, by field (`current`, `new`, `again`)."""

    current: str | None = None
    new: str | None = None
    again: str | None = None


def password_form(errors: PasswordErrors | None = None, done: str | None = None) -> HtmlElement:
    """`#password-form`: never filled in again (passwords are not echoed back)."""
    errors = errors or PasswordErrors()
    return post_form(
        ACCOUNT_PASSWORD.href(),
        form_field(
            "Current password", "password-current",
            {"type": "password", "name": "current", "required": True,
             "autocomplete": "current-password", "maxlength": MAX_PASSWORD_CHARS},
            errors.current,
        ),
        form_field(
            f"New password (at least {MIN_PASSWORD_CHARS} characters)", "password-new",
            {"type": "password", "name": "new", "required": True,
             "autocomplete": "new-password", "minlength": MIN_PASSWORD_CHARS,
             "maxlength": MAX_PASSWORD_CHARS},
            errors.new,
        ),
        form_field(
            "New password again", "password-again",
            {"type": "password", "name": "again", "required": True,
             "autocomplete": "new-password", "maxlength": MAX_PASSWORD_CHARS},
            errors.again,
        ),
        h.Button({"type": "submit", "class": "button primary"}, "Change password"),
        h.P({"class": "ok", "role": "status"}, done) if done else None,
        id=PASSWORD_FORM_ID,
        **{"class": "token-form password-form"},
    )  # fmt: skip


def password_panel(errors: PasswordErrors | None = None) -> HtmlElement:
    return h.Section(
        {"id": "password", "aria-labelledby": "password-title"},
        h.H2({"id": "password-title"}, "Password"),
        h.P(
            {"class": "note"},
            "Changing it signs out every other session of your account; this one stays.",
        ),
        password_form(errors),
    )


def _session_item(session: SessionInfo, current: str | None) -> HtmlElement:
    where = session.address or "an unknown address"
    described = f"{session.device} from {where}, signed in {_when(session.created_at)}"
    return h.Li(
        {"class": "token session", "id": f"session-{session.handle}"},
        h.Div(
            {"class": "file-main"},
            h.Span(
                {"class": "file-name"},
                session.device,
                # Only the page's own session shows this (its signal says which); the
                # page rendered without scripts marks it here, on the server.
                h.Strong(
                    {"class": "this-session"},
                    data.show(f"${SESSION_SIGNAL} == '{session.handle}'"),
                    " (this session)",
                )
                if current is None or current == session.handle
                else None,
            ),
            h.Span(
                {"class": "file-meta"},
                h.Span(f"from {where}"),
                h.Span(f"signed in {_when(session.created_at)}"),
                h.Span(f"last used {_when(session.last_seen)}"),
            ),
        ),
        post_form(
            ACCOUNT_SESSION_END.href(session.handle),
            h.Button(
                {"type": "submit", "class": "button danger",
                 "aria-label": f"Sign out the session {described}"},
                "Sign out",
            ),
            confirm=f"Sign out the session {session.device} from {where}?",
            **{"class": "inline-form"},
        ),
    )  # fmt: skip


def sessions_part(
    sessions: list[SessionInfo], current: str | None = None, error: str | None = None
) -> HtmlElement:
    """`#sessions`. `current`: the handle of the session this page is rendered for;
    None in the stream's repaint, shared by every page of the account (each marks its
    own session through its signal)."""
    return h.Div(
        {"id": SESSIONS_ID},
        h.P({"id": SESSIONS_ERROR_ID, "class": "error", "role": "alert"}, error or ""),
        h.Ul({"class": "token-list"}, *[_session_item(s, current) for s in sessions])
        if sessions
        else h.P({"class": "empty"}, "No sessions: you are using an API token."),
    )


def sessions_panel(
    sessions: list[SessionInfo], current: str | None, error: str | None = None
) -> HtmlElement:
    return h.Section(
        {"id": "sessions-panel", "aria-labelledby": "sessions-title"},
        h.H2({"id": "sessions-title"}, "Sessions"),
        h.P(
            {"class": "note"},
            "Every browser signed in to your account. Sign out any you do not recognise,"
            " then change your password.",
        ),
        sessions_part(sessions, current, error),
        post_form(
            ACCOUNT_SESSIONS_END_OTHERS.href(),
            h.Button({"type": "submit", "class": "button danger"}, "Sign out all other sessions"),
            confirm="Sign out every other session of your account?",
            **{"class": "inline-form end-others"},
        ),
    )


@dataclass(frozen=True, slots=True)
class AccountView:
    """Everything one render of the screen shows, refusals and one-time secrets
    included."""

    sessions: list[SessionInfo]
    tokens: list[TokenInfo]
    current_session: str | None
    notice: str | None = None
    password_errors: PasswordErrors | None = None
    session_error: str | None = None
    token_label: str = ""
    token_error: str | None = None
    new_token: tuple[TokenInfo, str] | None = None


def account_sections(view: AccountView) -> list[HtmlElement]:
    return [
        h.H1("Account"),
        notice_part(view.notice),
        password_panel(view.password_errors),
        sessions_panel(view.sessions, view.current_session, view.session_error),
        tokens_panel(
            view.tokens, new_token=view.new_token, label=view.token_label, error=view.token_error
        ),
    ]
