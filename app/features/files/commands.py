"""Commands on stored files: they change shared state, answer, then publish.

Kept apart from handlers.py (the downloads) so the two grow independently."""

import asyncio

from stario import App, Context, JsonValue, Relay, Writer
from stario.datastar import SSE

from app.access.gate import principal
from app.catalog.protocol import Database, is_disk_full, is_name_taken
from app.common.http import (
    BodyError,
    is_datastar,
    json_error,
    only_fields,
    path_param,
    read_json_object,
    wanted_ids,
)
from app.features.files.panel import RENAME_SIGNALS
from app.features.files.urls import API_FILES_DELETE, FILE_DELETE, FILE_RENAME
from app.files.store import (
    NameTaken,
    file_json,
    files_changed,
    remove_file,
    remove_files,
    rename_file,
)
from app.folders.store import folder_paths
from app.ingest.names import MAX_NAME_CHARS, UNNAMED, display_name
from app.storage.ids import is_blob_id
from app.storage.space import CatalogReserve
from app.storage.store import Store


def delete_file(
    db: Database, store: Store, relay: Relay[str], reserve: CatalogReserve | None = None
):
    """The row goes, then the blob; 204 once the row is gone; every live page repaints.
    The row goes first, so no one is offered a blob being removed. A blob that cannot
    be removed is only logged: the file is gone for everyone, and the periodic sweep
    reclaims blobs without a row."""

    async def handler(c: Context, w: Writer) -> None:
        file_id = path_param(c, "file_id")
        owner = principal(c).account_id
        # Deleting is scoped in the query itself: another account's id is "no such file".
        try:
            removed = is_blob_id(file_id) and await remove_file(db, file_id, owner)
        except Exception as exc:  # SQLite's or PostgreSQL's full disk
            if not is_disk_full(exc):
                raise
            json_error(w, 507, "the server is out of space and could not record the deletion")
            return
        if not removed:
            json_error(w, 404, "no such file")
            return
        try:
            await store.remove([file_id])
        except OSError as exc:
            c.span.attr("stowage.blob_left_behind", file_id)
            c.span.exception(exc)
        w.empty()
        relay.publish(files_changed(owner), "removed")
        if reserve is not None and not reserve.held:
            # The space just freed may be enough to set the catalog's reserve again.
            await asyncio.to_thread(reserve.keep)

    return handler


# As many as an archive may hold (app/features/archives): a whole photo library.
MAX_DELETE_FILES = 10_000
# 10,000 ids of ~30 characters in JSON, with room to spare.
MAX_DELETE_BODY_BYTES = 1024 * 1024


def _files(count: int) -> str:
    return f"{count:,} file" + ("" if count == 1 else "s")


