"""The page's folder commands: make a folder (a form, with or without scripts), say
what deleting a selection would remove, and delete a selection of files and folders
together. Each answers (SSE signals to Datastar, 303 or words to a plain form, JSON to
anything else), then publishes `files_changed`, so every open page repaints."""

from stario import App, Context, JsonValue, Relay, Writer
from stario.datastar import SSE

from app.access.gate import principal
from app.catalog.protocol import Database, is_disk_full
from app.common.forms import FormError, read_form
from app.common.http import BodyError, is_datastar, json_error, only_fields, read_json_object
from app.common.units import human_bytes
from app.features.folders.handlers import (
    ClosedRequests,
    Spawn,
    folder_answer,
    remove_in_background,
)
from app.features.folders.panel import DOOMED_CLEARED
from app.features.folders.urls import FOLDER_CREATE, FOLDERS_DELETE, FOLDERS_DOOMED
from app.features.home.urls import HOME
from app.files.store import files_changed, remove_files
from app.folders.store import (
    ROOT,
    Doomed,
    FolderError,
    api_id,
    catalog_id,
    create_folder,
    delete_folders,
    deletion_summary,
    subtree,
)
from app.storage.ids import is_blob_id
from app.storage.store import Store

MAX_SELECTION = 10_000
MAX_BODY_BYTES = 1024 * 1024


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def doomed_words(doomed: Doomed) -> str:
    """ "Delete 3 folders and 1,204 files, 6.1 GiB? It cannot be undone." """
    parts = []
    if doomed.folders:
        parts.append(_plural(doomed.folders, "folder"))
    parts.append(_plural(doomed.files, "file"))
    return f"Delete {' and '.join(parts)}, {human_bytes(doomed.size)}? It cannot be undone."


def _home_of(folder: str) -> str:
    return HOME.href(query={"folder": folder}) if folder != ROOT else HOME.href()


def make_folder(db: Database, relay: Relay[str]):
    """POST /folders, form fields `name` and `parent` ("root" or a folder id): the new
    folder in `parent`. Without scripts: 303 back to the page of `parent`, or the
    refusal in words (its status); with Datastar: the form emptied, or `_notice`."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        datastar = is_datastar(c)

        def refuse(status: int, message: str) -> None:
            if datastar:
                SSE(w).patch_signals({"_notice": f"Could not make the folder: {message}."})
                w.end()
            else:
                w.text(f"{status} {message[0].upper()}{message[1:]}.\n", status)

        try:
            fields = await read_form(c)
        except FormError as exc:
            refuse(400, str(exc))
            return
        parent = catalog_id(fields.get("parent") or None)
        try:
            row = await create_folder(db, owner, parent, fields.get("name", ""))
        except FolderError as exc:
            refuse(exc.status, exc.message)
            return
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            refuse(507, "the server is out of space and could not record the folder")
            return
        if datastar:
            SSE(w).patch_signals({"newFolder": "", "_notice": ""})
            w.end()
        elif "application/json" in (c.req.headers.get("accept") or ""):
            w.json({"folder": await folder_answer(db, owner, row.id)}, status=201)
        else:
            w.redirect(_home_of(parent), 303)
        relay.publish(files_changed(owner), "folder")

    return handler


async def _selection(c: Context) -> tuple[list[str], list[str]]:
    """`{"ids": [...], "folders": [...]}`: the files and the folders, each once."""
    parsed = await read_json_object(c, MAX_BODY_BYTES)
    if parsed is None:
        raise BodyError('send a JSON object such as {"ids": [...], "folders": [...]}')
    only_fields(parsed, ("ids", "folders"))
    lists: list[list[str]] = []
    for field in ("ids", "folders"):
        value = parsed.get(field, [])
        if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
            raise BodyError(f'"{field}" must be a list of ids (strings)')
        lists.append(list(dict.fromkeys(value)))
    ids, folders = lists
    if not 1 <= len(ids) + len(folders) <= MAX_SELECTION:
        raise BodyError(f'"ids" and "folders" must name from 1 to {MAX_SELECTION:,} things')
    return ids, [catalog_id(f) for f in folders if catalog_id(f) != ROOT]


def doomed(db: Database):
    """POST /folders/doomed: what deleting the selection would remove, in words, for
    the page to ask (`_doomed`, and the selection it is about); JSON to others."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        try:
            ids, folders = await _selection(c)
        except BodyError as exc:
            if is_datastar(c):
                SSE(w).patch_signals({"_notice": f"Could not delete: {exc}."})
                w.end()
            else:
                json_error(w, 400, str(exc))
            return
        summary = await deletion_summary(db, owner, folders, ids)
        if is_datastar(c):
            chosen: dict[str, JsonValue] = {
                "_doomed": doomed_words(summary),
                "_doomedIds": list(ids),
                "_doomedFolders": [api_id(f) for f in folders],
            }
            SSE(w).patch_signals(chosen)
            w.end()
        else:
            w.json({"folders": summary.folders, "files": summary.files, "size": summary.size})

    return handler


def delete_selection(
    db: Database, store: Store, relay: Relay[str], spawn: Spawn, closing: ClosedRequests
):
    """POST /folders/delete `{"ids": [...], "folders": [...]}`: the folders with all they
    hold, then the files, rows first (each transaction whole or nothing), the blobs in
    the background. What is already gone is skipped."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        datastar = is_datastar(c)

        def refuse(status: int, message: str) -> None:
            if datastar:
                SSE(w).patch_signals({"_notice": f"Could not delete: {message}."})
                w.end()
            else:
                json_error(w, status, message)

        try:
            ids, folders = await _selection(c)
        except BodyError as exc:
            refuse(400, str(exc))
            return
        existing = set(await subtree(db, owner, folders)) if folders else set()
        closed: list[str] = []
        try:
            blobs = (
                await delete_folders(db, owner, folders, closed_requests=closed) if folders else []
            )
            files = await remove_files(db, [i for i in ids if is_blob_id(i)], owner) if ids else []
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            refuse(507, "the server is out of space and could not record the deletion")
            return
        if datastar:
            cleared: dict[str, JsonValue] = {
                **DOOMED_CLEARED,
                "_notice": "",
                "_matching": [],
                "_picked": 0,
            }
            SSE(w).patch_signals(cleared)
            w.end()
        else:
            # The folders and files named that were there (what they held went too).
            gone: list[JsonValue] = [api_id(f) for f in folders if f in existing]
            gone += files
            w.json({"deleted": gone, "files_removed": len(blobs) + len(files)})
        if blobs or files or existing:
            relay.publish(files_changed(owner), "removed")
        await closing.closed(owner, closed)
        if blobs or files:
            spawn(remove_in_background(store, [*blobs, *files]))

    return handler


def register_folder_commands(
    app: App, db: Database, store: Store, relay: Relay[str], closing: ClosedRequests
) -> None:
    app.add(FOLDER_CREATE, make_folder(db, relay))
    app.add(FOLDERS_DOOMED, doomed(db))
    app.add(FOLDERS_DELETE, delete_selection(db, store, relay, app.create_task, closing))
