"""Folders: create, find, list, rename, move, delete, and the paths of uploads.

The root of an account is '' in the catalog and "root" in URLs and JSON (`ROOT_ID`).
A folder's own `size` and `files` count what is directly in it; `Totals` sums a
subtree (one recursive query over the account's folders, never its files), so moving a
folder is one row's update whatever it holds.

Concurrency: every change that can make or break the tree's shape (create, move,
delete) runs in one transaction; on PostgreSQL it first takes the account's advisory
lock (`_hold_tree`), so two nodes cannot, say, move A into B and B into A at once. On
SQLite a write transaction is already alone.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from stario import JsonValue

from app.catalog.names import MAX_NAME_CHARS, name_key
from app.catalog.protocol import Database, id_batches
from app.files.store import free_name_in, name_taken, now_iso

ROOT = ""
ROOT_ID = "root"
# How deep a tree may go: far past what a person makes, short of what makes a path
# (and the recursive queries) unreasonable.
MAX_DEPTH = 64

# Relay subject: an account's tree changed (app/files/store.py publishes files').
FOLDERS_CHANGED = "folders.changed"


class FolderError(Exception):
    """A folder operation refused; `status` is the HTTP answer, the message its words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found() -> FolderError:
    return FolderError(404, "no such folder")


@dataclass(frozen=True, slots=True)
class FolderRow:
    id: str  # '' for the root
    owner: str
    parent: str | None  # None for the root, '' for a folder at the top
    name: str
    # What is directly in it (for the root: the whole account, from `users`).
    size: int
    files: int
    created_at: str


@dataclass(frozen=True, slots=True)
class Totals:
    size: int = 0
    files: int = 0
    folders: int = 0  # below it, not counting itself


_COLUMNS = "id, owner, parent, name, size, files, created_at"


def new_folder_id() -> str:
    """96 random bits, URL-safe: 16 characters (a blob id has 22)."""
    return secrets.token_urlsafe(12)


def catalog_id(api_id: str | None) -> str:
    """The catalog's id of a folder named in a URL or JSON (None and "root": the root)."""
    return ROOT if api_id in (None, "", ROOT_ID) else str(api_id)


def api_id(folder_id: str | None) -> str | None:
    if folder_id is None:
        return None
    return ROOT_ID if folder_id == ROOT else folder_id


def clean_folder_name(raw: object) -> str:
    """A folder name as given, or FolderError(400) saying what is wrong with it."""
    if not isinstance(raw, str):
        raise FolderError(400, "a folder needs a name")
    name = " ".join(raw.split()).strip()
    if not name:
        raise FolderError(400, "a folder needs a name")
    if name in (".", "..") or "/" in name or "\\" in name:
        raise FolderError(400, "a folder name cannot be . or .. or hold / or \\")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise FolderError(400, "a folder name cannot hold control characters")
    if len(name) > MAX_NAME_CHARS:
        raise FolderError(400, f"a folder name has at most {MAX_NAME_CHARS} characters")
    return name


def _row(record: Sequence[Any]) -> FolderRow:
    return FolderRow(*record)


async def root_of(db: Database, owner: str) -> FolderRow:
    record = await db.fetch_one(
        "SELECT used_bytes, file_count, created_at FROM users WHERE id = ?", (owner,)
    )
    size, files, created = record if record else (0, 0, "")
    return FolderRow(ROOT, owner, None, "", int(size), int(files), str(created))  # type: ignore[call-overload]


async def get_folder(db: Database, owner: str, folder_id: str) -> FolderRow | None:
    """The account's folder (the root for ''), or None: unknown, or another's."""
    if folder_id == ROOT:
        return await root_of(db, owner)
    record = await db.fetch_one(
        f"SELECT {_COLUMNS} FROM folders WHERE id = ? AND owner = ?", (folder_id, owner)
    )
    return _row(record) if record else None


async def ancestors(db: Database, owner: str, folder_id: str) -> list[FolderRow]:
    """The folders from the top down to `folder_id` itself (empty for the root)."""
    if folder_id == ROOT:
        return []
    records = await db.fetch_all(
        "WITH RECURSIVE up(id, depth) AS (SELECT CAST(? AS TEXT), 0 UNION ALL"
        " SELECT f.parent, up.depth + 1 FROM folders f JOIN up ON f.id = up.id"
        f" WHERE f.owner = ? AND f.parent != '' AND up.depth < {MAX_DEPTH + 1})"
        f" SELECT {', '.join('f.' + c for c in _COLUMNS.split(', '))} FROM up"
        " JOIN folders f ON f.id = up.id AND f.owner = ? ORDER BY up.depth DESC",
        (folder_id, owner, owner),
    )
    return [_row(r) for r in records]


