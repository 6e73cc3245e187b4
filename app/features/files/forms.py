"""A file's actions as forms that work without scripts: rename, move and delete.

Each action has a page of its own (`GET /files/{id}/rename`, `/move`, `/delete`: what a
row's link opens when scripts are off) and a command (`POST` to the same address). A
plain form post is answered `303` back to where the person was (the `back` field), or
with the page again, the refusal beside the field that caused it (400, 404, 409). With
Datastar the page's dialog posts the same form and gets signals: the dialog closes,
or the error is shown beside the field (`_renameError`). The JSON API (PATCH
/files/{id}, DELETE /files/{id}, POST /api/files/move) stays as it is; both share the
store's calls and `new_name`.
"""

import asyncio
from urllib.parse import urlsplit

from stario import App, Context, Relay, Writer, h
from stario.datastar import SSE
from stario.markup import HtmlElement

from app.access.gate import principal
from app.catalog.protocol import Database, is_disk_full, is_name_taken
from app.common.forms import FormError, as_sentence, read_form
from app.common.http import (
    BadTarget,
    is_datastar,
    json_error,
    local_target,
    path_param,
    wants_html,
)
from app.common.shell import PageAssets, send_page
from app.features.files.commands import RenameError, new_name
from app.features.files.panel import RENAME_SIGNALS
from app.features.files.urls import (
    FILE_DELETE_FORM,
    FILE_DELETE_PAGE,
    FILE_MOVE_FORM,
    FILE_MOVE_PAGE,
    FILE_RENAME_FORM,
    FILE_RENAME_PAGE,
)
from app.features.home.urls import HOME
from app.features.nav.panel import action_page, not_found_page
from app.files.store import FileRow, NameTaken, files_changed, get_file, remove_file, rename_file
from app.folders.store import ROOT, ROOT_ID, FolderError, catalog_id, folder_choices, move
from app.storage.ids import is_blob_id
from app.storage.space import CatalogReserve
from app.storage.store import Store

NOT_YOURS = "This file does not exist or is not yours."


def folder_page(folder_id: str) -> str:
    return HOME.href(query={"folder": folder_id}) if folder_id != ROOT else HOME.href()


def back_to(raw: str | None, row: FileRow | None) -> str:
    """Where a finished action goes: the page the person came from (a path on this
    site), else the file's folder."""
    fallback = folder_page(row.folder_id) if row is not None else HOME.href()
    try:
        return local_target(raw, fallback)
    except BadTarget:
        return fallback


def came_from(c: Context) -> str | None:
    """The Files page (folder, search, page) that linked to an action page."""
    referer = c.req.headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != c.req.headers.get("host"):
        return None
    if parts.path != HOME.href():  # another action's page: back to the folder instead
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def field(
    label: str, control_id: str, error: str | None, **attributes: str | int | bool
) -> HtmlElement:
    """A labelled text field and its error (shown beside it, and named by it)."""
    error_id = f"{control_id}-error"
    return h.Div(
        {"class": "field"},
        h.Label({"for": control_id}, label),
        h.Input(
            {
                "id": control_id,
                "type": "text",
                "aria-invalid": "true" if error else None,
                "aria-describedby": error_id if error else None,
                **attributes,
            }
        ),
        h.P({"id": error_id, "class": "error field-error", "role": "alert"}, error)
        if error
        else None,
    )


def _buttons(submit: str, back: str, *, danger: bool = False) -> HtmlElement:
    return h.P(
        {"class": "form-buttons"},
        h.Button(
            {"type": "submit", "class": "button " + ("danger" if danger else "primary")}, submit
        ),
        h.A({"class": "button", "href": back}, "Cancel"),
    )


def _rename_page(
    assets: PageAssets, c: Context, row: FileRow, back: str, name: str, error: str | None
):
    def make(nonce: str) -> HtmlElement:
        return action_page(
            assets,
            principal(c).account,
            f"Rename {row.name}",
            h.Form(
                {"method": "post", "action": FILE_RENAME_FORM.href(row.id), "class": "action-form"},
                h.Input({"type": "hidden", "name": "back", "value": back}),
                field("New name", "rename-name", error, name="name", value=name,
                      maxlength=1020, required=True, autofocus=True),
                _buttons("Rename", back),
            ),
            h.P(h.A({"href": FILE_MOVE_PAGE.href(row.id)}, f"Move {row.name} to another folder")),
            nonce=nonce,
        )  # fmt: skip

    return make


