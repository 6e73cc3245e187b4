"""Sharing a file or a folder without scripts: `GET /files/{id}/share` (and
`/folders/{id}/share`) is the share form as a page of its own, what a row's Share link
opens when scripts are off; `POST` to the same address makes the link and answers the
page that shows it, once (200: a secret never travels in a redirect). A refusal comes
back on the form, beside the field it is about (400), and 404 for what is not the
account's. With scripts the Files screen's dialog does the same through the API."""

from stario import App, Context, Writer, h
from stario.markup import HtmlElement

from app.access.gate import principal
from app.common.forms import FormError, read_form
from app.common.http import json_error, path_param, wants_html
from app.common.shell import send_page, shown_once
from app.features.home.urls import HOME
from app.features.nav.panel import action_page, not_found_page
from app.features.shares.data import shares_changed
from app.features.shares.handlers import Shares, _folder_share, _from_signals, _title
from app.features.shares.panel import EXPIRY_CHOICES, in_form_words
from app.features.shares.urls import (
    FILE_SHARE_FORM,
    FILE_SHARE_PAGE,
    FOLDER_SHARE_FORM,
    FOLDER_SHARE_PAGE,
    SHARE_PAGE,
)
from app.files.store import get_file
from app.folders.store import ROOT, ROOT_ID, catalog_id, get_folder
from app.shares.store import (
    DEFAULT_EXPIRES_IN,
    ShareError,
    check_expires_in,
    check_max_downloads,
    check_password,
    create_collection,
    create_share,
)
from app.storage.ids import is_blob_id

NOT_YOURS = "This file or folder does not exist or is not yours."


def _error_field(message: str) -> str:
    """Which of the form's fields a refusal is about."""
    lowered = message.lower()
    if "password" in lowered:
        return "share-password"
    if "download limit" in lowered:
        return "share-limit"
    return "share-expiry"


def _control(
    label: str, control: HtmlElement, control_id: str, error_for: str | None, error: str | None
) -> HtmlElement:
    shown = error if error_for == control_id else None
    return h.Div(
        {"class": "field"},
        h.Label({"for": control_id}, label),
        control,
        h.P({"id": f"{control_id}-error", "class": "error field-error", "role": "alert"}, shown)
        if shown
        else None,
    )


def _invalid(control_id: str, error_for: str | None) -> dict[str, str | None]:
    bad = control_id == error_for
    return {
        "aria-invalid": "true" if bad else None,
        "aria-describedby": f"{control_id}-error" if bad else None,
    }


def share_form_page(
    shares: Shares,
    c: Context,
    name: str,
    action: str,
    fields: dict[str, str],
    error: str | None = None,
    link: str | None = None,
):
    error_for = _error_field(error) if error else None
    expiry = fields.get("shareExpiry", "604800")

    def make(nonce: str) -> HtmlElement:
        return action_page(
            shares.assets,
            principal(c).account,
            f"Share {name}",
            shown_once("new-share", "New link to ", name,
                       ". Copy it now: it is shown only this once.", link,
                       value_id="new-share-url") if link else None,
            h.Form(
                {"method": "post", "action": action, "class": "action-form"},
                _control("Expires after", h.Select(
                    {"id": "share-expiry", "name": "shareExpiry",
                     **_invalid("share-expiry", error_for)},
                    *[h.Option({"value": v, "selected": v == expiry}, label)
                      for v, label in EXPIRY_CHOICES],
                ), "share-expiry", error_for, error),
                _control("Password (optional)", h.Input(
                    {"id": "share-password", "type": "password", "name": "sharePassword",
                     "autocomplete": "new-password", **_invalid("share-password", error_for)}
                ), "share-password", error_for, error),
                _control("Download limit (optional)", h.Input(
                    {"id": "share-limit", "type": "number", "min": 1, "name": "shareLimit",
                     "inputmode": "numeric", "value": fields.get("shareLimit", ""),
                     **_invalid("share-limit", error_for)}
                ), "share-limit", error_for, error),
                h.P(
                    {"class": "form-buttons"},
                    h.Button({"type": "submit", "class": "button primary"},
                             "Create another link" if link else "Create link"),
                    h.A({"class": "button", "href": HOME.href()}, "Back to your files"),
                ),
            ),
            nonce=nonce,
        )  # fmt: skip

    return make


