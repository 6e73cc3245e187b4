"""The upload intake: where an upload goes (`Destination`: whose space, which limits),
the quota it holds while it runs, the free-space check before a byte is read, and the
recording of what was stored (`Uploads.keep`). Every upload ends here, whatever
brought its bytes: the single-request transports (app/features/uploads) and the
resumable engine (app/resumable/uploads.py) alike. No HTTP: the web side reads the
request and hands over bytes, lengths and names."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from stario import Relay

from app.accounts.quotas import QuotaExceeded, QuotaLedger, Reservation
from app.accounts.store import Account
from app.catalog.protocol import Database, is_disk_full, is_folder_gone, is_owner_gone
from app.config import Config
from app.files.store import FileRow, add_files, files_changed
from app.folders.store import FolderError, catalog_id, ensure_path, get_folder
from app.ingest.budget import MemoryBudget
from app.ingest.pipeline import IngestedFile, IngestError, almost_out_of_space, over_quota
from app.ingest.progress import Progress
from app.requests.events import requests_changed
from app.storage.errors import LowOnSpace
from app.storage.store import Store

# Told of bytes as they arrive: the file's name so far, how many more bytes.
type OnProgress = Callable[[str, int], None]
type Spawn = Callable[[Coroutine[Any, Any, list[FileRow]]], asyncio.Task[list[FileRow]]]


@dataclass(frozen=True, slots=True)
class Uploads:
    """What every upload transport needs, and the steps every upload ends with
    (`reserve`, `check_room`, `keep`; `receive` for one single-request upload)."""

    config: Config
    db: Database
    store: Store
    relay: Relay[str]
    progress: Progress
    quotas: QuotaLedger
    # Bodies held whole in memory (JSON file signals), all requests together.
    signals_memory: MemoryBudget
    # Starts the catalog write; the app passes Stario's `app.create_task`, so
    # shutdown waits for a recording in flight.
    spawn: Spawn = field(default=asyncio.create_task)
    # Upload handlers running now (app/server/body.py `tracked`), so a stop can wait
    # for their clean-up (wind_down).
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    # Told of every file once its row has committed (the app queues thumbnails).
    stored: Callable[[list[FileRow]], None] | None = None

    async def wind_down(self, seconds: float = 5.0) -> None:
        """At shutdown, after Stario has waited `--shutdown-timeout` and closed every
        connection: uploads still running are ending because their bodies were cut off.
        Wait for each to remove what it wrote before the catalog and the store close;
        one that does not end in `seconds` is cancelled."""
        running = [task for task in self.in_flight if not task.done()]
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=seconds)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=seconds)

    async def receive(
        self,
        to: "Destination",
        name: str,
        declared_bytes: int | None,
        files: Callable[[Reservation, OnProgress], Awaitable[list[IngestedFile]]],
    ) -> list[FileRow]:
        """One single-request upload into `to`, all or none: its quota held, the free
        space checked before a byte is read, its `files` stored (given the quota and a
        progress callback), then recorded (`keep`). `name`: what the transfer is called
        while it runs; `declared_bytes`: the body's length, when told."""
        with (
            self.reserve(to) as quota,
            self.progress.track(name, declared_bytes, to.owner) as transfer,
        ):
            self.check_room(declared_bytes)
            stored = await files(quota, transfer.add)
            return await self.keep(
                stored, to.owner, to.request_id, folder=to.folder, replace=to.replace
            )

    async def into_folder(
        self, to: "Destination", folder: str | None, *, replace: bool = False
    ) -> "Destination":
        """`to`, placed in the account's folder `folder` (its id as URLs and JSON spell
        it: None or "root" for the root), replacing same-named files when `replace`.
        Checked before a byte is read: a folder that is unknown, or another account's,
        is a 404 in words, and nothing is stored."""
        folder_id = catalog_id(folder)
        if await get_folder(self.db, to.owner, folder_id) is None:
            raise IngestError(404, f"no such folder: {folder}; nothing was stored")
        return dataclasses.replace(to, folder=folder_id, replace=replace)

    def reserve(self, to: "Destination") -> Reservation:
        """A hold on `to`'s quota for one upload, given back when it ends (its rows or
        its resumable upload's record count the bytes by then)."""
        return self.quotas.reserve(to.owner, whose=to.whose, unlimited=to.unlimited)

    async def keep(
        self,
        files: list[IngestedFile],
        owner: str,
        request_id: str | None = None,
        *,
        folder: str = "",
        replace: bool = False,
    ) -> list[FileRow]:
        """Record committed blobs for `owner`, all or none; on failure the blobs go too.
        Each goes into `folder` ('' the root), or the folders under it that its
        `directory` names (made where missing); a taken name takes the next free
        "name (2).ext", or with `replace` the file of that name goes.

        Shielded: if this request is cancelled meanwhile, the recording still runs
        to its end, so a row never outlives its blob nor a blob its failed row.
        A catalog that cannot grow (SQLITE_FULL) is a 507, like a full blob store; an
        owner removed while the upload ran is a 410 (the catalog refuses the row)."""
        try:
            return await asyncio.shield(
                self.spawn(self._record(files, owner, request_id, folder, replace))
            )
        except FolderError as exc:
            raise IngestError(exc.status, exc.message + ": nothing was kept") from exc
        except Exception as exc:
            if is_folder_gone(exc):
                raise IngestError(
                    404, "the folder this upload was for has been removed: nothing was kept"
                ) from exc
            if is_disk_full(exc):
                raise IngestError(
                    507, "the server is out of space: the upload could not be recorded"
                ) from exc
            if is_owner_gone(exc):
                raise IngestError(
                    410, "the account this upload was for has been removed: nothing was kept"
                ) from exc
            raise

    async def _record(
        self,
        files: list[IngestedFile],
        owner: str,
        request_id: str | None,
        folder: str,
        replace: bool,
    ) -> list[FileRow]:
        replaced: list[str] = []
        try:
            places: dict[tuple[str, ...], str] = {(): folder}
            for directory in {f.directory for f in files} - {()}:
                places[directory] = await ensure_path(self.db, owner, folder, directory)
            rows = await add_files(
                self.db,
                files,
                owner,
                request_id,
                folders=[places[f.directory] for f in files],
                replace=replace,
                replaced=replaced,
            )
        except BaseException:
            await self.store.remove([f.id for f in files])
            raise
        if replaced:
            await self.store.remove(replaced)
        self.relay.publish(files_changed(owner), "added")
        if request_id is not None:
            self.relay.publish(requests_changed(owner), "received")
        if self.stored is not None:
            self.stored(rows)
        return rows

    def check_room(self, incoming_bytes: int | None, *, reuse_for: float = 0.25) -> None:
        """Refuse (507) before reading a byte when `incoming_bytes` (a declared body;
        None: not declared) would take the disk below the free-space floor.
        `reuse_for`: how old a free-space figure may be (app/storage/local/writer.py)."""
        try:
            self.store.check_room(incoming_bytes or 0, reuse_for=reuse_for)
        except LowOnSpace as exc:
            raise almost_out_of_space(exc) from None


