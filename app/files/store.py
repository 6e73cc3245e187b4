"""The files table: one row per blob that is fully written and fsynced."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from stario import JsonValue

from app.catalog.protocol import Database
from app.files.query import EVERY_FILE, FileQuery

# Relay subjects published after an account's rows are added or removed; its live
# pages (and only its) repaint on them.
FILES_CHANGED = "files.changed"


def files_changed(owner: str) -> str:
    return f"{FILES_CHANGED}.{owner}"


@dataclass(frozen=True, slots=True)
class FileRow:
    id: str
    name: str
    size: int
    sha256: str
    mime: str
    declared_mime: str | None
    created_at: str
    owner: str | None
    # The label of the file request it arrived through; only in the owner's list.
    request_label: str | None = None


_COLUMNS = "id, name, size, sha256, mime, declared_mime, created_at, owner"


class CommittedBlob(Protocol):
    """What a row is made from: a blob durably committed to the store (the intake's
    `IngestedFile`). A protocol, so the files table needs nothing of the intake."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def mime(self) -> str: ...
    @property
    def declared_mime(self) -> str | None: ...


def _row(record: tuple[object, ...]) -> FileRow:
    return FileRow(*record)  # type: ignore[arg-type]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def add_files(
    db: Database, files: Sequence[CommittedBlob], owner: str, request_id: str | None = None
) -> list[FileRow]:
    """Record committed blobs, all rows or none (group-committed with other uploads);
    `request_id` is the file request they arrived through, if any."""
    created_at = now_iso()
    rows = [
        FileRow(f.id, f.name, f.size, f.sha256, f.mime, f.declared_mime, created_at, owner)
        for f in files
    ]
    await db.insert_many(
        f"INSERT INTO files ({_COLUMNS}, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r.id,
                r.name,
                r.size,
                r.sha256,
                r.mime,
                r.declared_mime,
                r.created_at,
                r.owner,
                request_id,
            )
            for r in rows
        ],  # fmt: skip
    )
    return rows


async def list_files(
    db: Database,
    owner: str,
    limit: int = 1000,
    offset: int = 0,
    query: FileQuery = EVERY_FILE,
) -> list[FileRow]:
    """One account's files that `query` asks for, in its order (newest first by
    default; committed rows only, off the event loop), each with the label of the
    file request it arrived through, if any."""
    columns = ", ".join("f." + column for column in _COLUMNS.split(", "))
    where, params = query.where()
    # The page's rowids first, from an index alone (each carries name and type): a
    # rare word then walks 100,000 index entries in ~15 ms instead of loading as
    # many rows (~60 ms). Only the page's rows are read, then sorted again.
    records = await db.fetch_all(
        f"SELECT {columns}, r.label FROM files f LEFT JOIN requests r ON r.id = f.request_id"
        f" WHERE f.rowid IN (SELECT rowid FROM files WHERE owner = ?{where}"
        f" ORDER BY {query.order_by()} LIMIT ? OFFSET ?) ORDER BY {query.order_by('f.')}",
        (owner, *params, limit, offset),
    )
    return [_row(r) for r in records]


async def list_file_ids(
    db: Database, owner: str, limit: int, query: FileQuery = EVERY_FILE
) -> list[str]:
    """The ids of the first `limit` of one account's files that `query` asks for, in
    its order, from the index alone."""
    where, params = query.where()
    records = await db.fetch_all(
        f"SELECT id FROM files WHERE owner = ?{where} ORDER BY {query.order_by()} LIMIT ?",
        (owner, *params, limit),
    )
    return [str(r[0]) for r in records]


async def count_files(db: Database, owner: str, query: FileQuery = EVERY_FILE) -> int:
    where, params = query.where()
    record = await db.fetch_one(
        f"SELECT count(*) FROM files WHERE owner = ?{where}", (owner, *params)
    )
    return int(record[0]) if record else 0  # type: ignore[call-overload]


async def rename_file(db: Database, file_id: str, owner: str, name: str) -> FileRow | None:
    """Give `owner`'s file a new (already sanitised) name; None for an unknown id or
    another account's file."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE files SET name = ? WHERE id = ? AND owner = ?", (name, file_id, owner)
        )
        changed = cursor.rowcount > 0
    return await get_file(db, file_id) if changed else None


async def get_file(db: Database, file_id: str) -> FileRow | None:
    record = await db.fetch_one(f"SELECT {_COLUMNS} FROM files WHERE id = ?", (file_id,))
    return _row(record) if record else None


async def remove_file(db: Database, file_id: str, owner: str) -> bool:
    """Remove the row if `owner` has it; False for an unknown id or another's file."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM files WHERE id = ? AND owner = ?", (file_id, owner)
        )
    return cursor.rowcount > 0


# SQLite's default limit on bound parameters is 32,766; stay well inside it.
IDS_PER_STATEMENT = 500


async def remove_files(db: Database, file_ids: list[str], owner: str) -> list[str]:
    """Remove the rows of those of `file_ids` that `owner` has, in one transaction, and
    return their ids; unknown ids and other accounts' files are left out, unchanged."""
    removed: list[str] = []
    async with db.transaction() as conn:
        for at in range(0, len(file_ids), IDS_PER_STATEMENT):
            batch = file_ids[at : at + IDS_PER_STATEMENT]
            marks = ", ".join("?" * len(batch))
            cursor = await conn.execute(
                f"DELETE FROM files WHERE owner = ? AND id IN ({marks}) RETURNING id",
                (owner, *batch),
            )
            removed.extend(str(record[0]) for record in await cursor.fetchall())
    return removed


def file_json(row: FileRow) -> dict[str, JsonValue]:
    """The public JSON shape of a stored file."""
    return {
        "id": row.id,
        "name": row.name,
        "size": row.size,
        "sha256": row.sha256,
        "mime": row.mime,
        "declared_mime": row.declared_mime,
        "created_at": row.created_at,
        "url": f"/files/{row.id}",
    }


def uploaded_file_json(row: FileRow) -> dict[str, JsonValue]:
    """What an uploader through a file request is told of a file it sent: no id and no
    URL, since it may not reach the file again (and must learn no id of the owner's)."""
    return {
        "name": row.name,
        "size": row.size,
        "sha256": row.sha256,
        "mime": row.mime,
        "created_at": row.created_at,
    }
