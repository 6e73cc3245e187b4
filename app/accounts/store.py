"""Accounts, API tokens and sign-in sessions in the catalog.

Secrets never reach the database: a token or session id is stored as its sha256
(both carry 256 random bits, so a plain hash is enough; passwords, which people
choose, get argon2id instead, see `passwords.py`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from app.catalog.protocol import NODES_CHANNEL, Database, Row

log = logging.getLogger("stowage.accounts")

# Touched (by this server or a `stowage` command) whenever a credential stops being
# valid: a token revoked, a password changed, an account removed. Servers cache what
# credentials resolve to and drop the cache when this file's mtime moves, so such a
# change takes effect on the next request without a database read per request.
CREDENTIALS_MARKER = "stowage.credentials"
MARKER_MAX_BYTES = 4096

NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
TOKEN_PREFIX = "stw"
TOKEN_PATTERN = re.compile(r"stw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
MAX_LABEL_CHARS = 100
# What a session keeps of where it came from.
MAX_DEVICE_CHARS = 60
MAX_ADDRESS_CHARS = 64
SESSION_HANDLE_CHARS = 16
SESSION_HANDLE_PATTERN = re.compile(r"[0-9a-f]{16}")

type QuotaKind = Literal["default", "bytes", "none"]


class AccountError(ValueError):
    """Bad input about accounts; the message is for a person."""


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise AccountError("an account name is 1-64 characters: letters, digits, '.', '_' or '-'")
    return name


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def credentials_marker(db: Database) -> Path | None:
    return None if db.path is None else db.path.parent / CREDENTIALS_MARKER


# Bumped with every change made by this process: its own gate sees it without a syscall.
_local_changes = 0


def local_credential_changes() -> int:
    return _local_changes


# What other nodes hear when a credential stopped being valid (app/cluster.py).
CREDENTIALS_CHANGED = "credentials.changed"


def credentials_changed_elsewhere() -> None:
    """Another process on the shared catalog changed a credential: this process's gate
    forgets what it had resolved, as for a change of its own."""
    global _local_changes
    _local_changes += 1


def credentials_changed(db: Database) -> None:
    """Tell every server on this data dir that a credential stopped being valid. The
    marker grows by a byte each time (and starts over past 4 KiB): file times move in
    steps of a clock tick, so two changes within one tick are told apart by size.
    On a shared catalog (PostgreSQL) every node hears of it too, at once, whether the
    change came from a node or from a `stowage` command anywhere."""
    global _local_changes
    _local_changes += 1
    if db.shared:
        # Sent as a node would send it (app/cluster.py), from no node in particular.
        note = json.dumps(["", CREDENTIALS_CHANGED, ""])
        try:
            db.read_one("SELECT pg_notify(?, ?)", (NODES_CHANNEL, note))
        except Exception as exc:  # the change is stored; nodes see it within a minute
            log.warning("could not tell the other nodes that a credential changed: %s", exc)
    marker = credentials_marker(db)
    if marker is None:
        return
    try:
        grown = marker.stat().st_size < MARKER_MAX_BYTES
    except FileNotFoundError:
        grown = True
    with marker.open("ab" if grown else "wb") as out:
        out.write(b".")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    is_admin: bool
    quota_kind: QuotaKind
    quota_bytes: int | None
    used_bytes: int
    file_count: int
    created_at: str

    def quota(self, default: int | None) -> int | None:
        """Bytes this account may store, None for no limit."""
        if self.quota_kind == "bytes":
            return self.quota_bytes
        if self.quota_kind == "none":
            return None
        return default


_ACCOUNT_COLUMNS = "id, name, is_admin, quota_kind, quota_bytes, used_bytes, file_count, created_at"


_ACCOUNT_COLUMNS_OF_U = ", ".join("u." + column for column in _ACCOUNT_COLUMNS.split(", "))


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _account(row: Row) -> Account:
    id_, name, is_admin, kind, quota, used, count, created = row
    return Account(
        str(id_), str(name), bool(is_admin), kind,  # type: ignore[arg-type]
        None if quota is None else int(quota),  # type: ignore[call-overload]
        int(used), int(count), str(created),  # type: ignore[call-overload]
    )  # fmt: skip


async def count_accounts(db: Database) -> int:
    rows = await db.fetch_all("SELECT count(*) FROM users")
    return int(rows[0][0])  # type: ignore[call-overload]


def account_by_id(db: Database, account_id: str) -> Account | None:
    """Fresh from the database (usage included), on the calling thread."""
    row = db.read_one(f"SELECT {_ACCOUNT_COLUMNS} FROM users WHERE id = ?", (account_id,))
    return _account(row) if row else None


async def account_by_name(db: Database, name: str) -> Account | None:
    rows = await db.fetch_all(
        f"SELECT {_ACCOUNT_COLUMNS} FROM users WHERE name_key = ?", (name.lower(),)
    )
    return _account(rows[0]) if rows else None


async def password_hash_of(db: Database, name: str) -> tuple[Account, str] | None:
    rows = await db.fetch_all(
        f"SELECT {_ACCOUNT_COLUMNS}, password_hash FROM users WHERE name_key = ?",
        (name.lower(),),
    )
    if not rows:
        return None
    return _account(rows[0][:-1]), str(rows[0][-1])


async def list_accounts(db: Database) -> list[Account]:
    rows = await db.fetch_all(f"SELECT {_ACCOUNT_COLUMNS} FROM users ORDER BY name_key")
    return [_account(row) for row in rows]


async def create_account(
    db: Database,
    name: str,
    password_hash: str,
    *,
    admin: bool = False,
    quota_kind: QuotaKind = "default",
    quota_bytes: int | None = None,
    only_if_first: bool = False,
) -> Account:
    """A new account; AccountError for a bad or taken name. With `only_if_first`, it is
    created only while no account exists (the setup page's first admin). Files stored
    before accounts existed (no owner) go to the first admin, however it was made."""
    check_name(name)
    account_id = secrets.token_hex(8)
    async with db.transaction() as conn:
        if only_if_first:
            async with conn.execute("SELECT count(*) FROM users") as cursor:
                found = await cursor.fetchone()
            if found and found[0]:
                raise AccountError("an account already exists")
        async with conn.execute(
            "SELECT 1 FROM users WHERE name_key = ?", (name.lower(),)
        ) as cursor:
            if await cursor.fetchone():
                raise AccountError(f"an account named {name!r} already exists")
        await conn.execute(
            "INSERT INTO users (id, name, name_key, password_hash, is_admin, quota_kind,"
            " quota_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (account_id, name, name.lower(), password_hash, int(admin), quota_kind,
             quota_bytes, _now_iso()),
        )  # fmt: skip
        if admin:
            async with conn.execute("SELECT count(*) FROM users WHERE is_admin <> 0") as cursor:
                admins = await cursor.fetchone()
            if admins and admins[0] == 1:
                await conn.execute("UPDATE files SET owner = ? WHERE owner IS NULL", (account_id,))
    account = await account_by_name(db, name)
    assert account is not None
    return account


async def set_password(
    db: Database, account_id: str, password_hash: str, *, keep_session: str | None = None
) -> None:
    """New password; every session of the account ends but `keep_session` (a hash)."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, account_id)
        )
        await conn.execute(
            "DELETE FROM sessions WHERE user_id = ? AND id_hash IS DISTINCT FROM ?",
            (account_id, keep_session),
        )
    credentials_changed(db)