def path_of(chain: Sequence[FolderRow]) -> str:
    """ "/a/b/" for the chain a, b; "/" for the root."""
    return "/" + "".join(f.name + "/" for f in chain)


async def folder_paths(db: Database, owner: str, ids: Iterable[str]) -> dict[str, str]:
    """The path ("/a/b/") of each of the account's folders in `ids` ('' is "/")."""
    wanted = {i for i in ids}
    paths: dict[str, str] = {ROOT: "/"} if ROOT in wanted else {}
    wanted.discard(ROOT)
    if not wanted:
        return paths
    # An account has thousands of folders at most: one read of (id, parent, name) for
    # all of them is cheaper than a recursive walk per id.
    records = await db.fetch_all("SELECT id, parent, name FROM folders WHERE owner = ?", (owner,))
    links = {str(i): (str(p), str(n)) for i, p, n in records}

    def path(folder: str, depth: int = 0) -> str:
        if folder == ROOT or depth > MAX_DEPTH or folder not in links:
            return "/"
        known = paths.get(folder)
        if known is not None:
            return known
        parent, name = links[folder]
        found = path(parent, depth + 1) + name + "/"
        paths[folder] = found
        return found

    for folder in wanted:
        if folder in links:
            path(folder)
    return {i: p for i, p in paths.items() if i in wanted or i == ROOT}


async def subtree(db: Database, owner: str, folder_ids: Sequence[str]) -> list[str]:
    """`folder_ids` and every folder below them (each once)."""
    found: list[str] = []
    seen: set[str] = set()
    for batch, marks in id_batches(folder_ids):
        records = await db.fetch_all(
            f"WITH RECURSIVE down(id) AS (SELECT id FROM folders WHERE owner = ?"
            f" AND id IN ({marks}) UNION SELECT f.id FROM folders f JOIN down"
            " ON f.parent = down.id WHERE f.owner = ?) SELECT id FROM down",
            (owner, *batch, owner),
        )
        for (folder,) in records:
            if str(folder) not in seen:
                seen.add(str(folder))
                found.append(str(folder))
    return found


async def totals(db: Database, owner: str, folder_ids: Sequence[str]) -> dict[str, Totals]:
    """Size, files and folders under each of `folder_ids` (all the way down)."""
    result: dict[str, Totals] = {i: Totals() for i in folder_ids}
    for batch, marks in id_batches(folder_ids):
        records = await db.fetch_all(
            "WITH RECURSIVE down(top, id) AS (SELECT id, id FROM folders WHERE owner = ?"
            f" AND id IN ({marks}) UNION ALL SELECT down.top, f.id FROM folders f JOIN down"
            " ON f.parent = down.id WHERE f.owner = ?)"
            " SELECT down.top, sum(f.size), sum(f.files), count(*) - 1 FROM down"
            " JOIN folders f ON f.id = down.id GROUP BY down.top",
            (owner, *batch, owner),
        )
        for top, size, files, folders in records:
            result[str(top)] = Totals(int(size or 0), int(files or 0), int(folders or 0))  # type: ignore[call-overload]
    return result


async def list_children(db: Database, owner: str, parent: str) -> list[FolderRow]:
    """The folders directly in `parent`, by name."""
    records = await db.fetch_all(
        f"SELECT {_COLUMNS} FROM folders WHERE owner = ? AND parent = ?"
        " ORDER BY name COLLATE NOCASE, rowid",
        (owner, parent),
    )
    return [_row(r) for r in records]


async def account_folders(db: Database, owner: str) -> list[FolderRow]:
    """Every folder of the account (for a move's list of places), top down by path."""
    records = await db.fetch_all(f"SELECT {_COLUMNS} FROM folders WHERE owner = ?", (owner,))
    return [_row(r) for r in records]


