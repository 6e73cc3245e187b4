"""The Admin screen's parts: the accounts, the forms of every admin action, the server
panel and the admin log. Every form is a plain `<form method="post">` that works
without scripts; Datastar posts the same form and patches what changed. No part
names another account's files: only their count and size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stario import h
from stario.datastar import at, data
from stario.markup import HtmlElement
from stario.markup.types import Attrs

from app.accounts.admin import DEFAULT_LINK_SECONDS, LINK_LIFETIMES, LogEntry
from app.accounts.passwords import MIN_PASSWORD_CHARS
from app.accounts.store import Account
from app.common.shell import shown_once
from app.common.units import human_bytes
from app.features.admin.urls import (
    ADMIN_CREATE,
    ADMIN_INVITE,
    ADMIN_QUOTA,
    ADMIN_REMOVE,
    ADMIN_RESET,
    ADMIN_SERVER,
)

# What a tag takes besides text: attributes (plain or Datastar's) and elements.
type Child = HtmlElement | Attrs | str | None

MAIN_ID = "admin"
ACCOUNTS_ID = "admin-accounts"
LOG_ID = "admin-log"
SERVER_ID = "admin-server"
DONE_ID = "admin-done"
CREATE_ID = "admin-create"
INVITE_ID = "admin-invite"
QUOTA_ID = "admin-quota"
RESET_ID = "admin-reset"
REMOVE_ID = "admin-remove"
# The forms whose account list follows the accounts (repainted with them).
ACCOUNT_PICKERS = (QUOTA_ID, RESET_ID, REMOVE_ID)
# How often an open screen asks for the server panel again.
SERVER_REFRESH = "5s"

# `?done=<code>` after a plain form's 303: the fixed words the screen shows.
DONE_MESSAGES = {
    "created": "The account was created.",
    "quota": "The quota was set.",
    "removed": "The account was removed.",
}


@dataclass(frozen=True, slots=True)
class FormState:
    """What a form shows again after a refusal: the values sent (never a password)
    and the error, next to the field it is about."""

    values: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    error_field: str = ""


NO_STATE = FormState()


@dataclass(frozen=True, slots=True)
class ServerFacts:
    version: str
    storage: str
    catalog: str
    free_bytes: int | None
    floor_bytes: int
    connections: int | None  # None: not served by `stowage serve` (no connection table)
    uploads_in_flight: int
    direct: str = "off"  # what goes straight between clients and the bucket (--s3-direct)


def when(seconds: float | None) -> HtmlElement | str:
    if seconds is None:
        return "never"
    moment = datetime.fromtimestamp(seconds, UTC)
    return h.Time(
        {"datetime": moment.isoformat(timespec="seconds")}, moment.strftime("%Y-%m-%d %H:%M UTC")
    )


def _created(text: str) -> HtmlElement:
    return h.Time({"datetime": text}, text[:16].replace("T", " ") + " UTC")


def _quota(account: Account, default_quota: int | None) -> str:
    limit = account.quota(default_quota)
    words = "no limit" if limit is None else human_bytes(limit)
    return f"{words} (default)" if account.quota_kind == "default" else words


def accounts_part(
    accounts: Sequence[Account], default_quota: int | None, signed_in: Mapping[str, float]
) -> HtmlElement:
    """Every account with its usage; a wide table scrolls inside its own box."""
    return h.Div(
        {"id": ACCOUNTS_ID, "class": "table-wrap", "tabindex": "0", "role": "region",
         "aria-labelledby": f"{ACCOUNTS_ID}-caption"},
        h.Table(
            {"class": "accounts"},
            h.Caption({"id": f"{ACCOUNTS_ID}-caption"}, f"Accounts ({len(accounts):,})"),
            h.Thead(
                h.Tr(
                    h.Th({"scope": "col"}, "Name"),
                    h.Th({"scope": "col"}, "Admin"),
                    h.Th({"scope": "col"}, "Used"),
                    h.Th({"scope": "col"}, "Quota"),
                    h.Th({"scope": "col"}, "Files"),
                    h.Th({"scope": "col"}, "Last sign-in"),
                    h.Th({"scope": "col"}, "Created"),
                )
            ),
            h.Tbody(
                *[
                    h.Tr(
                        {"id": f"account-{a.id}"},
                        h.Th({"scope": "row"}, a.name),
                        h.Td("yes" if a.is_admin else "no"),
                        h.Td(human_bytes(a.used_bytes)),
                        h.Td(_quota(a, default_quota)),
                        h.Td(f"{a.file_count:,}"),
                        h.Td(when(signed_in.get(a.id))),
                        h.Td(_created(a.created_at)),
                    )
                    for a in accounts
                ]
            ),
        ),
    )  # fmt: skip


def done_part(message: str = "") -> HtmlElement:
    return h.P({"id": DONE_ID, "class": "admin-done", "role": "status"}, message)


def _error(form_id: str, state: FormState, field_name: str) -> HtmlElement | None:
    if not state.error or state.error_field != field_name:
        return None
    return h.P({"id": f"{form_id}-error", "class": "error field-error"}, state.error)


def _described(form_id: str, state: FormState, field_name: str) -> dict[str, str | bool]:
    if state.error and state.error_field == field_name:
        return {"aria-describedby": f"{form_id}-error", "aria-invalid": "true"}
    return {}


def _form(form_id: str, action: str, title: str, *children: Child) -> HtmlElement:
    return h.Form(
        {"id": form_id, "class": "admin-form", "method": "post", "action": action,
         "aria-labelledby": f"{form_id}-title"},
        data.on("submit", at.post(action, content_type="form", retry_max_count=0), prevent=True),
        h.H3({"id": f"{form_id}-title"}, title),
        *children,
    )  # fmt: skip


def _text_field(
    form_id: str,
    state: FormState,
    label: str,
    name: str,
    kind: str = "text",
    **extra: str | int | bool,
) -> HtmlElement:
    value = "" if kind == "password" else state.values.get(name, "")
    return h.Div(
        {"class": "field"},
        h.Label({"for": f"{form_id}-{name}"}, label),
        h.Input(
            {"id": f"{form_id}-{name}", "type": kind, "name": name, "value": value or None,
             **_described(form_id, state, name), **extra}
        ),
        _error(form_id, state, name),
    )  # fmt: skip


def _checkbox(form_id: str, state: FormState, label: str, name: str) -> HtmlElement:
    return h.Div(
        {"class": "check"},
        h.Input(
            {"id": f"{form_id}-{name}", "type": "checkbox", "name": name, "value": "yes",
             "checked": bool(state.values.get(name))}
        ),
        h.Label({"for": f"{form_id}-{name}"}, label),
    )  # fmt: skip


def _lifetime_field(form_id: str, state: FormState) -> HtmlElement:
    chosen = state.values.get("valid", str(DEFAULT_LINK_SECONDS))
    return h.Div(
        {"class": "field"},
        h.Label({"for": f"{form_id}-valid"}, "Valid for"),
        h.Select(
            {"id": f"{form_id}-valid", "name": "valid", **_described(form_id, state, "valid")},
            *[
                h.Option({"value": str(s), "selected": str(s) == chosen}, words)
                for s, words in LINK_LIFETIMES.items()
            ],
        ),
        _error(form_id, state, "valid"),
    )


def account_picker(
    form_id: str, accounts: Sequence[Account], state: FormState = NO_STATE
) -> HtmlElement:
    chosen = state.values.get("account", "")
    return h.Div(
        {"class": "field", "id": f"{form_id}-picker"},
        h.Label({"for": f"{form_id}-account"}, "Account"),
        h.Select(
            {"id": f"{form_id}-account", "name": "account", "required": True,
             **_described(form_id, state, "account")},
            h.Option({"value": ""}, "Choose an account"),
            *[
                h.Option({"value": a.name, "selected": a.name == chosen}, a.name)
                for a in accounts
            ],
        ),
        _error(form_id, state, "account"),
    )  # fmt: skip


def create_form(state: FormState = NO_STATE) -> HtmlElement:
    return _form(
        CREATE_ID, ADMIN_CREATE.href(), "Create an account",
        _text_field(CREATE_ID, state, "Name (letters, digits, . _ -)", "name",
                    required=True, maxlength=64, autocomplete="off"),
        _text_field(CREATE_ID, state, f"Password (at least {MIN_PASSWORD_CHARS} characters)",
                    "password", "password", required=True, autocomplete="new-password"),
        _text_field(CREATE_ID, state, "Quota (e.g. 10GiB, none; empty: the default)", "quota",
                    maxlength=40),
        _checkbox(CREATE_ID, state, "Admin (may manage accounts)", "admin"),
        h.Button({"type": "submit", "class": "button primary"}, "Create account"),
    )  # fmt: skip


def invite_form(state: FormState = NO_STATE, link: str | None = None) -> HtmlElement:
    return _form(
        INVITE_ID, ADMIN_INVITE.href(), "Invite someone",
        h.P({"class": "hint"}, "A one-time link: whoever opens it picks a name and a password."),
        _lifetime_field(INVITE_ID, state),
        _checkbox(INVITE_ID, state, "The new account is an admin", "admin"),
        h.Button({"type": "submit", "class": "button"}, "Make invitation link"),
        _link_slot(INVITE_ID, "This invitation link works once, for ", link, state),
    )  # fmt: skip


def _link_slot(form_id: str, intro: str, link: str | None, state: FormState) -> HtmlElement:
    slot = f"{form_id}-link"
    if link is None:
        return h.Div({"id": slot})
    lifetime = LINK_LIFETIMES.get(int(state.values.get("valid", DEFAULT_LINK_SECONDS)), "")
    return shown_once(
        slot, intro, lifetime, ". Copy it now: it is not shown again.", link,
        value_id=f"{slot}-value",
    )  # fmt: skip


def quota_form(accounts: Sequence[Account], state: FormState = NO_STATE) -> HtmlElement:
    return _form(
        QUOTA_ID, ADMIN_QUOTA.href(), "Set a quota",
        account_picker(QUOTA_ID, accounts, state),
        _text_field(QUOTA_ID, state, "Quota (e.g. 10GiB, 500MB, none, default)", "quota",
                    required=True, maxlength=40),
        h.Button({"type": "submit", "class": "button"}, "Set quota"),
    )  # fmt: skip


def reset_form(
    accounts: Sequence[Account], state: FormState = NO_STATE, link: str | None = None
) -> HtmlElement:
    return _form(
        RESET_ID, ADMIN_RESET.href(), "Password-reset link",
        h.P({"class": "hint"}, "A one-time link that sets a new password and ends the "
            "account's sessions."),
        account_picker(RESET_ID, accounts, state),
        _lifetime_field(RESET_ID, state),
        h.Button({"type": "submit", "class": "button"}, "Make reset link"),
        _link_slot(RESET_ID, "This reset link works once, for ", link, state),
    )  # fmt: skip


def remove_form(accounts: Sequence[Account], state: FormState = NO_STATE) -> HtmlElement:
    return _form(
        REMOVE_ID, ADMIN_REMOVE.href(), "Remove an account",
        h.P({"class": "hint"}, "Its tokens and sessions end. An account that owns files goes "
            "only with them. You cannot remove yourself or the last admin."),
        account_picker(REMOVE_ID, accounts, state),
        _checkbox(REMOVE_ID, state, "Also delete its files", "delete_files"),
        h.Button({"type": "submit", "class": "button danger"}, "Remove account"),
    )  # fmt: skip


def server_part(facts: ServerFacts) -> HtmlElement:
    def row(term: str, value: str) -> list[HtmlElement]:
        return [h.Dt(term), h.Dd(value)]

    free = "unknown" if facts.free_bytes is None else human_bytes(facts.free_bytes)
    connections = (
        "not counted (not run by stowage serve)"
        if facts.connections is None
        else f"{facts.connections:,}"
    )
    return h.Dl(
        {"id": SERVER_ID, "class": "server-facts"},
        *row("Version", facts.version),
        *row("Storage", facts.storage),
        *row("Direct transfers (S3)", facts.direct),
        *row("Catalog", facts.catalog),
        *row("Free space", free),
        *row("Kept free (--min-free-bytes)", human_bytes(facts.floor_bytes)),
        *row("Open connections (this node)", connections),
        *row("Uploads in flight (this node)", f"{facts.uploads_in_flight:,}"),
    )


def log_part(entries: Sequence[LogEntry]) -> HtmlElement:
    if not entries:
        return h.Div({"id": LOG_ID}, h.P({"class": "hint"}, "No admin action yet."))
    return h.Div(
        {"id": LOG_ID, "class": "table-wrap", "tabindex": "0", "role": "region",
         "aria-labelledby": f"{LOG_ID}-caption"},
        h.Table(
            {"class": "admin-log"},
            h.Caption({"id": f"{LOG_ID}-caption"}, f"The newest {len(entries)} admin actions"),
            h.Thead(
                h.Tr(
                    h.Th({"scope": "col"}, "When"),
                    h.Th({"scope": "col"}, "Who"),
                    h.Th({"scope": "col"}, "What"),
                    h.Th({"scope": "col"}, "Account"),
                    h.Th({"scope": "col"}, "Detail"),
                )
            ),
            h.Tbody(
                *[
                    h.Tr(h.Td(when(e.at)), h.Td(e.actor_name), h.Td(e.action), h.Td(e.target),
                         h.Td(e.detail))
                    for e in entries
                ]
            ),
        ),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScreenState:
    """Everything the screen shows; `forms` holds a refused form's state by form id,
    `links` a new link (shown once) by form id."""

    accounts: Sequence[Account]
    default_quota: int | None
    signed_in: Mapping[str, float]
    log: Sequence[LogEntry]
    server: ServerFacts
    done: str = ""
    forms: Mapping[str, FormState] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)


def admin_main(state: ScreenState, *extra: Child) -> HtmlElement:
    def form_state(form_id: str) -> FormState:
        return state.forms.get(form_id, NO_STATE)

    accounts = state.accounts
    return h.Main(
        {"id": MAIN_ID},
        *extra,
        h.H1("Admin"),
        done_part(state.done),
        h.Section(
            {"aria-labelledby": "admin-accounts-title"},
            h.H2({"id": "admin-accounts-title"}, "Accounts"),
            accounts_part(accounts, state.default_quota, state.signed_in),
        ),
        h.Section(
            {"class": "admin-actions", "aria-labelledby": "admin-actions-title"},
            h.H2({"id": "admin-actions-title"}, "Manage accounts"),
            h.Div(
                {"class": "admin-forms"},
                create_form(form_state(CREATE_ID)),
                invite_form(form_state(INVITE_ID), state.links.get(INVITE_ID)),
                quota_form(accounts, form_state(QUOTA_ID)),
                reset_form(accounts, form_state(RESET_ID), state.links.get(RESET_ID)),
                remove_form(accounts, form_state(REMOVE_ID)),
            ),
        ),
        h.Section(
            {"aria-labelledby": "admin-server-title"},
            # The panel's figures move without an event to repaint on: asked for again.
            data.on_interval(
                at.get(ADMIN_SERVER.href(), retry_max_count=0), duration=SERVER_REFRESH
            ),
            h.H2({"id": "admin-server-title"}, "Server"),
            server_part(state.server),
        ),
        h.Section(
            {"aria-labelledby": "admin-log-title"},
            h.H2({"id": "admin-log-title"}, "Admin log"),
            log_part(state.log),
        ),
    )