async def set_quota(
    db: Database, account_id: str, kind: QuotaKind, quota_bytes: int | None
) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE users SET quota_kind = ?, quota_bytes = ? WHERE id = ?",
            (kind, quota_bytes, account_id),
        )
    credentials_changed(db)


async def remove_account(db: Database, account_id: str, *, delete_files: bool) -> list[str]:
    """Remove the account with its tokens and sessions; returns the ids of the blobs
    of its files (removed from the catalog here, to be removed from the store by the
    caller). Refuses while it owns files unless `delete_files`."""
    async with db.transaction() as conn:
        # The account's row first: on PostgreSQL an upload committing meanwhile then
        # either commits before this reads the files (which include it), or waits
        # for this and finds its owner gone (`files_need_their_owner`).
        await conn.execute("DELETE FROM users WHERE id = ?", (account_id,))
        async with conn.execute("SELECT id FROM files WHERE owner = ?", (account_id,)) as cur:
            file_ids = [str(row[0]) async for row in cur]
        if file_ids and not delete_files:
            raise AccountError(
                f"the account owns {len(file_ids)} file(s); add --delete-files to remove "
                "them with it"
            )
        await conn.execute("DELETE FROM files WHERE owner = ?", (account_id,))
        await conn.execute("DELETE FROM tokens WHERE user_id = ?", (account_id,))
        await conn.execute("DELETE FROM sessions WHERE user_id = ?", (account_id,))
    credentials_changed(db)
    return file_ids


# API tokens ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    label: str
    created_at: str
    last_used_at: str | None


async def create_token(db: Database, account_id: str, label: str = "") -> tuple[TokenInfo, str]:
    """A new API token: its record and the token itself (shown once, never stored)."""
    label = " ".join(label.split())
    if len(label) > MAX_LABEL_CHARS:
        raise AccountError(f"a token label is at most {MAX_LABEL_CHARS} characters")
    token_id = secrets.token_hex(6)
    plaintext = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
    created = _now_iso()
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO tokens (id, user_id, secret_hash, label, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_id, account_id, _digest(plaintext), label, created),
        )
    return TokenInfo(token_id, label, created, None), plaintext


async def list_tokens(db: Database, account_id: str) -> list[TokenInfo]:
    rows = await db.fetch_all(
        "SELECT id, label, created_at, last_used_at FROM tokens WHERE user_id = ? ORDER BY rowid",
        (account_id,),
    )
    return [TokenInfo(str(r[0]), str(r[1]), str(r[2]), _text_or_none(r[3])) for r in rows]


