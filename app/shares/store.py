"""Share links in the catalog: one file per link, or a collection (a folder with
everything under it, or a set of files; `kind`), read by anyone holding its token.

The token (`secrets.token_urlsafe(24)`, 192 random bits) is shown once, when the
link is made; the catalog keeps only its sha256 (like API tokens: a secret this
random needs no slow hash), looks the row up by that hash and compares it again in
constant time. A link's password, which a person chooses, gets argon2id.

A revoked link keeps its row (so its URL can answer "revoked" instead of "unknown");
deleting the file deletes its links, in the same transaction, by a trigger: the
server's delete and the CLI's `users remove --delete-files` both end them.

Metering: a link counts what leaves, in bytes, in the catalog (so every node sharing
it agrees). `downloads` is how many whole copies have left: `sent_bytes // size`.
A link with a download limit may send at most its `byte_budget`;
each response holds its length in `reserved_bytes` before its first byte (atomically,
refused when it would pass that budget) and, when it ends, gives the hold back and
adds what it really wrote to `sent_bytes`. Holds last while someone renews them:
every download under way pushes `held_until` HOLD_SECONDS ahead, every
HOLD_SECONDS / 3; once it has passed, no download is left to give its hold back (a
node was killed mid-download), and the next one starts from no holds at all.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum

from app.catalog.protocol import Database, Row
from app.files.store import FileRow
from app.folders.store import folder_paths

DEFAULT_EXPIRES_IN = 7 * 24 * 3600
MAX_EXPIRES_IN = 10 * 366 * 24 * 3600
MAX_DOWNLOADS = 1_000_000
MIN_SHARE_PASSWORD_CHARS = 8
MAX_SHARE_PASSWORD_CHARS = 1024
# token_urlsafe(24): 32 characters of the URL-safe base64 alphabet.
# What a limited link may send beyond `max_downloads` copies: the few KiB that file
# sniffers and link previews take with a Range must not cost a person the last
# download. Below one read window (1 MiB, app/storage/local/store.py READ_BYTES), and
# always less than one copy (see `byte_budget`).
SPARE_BYTES = 256 * 1024
# How long the holds of a link's downloads last without being renewed (see the module
# doc); a download renews them every third of it.
HOLD_SECONDS = 60.0
# SQLite's default limit on bound parameters is 32,766; stay well inside it.
IDS_PER_STATEMENT = 500
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{32}")
SHARE_ID_PATTERN = re.compile(r"[0-9a-f]{12}")

_COLUMNS = (
    "id, file_id, owner, password_hash, expires_at, max_downloads, downloads,"
    " revoked_at, created_at, kind, folder_id, request_id"
)
# What a link gives: one file; a folder and everything under it, as it is when asked
# (a file moved in joins, one moved out leaves); a chosen set of files.
FILE, FOLDER, FILES = "file", "folder", "files"


class ShareError(ValueError):
    """Bad input for a share link; the message is for a person."""


class Gone(Enum):
    """Why a known link no longer gives its file; the value is said to whoever opens it."""

    REVOKED = "its owner revoked it"
    EXPIRED = "it expired"
    USED_UP = "it has been downloaded as many times as its owner allowed"


@dataclass(frozen=True, slots=True)
class Share:
    id: str
    file_id: str
    owner: str
    password_hash: str | None
    expires_at: float | None
    max_downloads: int | None
    downloads: int
    revoked_at: float | None
    created_at: float
    kind: str = FILE
    # The shared folder of a FOLDER link ('' is the owner's root); None otherwise.
    folder_id: str | None = None
    # A FOLDER link that takes uploads: the file request of its own that holds their
    # limits (app/requests/store.py); its files land in the shared folder.
    request_id: str | None = None

    @property
    def takes_uploads(self) -> bool:
        return self.request_id is not None

    @property
    def is_collection(self) -> bool:
        return self.kind != FILE

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    def gone(self, now: float) -> Gone | None:
        """Why the link is over at `now`, or None while it works."""
        if self.revoked_at is not None:
            return Gone.REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return Gone.EXPIRED
        if self.max_downloads is not None and self.downloads >= self.max_downloads:
            return Gone.USED_UP
        return None


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """What a folder link that takes uploads takes (its request's limits; the link's
    expiry and the owner's quota apply too), and how many files have arrived."""

    max_files: int | None
    max_file_bytes: int | None
    received: int = 0


@dataclass(frozen=True, slots=True)
class ShareListing:
    """A share and what it holds, for the owner's list: the file's or the folder's
    name, and for a set of files how many are still in it; `uploads` for a folder link
    that takes them."""

    share: Share
    file_name: str
    files: int | None = None
    uploads: UploadLimits | None = None
    # A folder link's folder path ("/a/b/", "/" for all files).
    folder_path: str | None = None


def _share(row: Row) -> Share:
    (
        id_, file_id, owner, password_hash, expires, limit, downloads, revoked, created,
        kind, folder_id, request_id,
    ) = row  # fmt: skip
    return Share(
        str(id_), str(file_id), str(owner),
        None if password_hash is None else str(password_hash),
        None if expires is None else float(expires),  # type: ignore[arg-type]
        None if limit is None else int(limit),  # type: ignore[call-overload]
        int(downloads),  # type: ignore[call-overload]
        None if revoked is None else float(revoked),  # type: ignore[arg-type]
        float(created),  # type: ignore[arg-type]
        str(kind),
        None if folder_id is None else str(folder_id),
        None if request_id is None else str(request_id),
    )  # fmt: skip


def iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_expires_in(value: object) -> int | None:
    """Seconds from now, or None for never; ShareError in words otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShareError("expires_in must be a whole number of seconds, or null for never")
    if not 60 <= value <= MAX_EXPIRES_IN:
        raise ShareError(f"expires_in must be between 60 and {MAX_EXPIRES_IN} seconds (10 years)")
    return value


def check_max_downloads(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShareError("max_downloads must be a whole number, or null for no limit")
    if not 1 <= value <= MAX_DOWNLOADS:
        raise ShareError(f"max_downloads must be between 1 and {MAX_DOWNLOADS:,}")
    return value


def check_password(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ShareError("password must be text, or null for none")
    if len(value) < MIN_SHARE_PASSWORD_CHARS:
        raise ShareError(
            f"a link's password must be at least {MIN_SHARE_PASSWORD_CHARS} characters"
        )
    if len(value) > MAX_SHARE_PASSWORD_CHARS:
        raise ShareError(f"a link's password must be at most {MAX_SHARE_PASSWORD_CHARS} characters")
    return value


async def create_share(
    db: Database,
    *,
    file_id: str,
    owner: str,
    now: float,
    expires_in: int | None,
    password_hash: str | None,
    max_downloads: int | None,
) -> tuple[Share, str]:
    """A new link to `file_id` (which the caller checked `owner` has): the row and the
    token, which is never stored. Refuses (ShareError) if the file is gone meanwhile."""
    share_id = secrets.token_hex(6)
    token = secrets.token_urlsafe(24)
    expires_at = None if expires_in is None else now + expires_in
    async with db.transaction() as conn:
        # In one statement with the check, so a file deleted meanwhile gets no link.
        cursor = await conn.execute(
            "INSERT INTO shares (id, token_hash, file_id, owner, password_hash, expires_at,"
            " max_downloads, created_at)"
            " SELECT ?, ?, id, owner, ?, ?, ?, ? FROM files WHERE id = ? AND owner = ?",
            (
                share_id, token_digest(token), password_hash, expires_at, max_downloads, now,
                file_id, owner,
            ),
        )  # fmt: skip
    if cursor.rowcount != 1:
        raise ShareError("no such file")
    share = Share(share_id, file_id, owner, password_hash, expires_at, max_downloads, 0, None, now)
    return share, token


async def create_collection(
    db: Database,
    *,
    owner: str,
    folder_id: str | None = None,
    file_ids: list[str] | None = None,
    now: float,
    expires_in: int | None,
    password_hash: str | None,
    max_downloads: int | None,
    uploads: UploadLimits | None = None,
    label: str = "Uploads to a shared folder",
) -> tuple[Share, str]:
    """A new link to `owner`'s folder `folder_id` ('' the root) and everything under
    it, or to the files `file_ids`: the row and the token (never stored). ShareError
    "no such folder" / "no such file" if one is not the owner's (or is gone
    meanwhile: checked in the transaction that writes the link).

    `uploads` (a folder link only): the link also takes files into the folder,
    through a file request of its own written in the same transaction, with these
    limits and the link's expiry. That request has no token anyone knows (the hash
    of one thrown away): only the link reaches it, so the link's password and
    revocation guard its uploads too."""
    if uploads is not None and folder_id is None:
        raise ShareError("only a folder link can take uploads")
    share_id = secrets.token_hex(6)
    token = secrets.token_urlsafe(24)
    expires_at = None if expires_in is None else now + expires_in
    kind = FOLDER if folder_id is not None else FILES
    request_id = None if uploads is None else secrets.token_hex(6)
    values = (
        share_id, token_digest(token), owner, password_hash, expires_at, max_downloads, now,
        request_id,
    )  # fmt: skip
    insert = (
        "INSERT INTO shares (id, token_hash, file_id, owner, password_hash, expires_at,"
        " max_downloads, created_at, request_id, kind, folder_id)"
    )
    async with db.transaction() as conn:
        if folder_id is not None and folder_id != "":
            cursor = await conn.execute(
                insert + " SELECT ?, ?, '', ?, ?, ?, ?, ?, ?, 'folder', id FROM folders"
                " WHERE id = ? AND owner = ?",
                (*values, folder_id, owner),
            )
            if cursor.rowcount != 1:
                raise ShareError("no such folder")
        else:
            await conn.execute(
                insert + " VALUES (?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?)", (*values, kind, folder_id)
            )
        if uploads is not None:
            await conn.execute(
                "INSERT INTO requests (id, token_hash, owner, label, expires_at, max_files,"
                " max_file_bytes, created_at, folder_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request_id, token_digest(secrets.token_urlsafe(24)), owner, label, expires_at,
                 uploads.max_files, uploads.max_file_bytes, now, folder_id or ""),
            )  # fmt: skip
        wanted = list(dict.fromkeys(file_ids or []))
        for at in range(0, len(wanted), IDS_PER_STATEMENT):
            batch = wanted[at : at + IDS_PER_STATEMENT]
            marks = ", ".join("?" * len(batch))
            cursor = await conn.execute(
                "INSERT INTO share_files (share_id, file_id) SELECT ?, id FROM files"
                f" WHERE owner = ? AND id IN ({marks})",
                (share_id, owner, *batch),
            )
            if cursor.rowcount != len(batch):
                raise ShareError("no such file")  # rolls the link back
    share = Share(
        share_id, "", owner, password_hash, expires_at, max_downloads, 0, None, now, kind,
        folder_id, request_id,
    )  # fmt: skip
    return share, token


async def selection_ids(db: Database, share_id: str) -> list[str]:
    """The files still in a FILES link (a deleted file has left it)."""
    rows = await db.fetch_all("SELECT file_id FROM share_files WHERE share_id = ?", (share_id,))
    return [str(r[0]) for r in rows]


async def in_selection(db: Database, share_id: str, file_id: str) -> bool:
    return (
        await db.fetch_one(
            "SELECT 1 FROM share_files WHERE share_id = ? AND file_id = ?", (share_id, file_id)
        )
        is not None
    )


def resolve_share(db: Database, token: str) -> Share | None:
    """The link a token opens (live or gone), or None for no such link. The hash picks
    the row; the stored hash is compared again in constant time."""
    if TOKEN_PATTERN.fullmatch(token) is None:
        return None
    digest = token_digest(token)
    row = db.read_one(f"SELECT token_hash, {_COLUMNS} FROM shares WHERE token_hash = ?", (digest,))
    if row is None or not hmac.compare_digest(str(row[0]), digest):
        return None
    return _share(row[1:])


def share_by_id(db: Database, share_id: str) -> Share | None:
    row = db.read_one(f"SELECT {_COLUMNS} FROM shares WHERE id = ?", (share_id,))
    return None if row is None else _share(row)


async def list_shares(db: Database, owner: str) -> list[ShareListing]:
    """The account's links that are not revoked, newest first (expired and used-up
    ones included, so the owner sees why a link stopped working), collections too."""
    columns = ", ".join("s." + column for column in _COLUMNS.split(", "))
    rows = await db.fetch_all(
        f"SELECT {columns}, r.max_files, r.max_file_bytes, r.files, f.name, d.name,"
        " (SELECT count(*) FROM share_files m WHERE m.share_id = s.id)"
        " FROM shares s LEFT JOIN files f ON f.id = s.file_id AND s.kind = 'file'"
        " LEFT JOIN folders d ON d.id = s.folder_id AND s.kind = 'folder'"
        " LEFT JOIN requests r ON r.id = s.request_id"
        " WHERE s.owner = ? AND s.revoked_at IS NULL ORDER BY s.created_at DESC, s.rowid DESC",
        (owner,),
    )
    listings = []
    width = len(_COLUMNS.split(", "))
    for r in rows:
        share = _share(r[:width])
        max_files, max_file_bytes, received, file_name, folder_name, count = r[width:]
        if share.kind == FILE:
            listings.append(ShareListing(share, str(file_name or "")))
        elif share.kind == FOLDER:
            uploads = None
            if share.request_id is not None:
                uploads = UploadLimits(
                    None if max_files is None else int(max_files),  # type: ignore[call-overload]
                    None if max_file_bytes is None else int(max_file_bytes),  # type: ignore[call-overload]
                    int(received or 0),  # type: ignore[call-overload]
                )
            listings.append(ShareListing(share, str(folder_name or "All files"), uploads=uploads))
        else:
            files = int(count or 0)  # type: ignore[call-overload]
            listings.append(
                ShareListing(share, f"{files:,} file{'' if files == 1 else 's'}", files)
            )
    folders = {x.share.folder_id for x in listings if x.share.folder_id is not None}
    if not folders:
        return listings
    paths = await folder_paths(db, owner, folders)
    return [
        replace(x, folder_path=paths.get(x.share.folder_id or "")) if x.share.kind == FOLDER else x
        for x in listings
    ]


async def revoke_share(db: Database, share_id: str, owner: str, now: float) -> bool:
    """Revoke one of `owner`'s live links; False for an unknown id, another account's
    link, or one already revoked. A link that takes uploads closes its request in the
    same transaction: no upload gets in after the revocation (one under way is
    refused when it would become a file)."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE shares SET revoked_at = ? WHERE id = ? AND owner = ? AND revoked_at IS NULL",
            (now, share_id, owner),
        )
        if cursor.rowcount > 0:
            await conn.execute(
                "UPDATE requests SET closed_at = ? WHERE closed_at IS NULL AND id ="
                " (SELECT request_id FROM shares WHERE id = ?)",
                (now, share_id),
            )
    return cursor.rowcount > 0


