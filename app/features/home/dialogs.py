"""The forms the rows open: rename a file or folder, make a folder, confirm a delete;
and the one listener that opens them from a row's buttons."""

from stario import h
from stario.datastar import at, data
from stario.markup import HtmlElement

from app.features.folders.urls import (
    FOLDER_CREATE,
    FOLDERS_DELETE,
    FOLDERS_DOOMED,
)
from app.folders.store import ROOT_ID, api_id

# Open as a modal (in view, the page behind inert), focus on its first field.
OPEN_MODAL = (
    "(el.open || (el.showModal(), setTimeout(() => el.querySelector('[autofocus]')?.focus())))"
)


def modal(dialog_id: str, shown: str, close: str, *content: HtmlElement) -> HtmlElement:
    """A modal <dialog> open while `shown` holds: it opens in view wherever the row
    is, focus moves into it, and Escape (or what sets `shown` false) closes it and
    gives focus back to what opened it; `close` runs when it closes."""
    return h.Dialog(
        {"id": dialog_id, "class": "dialog", "aria-labelledby": f"{dialog_id}-title"},
        data.effect(f"({shown}) ? {OPEN_MODAL} : (el.open && el.close())"),
        data.on("close", close),
        *content,
    )


def _field_error(error_id: str, signal: str) -> HtmlElement:
    """Where a refusal of the field is shown, and gone once it no longer applies."""
    return h.P(
        {"id": error_id, "class": "error field-error", "role": "alert"},
        data.show(f"{signal} !== ''"),
        data.text(signal),
    )


def rename_form() -> HtmlElement:
    """One form for every row, outside `#files` so a live repaint keeps what is typed
    (a form in each of 50 rows would double the size of every repaint). A row's Rename
    link (ROW_ACTIONS, on the list's section) fills `$renameFile` and `$renameName`; a
    refusal (`$_renameError`) shows beside the field until the name is edited."""
    return modal(
        "rename-dialog",
        "$renameFile !== ''",
        "$renameFile = ''; $_renameError = ''",
        h.Form(
            {"id": "rename-form", "class": "token-form rename-form", "data-action": "rename"},
            data.on("submit", RENAME, prevent=True),
            h.H2({"id": "rename-dialog-title"}, "Rename ", h.Strong(data.text("$_renaming"))),
            h.Label(
                {"class": "field"},
                h.Span("New name"),
                h.Input(
                    {"id": "rename-name", "type": "text", "name": "name", "maxlength": 1020,
                     "autofocus": True,
                     "aria-describedby": "rename-error"},
                    data.bind("renameName"),
                    data.attr("aria-invalid", "$_renameError !== '' ? 'true' : 'false'"),
                    data.on("input", "$_renameError = ''"),
                ),
            ),
            _field_error("rename-error", "$_renameError"),
            h.Button({"type": "submit", "class": "button primary"}, "Save"),
            h.Button(
                {"type": "button", "class": "button"},
                data.on("click", "$renameFile = ''"),
                "Cancel",
            ),
        ),
    )  # fmt: skip


# One listener (on the list's section) for every row's Rename and Delete buttons, like
# OPEN_SHARE_FORM: the id and name are read from the row (`<li id="file-ID">`), never
# pasted into an expression, and no row carries an expression of its own.
# Folder rows (`<li id="folder-ID">`) the same way: Rename fills the folder rename
# form; Delete asks the server what would go, and the page asks the person.
FOLDER_ACTIONS = (
    '{ const f = evt.target.closest(\'.folder a[href*="/rename"], .folder a[href*="/delete"]\');'
    " if (f) { evt.preventDefault(); const row = f.closest('li'), id = row.id.slice(7),"
    " name = row.querySelector('.folder-name').textContent;"
    " if (f.href.endsWith('/rename')) { $folderRenameId = id;"
    " $folderRenameName = $_folderRenaming = name; $_notice = ''; $_folderRenameError = '';"
    " setTimeout(() => document.getElementById('folder-rename-name').select()); return }"
    f" el.dataset.url = '{FOLDERS_DOOMED.href()}'; el.dataset.name = name;"
    " el.dataset.action = 'delete';"
    " @post(el.dataset.url, {payload: {ids: [], folders: [id]}, retryMaxCount: 0}); return } }"
)
ROW_ACTIONS = FOLDER_ACTIONS + (
    ' const b = evt.target.closest(\'.file a[href*="/rename"], .file a[href*="/delete"]\');'
    " if (!b) return; evt.preventDefault();"
    " const row = b.closest('li'), name = row.querySelector('.file-name').textContent;"
    " if (b.href.endsWith('/rename')) { $renameFile = row.id.slice(5);"
    " $renameName = $_renaming = name; $_notice = ''; $_renameError = '';"
    " setTimeout(() => document.getElementById('rename-name').select()); return }"
    " if (!confirm('Delete ' + name + '? It cannot be undone.')) return;"
    " el.dataset.url = '/files/' + row.id.slice(5); el.dataset.name = name;"
    " el.dataset.action = 'delete';"
    " @delete(el.dataset.url, {filterSignals: {include: '^$'}, retryMaxCount: 0})"
)