def _missing(shares: Shares, c: Context, w: Writer) -> None:
    if not wants_html(c):
        json_error(w, 404, "no such file or folder")
        return
    account = principal(c).account
    send_page(w, lambda _: not_found_page(shares.assets, account, NOT_YOURS), 404)


async def _file_name(shares: Shares, c: Context) -> tuple[str, str] | None:
    file_id = path_param(c, "file_id")
    row = await get_file(shares.db, file_id) if is_blob_id(file_id) else None
    if row is None or row.owner != principal(c).account_id:
        return None
    return row.id, row.name


async def _folder_name(shares: Shares, c: Context) -> tuple[str, str] | None:
    owner = principal(c).account_id
    folder = catalog_id(path_param(c, "folder_id"))
    if folder == ROOT:
        return ROOT, "/"
    row = await get_folder(shares.db, owner, folder)
    return (folder, row.name) if row is not None else None


def share_page(shares: Shares, *, of_folder: bool):
    async def handler(c: Context, w: Writer) -> None:
        found = await (_folder_name if of_folder else _file_name)(shares, c)
        if found is None:
            _missing(shares, c, w)
            return
        thing, name = found
        action = (FOLDER_SHARE_FORM.href(thing or ROOT_ID) if of_folder
                  else FILE_SHARE_FORM.href(thing))  # fmt: skip
        send_page(w, share_form_page(shares, c, name, action, {}))

    return handler


def share_command(shares: Shares, *, of_folder: bool):
    """POST /files/{id}/share and /folders/{id}/share: fields `shareExpiry` (seconds or
    "never"), `sharePassword`, `shareLimit`, as the page's dialog names them."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        found = await (_folder_name if of_folder else _file_name)(shares, c)
        try:
            form = await read_form(c)
        except FormError:
            form = {}
        if found is None:
            _missing(shares, c, w)
            return
        thing, name = found
        action = (FOLDER_SHARE_FORM.href(thing or ROOT_ID) if of_folder
                  else FILE_SHARE_FORM.href(thing))  # fmt: skip
        try:
            fields = _from_signals(dict(form))
            expires_in = check_expires_in(fields.get("expires_in", DEFAULT_EXPIRES_IN))
            password = check_password(fields.get("password"))
            max_downloads = check_max_downloads(fields.get("max_downloads"))
            password_hash = None if password is None else await shares.passwords.hash(password)
            if of_folder:
                label = "Uploads to " + await _title(shares, _folder_share(owner, thing))
                _, token = await create_collection(
                    shares.db, owner=owner, folder_id=thing, file_ids=None, now=shares.now(),
                    expires_in=expires_in, password_hash=password_hash,
                    max_downloads=max_downloads, uploads=None, label=label,
                )  # fmt: skip
            else:
                _, token = await create_share(
                    shares.db, file_id=thing, owner=owner, now=shares.now(),
                    expires_in=expires_in, password_hash=password_hash,
                    max_downloads=max_downloads,
                )  # fmt: skip
        except ShareError as exc:
            message = str(exc)
            text = in_form_words(message)
            status = 404 if message.startswith("no such") else 400
            if not wants_html(c):
                json_error(w, status, message)
                return
            send_page(w, share_form_page(shares, c, name, action, form, text), status)
            return
        shares.relay.publish(shares_changed(owner), "created")
        link = shares.config.public_url + SHARE_PAGE.href(token)
        send_page(w, share_form_page(shares, c, name, action, {}, link=link))

    return handler


def register_share_forms(app: App, shares: Shares) -> None:
    app.add(FILE_SHARE_PAGE, share_page(shares, of_folder=False))
    app.add(FILE_SHARE_FORM, share_command(shares, of_folder=False))
    app.add(FOLDER_SHARE_PAGE, share_page(shares, of_folder=True))
    app.add(FOLDER_SHARE_FORM, share_command(shares, of_folder=True))