@dataclass(frozen=True, slots=True)
class Meter:
    """A link's bytes: what has left, and what downloads under way hold."""

    sent_bytes: int
    reserved_bytes: int
    held_until: float | None


def share_meter(db: Database, share_id: str) -> Meter | None:
    row = db.read_one(
        "SELECT sent_bytes, reserved_bytes, held_until FROM shares WHERE id = ?", (share_id,)
    )
    if row is None:
        return None
    sent, reserved, held_until = row
    return Meter(
        int(sent),  # type: ignore[call-overload]
        int(reserved),  # type: ignore[call-overload]
        None if held_until is None else float(held_until),  # type: ignore[arg-type]
    )


def byte_budget(max_downloads: int, size: int) -> int:
    """What a link limited to `max_downloads` may send of a file of `size` bytes: the
    copies, and a spare that is never a whole copy more (a small file's spare would
    otherwise be several copies)."""
    return max_downloads * size + min(SPARE_BYTES, max(size - 1, 0))


# The holds still standing at `now` (a parameter): none once `held_until` has passed.
_LIVE_HOLDS = "(CASE WHEN held_until IS NULL OR held_until < ? THEN 0 ELSE reserved_bytes END)"


async def reserve_bytes(db: Database, share: Share, size: int, length: int, now: float) -> bool:
    """Hold `length` bytes of a limited link's budget for a response about to start;
    False when that would pass its `byte_budget` (counting what has left and what
    every node's downloads under way hold). One statement: two nodes can never both
    take the last of a budget."""
    if share.max_downloads is None:
        raise ValueError("a link without a download limit has no budget to hold")
    budget = byte_budget(share.max_downloads, size)
    async with db.transaction() as conn:
        cursor = await conn.execute(
            f"UPDATE shares SET reserved_bytes = {_LIVE_HOLDS} + ?, held_until = ? WHERE id = ?"
            f" AND sent_bytes + {_LIVE_HOLDS} + ? <= ?",
            (now, length, now + HOLD_SECONDS, share.id, now, length, budget),
        )
    return int(cursor.rowcount) == 1


