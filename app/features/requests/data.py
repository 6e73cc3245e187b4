from stario import JsonValue

from app.requests.store import FileRequest, iso

# Published when an account's file requests change (made, closed, a file received);
# its pages repaint their "File requests" list.
REQUESTS_CHANGED = "requests.changed"


def requests_changed(owner: str) -> str:
    return f"{REQUESTS_CHANGED}.{owner}"


def request_json(request: FileRequest, url: str | None) -> dict[str, JsonValue]:
    """`url` (`/r/{token}`) only when the request is made: the catalog keeps no token."""
    return {
        "id": request.id,
        "url": url,
        "label": request.label,
        "expires_at": iso(request.expires_at),
        "max_files": request.max_files,
        "max_file_bytes": request.max_file_bytes,
        "files": request.files,
        "created_at": iso(request.created_at),
    }