def folder_json(row: FolderRow, path: str, total: Totals | None = None) -> dict[str, JsonValue]:
    """The public JSON shape of a folder: `size` and `files` count everything under it."""
    whole = total if total is not None else Totals(row.size, row.files)
    return {
        "id": api_id(row.id),
        "name": row.name,
        "parent": api_id(row.parent),
        "path": path,
        "size": whole.size,
        "files": whole.files,
        "folders": whole.folders,
        "created_at": row.created_at,
    }


# --- changes -----------------------------------------------------------------


async def _hold_tree(conn: Any, db: Database, owner: str) -> None:
    """On PostgreSQL, the account's tree lock for this transaction (see module doc)."""
    if db.shared:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", ("folders:" + owner,))


async def _one(conn: Any, sql: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
    cursor = await conn.execute(sql, params)
    row = await cursor.fetchone()
    return tuple(row) if row is not None else None


async def _folder_in(conn: Any, owner: str, folder_id: str) -> bool:
    if folder_id == ROOT:
        return True
    return (
        await _one(conn, "SELECT 1 FROM folders WHERE id = ? AND owner = ?", (folder_id, owner))
        is not None
    )


async def _depth(conn: Any, owner: str, folder_id: str) -> int:
    """How many folders deep `folder_id` is (1 at the top; 0 for the root)."""
    depth, at = 0, folder_id
    while at != ROOT and depth <= MAX_DEPTH:
        found = await _one(
            conn, "SELECT parent FROM folders WHERE id = ? AND owner = ?", (at, owner)
        )
        if found is None:
            break
        at, depth = str(found[0]), depth + 1
    return depth


async def create_folder(
    db: Database,
    owner: str,
    parent: str,
    name: str,
    *,
    exist_ok: bool = False,
    made: list[str] | None = None,
) -> FolderRow:
    """A new folder `name` in `parent`; FolderError 404 (no such parent), 409 (the name
    is taken: by a file, or by a folder unless `exist_ok`, which returns that folder).
    The id of a folder made now is appended to `made`."""
    name = clean_folder_name(name)
    async with db.transaction() as conn:
        await _hold_tree(conn, db, owner)
        if not await _folder_in(conn, owner, parent):
            raise not_found()
        key = name_key(name)
        existing = await _one(
            conn,
            f"SELECT {_COLUMNS} FROM folders WHERE owner = ? AND parent = ? AND name_key = ?",
            (owner, parent, key),
        )
        if existing is not None:
            if exist_ok:
                return _row(existing)
            raise FolderError(409, f"a folder named {existing[3]!r} is already here")
        if await name_taken(conn, owner, parent, key):
            raise FolderError(409, f"a file named {name!r} is already here")
        if await _depth(conn, owner, parent) >= MAX_DEPTH:
            raise FolderError(400, f"folders nest at most {MAX_DEPTH} deep")
        row = FolderRow(new_folder_id(), owner, parent, name, 0, 0, now_iso())
        await conn.execute(
            f"INSERT INTO folders ({_COLUMNS}, name_key) VALUES (?, ?, ?, ?, 0, 0, ?, ?)",
            (row.id, owner, parent, name, row.created_at, key),
        )
    if made is not None:
        made.append(row.id)
    return row


async def ensure_path(
    db: Database, owner: str, parent: str, parts: Sequence[str], made: list[str] | None = None
) -> str:
    """The folder `parts` names under `parent` ("a", "b" for a/b), made where missing
    (their ids appended to `made`); its id. A part taken by a file is a FolderError 409."""
    at = parent
    for part in parts:
        at = (await create_folder(db, owner, at, part, exist_ok=True, made=made)).id
    return at


async def rename_folder(db: Database, owner: str, folder_id: str, name: str) -> FolderRow:
    name = clean_folder_name(name)
    if folder_id == ROOT:
        raise FolderError(400, "the root folder has no name to change")
    async with db.transaction() as conn:
        found = await _one(
            conn, "SELECT parent FROM folders WHERE id = ? AND owner = ?", (folder_id, owner)
        )
        if found is None:
            raise not_found()
        taken = await name_taken(conn, owner, str(found[0]), name_key(name), but=folder_id)
        if taken:
            raise FolderError(409, f"a {taken} named {name!r} is already here")
        await conn.execute(
            "UPDATE folders SET name = ?, name_key = ? WHERE id = ? AND owner = ?",
            (name, name_key(name), folder_id, owner),
        )
    row = await get_folder(db, owner, folder_id)
    if row is None:
        raise not_found()
    return row


@dataclass(frozen=True, slots=True)
class Moved:
    files: int
    folders: int
    # Things that took a numbered name because theirs was taken: (old, new).
    renamed: tuple[tuple[str, str], ...] = ()
    # Blob ids of files that a replacing move took the place of (theirs to remove).
    replaced: tuple[str, ...] = ()


async def move(
    db: Database,
    owner: str,
    file_ids: Sequence[str],
    folder_ids: Sequence[str],
    to: str,
    *,
    replace: bool = False,
) -> Moved:
    """Move the account's files and folders into `to`, all in one transaction: a
    folder into itself or below itself is refused (409), as are unknown ids (404). A
    name taken in `to` takes the next free "name (2)", or with `replace` the file of
    that name goes (a folder is never replaced)."""
    renamed: list[tuple[str, str]] = []
    replaced: list[str] = []
    async with db.transaction() as conn:
        await _hold_tree(conn, db, owner)
        if not await _folder_in(conn, owner, to):
            raise FolderError(404, "no such folder to move into")
        # `to` and its ancestors: none of them may be moved into `to`.
        above: set[str] = set()
        at = to
        while at != ROOT and at not in above:
            above.add(at)
            found = await _one(conn, "SELECT parent FROM folders WHERE id = ?", (at,))
            at = str(found[0]) if found else ROOT
        moved_folders = 0
        for folder in dict.fromkeys(folder_ids):
            record = await _one(
                conn, "SELECT parent, name FROM folders WHERE id = ? AND owner = ?", (folder, owner)
            )
            if record is None:
                raise FolderError(404, "no such folder to move")
            if folder in above:
                raise FolderError(409, f"the folder {record[1]!r} cannot go inside itself")
            if str(record[0]) == to:
                continue
            name = await free_name_in(conn, owner, to, str(record[1]), but=folder)
            if name != record[1]:
                renamed.append((str(record[1]), name))
            await conn.execute(
                "UPDATE folders SET parent = ?, name = ?, name_key = ? WHERE id = ?",
                (to, name, name_key(name), folder),
            )
            moved_folders += 1
        if (
            moved_folders
            and await _depth(conn, owner, to) + await _height(conn, owner, folder_ids) > MAX_DEPTH
        ):
            raise FolderError(400, f"folders nest at most {MAX_DEPTH} deep")
        moved_files = 0
        for file_id in dict.fromkeys(file_ids):
            record = await _one(
                conn,
                "SELECT folder_id, name FROM files WHERE id = ? AND owner = ?",
                (file_id, owner),
            )
            if record is None:
                raise FolderError(404, "no such file to move")
            if str(record[0]) == to:
                continue
            name = str(record[1])
            if replace:
                gone = await _one(
                    conn,
                    "SELECT id FROM files WHERE owner = ? AND folder_id = ? AND name_key = ?"
                    " AND id != ?",
                    (owner, to, name_key(name), file_id),
                )
                if gone is not None:
                    await conn.execute("DELETE FROM files WHERE id = ?", (gone[0],))
                    replaced.append(str(gone[0]))
            new = await free_name_in(conn, owner, to, name, but=file_id)
            if new != name:
                renamed.append((name, new))
            await conn.execute(
                "UPDATE files SET folder_id = ?, name = ?, name_key = ? WHERE id = ?",
                (to, new, name_key(new), file_id),
            )
            moved_files += 1
    return Moved(moved_files, moved_folders, tuple(renamed), tuple(replaced))


async def _height(conn: Any, owner: str, folder_ids: Sequence[str]) -> int:
    """How many levels the tallest of `folder_ids` holds, itself included."""
    tallest = 0
    for folder in folder_ids:
        level, frontier = 0, [folder]
        while frontier and level <= MAX_DEPTH:
            level += 1
            below: list[str] = []
            # Every folder of the level, however wide (a cut-off level could hide the
            # deepest branch and let a move pass the depth limit).
            for batch, marks in id_batches(frontier):
                cursor = await conn.execute(
                    f"SELECT id FROM folders WHERE owner = ? AND parent IN ({marks})",
                    (owner, *batch),
                )
                below.extend(str(r[0]) for r in await cursor.fetchall())
            frontier = below
        tallest = max(tallest, level)
    return tallest


@dataclass(frozen=True, slots=True)
class Doomed:
    """What deleting a selection removes."""

    folders: int
    files: int
    size: int


async def deletion_summary(
    db: Database, owner: str, folder_ids: Sequence[str], file_ids: Sequence[str] = ()
) -> Doomed:
    """How many folders and files, and how many bytes, deleting these would remove."""
    folders = await subtree(db, owner, list(folder_ids))
    sums = await totals(db, owner, [f for f in folder_ids if f in set(folders)])
    size = sum(t.size for t in sums.values())
    files = sum(t.files for t in sums.values())
    # Files chosen on their own that are not already under a chosen folder.
    inside = set(folders)
    for batch, marks in id_batches(file_ids):
        for folder, file_size in await db.fetch_all(
            f"SELECT folder_id, size FROM files WHERE owner = ? AND id IN ({marks})",
            (owner, *batch),
        ):
            if str(folder) not in inside:
                files += 1
                size += int(file_size)  # type: ignore[call-overload]
    return Doomed(len(folders), files, size)


async def delete_folders(
    db: Database,
    owner: str,
    folder_ids: Sequence[str],
    *,
    now: float | None = None,
    closed_requests: list[str] | None = None,
) -> list[str]:
    """Remove the account's folders with everything under them, in one transaction
    (rows only: the caller reclaims the returned blob ids, in the background; after a
    crash the sweep reclaims what it had not). Unknown ids are skipped.

    The file requests that put files into any of them close in the same transaction
    (a folder link's own request among them), so none takes uploads for a folder that
    is gone; their ids are appended to `closed_requests`, whose unfinished resumable
    uploads the caller ends (after a crash, the expiry sweep does)."""
    closed_at = time.time() if now is None else now
    removed: list[str] = []
    closed = closed_requests if closed_requests is not None else []
    # On PostgreSQL the doomed folders are locked before their files go: an upload
    # into one on another node (files_need_their_folder takes FOR KEY SHARE) then
    # waits for this, finds the folder gone and fails, instead of leaving a file in it.
    lock = " FOR UPDATE" if db.shared else ""
    async with db.transaction() as conn:
        await _hold_tree(conn, db, owner)
        tops = [f for f in folder_ids if f != ROOT]
        doomed: list[str] = []
        frontier: list[str] = []
        for batch, marks in id_batches(tops):
            cursor = await conn.execute(
                f"SELECT id FROM folders WHERE owner = ? AND id IN ({marks}){lock}",
                (owner, *batch),
            )
            frontier.extend(str(r[0]) for r in await cursor.fetchall())
        while frontier:
            doomed.extend(frontier)
            below: list[str] = []
            for batch, marks in id_batches(frontier):
                cursor = await conn.execute(
                    f"SELECT id FROM folders WHERE owner = ? AND parent IN ({marks}){lock}",
                    (owner, *batch),
                )
                below.extend(str(r[0]) for r in await cursor.fetchall())
            frontier = below
        for batch, marks in id_batches(doomed):
            # Before the folders go: their links (and so a link's request id) go with them.
            cursor = await conn.execute(
                "UPDATE requests SET closed_at = ? WHERE closed_at IS NULL AND owner = ?"
                f" AND (folder_id IN ({marks}) OR id IN"
                f" (SELECT request_id FROM shares WHERE owner = ? AND folder_id IN ({marks})))"
                " RETURNING id",
                (closed_at, owner, *batch, owner, *batch),
            )
            closed.extend(str(r[0]) for r in await cursor.fetchall())
            cursor = await conn.execute(
                f"DELETE FROM files WHERE owner = ? AND folder_id IN ({marks}) RETURNING id",
                (owner, *batch),
            )
            removed.extend(str(r[0]) for r in await cursor.fetchall())
            await conn.execute(
                f"DELETE FROM folders WHERE owner = ? AND id IN ({marks})", (owner, *batch)
            )
    return removed


async def folder_choices(db: Database, owner: str) -> list[tuple[str, str]]:
    """Every folder of the account as (id, path), by path: where a selection may go,
    or a request may put what it receives."""
    folders = await account_folders(db, owner)
    paths = await folder_paths(db, owner, [f.id for f in folders])
    return sorted(((f.id, paths.get(f.id, "/")) for f in folders), key=lambda p: p[1].casefold())
