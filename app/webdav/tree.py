"""An account's tree as WebDAV sees it: a path is a list of names from the account's
root, each compared as the catalog compares names (`name_key`), so `/dav/a/B.txt`
finds the file stored as `b.txt` in folder `A`; answers always spell stored names.

Copy, move and delete go through the folders and files tables (app/folders/store.py,
app/files/store.py), so the catalog's triggers keep sizes, quotas and dead properties
right; a file's copy is a new blob, written through the ingest pipeline by the caller."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.catalog.names import name_key
from app.catalog.protocol import Database
from app.files.store import FileRow, get_file, list_files
from app.folders.store import ROOT, FolderRow, get_folder, list_children

# A folder's whole listing is read and answered at once (about 0.4 KB of XML a file:
# 100,000 files is some 40 MB), so a folder holding more is refused in words rather
# than listed in part: a sync client would take a missing file for a deleted one.
MOST_FILES_LISTED = 100_000


class FolderTooBig(Exception):
    """A folder holding more files than WebDAV lists (`MOST_FILES_LISTED`)."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A folder or a file at `parts` (stored names; () is the account's root)."""

    parts: tuple[str, ...]
    folder: FolderRow | None = None
    file: FileRow | None = None

    @property
    def is_folder(self) -> bool:
        return self.folder is not None

    @property
    def id(self) -> str:
        if self.folder is not None:
            return self.folder.id
        assert self.file is not None
        return self.file.id

    @property
    def parent(self) -> str:
        """The id of the folder it is in ('' the root; the root's own is '')."""
        if self.file is not None:
            return self.file.folder_id
        assert self.folder is not None
        return self.folder.parent or ROOT


def path_key(parts: Sequence[str]) -> str:
    """The path as the catalog compares it: '' for the root, "a/b.txt" below it."""
    return "/".join(name_key(part) for part in parts)


async def folder_at(db: Database, owner: str, parts: Sequence[str]) -> FolderRow | None:
    """The account's folder at `parts` (the root for ()), or None."""
    at = await get_folder(db, owner, ROOT)
    for part in parts:
        if at is None:
            return None
        record = await db.fetch_one(
            "SELECT id FROM folders WHERE owner = ? AND parent = ? AND name_key = ?",
            (owner, at.id, name_key(part)),
        )
        at = await get_folder(db, owner, str(record[0])) if record else None
    return at


async def resolve(db: Database, owner: str, parts: Sequence[str]) -> Resource | None:
    """What `parts` names in the account's tree, with its stored path; None when
    nothing does (or a folder on the way is missing, or is a file)."""
    if not parts:
        root = await get_folder(db, owner, ROOT)
        return Resource((), folder=root)
    parent = await folder_at(db, owner, parts[:-1])
    if parent is None:
        return None
    key = name_key(parts[-1])
    record = await db.fetch_one(
        "SELECT id FROM folders WHERE owner = ? AND parent = ? AND name_key = ?",
        (owner, parent.id, key),
    )
    stored = await stored_parts(db, owner, parts[:-1], parent)
    if record is not None:
        folder = await get_folder(db, owner, str(record[0]))
        if folder is not None:
            return Resource((*stored, folder.name), folder=folder)
    record = await db.fetch_one(
        "SELECT id FROM files WHERE owner = ? AND folder_id = ? AND name_key = ?",
        (owner, parent.id, key),
    )
    row = await get_file(db, str(record[0])) if record else None
    return Resource((*stored, row.name), file=row) if row is not None else None


async def stored_parts(
    db: Database, owner: str, asked: Sequence[str], folder: FolderRow
) -> tuple[str, ...]:
    """The stored names of the folders `asked` found (the path as the catalog spells it)."""
    names: list[str] = []
    at: FolderRow | None = folder
    while at is not None and at.id != ROOT and len(names) < len(asked):
        names.append(at.name)
        at = await get_folder(db, owner, at.parent or ROOT)
    return tuple(reversed(names))


@dataclass(frozen=True, slots=True)
class Listing:
    folders: list[FolderRow]
    files: list[FileRow]


async def children(db: Database, owner: str, folder_id: str) -> Listing:
    """What is directly in the folder: its folders and its files, by name."""
    folders = await list_children(db, owner, folder_id)
    files = await list_files(db, owner, limit=MOST_FILES_LISTED + 1, folder=folder_id)
    if len(files) > MOST_FILES_LISTED:
        raise FolderTooBig(
            f"this folder holds more than {MOST_FILES_LISTED:,} files, more than WebDAV"
            " lists at once: move some into folders of their own (the Files screen"
            " and the API list it page by page)"
        )
    files.sort(key=lambda row: name_key(row.name))
    return Listing(folders, files)


async def descendants(db: Database, owner: str, folder: Resource) -> list[Resource]:
    """Everything under `folder`, top down (each folder before what it holds)."""
    found: list[Resource] = []
    frontier = [folder]
    while frontier:
        below: list[Resource] = []
        for at in frontier:
            assert at.folder is not None
            listing = await children(db, owner, at.folder.id)
            for sub in listing.folders:
                below.append(Resource((*at.parts, sub.name), folder=sub))
            found.extend(Resource((*at.parts, row.name), file=row) for row in listing.files)
        found.extend(below)
        frontier = below
    return found
