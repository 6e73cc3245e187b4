"""WebDAV write locks (RFC 4918 §6, §7), kept in the catalog (`dav_locks`, migration
7) so a lock taken through one node holds on every node sharing the catalog.

A lock is on a path of an account's tree (`path_key`: names as the catalog compares
them, app/webdav/tree.py), not on a file or folder id: RFC 4918 locks URLs, and a
lock on an unmapped URL is allowed. A depth-infinity lock covers everything below
its path. An exclusive lock conflicts with any other lock on what it covers; shared
locks only with exclusive ones. A lock past `expires_at` is ignored, and swept when
a lock is next taken."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.catalog.protocol import Database

type Scope = Literal["exclusive", "shared"]
type Depth = Literal["0", "infinity"]

# Timeouts a client may ask for are capped here; `Infinite` gets this too.
MOST_SECONDS = 3600
DEFAULT_SECONDS = 3600
TOKEN_SCHEME = "opaquelocktoken:"
# Live locks one path, and one account, may have: shared locks never conflict, and
# each is a catalog row outside the quota sent in every lockdiscovery of its path,
# so these bound both the catalog and a PROPFIND's answer (with the 4 KiB cap on a
# lock's owner, app/features/dav/bodies.py). Real clients hold one lock per open file.
MOST_LOCKS_PER_PATH = 100
MOST_LOCKS_PER_ACCOUNT = 10_000

_COLUMNS = "token, owner, path_key, path, depth, scope, lock_owner, timeout_seconds, expires_at"


@dataclass(frozen=True, slots=True)
class Lock:
    token: str
    owner: str  # the account whose tree it is in
    path_key: str
    path: str  # the path as the client spelled it, for its lockroot ("/a/b")
    depth: Depth
    scope: Scope
    lock_owner: str  # the client's <owner> element, as XML ('' when none)
    timeout_seconds: int
    expires_at: float

    def covers(self, key: str) -> bool:
        """Whether the lock applies to the path `key`."""
        if key == self.path_key:
            return True
        return self.depth == "infinity" and is_below(key, self.path_key)

    def seconds_left(self, now: float) -> int:
        return max(0, int(self.expires_at - now + 0.5))


class LockConflict(Exception):
    """The lock asked for conflicts with a lock held (423 Locked)."""


class TooManyLocks(Exception):
    """A path or an account holds as many live locks as it may; the message says which."""


def is_below(key: str, above: str) -> bool:
    """Whether the path `key` is strictly below the path `above`."""
    return key != above and (above == "" or key.startswith(above + "/"))


def ancestors_and_self(key: str) -> list[str]:
    """'' and every path above `key`, and `key` itself ("a/b": '', "a", "a/b")."""
    if key == "":
        return [""]
    parts = key.split("/")
    return ["", *("/".join(parts[: n + 1]) for n in range(len(parts)))]


def timeout_seconds(asked: str | None) -> int:
    """The seconds of a `Timeout` header (`Second-N`, `Infinite`, a list: the first
    that reads), capped at MOST_SECONDS; DEFAULT_SECONDS when none reads."""
    for item in (asked or "").split(","):
        word = item.strip()
        if word.lower() == "infinite":
            return MOST_SECONDS
        if word.lower().startswith("second-") and word[7:].isdigit():
            return max(1, min(int(word[7:]), MOST_SECONDS))
    return DEFAULT_SECONDS


def _like_prefix(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


def _lock(record: Sequence[Any]) -> Lock:
    return Lock(
        str(record[0]), str(record[1]), str(record[2]), str(record[3]), record[4],
        record[5], str(record[6]), int(record[7]), float(record[8]),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class DavLocks:
    db: Database
    clock: Callable[[], float] = time.time

    async def covering(self, owner: str, key: str) -> list[Lock]:
        """The live locks that apply to the path `key` (on it, or depth infinity above)."""
        keys = ancestors_and_self(key)
        marks = ", ".join("?" for _ in keys)
        records = await self.db.fetch_all(
            f"SELECT {_COLUMNS} FROM dav_locks WHERE owner = ? AND path_key IN ({marks})"
            " AND expires_at > ?",
            (owner, *keys, self.clock()),
        )
        return [lock for lock in map(_lock, records) if lock.covers(key)]

    async def below(self, owner: str, key: str) -> list[Lock]:
        """The live locks on paths strictly below `key`."""
        if key == "":
            where, params = "path_key != ''", tuple[str, ...]()
        else:
            where, params = "path_key LIKE ? ESCAPE '\\'", (_like_prefix(key),)
        records = await self.db.fetch_all(
            f"SELECT {_COLUMNS} FROM dav_locks WHERE owner = ? AND {where} AND expires_at > ?",
            (owner, *params, self.clock()),
        )
        return [_lock(r) for r in records]

    async def affecting(self, owner: str, key: str, *, depth_infinity: bool) -> list[Lock]:
        """What a change of the path `key` must present tokens for: the locks covering
        it and, when the change reaches below it, the locks below."""
        found = await self.covering(owner, key)
        if depth_infinity:
            found += await self.below(owner, key)
        return found

    async def get(self, owner: str, token: str) -> Lock | None:
        record = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM dav_locks WHERE owner = ? AND token = ? AND expires_at > ?",
            (owner, token, self.clock()),
        )
        return _lock(record) if record else None

    async def take(
        self,
        owner: str,
        key: str,
        path: str,
        *,
        depth: Depth,
        scope: Scope,
        lock_owner: str,
        seconds: int,
    ) -> Lock:
        """A new lock, or LockConflict. Checked and written in one transaction (on
        PostgreSQL under the account's advisory lock, so two nodes cannot both win)."""
        now = self.clock()
        lock = Lock(
            TOKEN_SCHEME + str(uuid.uuid4()), owner, key, path, depth, scope, lock_owner,
            seconds, now + seconds,
        )  # fmt: skip
        async with self.db.transaction() as conn:
            if self.db.shared:
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", ("dav:" + owner,))
            await conn.execute("DELETE FROM dav_locks WHERE expires_at <= ?", (now,))
            keys = ancestors_and_self(key)
            marks = ", ".join("?" for _ in keys)
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM dav_locks WHERE owner = ? AND path_key IN ({marks})",
                (owner, *keys),
            )
            held = [x for x in map(_lock, await cursor.fetchall()) if x.covers(key)]
            if depth == "infinity":
                if key == "":
                    where, params = "path_key != ''", tuple[str, ...]()
                else:
                    where, params = "path_key LIKE ? ESCAPE '\\'", (_like_prefix(key),)
                cursor = await conn.execute(
                    f"SELECT {_COLUMNS} FROM dav_locks WHERE owner = ? AND {where}",
                    (owner, *params),
                )
                held += [_lock(r) for r in await cursor.fetchall()]
            if any(x.scope == "exclusive" or scope == "exclusive" for x in held):
                raise LockConflict(path)
            on_path = sum(1 for x in held if x.path_key == key)
            if on_path >= MOST_LOCKS_PER_PATH:
                raise TooManyLocks(f"{path} has {on_path} locks, the most one path may have")
            cursor = await conn.execute("SELECT count(*) FROM dav_locks WHERE owner = ?", (owner,))
            record = await cursor.fetchone()
            in_account = int(record[0]) if record is not None else 0
            if in_account >= MOST_LOCKS_PER_ACCOUNT:
                raise TooManyLocks(
                    f"your files hold {in_account} locks, the most an account may have:"
                    " unlock some (or let them time out)"
                )
            await conn.execute(
                f"INSERT INTO dav_locks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (lock.token, owner, key, path, depth, scope, lock_owner, seconds, lock.expires_at),
            )
        return lock

    async def refresh(self, owner: str, token: str, seconds: int) -> Lock | None:
        """The lock with a new timeout from now; None when it is not (or no longer) held."""
        now = self.clock()
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE dav_locks SET timeout_seconds = ?, expires_at = ?"
                " WHERE owner = ? AND token = ? AND expires_at > ?",
                (seconds, now + seconds, owner, token, now),
            )
            if cursor.rowcount == 0:
                return None
        return await self.get(owner, token)

    async def release(self, owner: str, token: str) -> bool:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM dav_locks WHERE owner = ? AND token = ? AND expires_at > ?",
                (owner, token, self.clock()),
            )
        return cursor.rowcount > 0

    async def release_at_and_below(self, owner: str, key: str) -> None:
        """A resource deleted or moved away loses its locks and those below it."""
        async with self.db.transaction() as conn:
            if key == "":
                await conn.execute("DELETE FROM dav_locks WHERE owner = ?", (owner,))
                return
            await conn.execute(
                "DELETE FROM dav_locks WHERE owner = ? AND (path_key = ?"
                " OR path_key LIKE ? ESCAPE '\\')",
                (owner, key, _like_prefix(key)),
            )
