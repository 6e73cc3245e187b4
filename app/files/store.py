"""The files table: one row per blob that is fully written and fsynced."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from stario import JsonValue

from app.catalog.names import free_name, name_key
from app.catalog.protocol import Database, id_batches, is_name_taken
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
    # Its folder ('' is the account's root: app/folders/).
    folder_id: str = ""


_COLUMNS = "id, name, size, sha256, mime, declared_mime, created_at, owner"
# A whole FileRow: the columns, no request label, the folder.
_ROW = _COLUMNS + ", NULL, folder_id"


class NameTaken(Exception):
    """A name that something of the folder has already (ignoring case); the message
    says which, in words."""


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
    @property
    def directory(self) -> tuple[str, ...]:
        """Folders under the upload's folder that it goes into ("a", "b": a/b/)."""
        ...


def _row(record: tuple[object, ...]) -> FileRow:
    return FileRow(*record)  # type: ignore[arg-type]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def add_files(
    db: Database,
    files: Sequence[CommittedBlob],
    owner: str,
    request_id: str | None = None,
    *,
    folders: Sequence[str] | None = None,
    replace: bool = False,
    replaced: list[str] | None = None,
) -> list[FileRow]:
    """Record committed blobs, all rows or none (group-committed with other uploads);
    `request_id` is the file request they arrived through, if any; `folders`, the
    folder of each (default: the root).

    A name taken in its folder (ignoring case) takes the next free "name (2).ext";
    with `replace`, the file of that name is removed instead and its blob id added to
    `replaced` (a folder of that name is never replaced: the new file is numbered).
    The fast path inserts as given; a clash (the catalog's unique index, so also a
    clash with another node's upload) is written again in a transaction that picks
    free names."""
    created_at = now_iso()
    where = list(folders) if folders is not None else [""] * len(files)
    rows = [
        FileRow(
            f.id, f.name, f.size, f.sha256, f.mime, f.declared_mime, created_at, owner,
            None, folder,
        )
        for f, folder in zip(files, where, strict=True)
    ]  # fmt: skip
    if not replace:
        try:
            await db.insert_many(_INSERT, [_values(r, request_id) for r in rows])
            return rows
        except Exception as exc:
            if not is_name_taken(exc):
                raise
    for _attempt in range(5):
        try:
            return await _add_by_name(db, rows, request_id, replace, replaced)
        except Exception as exc:
            # Another node took a name between the check and the insert: again.
            if not is_name_taken(exc):
                raise
    return await _add_by_name(db, rows, request_id, replace, replaced)


