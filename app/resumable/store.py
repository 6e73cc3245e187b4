"""Resumable uploads in the catalog: one row per upload resource, whatever protocol
(tus 1.0, the IETF draft) made it or appends to it.

`offset` is durable: the bytes before it were fsynced before the row said so. A
row's `reserved` bytes count against its owner's quota beside what the account
stores (`Upload-Length` once known, else the bytes so far); a finished upload
keeps its row, with `file_id` set and nothing reserved, until it expires, so a
client that asks again after the last append hears "complete" rather than
"unknown" and never sends the file twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.catalog.protocol import Database, Row


class Superseded(Exception):
    """Another request moved the upload's offset while this one appended: what this
    one sent is not recorded."""


_COLUMNS = (
    "id, owner, request_id, name, declared_mime, metadata, length, offset, reserved, kind,"
    " created_at, expires_at, blob_id, file_id, folder_id, directory, replace_existing"
)


@dataclass(frozen=True, slots=True)
class UploadState:
    id: str
    owner: str
    request_id: str | None
    name: str
    declared_mime: str | None
    metadata: str | None
    length: int | None
    offset: int
    reserved: int
    kind: str
    created_at: float
    expires_at: float
    blob_id: str
    file_id: str | None
    # Where its file goes: a folder of the owner's ('' the root), the folders to make
    # under it ("a/b", '' none), and whether a same-named file there is replaced.
    folder_id: str = ""
    directory: str = ""
    replace_existing: int = 0

    @property
    def folders_below(self) -> tuple[str, ...]:
        """`directory` as the folder names it makes ("a", "b")."""
        return tuple(self.directory.split("/")) if self.directory else ()

    @property
    def partial(self) -> bool:
        return self.kind == "partial"

    @property
    def complete(self) -> bool:
        return self.length is not None and self.offset == self.length

    @property
    def finished(self) -> bool:
        """Its file exists (or, for a partial, its bytes are all here)."""
        return self.file_id is not None


def _state(row: Row) -> UploadState:
    return UploadState(*row)  # type: ignore[arg-type]


async def insert_upload(db: Database, state: UploadState) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            f"INSERT INTO resumable_uploads {insert_columns()}",
            row_of(state),
        )


def row_of(state: UploadState) -> tuple[object, ...]:
    """The values of `_COLUMNS` for a new row."""
    return (
        state.id, state.owner, state.request_id, state.name, state.declared_mime,
        state.metadata, state.length, state.offset, state.reserved, state.kind,
        state.created_at, state.expires_at, state.blob_id, state.file_id, state.folder_id,
        state.directory, int(bool(state.replace_existing)),
    )  # fmt: skip


def insert_columns() -> str:
    """`_COLUMNS` and as many placeholders, for an INSERT of one upload."""
    marks = ", ".join("?" * len(_COLUMNS.split(",")))
    return f"({_COLUMNS}) VALUES ({marks})"


async def load_upload(db: Database, upload_id: str) -> UploadState | None:
    row = await db.fetch_one(f"SELECT {_COLUMNS} FROM resumable_uploads WHERE id = ?", (upload_id,))
    return None if row is None else _state(row)


async def record_offset(
    db: Database, upload_id: str, *, offset: int, length: int | None, expires_at: float
) -> None:
    """The new durable offset (and the length, once a deferred one is known)."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE resumable_uploads SET offset = ?, length = ?, expires_at = ?,"
            " reserved = COALESCE(?, ?) WHERE id = ?",
            (offset, length, expires_at, length, offset, upload_id),
        )


async def record_offset_if(
    conn: Any, upload_id: str, *, was: int, offset: int, length: int | None, expires_at: float
) -> bool:
    """Inside a transaction: the new offset only if the recorded one is still `was`
    (compare-and-set across nodes); whether it was."""
    cursor = await conn.execute(
        "UPDATE resumable_uploads SET offset = ?, length = ?, expires_at = ?,"
        " reserved = COALESCE(?, ?) WHERE id = ? AND offset = ? AND file_id IS NULL",
        (offset, length, expires_at, length, offset, upload_id, was),
    )
    return int(cursor.rowcount) == 1


