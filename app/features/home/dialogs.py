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


def rename_form() -> HtmlElement:
    """One form for every row, outside `#files` so a live repaint keeps what is typed
    (a form in each of 50 rows would double the size of every repaint). A row's Rename
    button (ROW_ACTIONS, on the list's section) fills `$renameFile` and `$renameName`."""
    return h.Form(
        {"id": "rename-form", "class": "token-form rename-form", "data-action": "rename"},
        data.show("$renameFile !== ''"),
        data.on("submit", RENAME, prevent=True),
        h.Label(
            {"class": "field"},
            h.Span("Rename ", h.Strong(data.text("$_renaming")), " to"),
            h.Input(
                {"id": "rename-name", "type": "text", "name": "name", "maxlength": 1020},
                data.bind("renameName"),
            ),
        ),
        h.Button({"type": "submit", "class": "button primary"}, "Save"),
        h.Button(
            {"type": "button", "class": "button"}, data.on("click", "$renameFile = ''"), "Cancel"
        ),
    )


# Folder rows (`<li id="folder-ID">`) the same way: Rename fills the folder rename
# form; Delete asks the server what would go, and the page asks the person.
FOLDER_ACTIONS = (
    "{ const f = evt.target.closest('button[data-folder-rename], button[data-folder-delete]');"
    " if (f) { const row = f.closest('li'), id = row.id.slice(7),"
    " name = row.querySelector('.folder-name').textContent;"
    " if ('folderRename' in f.dataset) { $folderRenameId = id;"
    " $folderRenameName = $_folderRenaming = name; $_notice = '';"
    " setTimeout(() => document.getElementById('folder-rename-name').select()); return }"
    f" el.dataset.url = '{FOLDERS_DOOMED.href()}'; el.dataset.name = name;"
    " el.dataset.action = 'delete';"
    " @post(el.dataset.url, {payload: {ids: [], folders: [id]}, retryMaxCount: 0}); return } }"
)
ROW_ACTIONS = FOLDER_ACTIONS + (
    " const b = evt.target.closest('button[data-rename], button[data-delete]');"
    " if (!b) return;"
    " const row = b.closest('li'), name = row.querySelector('.file-name').textContent;"
    " if ('rename' in b.dataset) { $renameFile = row.id.slice(5);"
    " $renameName = $_renaming = name; $_notice = '';"
    " setTimeout(() => document.getElementById('rename-name').select()); return }"
    " if (!confirm('Delete ' + name + '? It cannot be undone.')) return;"
    " el.dataset.url = '/files/' + row.id.slice(5); el.dataset.name = name;"
    " el.dataset.action = 'delete';"
    " @delete(el.dataset.url, {filterSignals: {include: '^$'}, retryMaxCount: 0})"
)
# The selection is the ticked boxes themselves: a live repaint keeps a row's box as
# it was (rows are matched by id), and a row that vanished takes its tick with it.
# `$_picked` counts them (files and folders) for the bar; `$_pageAll`: every row of
# this page is ticked. `$_matching`: all file ids of the list on every page ("Select


CONFIRM_DELETE = (
    "@post(el.dataset.url, {payload: {ids: $_doomedIds, folders: $_doomedFolders},"
    " retryMaxCount: 0})"
)
# The archive's answer sets `$_download`; DOWNLOAD fetches it as a file. Folders go
# in as a whole, with their paths.


def delete_confirmation() -> HtmlElement:
    """The question before folders go: the server's words of what would be removed
    (`$_doomed`, set by FOLDERS_DOOMED), Delete and Cancel."""
    return h.Div(
        {"id": "delete-confirm", "class": "notice confirm", "role": "alertdialog",
         "aria-labelledby": "delete-question", "hidden": True},
        data.show("$_doomed !== ''"),
        data.attr("hidden", "$_doomed === ''"),
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
        h.Button(
            {"type": "button", "class": "button"},
            data.on("click", "$_doomed = ''; $_doomedIds = []; $_doomedFolders = []"),
            "Cancel",
        ),
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


FOLDER_RENAME = (
    "el.dataset.url = '/api/folders/' + $folderRenameId;"
    " el.dataset.name = $_folderRenaming;"
    " @patch(el.dataset.url, {payload: {name: $folderRenameName}, retryMaxCount: 0})"
)


def folder_rename_form() -> HtmlElement:
    """One form for every folder row, as `rename_form` is for the files."""
    return h.Form(
        {"id": "folder-rename-form", "class": "token-form rename-form", "data-action": "rename"},
        data.show("$folderRenameId !== ''"),
        data.on("submit", FOLDER_RENAME, prevent=True),
        h.Label(
            {"class": "field"},
            h.Span("Rename folder ", h.Strong(data.text("$_folderRenaming")), " to"),
            h.Input(
                {"id": "folder-rename-name", "type": "text", "name": "name", "maxlength": 255},
                data.bind("folderRenameName"),
            ),
        ),
        h.Button({"type": "submit", "class": "button primary"}, "Save"),
        h.Button(
            {"type": "button", "class": "button"},
            data.on("click", "$folderRenameId = ''"),
            "Cancel",
        ),
    )


RENAME = (
    "el.dataset.url = '/files/' + $renameFile; el.dataset.name = $_renaming;"
    " @patch(el.dataset.url, {filterSignals: {include: '^rename'}, retryMaxCount: 0})"
)