CONFIRM_DELETE = (
    "@post(el.dataset.url, {payload: {ids: $_doomedIds, folders: $_doomedFolders},"
    " retryMaxCount: 0})"
)


def delete_confirmation() -> HtmlElement:
    """The question before folders go: the server's words of what would be removed
    (`$_doomed`, set by FOLDERS_DOOMED), Delete and Cancel, in a modal dialog."""
    cancel = "$_doomed = ''; $_doomedIds = []; $_doomedFolders = []"
    return modal(
        "delete-confirm",
        "$_doomed !== ''",
        cancel,
        h.H2({"id": "delete-confirm-title", "class": "visually-hidden"}, "Delete?"),
        h.P({"id": "delete-question"}, data.text("$_doomed")),
        h.Button(
            {
                "type": "button",
                "class": "button danger",
                "data-url": FOLDERS_DELETE.href(),
                "data-name": "the selection",
            },
            data.on("click", CONFIRM_DELETE),
            "Delete",
        ),
        h.Button({"type": "button", "class": "button"}, data.on("click", cancel), "Cancel"),
    )  # fmt: skip


def new_folder_form(folder: str) -> HtmlElement:
    """A folder in the folder shown. A plain form post without scripts (answered 303
    back here); with them, Datastar posts the same form and the list repaints."""
    return h.Form(
        {
            "id": "new-folder",
            "class": "token-form new-folder",
            "method": "post",
            "action": FOLDER_CREATE.href(),
            "data-name": "the folder",
            "data-action": "make",
            "data-url": FOLDER_CREATE.href(),
        },
        data.on(
            "submit",
            at.post(FOLDER_CREATE.href(), content_type="form", retry_max_count=0),
            prevent=True,
        ),
        h.Input({"type": "hidden", "name": "parent", "value": api_id(folder) or ROOT_ID}),
        h.Label(
            {"class": "field"},
            h.Span("New folder"),
            h.Input(
                {
                    "id": "new-folder-name",
                    "type": "text",
                    "name": "name",
                    "maxlength": 255,
                    "required": True,
                    "placeholder": "Folder name",
                },
                data.bind("newFolder"),
            ),
        ),
        h.Button({"type": "submit", "class": "button"}, "Make folder"),
    )


# The dialog posts the no-script form's address (POST /folders/{id}/rename); a
# refusal comes back as `_folderRenameError`, beside the field.
FOLDER_RENAME = (
    "el.dataset.url = '/folders/' + $folderRenameId + '/rename';"
    " el.dataset.name = $_folderRenaming;"
    " @post(el.dataset.url, {filterSignals: {include: '^folderRename'}, retryMaxCount: 0})"
)


def folder_rename_form() -> HtmlElement:
    """One form for every folder row, as `rename_form` is for the files."""
    return modal(
        "folder-rename-dialog",
        "$folderRenameId !== ''",
        "$folderRenameId = ''; $_folderRenameError = ''",
        h.Form(
            {"id": "folder-rename-form", "class": "token-form rename-form",
             "data-action": "rename"},
            data.on("submit", FOLDER_RENAME, prevent=True),
            h.H2({"id": "folder-rename-dialog-title"}, "Rename folder ",
                 h.Strong(data.text("$_folderRenaming"))),
            h.Label(
                {"class": "field"},
                h.Span("New name"),
                h.Input(
                    {"id": "folder-rename-name", "type": "text", "name": "name", "autofocus": True,
                     "maxlength": 255, "aria-describedby": "folder-rename-error"},
                    data.bind("folderRenameName"),
                    data.attr("aria-invalid", "$_folderRenameError !== '' ? 'true' : 'false'"),
                    data.on("input", "$_folderRenameError = ''"),
                ),
            ),
            _field_error("folder-rename-error", "$_folderRenameError"),
            h.Button({"type": "submit", "class": "button primary"}, "Save"),
            h.Button(
                {"type": "button", "class": "button"},
                data.on("click", "$folderRenameId = ''"),
                "Cancel",
            ),
        ),
    )  # fmt: skip


# The dialog posts the no-script form's address (POST /files/{id}/rename); a refusal
# comes back as `_renameError`, beside the field.
RENAME = (
    "el.dataset.url = '/files/' + $renameFile + '/rename'; el.dataset.name = $_renaming;"
    " @post(el.dataset.url, {filterSignals: {include: '^rename'}, retryMaxCount: 0})"
)