async def renew_holds(db: Database, share_id: str, now: float) -> None:
    """A download of the link is still under way: its holds stand."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE shares SET held_until = ? WHERE id = ?", (now + HOLD_SECONDS, share_id)
        )


def live_holds(meter: Meter, now: float) -> int:
    return meter.reserved_bytes if meter.held_until is not None and meter.held_until >= now else 0


async def settle_bytes(db: Database, share_id: str, size: int, reserved: int, sent: int) -> bool:
    """A response of the link has ended: give back its hold of `reserved` bytes, add
    the `sent` it wrote, and count the whole copies that makes. True when the count
    moved. A zero-byte file has nothing to meter: each whole GET counts once."""
    if size == 0:
        sql = "UPDATE shares SET downloads = downloads + 1 WHERE id = ?"
        async with db.transaction() as conn:
            await conn.execute(sql, (share_id,))
        return True
    async with db.transaction() as conn:
        cursor = await conn.execute(
            # Never below 0: holds dropped as stale (see the module doc) are gone.
            "UPDATE shares SET reserved_bytes = CASE WHEN reserved_bytes > ?"
            " THEN reserved_bytes - ? ELSE 0 END, sent_bytes = sent_bytes + ?,"
            " downloads = (sent_bytes + ?) / ? WHERE id = ? RETURNING sent_bytes",
            (reserved, reserved, sent, sent, size, share_id),
        )
        rows = await cursor.fetchall()
    if not rows:
        return False
    now_sent = int(rows[0][0])
    return now_sent // size > (now_sent - sent) // size


async def selection_rows(db: Database, share_id: str) -> list[FileRow]:
    """The files still in a FILES link, by name (a deleted file has left it)."""
    records = await db.fetch_all(
        "SELECT f.id, f.name, f.size, f.sha256, f.mime, f.declared_mime, f.created_at,"
        " f.owner, NULL, f.folder_id FROM share_files m JOIN files f ON f.id = m.file_id"
        " WHERE m.share_id = ?",
        (share_id,),
    )
    rows = [FileRow(*r) for r in records]  # type: ignore[arg-type]
    return sorted(rows, key=lambda row: (row.name.casefold(), row.id))
