from dataclasses import dataclass, field

from stario import JsonValue

from app.catalog.protocol import Database
from app.folders.store import folder_paths
from app.requests.store import FileRequest, iso, list_requests
from app.resumable.store import UploadState, unfinished_through


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """An open request and the unfinished resumable uploads made through it, oldest
    first."""

    request: FileRequest
    unfinished: list[UploadState] = field(default_factory=list)
    # Where its files land ("/a/b/"); None once that folder is removed.
    folder_path: str | None = "/"


async def open_requests(db: Database, owner: str) -> list[OpenRequest]:
    """The account's open requests (`list_requests`), each with its unfinished uploads."""
    found = await list_requests(db, owner)
    waiting: dict[str, list[UploadState]] = {}
    if found:
        for state in await unfinished_through(db, owner):
            if state.request_id is not None:
                waiting.setdefault(state.request_id, []).append(state)
    paths = await folder_paths(db, owner, {request.folder_id for request in found})
    return [
        OpenRequest(request, waiting.get(request.id, []), paths.get(request.folder_id))
        for request in found
    ]


def unfinished_json(state: UploadState) -> dict[str, JsonValue]:
    return {
        "id": state.id,
        "name": state.name,
        "offset": state.offset,
        "length": state.length,
        "created_at": iso(state.created_at),
        "expires_at": iso(state.expires_at),
    }


def request_json(
    request: FileRequest,
    url: str | None,
    unfinished: list[UploadState] | None = None,
    *,
    folder_path: str | None = None,
) -> dict[str, JsonValue]:
    """`url` (`/r/{token}`) only when the request is made: the catalog keeps no token.
    `folder` is where its files land ("root" or a folder id) and `folder_path` that
    folder's path ("/a/b/"; None once the folder is removed: uploads then fail)."""
    uploads: list[JsonValue] = [unfinished_json(state) for state in unfinished or []]
    return {
        "id": request.id,
        "url": url,
        "label": request.label,
        "expires_at": iso(request.expires_at),
        "max_files": request.max_files,
        "max_file_bytes": request.max_file_bytes,
        "files": request.files,
        "created_at": iso(request.created_at),
        "uploads": uploads,
        "folder": "root" if request.folder_id == "" else request.folder_id,
        "folder_path": folder_path,
    }
