"""The folders API: create, show (with its folders and a page of its files), rename,
move, delete; and moving files and folders together. Every answer speaks JSON; another
account's folder is "no such folder" (404), as another's file is."""

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from stario import App, Context, JsonValue, Relay, Writer
from stario.datastar import SSE

from app.access.gate import principal
from app.catalog.protocol import Database, is_disk_full
from app.common.http import (
    BodyError,
    is_datastar,
    json_error,
    only_fields,
    path_param,
    read_json_object,
)
from app.features.folders.urls import (
    API_FILES_MOVE,
    API_FOLDER,
    API_FOLDER_CHANGE,
    API_FOLDER_DELETE,
    API_FOLDERS,
)
from app.files.query import QueryError, parse_file_query, parse_window
from app.files.store import count_files, file_json, files_changed, list_files
from app.folders.store import (
    ROOT,
    FolderError,
    Totals,
    ancestors,
    catalog_id,
    create_folder,
    delete_folders,
    deletion_summary,
    ensure_path,
    folder_json,
    get_folder,
    list_children,
    move,
    path_of,
    rename_folder,
    totals,
)
from app.ingest.names import BadPath, relative_path
from app.requests.events import requests_changed
from app.storage.store import Store

type Spawn = Callable[[Coroutine[Any, Any, None]], object]

MAX_BODY_BYTES = 1024 * 1024
MAX_MOVE = 10_000


@dataclass(slots=True)
class ClosedRequests:
    """What follows a deletion that closed file requests (those into a deleted folder,
    a folder link's own among them): their unfinished resumable uploads end, giving
    their space back, and the owner's request list repaints. `end_uploads` is set once
    the resumable uploads exist (app/main.py); until then the expiry sweep ends them."""

    relay: Relay[str]
    end_uploads: Callable[[str], Awaitable[object]] | None = None

    async def closed(self, owner: str, request_ids: Sequence[str]) -> None:
        if not request_ids:
            return
        if self.end_uploads is not None:
            for request_id in request_ids:
                await self.end_uploads(request_id)
        self.relay.publish(requests_changed(owner), "closed")


def _folder_id_field(value: object, field: str) -> str:
    if value is None:
        return ROOT
    if not isinstance(value, str) or not value:
        raise BodyError(f'"{field}" must be a folder id (a string; "root" for the root)')
    return catalog_id(value)


def _id_list(parsed: dict[str, object], field: str) -> list[str]:
    value = parsed.get(field, [])
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise BodyError(f'"{field}" must be a list of ids (strings)')
    return list(dict.fromkeys(value))


async def folder_answer(db: Database, owner: str, folder_id: str) -> dict[str, JsonValue] | None:
    """A folder's JSON with its path and totals, or None when the account has none."""
    row = await get_folder(db, owner, folder_id)
    if row is None:
        return None
    chain = await ancestors(db, owner, folder_id)
    total = None if folder_id == ROOT else (await totals(db, owner, [folder_id]))[folder_id]
    if folder_id == ROOT:
        below = await db.fetch_one("SELECT count(*) FROM folders WHERE owner = ?", (owner,))
        total = Totals(row.size, row.files, int(below[0]) if below else 0)  # type: ignore[call-overload]
    return folder_json(row, path_of(chain), total)


def _refuse(c: Context, w: Writer, status: int, message: str, verb: str) -> None:
    """The refusal as JSON, or to the page (Datastar applies only 200 answers) as its
    notice in words."""
    if is_datastar(c):
        SSE(w).patch_signals({"_notice": f"Could not {verb}: {message}."})
        w.end()
    else:
        json_error(w, status, message)


def _folder_path_field(value: object) -> tuple[str, ...]:
    """The folder names of `"path": "a/b"` (a relative path, as uploads take it)."""
    if not isinstance(value, str) or not value:
        raise BodyError('"path" must be a relative folder path such as "Photos/2026"')
    try:
        folders, last = relative_path(value)
    except BadPath as exc:
        raise BodyError(str(exc)) from None
    return (*folders, last)


