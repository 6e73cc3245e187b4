"""The page's folder commands: say what deleting a selection would remove, and delete
a selection of files and folders together (making a folder is a form: forms.py). Each
answers (SSE signals to Datastar, JSON to anything else), then publishes
`files_changed`, so every open page repaints."""

from stario import App, Context, JsonValue, Relay, Writer
from stario.datastar import SSE

from app.access.gate import principal
from app.catalog.protocol import Database, is_disk_full
from app.common.http import BodyError, is_datastar, json_error, only_fields, read_json_object
from app.common.units import human_bytes
from app.features.folders.handlers import (
    ClosedRequests,
    Spawn,
    remove_in_background,
)
from app.features.folders.panel import DOOMED_CLEARED
from app.features.folders.urls import FOLDERS_DELETE, FOLDERS_DOOMED
from app.features.home.urls import HOME
from app.files.store import files_changed, remove_files
from app.folders.store import (
    ROOT,
    Doomed,
    api_id,
    catalog_id,
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
    app.add(FOLDERS_DOOMED, doomed(db))
    app.add(FOLDERS_DELETE, delete_selection(db, store, relay, app.create_task, closing))
