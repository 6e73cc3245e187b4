"""A folder's actions as forms that work without scripts: make, rename, move and
delete. Rename, move and delete are each a page of its own (what a folder row's link
opens when scripts are off) and a post to the same address; making one is the Files
screen's "New folder" form. A plain form post is answered 303 back where the person
was, or with the form again (a page), the refusal beside the field (400, 404, 409).
With scripts the page's dialog posts the rename form with Datastar and gets signals
(`_folderRenameError` beside the field); "New folder" gets `_notice`."""

from stario import App, Context, Relay, Writer, h
from stario.datastar import SSE
from stario.markup import HtmlElement

from app.access.gate import principal
from app.catalog.protocol import Database, is_disk_full
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
from app.features.folders.commands import doomed_words
from app.features.folders.handlers import ClosedRequests, Spawn, folder_answer, remove_in_background
from app.features.folders.urls import (
    FOLDER_CREATE,
    FOLDER_DELETE_FORM,
    FOLDER_DELETE_PAGE,
    FOLDER_MOVE_FORM,
    FOLDER_MOVE_PAGE,
    FOLDER_RENAME_FORM,
    FOLDER_RENAME_PAGE,
)
from app.features.home.urls import HOME
from app.features.nav.panel import action_page, not_found_page
from app.files.store import files_changed
from app.folders.store import (
    ROOT,
    ROOT_ID,
    FolderError,
    FolderRow,
    api_id,
    catalog_id,
    create_folder,
    delete_folders,
    deletion_summary,
    folder_choices,
    get_folder,
    move,
    rename_folder,
)
from app.storage.store import Store

NOT_YOURS = "This folder does not exist or is not yours."
NO_PLACE = "The folder to make it in does not exist or is not yours; choose another"


def _page_of(folder_id: str | None) -> str:
    """The Files page of a folder (None or '': the root)."""
    return HOME.href(query={"folder": folder_id}) if folder_id else HOME.href()


def _back(raw: str | None, fallback: str) -> str:
    try:
        return local_target(raw, fallback)
    except BadTarget:
        return fallback


async def _own_folder(db: Database, c: Context) -> FolderRow | None:
    folder = catalog_id(path_param(c, "folder_id"))
    if folder == ROOT:
        return None
    return await get_folder(db, principal(c).account_id, folder)


def _missing(assets: PageAssets, c: Context, w: Writer) -> None:
    if not wants_html(c):
        json_error(w, 404, "no such folder")
        return
    account = principal(c).account
    send_page(w, lambda _: not_found_page(assets, account, NOT_YOURS), 404)


def _rename_page(
    assets: PageAssets, c: Context, row: FolderRow, back: str, name: str, error: str | None
):
    def make(nonce: str) -> HtmlElement:
        return action_page(
            assets,
            principal(c).account,
            f"Rename folder {row.name}",
            h.Form(
                {"method": "post", "action": FOLDER_RENAME_FORM.href(row.id),
                 "class": "action-form"},
                h.Input({"type": "hidden", "name": "back", "value": back}),
                h.Div(
                    {"class": "field"},
                    h.Label({"for": "folder-new-name"}, "New name"),
                    h.Input({"id": "folder-new-name", "type": "text", "name": "name", "value": name,
                             "maxlength": 255, "required": True, "autofocus": True,
                             "aria-invalid": "true" if error else None,
                             "aria-describedby": "folder-new-name-error" if error else None}),
                    h.P({"id": "folder-new-name-error", "class": "error field-error",
                         "role": "alert"}, error) if error else None,
                ),
                h.P({"class": "form-buttons"},
                    h.Button({"type": "submit", "class": "button primary"}, "Rename"),
                    h.A({"class": "button", "href": back}, "Cancel")),
            ),
            h.P(h.A({"href": FOLDER_MOVE_PAGE.href(row.id)},
                    f"Move folder {row.name} to another folder")),
            nonce=nonce,
        )  # fmt: skip

    return make


def rename_page(db: Database, assets: PageAssets):
    async def handler(c: Context, w: Writer) -> None:
        row = await _own_folder(db, c)
        if row is None:
            _missing(assets, c, w)
            return
        send_page(w, _rename_page(assets, c, row, _page_of(row.parent), row.name, None))

    return handler


