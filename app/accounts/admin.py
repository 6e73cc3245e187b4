"""What an admin does to accounts, beside `store.py`: the log of every admin action,
the one-time links an admin hands out (an invitation to make an account, a password
reset of one), the quota words the command line and the Admin screen both take, and
the rules for removing an account from the web.

A link's secret is shown once, to the admin who made it; only its sha256 is stored
(it carries 256 random bits, as a session id does). A link works once: using it
claims the row (`used_at`) in one statement, so two tabs cannot both use it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from app.accounts.store import (
    Account,
    AccountError,
    QuotaKind,
    account_by_id,
    account_by_name,
    check_name,
    create_account,
    remove_account,
    set_password,
)
from app.catalog.protocol import Database
from app.config import ConfigError, parse_bytes

type LinkKind = Literal["invite", "reset"]

# How long an admin may make a link last, in seconds, with the words for each.
LINK_LIFETIMES: dict[int, str] = {
    3600: "1 hour",
    86_400: "1 day",
    7 * 86_400: "7 days",
    30 * 86_400: "30 days",
}
DEFAULT_LINK_SECONDS = 86_400
# The Admin screen shows this many of the newest log entries.
LOG_SHOWN = 50
MAX_DETAIL_CHARS = 200


class AdminRefusal(AccountError):
    """An admin action that cannot be done, with the status it is answered with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_quota(text: str) -> tuple[QuotaKind, int | None]:
    """`10GiB`, `1.5 GB`, `10485760`, `none` (no limit) or `default` (the server's)."""
    word = text.strip().lower()
    if word in ("none", "default"):
        return ("none" if word == "none" else "default"), None
    try:
        return "bytes", parse_bytes(text, also=", or none (no limit), or default (the server's)")
    except ConfigError as exc:
        raise AdminRefusal(f"the quota {exc}") from None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# The log -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogEntry:
    at: float
    actor_name: str
    action: str
    target: str
    detail: str


# Who the log names for what was done with `stowage users ...` on the server itself.
COMMAND_LINE = "the command line"


async def log_action(
    db: Database, actor: Account | None, action: str, target: str, detail: str, now: float
) -> None:
    """One admin action (who, what, on what, when), kept after the action itself;
    `actor` None is the command line."""
    actor_id, actor_name = ("", COMMAND_LINE) if actor is None else (actor.id, actor.name)
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO admin_log (id, at, actor_id, actor_name, action, target, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (secrets.token_hex(8), now, actor_id, actor_name, action, target,
             detail[:MAX_DETAIL_CHARS]),
        )  # fmt: skip


