"""Commands on stored files: they change shared state, answer, then publish.

Kept apart from handlers.py (the downloads) so the two grow independently."""

import asyncio
import sqlite3

from stario import App, Context, Relay, Writer

from app.access.gate import principal
from app.common.http import json_error, path_param
from app.db import Database, is_disk_full
from app.features.files.data import files_changed, remove_file
from app.features.files.urls import FILE_DELETE
from app.storage.blobs import BlobStore, is_blob_id
from app.storage.space import CatalogReserve


def delete_file(
    db: Database, store: BlobStore, relay: Relay[str], reserve: CatalogReserve | None = None
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
        except sqlite3.Error as exc:
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


def register_file_commands(
    app: App,
    db: Database,
    store: BlobStore,
    relay: Relay[str],
    reserve: CatalogReserve | None = None,
) -> None:
    app.add(FILE_DELETE, delete_file(db, store, relay, reserve))