def rename_command(db: Database, relay: Relay[str], assets: PageAssets):
    """POST /folders/{id}/rename, field `name` (the dialog sends `folderRenameName`)."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        datastar = is_datastar(c)
        row = await _own_folder(db, c)
        try:
            fields = await read_form(c)
        except FormError:
            fields = {}
        raw = fields.get("name", fields.get("folderRenameName", ""))
        back = _back(fields.get("back"), _page_of(row.parent) if row else HOME.href())

        def refuse(status: int, message: str) -> None:
            text = as_sentence(message)
            if datastar:
                SSE(w).patch_signals({"_folderRenameError": text})
                w.end()
            elif row is None:
                _missing(assets, c, w)
            elif not wants_html(c):
                json_error(w, status, message)
            else:
                send_page(w, _rename_page(assets, c, row, back, raw, text), status)

        if row is None:
            refuse(404, "this folder does not exist or is not yours")
            return
        try:
            await rename_folder(db, owner, row.id, raw)
        except FolderError as exc:
            refuse(exc.status, exc.message)
            return
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            refuse(507, "the server is out of space and could not record the new name")
            return
        if datastar:
            SSE(w).patch_signals(
                {
                    "folderRenameId": "",
                    "folderRenameName": "",
                    "_folderRenameError": "",
                    "_notice": "",
                }
            )
            w.end()
        else:
            w.redirect(back, 303)
        relay.publish(files_changed(owner), "folder")

    return handler


def _folder_select(
    control_id: str,
    label: str,
    places: list[tuple[str, str]],
    chosen: str,
    error: str | None,
) -> HtmlElement:
    """A choice of every folder of the account (the root first), its error beside it."""
    error_id = f"{control_id}-error"
    return h.Div(
        {"class": "field"},
        h.Label({"for": control_id}, label),
        h.Select(
            {"id": control_id, "name": "parent" if control_id == "new-folder-in" else "to",
             "aria-invalid": "true" if error else None,
             "aria-describedby": error_id if error else None},
            h.Option({"value": ROOT_ID, "selected": chosen == ROOT_ID}, "/ (Files)"),
            *[h.Option({"value": i, "selected": i == chosen}, p) for i, p in places],
        ),
        h.P({"id": error_id, "class": "error field-error", "role": "alert"}, error)
        if error else None,
    )  # fmt: skip


def _new_folder_page(
    assets: PageAssets,
    c: Context,
    parent: str,
    places: list[tuple[str, str]],
    name: str,
    error: str | None,
    place_error: str | None,
):
    """The "New folder" form as a page of its own: what a refused plain post answers,
    with what was typed and the refusal beside the field it is about."""
    back = _page_of(parent)

    def make(nonce: str) -> HtmlElement:
        return action_page(
            assets,
            principal(c).account,
            "New folder",
            h.Form(
                {"method": "post", "action": FOLDER_CREATE.href(), "class": "action-form"},
                h.Div(
                    {"class": "field"},
                    h.Label({"for": "new-folder-name"}, "Name"),
                    h.Input({"id": "new-folder-name", "type": "text", "name": "name",
                             "value": name, "maxlength": 255, "required": True,
                             "autofocus": True,
                             "aria-invalid": "true" if error else None,
                             "aria-describedby": "new-folder-name-error" if error else None}),
                    h.P({"id": "new-folder-name-error", "class": "error field-error",
                         "role": "alert"}, error) if error else None,
                ),
                _folder_select("new-folder-in", "In", places,
                               api_id(parent) or ROOT_ID, place_error),
                h.P({"class": "form-buttons"},
                    h.Button({"type": "submit", "class": "button primary"}, "Make folder"),
                    h.A({"class": "button", "href": back}, "Cancel")),
            ),
            nonce=nonce,
        )  # fmt: skip

    return make


def make_folder(db: Database, relay: Relay[str], assets: PageAssets):
    """POST /folders, form fields `name` and `parent` ("root" or a folder id): the new
    folder in `parent`. A browser's plain form: 303 back to the page of `parent`, or
    the New folder form again with the refusal beside its field (400, 404, 409);
    Datastar: the form emptied, or `_notice`; other clients: JSON."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        datastar = is_datastar(c)
        unread: str | None = None
        try:
            fields = await read_form(c)
        except FormError as exc:
            fields, unread = {}, str(exc)
        parent = catalog_id(fields.get("parent") or None)
        name = fields.get("name", "")

        async def refuse(status: int, message: str) -> None:
            if datastar:
                SSE(w).patch_signals({"_notice": f"Could not make the folder: {message}."})
                w.end()
            elif not wants_html(c):
                json_error(w, status, message)
            else:
                places = await folder_choices(db, owner)
                no_place = status == 404
                shown = ROOT if no_place else parent
                error = None if no_place else as_sentence(message)
                page = _new_folder_page(
                    assets, c, shown, places, name, error, NO_PLACE + "." if no_place else None
                )
                send_page(w, page, status)

        if unread is not None:
            await refuse(400, unread)
            return
        try:
            row = await create_folder(db, owner, parent, name)
        except FolderError as exc:
            await refuse(exc.status, exc.message)
            return
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            await refuse(507, "the server is out of space and could not record the folder")
            return
        if datastar:
            SSE(w).patch_signals({"newFolder": "", "_notice": ""})
            w.end()
        elif "application/json" in (c.req.headers.get("accept") or ""):
            w.json({"folder": await folder_answer(db, owner, row.id)}, status=201)
        else:
            w.redirect(_page_of(parent), 303)
        relay.publish(files_changed(owner), "folder")

    return handler