async def push_expiry(db: Database, upload_id: str, expires_at: float) -> None:
    """The upload was asked about: it lives until `expires_at` now (a direct session's
    bytes arrive elsewhere, so asking is how its client says it is still there)."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE resumable_uploads SET expires_at = ? WHERE id = ? AND file_id IS NULL",
            (expires_at, upload_id),
        )


async def forget_uploads(db: Database, upload_ids: list[str]) -> None:
    async with db.transaction() as conn:
        await conn.executemany(
            "DELETE FROM resumable_uploads WHERE id = ?", [(i,) for i in upload_ids]
        )


async def expired_uploads(db: Database, now: float) -> list[UploadState]:
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS} FROM resumable_uploads WHERE expires_at <= ?", (now,)
    )
    return [_state(row) for row in rows]


async def all_unfinished(db: Database) -> list[UploadState]:
    rows = await db.fetch_all(f"SELECT {_COLUMNS} FROM resumable_uploads WHERE file_id IS NULL")
    return [_state(row) for row in rows]


async def unfinished_of(db: Database, owner: str) -> list[UploadState]:
    """The account's uploads still waiting for bytes, oldest first (the page shows
    them as paused when nothing is arriving)."""
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS} FROM resumable_uploads WHERE owner = ? AND file_id IS NULL"
        " AND kind = 'whole' ORDER BY created_at",
        (owner,),
    )
    return [_state(row) for row in rows]


def count_unfinished_through(db: Database, request_id: str) -> int:
    """How many uploads made through the file request wait unfinished (partials too):
    a link may hold only a few (app/features/requests). Synchronous, so a check and
    the claim after it have no await between them."""
    row = db.read_one(
        "SELECT COUNT(*) FROM resumable_uploads WHERE request_id = ? AND file_id IS NULL",
        (request_id,),
    )
    return 0 if row is None else int(row[0])  # type: ignore[call-overload]


def count_unfinished_files_through(
    db: Database, request_id: str, *, excluding: str | None = None
) -> int:
    """How many files the request's unfinished whole uploads will be (`excluding` one
    upload, the one being finished). One whose file row is already committed but not
    yet marked finished is counted by the request's `files` instead, never twice."""
    row = db.read_one(
        "SELECT COUNT(*) FROM resumable_uploads u WHERE u.request_id = ?"
        " AND u.file_id IS NULL AND u.kind != 'partial' AND u.id != ?"
        " AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = u.blob_id)",
        (request_id, excluding or ""),
    )
    return 0 if row is None else int(row[0])  # type: ignore[call-overload]


async def unfinished_through(db: Database, owner: str) -> list[UploadState]:
    """The account's unfinished uploads made through its file requests, oldest first."""
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS} FROM resumable_uploads WHERE owner = ? AND request_id IS NOT NULL"
        " AND file_id IS NULL ORDER BY created_at, id",
        (owner,),
    )
    return [_state(row) for row in rows]


async def unfinished_of_request(db: Database, request_id: str) -> list[UploadState]:
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS} FROM resumable_uploads WHERE request_id = ? AND file_id IS NULL",
        (request_id,),
    )
    return [_state(row) for row in rows]


async def unfinished_of_ended_requests(db: Database, now: float) -> list[UploadState]:
    """Unfinished uploads made through a file request that takes no more files (closed,
    expired, or no longer there): they can never become files."""
    rows = await db.fetch_all(
        f"SELECT {', '.join('u.' + c.strip() for c in _COLUMNS.split(','))}"
        " FROM resumable_uploads u LEFT JOIN requests r ON r.id = u.request_id"
        " WHERE u.request_id IS NOT NULL AND u.file_id IS NULL AND (r.id IS NULL"
        " OR r.closed_at IS NOT NULL OR (r.expires_at IS NOT NULL AND r.expires_at <= ?))",
        (now,),
    )
    return [_state(row) for row in rows]
