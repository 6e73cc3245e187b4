"""Commands on stored files: they change shared state, answer, then publish.

Kept apart from handlers.py (the downloads) so the two grow independently."""

from stario import App, Context, Relay, Writer

from app.access.gate import principal
from app.common.http import json_error, path_param
from app.db import Database
from app.features.files.data import files_changed, remove_file
from app.features.files.urls import FILE_DELETE
from app.storage.blobs import BlobStore, is_blob_id


def delete_file(db: Database, store: BlobStore, relay: Relay[str]):
    """The row goes, then the blob; 204 means both are gone; every live page repaints.
    The row goes first, so no one is offered a blob being removed."""

    async def handler(c: Context, w: Writer) -> None:
        file_id = path_param(c, "file_id")
        owner = principal(c).account_id
        # Deleting is scoped in the query itself: another account's id is "no such file".
        if not is_blob_id(file_id) or not await remove_file(db, file_id, owner):
            json_error(w, 404, "no such file")
            return
        await store.remove([file_id])
        w.empty()
        relay.publish(files_changed(owner), "removed")

    return handler


def register_file_commands(app: App, db: Database, store: BlobStore, relay: Relay[str]) -> None:
    app.add(FILE_DELETE, delete_file(db, store, relay))