_INSERT = (
    f"INSERT INTO files ({_COLUMNS}, request_id, folder_id, name_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _values(r: FileRow, request_id: str | None) -> tuple[object, ...]:
    return (
        r.id, r.name, r.size, r.sha256, r.mime, r.declared_mime, r.created_at, r.owner,
        request_id, r.folder_id, name_key(r.name),
    )  # fmt: skip


async def _add_by_name(
    db: Database,
    rows: list[FileRow],
    request_id: str | None,
    replace: bool,
    replaced: list[str] | None,
) -> list[FileRow]:
    named: list[FileRow] = []
    gone: list[str] = []
    async with db.transaction() as conn:
        for row in rows:
            owner = row.owner or ""
            if replace:
                found = await _first(
                    conn,
                    "SELECT id FROM files WHERE owner = ? AND folder_id = ? AND name_key = ?",
                    (owner, row.folder_id, name_key(row.name)),
                )
                if found is not None:
                    await conn.execute("DELETE FROM files WHERE id = ?", (found[0],))
                    gone.append(str(found[0]))
            name = await free_name_in(conn, owner, row.folder_id, row.name)
            kept = FileRow(*(row.id, name, *_after_name(row)))
            await conn.execute(_INSERT, _values(kept, request_id))
            named.append(kept)
    if replaced is not None:
        replaced.extend(gone)
    return named


def _after_name(row: FileRow) -> tuple[Any, ...]:
    return (
        row.size, row.sha256, row.mime, row.declared_mime, row.created_at, row.owner,
        row.request_label, row.folder_id,
    )  # fmt: skip


async def _first(conn: Any, sql: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
    cursor = await conn.execute(sql, params)
    row = await cursor.fetchone()
    return tuple(row) if row is not None else None


async def name_taken(conn: Any, owner: str, folder: str, key: str, *, but: str = "") -> str | None:
    """'file' or 'folder' when something directly in `folder` has the name `key`
    (`but`: an id that does not count, the thing being renamed or moved)."""
    if await _first(
        conn,
        "SELECT 1 FROM folders WHERE owner = ? AND parent = ? AND name_key = ? AND id != ?",
        (owner, folder, key, but),
    ):
        return "folder"
    if await _first(
        conn,
        "SELECT 1 FROM files WHERE owner = ? AND folder_id = ? AND name_key = ? AND id != ?",
        (owner, folder, key, but),
    ):
        return "file"
    return None


async def free_name_in(conn: Any, owner: str, folder: str, name: str, *, but: str = "") -> str:
    """`name`, or its first numbered copy that nothing directly in `folder` has."""
    stem = name_key(name).rsplit(".", 1)[0]
    pattern = stem.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    keys: set[str] = set()
    for table, column in (("folders", "parent"), ("files", "folder_id")):
        cursor = await conn.execute(
            f"SELECT name_key FROM {table} WHERE owner = ? AND {column} = ? AND id != ?"
            " AND name_key LIKE ? ESCAPE '\\'",
            (owner, folder, but, pattern),
        )
        keys.update(str(r[0]) for r in await cursor.fetchall())
    return free_name(name, keys.__contains__)


async def list_files(
    db: Database,
    owner: str,
    limit: int = 1000,
    offset: int = 0,
    query: FileQuery = EVERY_FILE,
    folder: str | None = None,
) -> list[FileRow]:
    """One account's files that `query` asks for, in its order (newest first by
    default; committed rows only, off the event loop), each with the label of the
    file request it arrived through, if any. `folder`: only the files directly in
    that folder ('' the root); None, all of the account's."""
    columns = ", ".join("f." + column for column in _COLUMNS.split(", "))
    where, params = query.where()
    if folder is not None:
        where, params = " AND folder_id = ?" + where, (folder, *params)
    # The page's rowids first, from an index alone (each carries name and type): a
    # rare word then walks 100,000 index entries in ~15 ms instead of loading as
    # many rows (~60 ms). Only the page's rows are read, then sorted again.
    records = await db.fetch_all(
        f"SELECT {columns}, r.label, f.folder_id"
        " FROM files f LEFT JOIN requests r ON r.id = f.request_id"
        f" WHERE f.rowid IN (SELECT rowid FROM files WHERE owner = ?{where}"
        f" ORDER BY {query.order_by()} LIMIT ? OFFSET ?) ORDER BY {query.order_by('f.')}",
        (owner, *params, limit, offset),
    )
    return [_row(r) for r in records]


async def list_file_ids(
    db: Database, owner: str, limit: int, query: FileQuery = EVERY_FILE, folder: str | None = None
) -> list[str]:
    """The ids of the first `limit` of one account's files that `query` asks for, in
    its order, from the index alone. `folder`: only those directly in it."""
    where, params = query.where()
    if folder is not None:
        where, params = " AND folder_id = ?" + where, (folder, *params)
    records = await db.fetch_all(
        f"SELECT id FROM files WHERE owner = ?{where} ORDER BY {query.order_by()} LIMIT ?",
        (owner, *params, limit),
    )
    return [str(r[0]) for r in records]


async def count_files(
    db: Database, owner: str, query: FileQuery = EVERY_FILE, folder: str | None = None
) -> int:
    where, params = query.where()
    if folder is not None:
        where, params = " AND folder_id = ?" + where, (folder, *params)
    record = await db.fetch_one(
        f"SELECT count(*) FROM files WHERE owner = ?{where}", (owner, *params)
    )
    return int(record[0]) if record else 0  # type: ignore[call-overload]


async def rename_file(db: Database, file_id: str, owner: str, name: str) -> FileRow | None:
    """Give `owner`'s file a new (already sanitised) name; None for an unknown id or
    another account's file; NameTaken when something else in its folder has it."""
    async with db.transaction() as conn:
        found = await _first(
            conn, "SELECT folder_id FROM files WHERE id = ? AND owner = ?", (file_id, owner)
        )
        if found is None:
            return None
        taken = await name_taken(conn, owner, str(found[0]), name_key(name), but=file_id)
        if taken is not None:
            raise NameTaken(f"a {taken} named {name!r} is already in this folder")
        cursor = await conn.execute(
            "UPDATE files SET name = ?, name_key = ? WHERE id = ? AND owner = ?",
            (name, name_key(name), file_id, owner),
        )
        changed = cursor.rowcount > 0
    return await get_file(db, file_id) if changed else None


async def get_file(db: Database, file_id: str) -> FileRow | None:
    record = await db.fetch_one(f"SELECT {_ROW} FROM files WHERE id = ?", (file_id,))
    return _row(record) if record else None


async def remove_file(db: Database, file_id: str, owner: str) -> bool:
    """Remove the row if `owner` has it; False for an unknown id or another's file."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM files WHERE id = ? AND owner = ?", (file_id, owner)
        )
    return cursor.rowcount > 0


async def remove_files(db: Database, file_ids: list[str], owner: str) -> list[str]:
    """Remove the rows of those of `file_ids` that `owner` has, in one transaction, and
    return their ids; unknown ids and other accounts' files are left out, unchanged."""
    removed: list[str] = []
    async with db.transaction() as conn:
        for batch, marks in id_batches(file_ids):
            cursor = await conn.execute(
                f"DELETE FROM files WHERE owner = ? AND id IN ({marks}) RETURNING id",
                (owner, *batch),
            )
            removed.extend(str(record[0]) for record in await cursor.fetchall())
    return removed


def file_json(row: FileRow, folder_path: str = "/") -> dict[str, JsonValue]:
    """The public JSON shape of a stored file; `folder_path` is its folder's ("/a/b/",
    app/folders/store.py `folder_paths`)."""
    return {
        "id": row.id,
        "name": row.name,
        "size": row.size,
        "sha256": row.sha256,
        "mime": row.mime,
        "declared_mime": row.declared_mime,
        "created_at": row.created_at,
        "url": f"/files/{row.id}",
        "folder": "root" if row.folder_id == "" else row.folder_id,
        "path": folder_path + row.name,
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
