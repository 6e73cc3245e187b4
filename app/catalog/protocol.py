"""What the rest of the app uses of the catalog, whichever database holds it: the
`Database` protocol, its row types, and the errors a caller tells apart
(unavailable, disk full, file owner gone). The SQLite catalog is app/catalog/sqlite.py,
the PostgreSQL one app/catalog/postgres.py; app/catalog/open.py picks one by `--database`.

Imports nothing of the app: every layer that talks to the catalog imports this.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

type Rows = list[tuple[object, ...]]
type Row = tuple[object, ...]
type Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


# PostgreSQL's SQLSTATE for "could not extend file: No space left on device".
POSTGRES_DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """The catalog could not grow: SQLITE_FULL ("database or disk is full"), or
    PostgreSQL's disk_full on the database server's own disk."""
    if getattr(exc, "sqlstate", None) == POSTGRES_DISK_FULL:
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == sqlite3.SQLITE_FULL
    )


# What the catalog says when a file row's owner is no longer an account (the trigger
# `files_need_their_owner`, app/catalog/migrations/m0002_files_need_their_owner.py).
OWNER_GONE = "stowage: the account that owns the file has been removed"


def is_owner_gone(exc: BaseException) -> bool:
    """A file row refused because its account was removed meanwhile."""
    return OWNER_GONE in str(exc)


# What the catalog says when a file goes into a folder removed meanwhile (the trigger
# files_need_their_folder, app/catalog/migrations/m0005_folders.py).
FOLDER_GONE = "stowage: the folder has been removed"


def is_folder_gone(exc: BaseException) -> bool:
    return FOLDER_GONE in str(exc)


def is_name_taken(exc: BaseException) -> bool:
    """A file row refused because its folder already has its name (ignoring case):
    the unique index files_by_folder_name, or the trigger that keeps files and
    folders of one parent apart (app/catalog/migrations/m0005_folders.py)."""
    text = str(exc)
    return (
        "files.name_key" in text
        or "files_by_folder_name" in text
        or "the name is taken by a folder" in text
    )


# SQLite's default limit on bound parameters is 32,766; a statement naming ids by
# `IN (...)` takes at most this many at a time.
IDS_PER_STATEMENT = 500


def id_batches(ids: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """`ids` in batches of IDS_PER_STATEMENT, each with its `?, ?, ...` marks."""
    for at in range(0, len(ids), IDS_PER_STATEMENT):
        batch = list(ids[at : at + IDS_PER_STATEMENT])
        yield batch, ", ".join("?" * len(batch))


# The PostgreSQL notification channel every node listens on (app/cluster.py).
NODES_CHANNEL = "stowage"


class CatalogUnavailable(Exception):
    """The catalog cannot be reached just now (PostgreSQL restarting or down): the
    request is answered 503 with this message, and is worth retrying."""


class Database(Protocol):
    """What the features use of the catalog, whichever database holds it. SQL is
    written once, for SQLite, with `?` placeholders; the PostgreSQL catalog
    translates it (app/catalog/postgres.py). `transaction()` yields a connection whose
    `execute` is awaited (or used with `async with`) for a cursor with `rowcount`,
    `fetchone` and `fetchall`, and whose `executemany` is awaited."""

    # The SQLite file; for PostgreSQL, where the file would be (in the data dir), so
    # the credentials marker beside it (app/accounts/store.py) still has a place.
    path: Path | None
    make_room: Callable[[], None] | None
    # True when processes on other machines may use this catalog too (PostgreSQL):
    # what must reach all of them goes out as a notification on NODES_CHANNEL.
    shared: bool

    def read_one(self, sql: str, params: tuple[object, ...] = ()) -> Row | None: ...

    async def fetch_all(self, sql: str, params: tuple[object, ...] = ()) -> Rows: ...

    async def fetch_one(self, sql: str, params: tuple[object, ...] = ()) -> Row | None: ...

    async def insert_many(self, sql: str, rows: Rows) -> None: ...

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    async def close(self) -> None: ...