async def _own_file(db: Database, c: Context) -> FileRow | None:
    file_id = path_param(c, "file_id")
    row = await get_file(db, file_id) if is_blob_id(file_id) else None
    if row is None or row.owner != principal(c).account_id:
        return None
    return row


def missing(assets: PageAssets, c: Context, w: Writer) -> None:
    if not wants_html(c):
        json_error(w, 404, "no such file")
        return
    account = principal(c).account
    send_page(w, lambda _: not_found_page(assets, account, NOT_YOURS), 404)


def rename_page(db: Database, assets: PageAssets):
    async def handler(c: Context, w: Writer) -> None:
        row = await _own_file(db, c)
        if row is None:
            missing(assets, c, w)
            return
        send_page(w, _rename_page(assets, c, row, back_to(came_from(c), row), row.name, None))

    return handler


def rename_command(db: Database, relay: Relay[str], assets: PageAssets):
    """POST /files/{id}/rename, field `name` (and `back`)."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        datastar = is_datastar(c)
        row = await _own_file(db, c)
        unread: str | None = None
        try:
            fields = await read_form(c)
        except FormError as exc:
            fields, unread = {}, str(exc)
        raw = fields.get("name", fields.get("renameName", ""))
        back = back_to(fields.get("back"), row)

        def refuse(status: int, message: str) -> None:
            text = as_sentence(message)
            if datastar:
                SSE(w).patch_signals({"_renameError": text})
                w.end()
            elif row is None:
                missing(assets, c, w)
            elif not wants_html(c):
                json_error(w, status, message)
            else:
                send_page(w, _rename_page(assets, c, row, back, raw, text), status)

        if row is None:
            refuse(404, "this file does not exist or is not yours")
            return
        if unread is not None:
            refuse(400, unread)
            return
        try:
            name = new_name(raw)
            renamed = await rename_file(db, row.id, owner, name)
        except RenameError as exc:
            refuse(400, str(exc))
            return
        except NameTaken as exc:
            refuse(409, str(exc))
            return
        except Exception as exc:
            if is_name_taken(exc):
                refuse(409, f"something named {raw!r} is already in this folder")
                return
            if not is_disk_full(exc):
                raise
            refuse(507, "the server is out of space and could not record the new name")
            return
        if renamed is None:
            refuse(404, "this file does not exist or is not yours")
            return
        if datastar:
            SSE(w).patch_signals({**RENAME_SIGNALS, "_renameError": "", "_notice": ""})
            w.end()
        else:
            w.redirect(back, 303)
        relay.publish(files_changed(owner), "renamed")

    return handler


def _move_page(
    assets: PageAssets,
    c: Context,
    row: FileRow,
    back: str,
    places: list[tuple[str, str]],
    error: str | None,
):
    def make(nonce: str) -> HtmlElement:
        here = row.folder_id or ROOT_ID
        return action_page(
            assets,
            principal(c).account,
            f"Move {row.name}",
            h.Form(
                {"method": "post", "action": FILE_MOVE_FORM.href(row.id), "class": "action-form"},
                h.Input({"type": "hidden", "name": "back", "value": back}),
                h.Div(
                    {"class": "field"},
                    h.Label({"for": "move-to-folder"}, "Move to"),
                    h.Select(
                        {"id": "move-to-folder", "name": "to", "autofocus": True,
                         "aria-invalid": "true" if error else None,
                         "aria-describedby": "move-to-folder-error" if error else None},
                        h.Option({"value": ROOT_ID, "selected": here == ROOT_ID}, "/ (Files)"),
                        *[h.Option({"value": i, "selected": i == here}, p) for i, p in places],
                    ),
                    h.P({"id": "move-to-folder-error", "class": "error field-error",
                         "role": "alert"}, error) if error else None,
                ),
                _buttons("Move", back),
            ),
            nonce=nonce,
        )  # fmt: skip

    return make


def move_page(db: Database, assets: PageAssets):
    async def handler(c: Context, w: Writer) -> None:
        row = await _own_file(db, c)
        if row is None:
            missing(assets, c, w)
            return
        places = await folder_choices(db, principal(c).account_id)
        send_page(w, _move_page(assets, c, row, back_to(came_from(c), row), places, None))

    return handler


def move_command(db: Database, relay: Relay[str], assets: PageAssets):
    """POST /files/{id}/move, field `to` (a folder id, "root" the root)."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        row = await _own_file(db, c)
        try:
            fields = await read_form(c)
        except FormError:
            fields = {}
        back = back_to(fields.get("back"), row)
        if row is None:
            missing(assets, c, w)
            return
        try:
            moved = await move(db, owner, [row.id], [], catalog_id(fields.get("to") or ROOT_ID))
        except FolderError as exc:
            places = await folder_choices(db, owner)
            if not wants_html(c):
                json_error(w, exc.status, exc.message)
                return
            message = as_sentence(exc.message)
            send_page(w, _move_page(assets, c, row, back, places, message), exc.status)
            return
        w.redirect(back, 303)
        if moved.files:
            relay.publish(files_changed(owner), "moved")

    return handler