def create(db: Database, relay: Relay[str]):
    """`{"name", "parent"}` makes one folder (409 when the name is taken); `{"path",
    "parent"}` makes whatever of "a/b/c" is missing under the parent and answers the
    deepest: 201 when it was made now, 200 when it was already there (how the page
    re-creates a dropped folder's tree, empty folders included, and finds what an
    interrupted drop already sent)."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        made: list[str] = []
        try:
            parsed = await read_json_object(c, MAX_BODY_BYTES)
            if parsed is None:
                raise BodyError('send a JSON object such as {"name": "Photos", "parent": "root"}')
            only_fields(parsed, ("name", "parent", "path"))
            parent = _folder_id_field(parsed.get("parent"), "parent")
            if "path" in parsed:
                if "name" in parsed:
                    raise BodyError('send "name" (one folder) or "path" (a/b/c), not both')
                parts = _folder_path_field(parsed["path"])
                folder_id = await ensure_path(db, owner, parent, parts, made)
            else:
                row = await create_folder(db, owner, parent, parsed.get("name"), made=made)  # type: ignore[arg-type]
                folder_id = row.id
        except BodyError as exc:
            json_error(w, 400, str(exc))
            return
        except FolderError as exc:
            json_error(w, exc.status, exc.message)
            return
        answer = await folder_answer(db, owner, folder_id)
        made_now = folder_id in made
        w.json({"folder": answer}, status=201 if made_now else 200)
        if made:
            relay.publish(files_changed(owner), "folder")

    return handler


def show(db: Database):
    """The folder, its folders (each with its totals) and a page of its files:
    `?limit=&offset=` and the file list's `?q=&type=&sort=&order=`."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        folder_id = catalog_id(path_param(c, "folder_id"))
        get = c.req.query.get
        try:
            limit, offset = parse_window(get("limit"), get("offset"))
            query = parse_file_query(get("q"), get("type"), get("sort"), get("order"))
        except QueryError as exc:
            json_error(w, 400, str(exc))
            return
        folder = await folder_answer(db, owner, folder_id)
        if folder is None:
            json_error(w, 404, "no such folder")
            return
        children = await list_children(db, owner, folder_id)
        sums = await totals(db, owner, [f.id for f in children])
        path = str(folder["path"])
        rows = await list_files(db, owner, limit, offset, query, folder=folder_id)
        count = await count_files(db, owner, query, folder=folder_id)
        w.json(
            {
                "folder": folder,
                "folders": [folder_json(f, f"{path}{f.name}/", sums[f.id]) for f in children],
                "files": [file_json(r, path) for r in rows],
                "total_files": count,
            }
        )

    return handler