@dataclass(frozen=True, slots=True)
class Incoming:
    """A request body as an engine reads it (app/server/body.py makes one)."""

    chunks: AsyncIterator[bytes]
    # Its Content-Length; None when not declared (chunked, or HTTP/2 without one).
    declared_bytes: int | None
    # Whether its client went away: Stario can end a stream normally when it leaves.
    cut_off: Callable[[], bool]
    # Whether it may hold a byte at all (a Content-Length above 0, or chunked).
    carries_bytes: bool


def cover(quota: Reservation, name: str, more: int) -> None:
    """Hold `more` bytes of the file `name` against `quota`; refused in words (413)."""
    try:
        quota.cover(more)
    except QuotaExceeded as exc:
        raise over_quota(name, exc) from None


class UnfinishedUploads(Protocol):
    """A file request's hold on the resumable uploads made through its link
    (app/features/requests): how many may wait unfinished, and the files they become."""

    def start(self, counts_as_file: bool) -> Callable[[], None]:
        """Before a new upload's row is written: IngestError when the link holds as
        many unfinished uploads as it may (or, `counts_as_file`, when the request has
        no room for one more file). Returns what to call once the row is written (or
        was not): from then on the catalog counts it."""
        ...

    def confirm(self) -> None:
        """After a new upload's row is written: IngestError when the request stopped
        taking files meanwhile (a close that listed its uploads before the row was
        there would leave it behind)."""
        ...

    def finish(self, upload_id: str) -> None:
        """Before a complete upload becomes a file: IngestError when the request takes
        no more files."""
        ...


@dataclass(frozen=True, slots=True)
class Destination:
    """Whose space an upload goes into and what limits it. An account's own upload is
    `Destination.of_account`; a file request (app/features/requests) passes its
    owner, its per-file cap, its id and `claim_files`."""

    owner: str
    max_file_bytes: int
    # The file request the files arrive through; its uploader sees no id or link.
    request_id: str | None = None
    # Called with how many files are about to arrive, before their bytes; may refuse
    # (IngestError). Raw bodies claim 1, file signals all of theirs, forms each part.
    claim_files: Callable[[int], None] | None = None
    # Whose quota a refusal names ("your" for the account itself).
    whose: str = "your"
    # The account is known to have no quota: its uploads read no usage.
    unlimited: bool = False
    # Through a file request: its bound on unfinished resumable uploads.
    unfinished: UnfinishedUploads | None = None
    # The folder the files go into ('' the account's root; app/folders/), and whether
    # a file of the same name there is replaced rather than kept beside a "name (2)".
    folder: str = ""
    replace: bool = False

    @classmethod
    def of_account(cls, uploads: Uploads, account: Account) -> "Destination":
        unlimited = account.quota(uploads.config.default_quota) is None
        return cls(account.id, uploads.config.max_file_bytes, unlimited=unlimited)

    @property
    def public(self) -> bool:
        return self.request_id is not None