def _delete_page(assets: PageAssets, c: Context, row: FileRow, back: str):
    def make(nonce: str) -> HtmlElement:
        return action_page(
            assets,
            principal(c).account,
            f"Delete {row.name}",
            h.Form(
                {"method": "post", "action": FILE_DELETE_FORM.href(row.id), "class": "action-form"},
                h.Input({"type": "hidden", "name": "back", "value": back}),
                h.P(f"Delete {row.name}? It cannot be undone; its shared links stop working."),
                _buttons("Delete", back, danger=True),
            ),
            nonce=nonce,
        )  # fmt: skip

    return make


def delete_page(db: Database, assets: PageAssets):
    async def handler(c: Context, w: Writer) -> None:
        row = await _own_file(db, c)
        if row is None:
            missing(assets, c, w)
            return
        send_page(w, _delete_page(assets, c, row, back_to(came_from(c), row)))

    return handler


def delete_command(
    db: Database,
    store: Store,
    relay: Relay[str],
    assets: PageAssets,
    reserve: CatalogReserve | None = None,
):
    """POST /files/{id}/delete: the row, then the blob, as DELETE /files/{id} does."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        row = await _own_file(db, c)
        try:
            fields = await read_form(c)
        except FormError:
            fields = {}
        back = back_to(fields.get("back"), row)
        if row is None or not await remove_file(db, row.id, owner):
            if is_datastar(c):
                SSE(w).patch_signals({"_notice": "That file was already gone."})
                w.end()
            else:
                missing(assets, c, w)
            return
        try:
            await store.remove([row.id])
        except OSError as exc:
            c.span.attr("stowage.blob_left_behind", row.id)
            c.span.exception(exc)
        if is_datastar(c):
            SSE(w).patch_signals({"_notice": ""})
            w.end()
        else:
            w.redirect(back, 303)
        relay.publish(files_changed(owner), "removed")
        if reserve is not None and not reserve.held:
            await asyncio.to_thread(reserve.keep)

    return handler


def register_file_forms(
    app: App,
    db: Database,
    store: Store,
    relay: Relay[str],
    assets: PageAssets,
    reserve: CatalogReserve | None = None,
) -> None:
    app.add(FILE_RENAME_PAGE, rename_page(db, assets))
    app.add(FILE_RENAME_FORM, rename_command(db, relay, assets))
    app.add(FILE_MOVE_PAGE, move_page(db, assets))
    app.add(FILE_MOVE_FORM, move_command(db, relay, assets))
    app.add(FILE_DELETE_PAGE, delete_page(db, assets))
    app.add(FILE_DELETE_FORM, delete_command(db, store, relay, assets, reserve))
