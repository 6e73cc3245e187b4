"""What a selection of files and folders holds, as the paths of an archive or of a
collection link: every file under the chosen folders with its path relative to the
chosen folder's parent ("Photos/2024/a.jpg"), every folder as "Photos/2024/", and the
loosely chosen files at the top.

The order is deterministic (loose files as given; then each chosen folder, its files
by name, then its folders by name, depth first), so the same selection of the same
rows always gives the same paths in the same order: what an archive's ETag and a
resumed download rely on.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from app.catalog.protocol import Database, id_batches
from app.files.store import FileRow
from app.folders.store import ROOT, FolderError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COLUMNS = "id, name, size, sha256, mime, declared_mime, created_at, owner, NULL, folder_id"


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of a selection: a file (`row`), or a folder (`row` None, `path` ends
    in "/", `folder_id` its id)."""

    path: str
    row: FileRow | None = None
    folder_id: str = ""
    created_at: str = ""  # a folder's (a file's is its row's)

    @property
    def modified(self) -> str:
        return self.row.created_at if self.row is not None else self.created_at


def safe_segment(name: str) -> str:
    """One path segment: no directory parts (so no `..`, no absolute path, nothing a
    careless unzip could write outside its folder), no control characters."""
    name = unicodedata.normalize("NFC", name)
    name = _CONTROL.sub("_", name).replace("/", "_").replace("\\", "_").strip()
    return "file" if name.strip(". ") == "" else name


def unique_segments(names: Sequence[str]) -> list[str]:
    """Safe names, unique ignoring case: `a.txt`, `a (2).txt`, `a (3).txt`."""
    taken: set[str] = set()
    result: list[str] = []
    for raw in names:
        name = safe_segment(raw)
        stem, dot, suffix = name.rpartition(".")
        if not stem:  # no dot, or a leading one (".bashrc"): the whole name is the stem
            stem, dot, suffix = name, "", ""
        candidate, counter = name, 2
        while candidate.casefold() in taken:
            candidate = f"{stem} ({counter}){dot}{suffix}"
            counter += 1
        taken.add(candidate.casefold())
        result.append(candidate)
    return result


type Links = dict[str, tuple[str, str, str]]


async def _folder_links(db: Database, owner: str) -> Links:
    """id -> (parent, name, created_at) of every folder of the account (thousands at
    most: one read is cheaper than a recursive walk per folder)."""
    records = await db.fetch_all(
        "SELECT id, parent, name, created_at FROM folders WHERE owner = ?", (owner,)
    )
    return {str(i): (str(p), str(n), str(c)) for i, p, n, c in records}


async def _files_in(db: Database, owner: str, folder_ids: Sequence[str]) -> list[FileRow]:
    found: list[FileRow] = []
    for batch, marks in id_batches(folder_ids):
        records = await db.fetch_all(
            f"SELECT {_COLUMNS} FROM files WHERE owner = ? AND folder_id IN ({marks})",
            (owner, *batch),
        )
        found.extend(FileRow(*r) for r in records)  # type: ignore[arg-type]
    return found


def _children(links: Links) -> dict[str, list[str]]:
    """parent -> child folder ids, for the account's tree."""
    children: dict[str, list[str]] = {}
    for folder, (parent, _, _) in links.items():
        children.setdefault(parent, []).append(folder)
    return children


def is_under(links: Links, folder: str, top: str) -> bool:
    """Whether `folder` is `top` or somewhere below it."""
    at, steps = folder, 0
    while steps <= len(links) + 1:
        if at == top:
            return True
        if at == ROOT or at not in links:
            return False
        at, steps = links[at][0], steps + 1
    return False


async def selection_entries(
    db: Database,
    owner: str,
    loose: Sequence[FileRow],
    folder_ids: Sequence[str],
    *,
    most: int,
    inside: str | None = None,
) -> list[Entry]:
    """The paths of the loose files and the chosen folders' trees (see the module).
    The chosen folders must be the account's (FolderError 404 otherwise); a folder
    chosen inside another chosen one, and a loose file inside a chosen folder, come
    once. `inside` ('' is the root) names the folder the paths start from instead of
    each chosen folder's parent: a folder link's whole tree is "2024/a.jpg", not
    "Photos/2024/a.jpg". More than `most` entries is a FolderError 413."""
    links = await _folder_links(db, owner)
    chosen = list(dict.fromkeys(folder_ids))
    for folder in chosen:
        if folder != ROOT and folder not in links:
            raise FolderError(404, f"no such folder: {folder}")
    # Drop folders below another chosen one: their files come with it.
    tops = [f for f in chosen if not any(o != f and is_under(links, f, o) for o in chosen)]
    loose = [row for row in loose if not any(is_under(links, row.folder_id, t) for t in tops)]
    children = _children(links)
    order: list[tuple[str, str]] = []  # (folder, its path with a trailing "/")

    def walk(folder: str, path: str) -> None:
        order.append((folder, path))
        kids = sorted(children.get(folder, []), key=lambda k: (links[k][1].casefold(), k))
        for kid, name in zip(kids, unique_segments([links[k][1] for k in kids]), strict=True):
            walk(kid, f"{path}{name}/")
            if len(order) > most:
                raise FolderError(413, f"an archive holds at most {most:,} files and folders")

    top_names = unique_segments(
        [row.name for row in loose]
        + [links[t][1] if t != ROOT else "" for t in tops if inside is None]
    )
    entries = [Entry(name, row) for name, row in zip(top_names, loose, strict=False)]
    for index, top in enumerate(tops):
        if inside is not None:
            walk(top, "")
        else:
            walk(top, top_names[len(loose) + index] + "/" if top != ROOT else "")
    files = await _files_in(db, owner, [folder for folder, _ in order])
    by_folder: dict[str, list[FileRow]] = {}
    for row in files:
        by_folder.setdefault(row.folder_id, []).append(row)
    for folder, path in order:
        if path:
            entries.append(Entry(path, None, folder, links[folder][2]))
        rows = sorted(by_folder.get(folder, []), key=lambda r: (r.name.casefold(), r.id))
        for name, row in zip(unique_segments([r.name for r in rows]), rows, strict=True):
            entries.append(Entry(path + name, row))
        if len(entries) > most:
            raise FolderError(413, f"an archive holds at most {most:,} files and folders")
    return entries


async def folder_holds(db: Database, owner: str, top: str, folder: str) -> bool:
    """Whether the account's folder `folder` is `top` or below it, now."""
    if top == ROOT:
        return folder == ROOT or (
            await db.fetch_one("SELECT 1 FROM folders WHERE id = ? AND owner = ?", (folder, owner))
            is not None
        )
    return is_under(await _folder_links(db, owner), folder, top)
