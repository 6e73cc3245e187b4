"""Share download logs: every download through a share link or collection, one row
per response that sends bytes of it (`share_downloads`, migration 6), for its owner.

What a row says: when the response started, which file (its id and name) or the
collection's ZIP (`what`), the client as a keyed hash of its address (HMAC-SHA256
with a key every node shares, kept in `settings`, shortened: the same client reads
the same on every node, and the address itself is never stored), a short user-agent,
the bytes that left, whether the response completed (a cut-off download records what
left, with completed 0), and whether the client is a link-preview bot.

A Range request is one row with its bytes. HEAD, 304, 412, 416, a refused download
(409/410), the landing page, thumbnails and `?preview=1` send no bytes of a download
and write no row (`serve_file` only settles a metered GET).

Link-preview bots (`is_bot`): chat apps and social sites fetch a pasted link to draw
its card. A user-agent containing one of `BOT_MARKERS` (case-insensitive) is marked
`bot`: Slackbot (Slackbot-LinkExpanding), Facebook and Messenger
(facebookexternalhit, Facebot), X/Twitter (Twitterbot), Discord (Discordbot),
WhatsApp, Telegram (TelegramBot), LinkedIn (LinkedInBot), Skype and Teams
(SkypeUriPreview), Iframely, Embedly, Mastodon (its instances fetch with
"Mastodon/"), Google's renderers (Google-PageRenderer, Googlebot), Apple's iMessage
(Applebot, and the "facebookexternalhit ... Twitterbot" iMessage sends), Pinterest,
Reddit (redditbot), Bluesky (Bluesky Cardyb), Microsoft (bingbot, BingPreview),
Viber, Zoom (Zoombot), Mattermost, Rocket.Chat, Matrix (Synapse), Snapchat, Tumblr,
Yahoo (Slurp), Yandex, Baidu (Baiduspider) and DuckDuckGo (DuckDuckBot).

Writing a row never delays a download: `DownloadLog.add` only queues it; one task
writes what has queued, in one statement, then tells the owner's screens
(`written`), once per batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from app.catalog.protocol import CatalogUnavailable, Database, Row

# The `settings` key of the secret that hashes client addresses (hex).
CLIENT_KEY_SETTING = "share_downloads.client_key"
# A client's hash, in hex: 64 bits tell the clients of one link apart.
CLIENT_HEX = 16
USER_AGENT_CHARS = 160
# A batch's rows are written together; past this many waiting (the catalog down),
# the oldest are dropped rather than the server's memory.
MAX_WAITING = 10_000
FILE, ZIP = "file", "zip"

BOT_MARKERS = (
    "slackbot",
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "discordbot",
    "whatsapp",
    "telegrambot",
    "linkedinbot",
    "skypeuripreview",
    "iframely",
    "embedly",
    "mastodon",
    "google-pagerenderer",
    "googlebot",
    "applebot",
    "pinterest",
    "redditbot",
    "cardyb",
    "bingbot",
    "bingpreview",
    "viber",
    "zoombot",
    "mattermost",
    "rocket.chat",
    "synapse",
    "snapchat",
    "tumblr",
    "slurp",
    "yandex",
    "baiduspider",
    "duckduckbot",
)

_COLUMNS = (
    "id, share_id, owner, file_id, name, what, at, client, user_agent, bytes_sent, completed, bot"
)


@dataclass(frozen=True, slots=True)
class Download:
    """One response of a link that sent bytes (`client` is the hash once written; while
    queued it is the address, which never reaches the catalog)."""

    share_id: str
    owner: str
    file_id: str
    name: str
    what: str
    at: float
    client: str
    user_agent: str
    bytes_sent: int
    completed: bool
    bot: bool
    id: str = ""


def is_bot(user_agent: str) -> bool:
    """Whether a user-agent is a link-preview fetcher (see the module doc)."""
    lowered = user_agent.casefold()
    return any(marker in lowered for marker in BOT_MARKERS)


def short_user_agent(user_agent: str | None) -> str:
    """Printable characters only, at most USER_AGENT_CHARS of them."""
    if not user_agent:
        return ""
    printable = "".join(ch if ch.isprintable() else " " for ch in user_agent)
    return " ".join(printable.split())[:USER_AGENT_CHARS]


def client_hash(key: bytes, address: str) -> str:
    return hmac.new(key, address.encode(), hashlib.sha256).hexdigest()[:CLIENT_HEX]


async def client_key(db: Database) -> bytes:
    """The key that hashes client addresses: made by the first node to need it, the
    same for every node after (the insert of a second does nothing)."""
    found = await db.fetch_one("SELECT value FROM settings WHERE key = ?", (CLIENT_KEY_SETTING,))
    if found is None:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (CLIENT_KEY_SETTING, secrets.token_hex(32)),
            )
        found = await db.fetch_one(
            "SELECT value FROM settings WHERE key = ?", (CLIENT_KEY_SETTING,)
        )
    if found is None:
        raise CatalogUnavailable("the catalog lost the client key it just wrote")
    return bytes.fromhex(str(found[0]))


def _download(row: Row) -> Download:
    id_, share_id, owner, file_id, name, what, at, client, agent, sent, completed, bot = row
    return Download(
        str(share_id), str(owner), str(file_id), str(name), str(what),
        float(at),  # type: ignore[arg-type]
        str(client), str(agent),
        int(sent),  # type: ignore[call-overload]
        bool(completed), bool(bot), str(id_),
    )  # fmt: skip


async def write_downloads(db: Database, downloads: list[Download]) -> None:
    """Rows whose `client` is already hashed. A link revoked meanwhile keeps its rows;
    one deleted meanwhile drops them with it (its trigger) or gets them orphaned
    here, harmless: nothing lists rows without their link."""
    await db.insert_many(
        f"INSERT INTO share_downloads ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                d.id or secrets.token_hex(8),
                d.share_id,
                d.owner,
                d.file_id,
                d.name,
                d.what,
                d.at,
                d.client,
                d.user_agent,
                d.bytes_sent,
                int(d.completed),
                int(d.bot),
            )  # fmt: skip
            for d in downloads
        ],
    )


@dataclass(frozen=True, slots=True)
class LogSummary:
    """A link's log as a list shows it: how many rows, and the latest few."""

    total: int
    latest: list[Download]


