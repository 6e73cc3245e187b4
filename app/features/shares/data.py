from stario import JsonValue

from app.folders.store import api_id
from app.shares.store import FILES, FOLDER, Share, ShareListing, UploadLimits, iso

# Published when an account's links change (made, revoked, downloaded); its pages
# repaint their "Shared links" list.
SHARES_CHANGED = "shares.changed"


def shares_changed(owner: str) -> str:
    return f"{SHARES_CHANGED}.{owner}"


def share_json(
    share: Share,
    url: str | None,
    listing: ShareListing | None = None,
    files: int | None = None,
    uploads: UploadLimits | None = None,
) -> dict[str, JsonValue]:
    """`url` (`/s/{token}`) only when the link is made: the catalog keeps no token.
    `kind` says what it gives: "file" (`file_id`), "folder" (`folder`, "root" or an
    id, with everything under it) or "files" (`files`: how many are in it). A folder
    link says whether it takes `uploads`, and then its `max_files`,
    `max_file_bytes` and how many files it has `received`."""
    found: dict[str, JsonValue] = {
        "id": share.id,
        "kind": share.kind,
        "file_id": share.file_id or None,
        "folder": api_id(share.folder_id),
        "url": url,
        "expires_at": iso(share.expires_at),
        "max_downloads": share.max_downloads,
        "downloads": share.downloads,
        "has_password": share.has_password,
        "created_at": iso(share.created_at),
    }
    if listing is not None:
        found["name"] = listing.file_name
        files = listing.files
        uploads = listing.uploads
    if share.kind == FILES:
        found["files"] = files
    if share.kind == FOLDER:
        found["uploads"] = share.takes_uploads
        if uploads is not None:
            found["max_files"] = uploads.max_files
            found["max_file_bytes"] = uploads.max_file_bytes
            found["received"] = uploads.received
    return found