async def revoke_token(db: Database, token_id: str, *, account_id: str | None = None) -> bool:
    """Revoke a token (only the account's own when `account_id` is given)."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            # COALESCE rather than `? IS NULL OR ...`: PostgreSQL cannot type a bare `?`.
            "DELETE FROM tokens WHERE id = ? AND user_id = COALESCE(?, user_id)",
            (token_id, account_id),
        )
    if cursor.rowcount > 0:
        credentials_changed(db)
    return cursor.rowcount > 0


def resolve_token(db: Database, plaintext: str) -> tuple[Account, str, str | None] | None:
    """(account, token id, last used) for a live token, else None. The id picks the row;
    the secret is checked in constant time against its hash."""
    match = TOKEN_PATTERN.fullmatch(plaintext)
    if match is None:
        return None
    row = db.read_one(
        f"SELECT t.secret_hash, t.last_used_at, {_ACCOUNT_COLUMNS_OF_U}"
        " FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?",
        (match.group(1),),
    )
    if row is None or not hmac.compare_digest(str(row[0]), _digest(plaintext)):
        return None
    return _account(row[2:]), match.group(1), _text_or_none(row[1])


async def touch_token(db: Database, token_id: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE tokens SET last_used_at = ? WHERE id = ?", (_now_iso(), token_id)
        )


# Sessions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    id_hash: str
    account: Account
    created_at: float
    last_seen: float


async def create_session(
    db: Database, account_id: str, now: float, *, user_agent: str = "", address: str = ""
) -> str:
    """A new session; returns the secret for the cookie (only its hash is stored).
    `user_agent` is the short description of the device (`devices.describe_device`),
    `address` the client's; the account's last sign-in becomes `now`."""
    secret = secrets.token_urlsafe(32)
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO sessions (id_hash, user_id, created_at, last_seen, user_agent, address)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (_digest(secret), account_id, now, now, user_agent[:MAX_DEVICE_CHARS],
             address[:MAX_ADDRESS_CHARS]),
        )  # fmt: skip
        await conn.execute("UPDATE users SET last_sign_in_at = ? WHERE id = ?", (now, account_id))
    return secret


def resolve_session(db: Database, secret: str, now: float, idle: float, lifetime: float):
    """The live session for a cookie value, or None (unknown, idle too long, too old)."""
    if not 20 <= len(secret) <= 128:
        return None
    row = db.read_one(
        f"SELECT s.id_hash, s.created_at, s.last_seen, {_ACCOUNT_COLUMNS_OF_U}"
        " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?",
        (_digest(secret),),
    )
    if row is None:
        return None
    created, last_seen = float(row[1]), float(row[2])  # type: ignore[arg-type]
    if now - last_seen > idle or now - created > lifetime:
        return None
    return Session(str(row[0]), _account(row[3:]), created, last_seen)


async def touch_session(db: Database, id_hash: str, now: float) -> None:
    async with db.transaction() as conn:
        await conn.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (now, id_hash))


async def end_session(db: Database, id_hash: str) -> None:
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))
    credentials_changed(db)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session as its account sees it: `handle` names it in forms (a prefix of the
    stored hash: it opens nothing, and is unique within an account in practice)."""

    handle: str
    device: str
    address: str
    created_at: float
    last_seen: float


def session_handle(id_hash: str) -> str:
    return id_hash[:SESSION_HANDLE_CHARS]


async def list_sessions(
    db: Database, account_id: str, *, now: float, idle: float, lifetime: float
) -> list[SessionInfo]:
    """The account's sessions that may still be used at `now` (an expired one stays in
    the table until a sign-in sweeps it, but can sign nobody in), the most recently
    used first."""
    rows = await db.fetch_all(
        "SELECT id_hash, user_agent, address, created_at, last_seen FROM sessions"
        " WHERE user_id = ? AND last_seen >= ? AND created_at >= ?"
        " ORDER BY last_seen DESC, created_at DESC",
        (account_id, now - idle, now - lifetime),
    )
    return [
        SessionInfo(session_handle(str(r[0])), str(r[1]), str(r[2]),
                    float(r[3]), float(r[4]))  # type: ignore[arg-type]
        for r in rows
    ]  # fmt: skip


async def end_account_session(db: Database, account_id: str, handle: str) -> bool:
    """End the account's session named by `handle`; False when it has none such (another
    account's session included: no oracle)."""
    if not SESSION_HANDLE_PATTERN.fullmatch(handle):
        return False
    async with db.transaction() as conn:
        cursor = await conn.execute(
            f"DELETE FROM sessions WHERE user_id = ? AND substr(id_hash, 1, {SESSION_HANDLE_CHARS})"
            " = ?",
            (account_id, handle),
        )
    if cursor.rowcount > 0:
        credentials_changed(db)
    return cursor.rowcount > 0


async def end_other_sessions(db: Database, account_id: str, keep: str | None) -> int:
    """End every session of the account but `keep` (a stored hash); how many ended."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM sessions WHERE user_id = ? AND id_hash IS DISTINCT FROM ?",
            (account_id, keep),
        )
    if cursor.rowcount > 0:
        credentials_changed(db)
    return cursor.rowcount


async def end_expired_sessions(db: Database, now: float, idle: float, lifetime: float) -> int:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM sessions WHERE last_seen < ? OR created_at < ?",
            (now - idle, now - lifetime),
        )
    return cursor.rowcount