async def recent_actions(db: Database, limit: int = LOG_SHOWN) -> list[LogEntry]:
    rows = await db.fetch_all(
        "SELECT at, actor_name, action, target, detail FROM admin_log"
        " ORDER BY at DESC, rowid DESC LIMIT ?",
        (limit,),
    )
    return [LogEntry(float(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]  # type: ignore[arg-type]


# Last sign-in --------------------------------------------------------------------------


async def last_sign_ins(db: Database) -> dict[str, float]:
    """When each account last signed in (Unix seconds); accounts that never did are
    left out."""
    rows = await db.fetch_all(
        "SELECT id, last_sign_in_at FROM users WHERE last_sign_in_at IS NOT NULL"
    )
    return {str(r[0]): float(r[1]) for r in rows}  # type: ignore[arg-type]


# One-time links ------------------------------------------------------------------------


def link_lifetime(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds not in LINK_LIFETIMES:
        choices = ", ".join(LINK_LIFETIMES.values())
        raise AdminRefusal(f"a link lasts one of {choices}")
    return seconds


async def make_link(
    db: Database,
    kind: LinkKind,
    *,
    created_by: Account,
    now: float,
    seconds: int,
    account: Account | None = None,
    admin: bool = False,
) -> str:
    """A new one-time link's secret (stored as its hash). A reset link replaces the
    account's reset links not yet used: only the newest works."""
    secret = secrets.token_urlsafe(32)
    async with db.transaction() as conn:
        if kind == "reset":
            assert account is not None
            await conn.execute(
                "DELETE FROM account_links WHERE kind = 'reset' AND account_id = ?"
                " AND used_at IS NULL",
                (account.id,),
            )
        await conn.execute(
            "INSERT INTO account_links (id_hash, kind, account_id, is_admin, created_by,"
            " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_digest(secret), kind, account.id if account else None, int(admin),
             created_by.id, now, now + seconds),
        )  # fmt: skip
    return secret


@dataclass(frozen=True, slots=True)
class AccountLink:
    kind: LinkKind
    account_id: str | None
    is_admin: bool
    expires_at: float


async def open_link(db: Database, secret: str, kind: LinkKind, now: float) -> AccountLink | None:
    """The link, while it is unused and unexpired; None otherwise (or never made)."""
    if not 20 <= len(secret) <= 128:
        return None
    rows = await db.fetch_all(
        "SELECT account_id, is_admin, expires_at FROM account_links"
        " WHERE id_hash = ? AND kind = ? AND used_at IS NULL AND expires_at > ?",
        (_digest(secret), kind, now),
    )
    if not rows:
        return None
    account_id, is_admin, expires_at = rows[0]
    return AccountLink(
        kind,
        None if account_id is None else str(account_id),
        bool(is_admin),
        float(expires_at),  # type: ignore[arg-type]
    )


class LinkGone(AccountError):
    """The link was used, expired or never existed."""


async def _claim(db: Database, secret: str, kind: LinkKind, now: float) -> None:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE account_links SET used_at = ? WHERE id_hash = ? AND kind = ?"
            " AND used_at IS NULL AND expires_at > ?",
            (now, _digest(secret), kind, now),
        )
    if cursor.rowcount != 1:
        raise LinkGone("this link was used already, has expired, or never existed")


async def _unclaim(db: Database, secret: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE account_links SET used_at = NULL WHERE id_hash = ?", (_digest(secret),)
        )


async def accept_invitation(
    db: Database, secret: str, name: str, password_hash: str, now: float
) -> Account:
    """The invited account, made once: LinkGone for a used or expired link,
    AccountError for a bad or taken name (the link then still works)."""
    check_name(name)
    link = await open_link(db, secret, "invite", now)
    if link is None:
        raise LinkGone("this link was used already, has expired, or never existed")
    if await account_by_name(db, name) is not None:
        raise AccountError(f"an account named {name!r} already exists")
    await _claim(db, secret, "invite", now)
    try:
        account = await create_account(db, name, password_hash, admin=link.is_admin)
    except BaseException:
        await _unclaim(db, secret)
        raise
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE account_links SET account_id = ? WHERE id_hash = ?",
            (account.id, _digest(secret)),
        )
    return account


async def accept_reset(db: Database, secret: str, password_hash: str, now: float) -> Account:
    """The account's new password, once; every session of it ends."""
    link = await open_link(db, secret, "reset", now)
    if link is None or link.account_id is None:
        raise LinkGone("this link was used already, has expired, or never existed")
    await _claim(db, secret, "reset", now)
    await set_password(db, link.account_id, password_hash)
    account = account_by_id(db, link.account_id)
    if account is None:  # removed meanwhile (its links go with it)
        raise LinkGone("the account of this link was removed")
    return account


# Removing an account from the web --------------------------------------------------------


async def remove_by_admin(
    db: Database, actor: Account, target: Account, *, delete_files: bool
) -> list[str]:
    """The command line's rule (an account that owns files goes only with them), and
    two more for the web: an admin does not remove their own account, and the last
    admin stays. Returns the ids of the blobs to remove from the store."""
    if target.id == actor.id:
        raise AdminRefusal("you cannot remove your own account", 409)
    if target.is_admin:
        rows = await db.fetch_all("SELECT count(*) FROM users WHERE is_admin <> 0")
        if int(rows[0][0]) <= 1:  # type: ignore[call-overload]
            raise AdminRefusal("the last admin cannot be removed", 409)
    try:
        return await remove_account(db, target.id, delete_files=delete_files)
    except AccountError:
        raise AdminRefusal(
            f"the account {target.name} owns {target.file_count:,} file(s); tick “also delete its "
            "files” to remove them with it",
            409,
        ) from None