def _move_page(
    assets: PageAssets,
    c: Context,
    row: FolderRow,
    back: str,
    places: list[tuple[str, str]],
    chosen: str,
    error: str | None,
):
    def make(nonce: str) -> HtmlElement:
        return action_page(
            assets,
            principal(c).account,
            f"Move folder {row.name}",
            h.Form(
                {"method": "post", "action": FOLDER_MOVE_FORM.href(row.id),
                 "class": "action-form"},
                h.Input({"type": "hidden", "name": "back", "value": back}),
                _folder_select("folder-move-to", "Move to", places, chosen, error),
                h.P({"class": "form-buttons"},
                    h.Button({"type": "submit", "class": "button primary"}, "Move"),
                    h.A({"class": "button", "href": back}, "Cancel")),
            ),
            nonce=nonce,
        )  # fmt: skip

    return make


def move_page(db: Database, assets: PageAssets):
    async def handler(c: Context, w: Writer) -> None:
        row = await _own_folder(db, c)
        if row is None:
            _missing(assets, c, w)
            return
        places = await folder_choices(db, row.owner)
        here = row.parent or ROOT_ID
        send_page(w, _move_page(assets, c, row, _page_of(row.parent), places, here, None))

    return handler


def move_command(db: Database, relay: Relay[str], assets: PageAssets):
    """POST /folders/{id}/move, field `to` (a folder id, "root" the root): the folder
    with all it holds; into itself or below it is refused (409) beside the field."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        row = await _own_folder(db, c)
        try:
            fields = await read_form(c)
        except FormError:
            fields = {}
        if row is None:
            _missing(assets, c, w)
            return
        to = fields.get("to") or ROOT_ID
        back = _back(fields.get("back"), _page_of(row.parent))
        try:
            moved = await move(db, owner, [], [row.id], catalog_id(to))
        except FolderError as exc:
            if not wants_html(c):
                json_error(w, exc.status, exc.message)
                return
            places = await folder_choices(db, owner)
            page = _move_page(assets, c, row, back, places, to, as_sentence(exc.message))
            send_page(w, page, exc.status)
            return
        w.redirect(back, 303)
        if moved.folders:
            relay.publish(files_changed(owner), "moved")

    return handler


def delete_page(db: Database, assets: PageAssets):
    async def handler(c: Context, w: Writer) -> None:
        row = await _own_folder(db, c)
        if row is None:
            _missing(assets, c, w)
            return
        question = doomed_words(await deletion_summary(db, row.owner, [row.id]))
        back = _page_of(row.parent)

        def make(nonce: str) -> HtmlElement:
            return action_page(
                assets,
                principal(c).account,
                f"Delete folder {row.name}",
                h.Form(
                    {"method": "post", "action": FOLDER_DELETE_FORM.href(row.id),
                     "class": "action-form"},
                    h.Input({"type": "hidden", "name": "back", "value": back}),
                    h.P(f"{row.name}: {question}"),
                    h.P({"class": "form-buttons"},
                        h.Button({"type": "submit", "class": "button danger"}, "Delete"),
                        h.A({"class": "button", "href": back}, "Cancel")),
                ),
                nonce=nonce,
            )  # fmt: skip

        send_page(w, make)

    return handler


def delete_command(
    db: Database,
    store: Store,
    relay: Relay[str],
    assets: PageAssets,
    spawn: Spawn,
    closing: ClosedRequests,
):
    """POST /folders/{id}/delete: the folder with all it holds, as the API's delete."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        row = await _own_folder(db, c)
        try:
            fields = await read_form(c)
        except FormError:
            fields = {}
        if row is None:
            _missing(assets, c, w)
            return
        back = _back(fields.get("back"), _page_of(row.parent))
        closed: list[str] = []
        removed = await delete_folders(db, owner, [row.id], closed_requests=closed)
        w.redirect(back, 303)
        relay.publish(files_changed(owner), "removed")
        await closing.closed(owner, closed)
        if removed:
            spawn(remove_in_background(store, removed))

    return handler


def register_folder_forms(
    app: App,
    db: Database,
    store: Store,
    relay: Relay[str],
    assets: PageAssets,
    closing: ClosedRequests,
) -> None:
    app.add(FOLDER_CREATE, make_folder(db, relay, assets))
    app.add(FOLDER_RENAME_PAGE, rename_page(db, assets))
    app.add(FOLDER_RENAME_FORM, rename_command(db, relay, assets))
    app.add(FOLDER_MOVE_PAGE, move_page(db, assets))
    app.add(FOLDER_MOVE_FORM, move_command(db, relay, assets))
    app.add(FOLDER_DELETE_PAGE, delete_page(db, assets))
    app.add(FOLDER_DELETE_FORM, delete_command(db, store, relay, assets, app.create_task, closing))
