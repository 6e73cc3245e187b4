from stario import JsonValue

from app.shares.store import Share, iso

# Published when an account's links change (made, revoked, downloaded); its pages
# repaint their "Shared links" list.
SHARES_CHANGED = "shares.changed"


def shares_changed(owner: str) -> str:
    return f"{SHARES_CHANGED}.{owner}"


def share_json(share: Share, url: str | None) -> dict[str, JsonValue]:
    """`url` (`/s/{token}`) only when the link is made: the catalog keeps no token."""
    return {
        "id": share.id,
        "file_id": share.file_id,
        "url": url,
        "expires_at": iso(share.expires_at),
        "max_downloads": share.max_downloads,
        "downloads": share.downloads,
        "has_password": share.has_password,
        "created_at": iso(share.created_at),
    }