async def latest_downloads(db: Database, owner: str, most: int) -> dict[str, LogSummary]:
    """share id -> its row count and its `most` latest rows, for every link of
    `owner`'s that has any: one query."""
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS}, total FROM (SELECT {_COLUMNS},"
        " row_number() OVER (PARTITION BY share_id ORDER BY at DESC, rowid DESC) AS n,"
        " count(*) OVER (PARTITION BY share_id) AS total"
        " FROM share_downloads WHERE owner = ?) AS d WHERE n <= ? ORDER BY at DESC, id",
        (owner, most),
    )
    found: dict[str, LogSummary] = {}
    for row in rows:
        download = _download(row[:-1])
        summary = found.get(download.share_id)
        if summary is None:
            summary = found[download.share_id] = LogSummary(int(row[-1]), [])  # type: ignore[call-overload]
        summary.latest.append(download)
    return found


async def count_downloads(db: Database, share_id: str, owner: str) -> int:
    row = await db.fetch_one(
        "SELECT count(*) FROM share_downloads WHERE share_id = ? AND owner = ?",
        (share_id, owner),
    )
    return 0 if row is None else int(row[0])  # type: ignore[call-overload]


async def share_downloads(
    db: Database, share_id: str, owner: str, *, limit: int | None = None, offset: int = 0
) -> list[Download]:
    """A link's rows, newest first (`limit` None: all of them)."""
    sql = (
        f"SELECT {_COLUMNS} FROM share_downloads WHERE share_id = ? AND owner = ?"
        " ORDER BY at DESC, rowid DESC"
    )
    params: tuple[object, ...] = (share_id, owner)
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = (*params, limit, offset)
    return [_download(row) for row in await db.fetch_all(sql, params)]


type Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


class DownloadLog:
    """Queues the rows downloads make and writes them off the download's path: one
    task at a time writes everything queued (a batch grows while the last one is
    written), then calls `written` with the owners whose links got rows."""

    def __init__(self, db: Database, spawn: Spawn, written: Callable[[set[str]], None]) -> None:
        self._db = db
        self._spawn = spawn
        self._written = written
        self._waiting: list[Download] = []
        self._writer: asyncio.Task[None] | None = None
        self._key: bytes | None = None

    def add(self, download: Download) -> None:
        """Queue a row whose `client` is the address (hashed before it is written)."""
        self._waiting.append(download)
        if len(self._waiting) > MAX_WAITING:
            del self._waiting[: len(self._waiting) - MAX_WAITING]
        if self._writer is None or self._writer.done():
            self._writer = self._spawn(self._write_all())

    async def _write_all(self) -> None:
        failures = 0
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                if self._key is None:
                    self._key = await client_key(self._db)
                key = self._key
                hashed = [replace(d, client=client_hash(key, d.client)) for d in batch]
                await write_downloads(self._db, hashed)
            except CatalogUnavailable as exc:
                self._waiting[:0] = batch  # kept, in order, for the next try
                failures += 1
                if failures >= 5:
                    print(f"stowage: share download log not written yet: {exc}", file=sys.stderr)
                    return  # the next download tries again
                await asyncio.sleep(0.2 * failures)
                continue
            failures = 0
            self._written({d.owner for d in batch})