def change(db: Database, store: Store, relay: Relay[str]):
    """PATCH `{"name": ...}` renames, `{"parent": ...}` moves (both: both)."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        folder_id = catalog_id(path_param(c, "folder_id"))
        try:
            parsed = await read_json_object(c, MAX_BODY_BYTES)
            if not parsed:
                raise BodyError(
                    'send a JSON object such as {"name": "Taxes"} or {"parent": "root"}'
                )
            only_fields(parsed, ("name", "parent"))
            if folder_id == ROOT:
                raise FolderError(400, "the root folder cannot be renamed or moved")
            if await get_folder(db, owner, folder_id) is None:
                raise FolderError(404, "no such folder")
            if "parent" in parsed:
                to = _folder_id_field(parsed["parent"], "parent")
                await move(db, owner, [], [folder_id], to)
            if "name" in parsed:
                await rename_folder(db, owner, folder_id, parsed["name"])  # type: ignore[arg-type]
        except BodyError as exc:
            _refuse(c, w, 400, str(exc), "change the folder")
            return
        except FolderError as exc:
            _refuse(c, w, exc.status, exc.message, "change the folder")
            return
        if is_datastar(c):
            # The page's rename form closes.
            SSE(w).patch_signals({"folderRenameId": "", "folderRenameName": "", "_notice": ""})
            w.end()
        else:
            w.json({"folder": await folder_answer(db, owner, folder_id)})
        relay.publish(files_changed(owner), "folder")

    return handler


async def remove_in_background(store: Store, blob_ids: Sequence[str]) -> None:
    """Blobs of removed rows, a batch at a time; what fails (or a crash) is left to the
    periodic sweep, which reclaims blobs without a row (app/ops/sweep.py)."""
    for at in range(0, len(blob_ids), 500):
        try:
            await store.remove(list(blob_ids[at : at + 500]))
        except OSError:
            pass


def delete(db: Database, store: Store, relay: Relay[str], spawn: Spawn, closing: ClosedRequests):
    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        folder_id = catalog_id(path_param(c, "folder_id"))
        if folder_id == ROOT:
            json_error(w, 400, "the root folder cannot be deleted")
            return
        if await get_folder(db, owner, folder_id) is None:
            json_error(w, 404, "no such folder")
            return
        doomed = await deletion_summary(db, owner, [folder_id])
        try:
            closed: list[str] = []
            removed = await delete_folders(db, owner, [folder_id], closed_requests=closed)
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            json_error(w, 507, "the server is out of space and could not record the deletion")
            return
        w.json({"deleted": {"folders": doomed.folders, "files": len(removed), "size": doomed.size}})
        relay.publish(files_changed(owner), "removed")
        await closing.closed(owner, closed)
        if removed:
            spawn(remove_in_background(store, removed))

    return handler


def move_many(db: Database, store: Store, relay: Relay[str], spawn: Spawn):
    """POST /api/files/move `{"ids": [...], "folders": [...], "to": FOLDER, "replace":
    false}`: all in one transaction, or nothing (404 for an id not the account's, 409
    for a folder into itself or below itself)."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        try:
            parsed = await read_json_object(c, MAX_BODY_BYTES)
            if parsed is None:
                raise BodyError('send a JSON object such as {"ids": [...], "to": "FOLDER_ID"}')
            only_fields(parsed, ("ids", "folders", "to", "replace"))
            ids, folders = _id_list(parsed, "ids"), _id_list(parsed, "folders")
            if not 1 <= len(ids) + len(folders) <= MAX_MOVE:
                raise BodyError(f'"ids" and "folders" must name from 1 to {MAX_MOVE:,} things')
            if "to" not in parsed:
                raise BodyError('"to" must name the folder to move into ("root" for the root)')
            to = _folder_id_field(parsed["to"], "to")
            replace = parsed.get("replace", False)
            if not isinstance(replace, bool):
                raise BodyError('"replace" must be true or false')
            moved = await move(
                db, owner, ids, [catalog_id(f) for f in folders], to, replace=replace
            )
        except BodyError as exc:
            _refuse(c, w, 400, str(exc), "move")
            return
        except FolderError as exc:
            _refuse(c, w, exc.status, exc.message, "move")
            return
        if is_datastar(c):
            renamed = "; ".join(f"{a} is now {b}" for a, b in moved.renamed[:5])
            notice = f"Moved; names taken there were numbered: {renamed}." if renamed else ""
            done: dict[str, JsonValue] = {"_notice": notice, "_picked": 0, "_matching": []}
            SSE(w).patch_signals(done)
            w.end()
        else:
            w.json(
                {
                    "moved": {"files": moved.files, "folders": moved.folders},
                    "renamed": [{"from": a, "to": b} for a, b in moved.renamed],
                    "replaced": len(moved.replaced),
                }
            )
        relay.publish(files_changed(owner), "moved")
        if moved.replaced:
            spawn(remove_in_background(store, moved.replaced))

    return handler


def register_folders(
    app: App, db: Database, store: Store, relay: Relay[str], closing: ClosedRequests
) -> None:
    spawn = app.create_task
    app.add(API_FOLDERS, create(db, relay))
    app.add(API_FOLDER, show(db))
    app.add(API_FOLDER_CHANGE, change(db, store, relay))
    app.add(API_FOLDER_DELETE, delete(db, store, relay, spawn, closing))
    app.add(API_FILES_MOVE, move_many(db, store, relay, spawn))