def delete_files(
    db: Database, store: Store, relay: Relay[str], reserve: CatalogReserve | None = None
):
    """POST /api/files/delete with `{"ids": [...]}`: the account's files among them go,
    rows first in one transaction (each file is gone or still there, never half),
    then their blobs, as DELETE /files/{id} does. Ids that name nothing of this
    account's (deleted meanwhile, unknown, another account's) are skipped, not an
    error for the rest: 200 `{"deleted": [...], "skipped": [...]}`. Every live page
    of the account repaints once."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        datastar = is_datastar(c)
        try:
            ids = wanted_ids(
                await read_json_object(c, MAX_DELETE_BODY_BYTES), most=MAX_DELETE_FILES
            )
        except BodyError as exc:
            if datastar:
                SSE(w).patch_signals({"_notice": f"Could not delete: {exc}."})
                w.end()
            else:
                json_error(w, 400, str(exc))
            return
        try:
            removed = await remove_files(db, [i for i in ids if is_blob_id(i)], owner)
        except Exception as exc:  # SQLite's or PostgreSQL's full disk
            if not is_disk_full(exc):
                raise
            message = "the server is out of space and could not record the deletion"
            if datastar:
                SSE(w).patch_signals({"_notice": f"Could not delete: {message}."})
                w.end()
            else:
                json_error(w, 507, message)
            return
        if removed:
            try:
                await store.remove(removed)
            except OSError as exc:
                c.span.attr("stowage.blobs_left_behind", len(removed))
                c.span.exception(exc)
        gone = set(removed)
        deleted = [i for i in ids if i in gone]
        skipped = [i for i in ids if i not in gone]
        if datastar:
            notice = f"{_files(len(skipped))} of the selection had gone already." * bool(skipped)
            cleared: dict[str, JsonValue] = {"_notice": notice, "_matching": [], "_picked": 0}
            SSE(w).patch_signals(cleared)
            w.end()
        else:
            answer: dict[str, JsonValue] = {"deleted": list(deleted), "skipped": list(skipped)}
            w.json(answer)
        if removed:
            relay.publish(files_changed(owner), "removed")
            if reserve is not None and not reserve.held:
                await asyncio.to_thread(reserve.keep)

    return handler


# A name is at most 255 characters, each at most 4 bytes of UTF-8, as JSON escapes.
MAX_RENAME_BODY_BYTES = 16 * 1024


class RenameError(ValueError):
    """A new name that cannot be used; the message says why."""


def new_name(raw: object) -> str:
    """The name as an upload would keep it (app/ingest/names.py), or RenameError when
    there is none to keep: not text, empty, or nothing left once made safe."""
    if not isinstance(raw, str):
        raise RenameError("name must be a string")
    if not raw.strip():
        raise RenameError("name must not be empty")
    if len(raw) > 4 * MAX_NAME_CHARS:
        raise RenameError(f"name is too long (names keep at most {MAX_NAME_CHARS} characters)")
    name = display_name(raw)
    if name == UNNAMED and raw.strip() != UNNAMED:
        raise RenameError(
            "name has nothing that can be shown (control characters, separators and"
            " trailing dots are removed from names)"
        )
    return name


async def _wanted_name(c: Context, datastar: bool) -> str:
    """JSON `{"name": ...}` from the API, the `renameName` signal from the page."""
    try:
        parsed = await read_json_object(c, MAX_RENAME_BODY_BYTES)
    except BodyError as exc:
        raise RenameError(str(exc)) from None
    if parsed is None:
        raise RenameError('send JSON {"name": "the new name"}')
    if datastar:
        return new_name(parsed.get("renameName"))
    if "name" not in parsed:
        raise RenameError('send JSON {"name": "the new name"}')
    try:
        return new_name(only_fields(parsed, ("name",))["name"])
    except BodyError as exc:
        raise RenameError(str(exc)) from None


def rename(db: Database, relay: Relay[str]):
    """PATCH /files/{id}: a new name, made safe as an upload's is; 200 with the file's
    JSON (the page gets its rename form closed); every live page of the account
    repaints. 404 for an unknown id or another account's file."""

    async def handler(c: Context, w: Writer) -> None:
        file_id = path_param(c, "file_id")
        owner = principal(c).account_id
        datastar = is_datastar(c)

        def refuse(status: int, message: str) -> None:
            if datastar:
                # Datastar applies only 200 answers: the refusal travels as a signal.
                sse = SSE(w)
                sse.patch_signals({"_notice": f"Could not rename: {message}."})
                w.end()
            else:
                json_error(w, status, message)

        try:
            name = await _wanted_name(c, datastar)
        except RenameError as exc:
            refuse(400, str(exc))
            return
        try:
            row = await rename_file(db, file_id, owner, name) if is_blob_id(file_id) else None
        except NameTaken as exc:
            refuse(409, str(exc))
            return
        except Exception as exc:  # SQLite's or PostgreSQL's full disk
            if is_name_taken(exc):
                # Another request took the name between the check and the update.
                refuse(409, f"something named {name!r} is already in this folder")
                return
            if not is_disk_full(exc):
                raise
            refuse(507, "the server is out of space and could not record the new name")
            return
        if row is None:
            refuse(404, "no such file")
            return
        if datastar:
            sse = SSE(w)
            sse.patch_signals({**RENAME_SIGNALS, "_notice": ""})
            w.end()
        else:
            paths = await folder_paths(db, owner, [row.folder_id])
            w.json({"file": file_json(row, paths.get(row.folder_id, "/"))})
        relay.publish(files_changed(owner), "renamed")

    return handler


def register_file_commands(
    app: App,
    db: Database,
    store: Store,
    relay: Relay[str],
    reserve: CatalogReserve | None = None,
) -> None:
    app.add(FILE_DELETE, delete_file(db, store, relay, reserve))
    app.add(API_FILES_DELETE, delete_files(db, store, relay, reserve))
    app.add(FILE_RENAME, rename(db, relay))
