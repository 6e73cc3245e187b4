"""File requests in the catalog: a link anyone may upload through, into its owner's space.

Like share links (app/shares/store.py): the token (`secrets.token_urlsafe(24)`, 192
random bits) is shown once, when the request is made; the catalog keeps only its
sha256, looks the row up by that hash and compares it again in constant time.

Files that arrive through a request carry its id (`files.request_id`); a trigger
counts them into `requests.files` in the same transaction as their rows, so the
count is of files received (deleting one later does not give its place back). A
closed request keeps its row, so its URL can answer "closed" instead of "unknown";
removing the account removes its requests (a trigger), so none outlives its owner.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import Enum

from app.catalog.protocol import Database, Row
from app.shares.store import DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN, iso

__all__ = ["DEFAULT_EXPIRES_IN", "iso"]

MAX_LABEL_CHARS = 200
MAX_FILES = 100_000
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{32}")
REQUEST_ID_PATTERN = re.compile(r"[0-9a-f]{12}")

_COLUMNS = (
    "id, owner, label, expires_at, max_files, max_file_bytes, files, created_at, closed_at,"
    " folder_id"
)


class RequestError(ValueError):
    """Bad input for a file request; the message is for a person."""


class Gone(Enum):
    """Why a known request takes no more files; the value is said to whoever opens it."""

    CLOSED = "its owner closed it"
    EXPIRED = "it expired"
    FULL = "it has received as many files as its owner asked for"


@dataclass(frozen=True, slots=True)
class FileRequest:
    id: str
    owner: str
    label: str
    expires_at: float | None
    max_files: int | None
    max_file_bytes: int | None
    files: int
    created_at: float
    closed_at: float | None
    # The folder its files land in ('' the owner's root; app/folders/).
    folder_id: str = ""

    def gone(self, now: float) -> Gone | None:
        """Why the request takes no more files at `now`, or None while it does."""
        if self.closed_at is not None:
            return Gone.CLOSED
        if self.expires_at is not None and now >= self.expires_at:
            return Gone.EXPIRED
        if self.max_files is not None and self.files >= self.max_files:
            return Gone.FULL
        return None


def _request(row: Row) -> FileRequest:
    id_, owner, label, expires, max_files, max_bytes, files, created, closed, folder = row
    return FileRequest(
        str(id_), str(owner), str(label),
        None if expires is None else float(expires),  # type: ignore[arg-type]
        None if max_files is None else int(max_files),  # type: ignore[call-overload]
        None if max_bytes is None else int(max_bytes),  # type: ignore[call-overload]
        int(files),  # type: ignore[call-overload]
        float(created),  # type: ignore[arg-type]
        None if closed is None else float(closed),  # type: ignore[arg-type]
        str(folder or ""),
    )  # fmt: skip


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_label(value: object) -> str:
    if not isinstance(value, str):
        raise RequestError('label must be text, such as "Photos from the trip"')
    label = " ".join(value.split())
    if not label:
        raise RequestError("label must not be empty: it tells uploaders what to send")
    if len(label) > MAX_LABEL_CHARS:
        raise RequestError(f"label must be at most {MAX_LABEL_CHARS} characters")
    if not label.isprintable():
        raise RequestError("label must not contain control characters")
    return label


def check_expires_in(value: object) -> int | None:
    """Seconds from now, or None for never; RequestError in words otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError("expires_in must be a whole number of seconds, or null for never")
    if not 60 <= value <= MAX_EXPIRES_IN:
        raise RequestError(f"expires_in must be between 60 and {MAX_EXPIRES_IN} seconds (10 years)")
    return value


def check_max_files(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError("max_files must be a whole number, or null for no limit")
    if not 1 <= value <= MAX_FILES:
        raise RequestError(f"max_files must be between 1 and {MAX_FILES:,}")
    return value


def check_max_file_bytes(value: object, server_cap: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError("max_file_bytes must be a whole number of bytes, or null for no limit")
    if not 1 <= value <= server_cap:
        raise RequestError(
            f"max_file_bytes must be between 1 and {server_cap:,}, the most this server"
            " takes in one file"
        )
    return value


async def create_request(
    db: Database,
    *,
    owner: str,
    label: str,
    now: float,
    expires_in: int | None,
    max_files: int | None,
    max_file_bytes: int | None,
    folder: str = "",
) -> tuple[FileRequest, str]:
    """A new request: the row and the token, which is never stored. `folder` is where
    its files land ('' the root); the caller has checked the owner has it, and the
    catalog refuses a file into it once it is removed (the upload then fails, 404)."""
    request_id = secrets.token_hex(6)
    token = secrets.token_urlsafe(24)
    expires_at = None if expires_in is None else now + expires_in
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO requests (id, token_hash, owner, label, expires_at, max_files,"
            " max_file_bytes, created_at, folder_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (request_id, token_digest(token), owner, label, expires_at, max_files,
             max_file_bytes, now, folder),
        )  # fmt: skip
    made = FileRequest(
        request_id, owner, label, expires_at, max_files, max_file_bytes, 0, now, None, folder
    )
    return made, token


def resolve_request(db: Database, token: str) -> FileRequest | None:
    """The request a token opens (live or gone), or None for no such request. The hash
    picks the row; the stored hash is compared again in constant time."""
    if TOKEN_PATTERN.fullmatch(token) is None:
        return None
    digest = token_digest(token)
    row = db.read_one(
        f"SELECT token_hash, {_COLUMNS} FROM requests WHERE token_hash = ?", (digest,)
    )
    if row is None or not hmac.compare_digest(str(row[0]), digest):
        return None
    return _request(row[1:])


def request_by_id(db: Database, request_id: str) -> FileRequest | None:
    row = db.read_one(f"SELECT {_COLUMNS} FROM requests WHERE id = ?", (request_id,))
    return None if row is None else _request(row)


async def list_requests(db: Database, owner: str) -> list[FileRequest]:
    """The account's requests that are not closed, newest first (expired and full ones
    included, so the owner sees why a link stopped taking files). A folder link's own
    request (app/shares/store.py, `uploads`) is shown with its link, not here."""
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS} FROM requests WHERE owner = ? AND closed_at IS NULL"
        " AND id NOT IN (SELECT request_id FROM shares WHERE owner = ?"
        " AND request_id IS NOT NULL)"
        " ORDER BY created_at DESC, rowid DESC",
        (owner, owner),
    )
    return [_request(row) for row in rows]


async def close_request(db: Database, request_id: str, owner: str, now: float) -> bool:
    """Close one of `owner`'s open requests; False for an unknown id, another
    account's request, or one already closed."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE requests SET closed_at = ? WHERE id = ? AND owner = ? AND closed_at IS NULL",
            (now, request_id, owner),
        )
    return cursor.rowcount > 0
