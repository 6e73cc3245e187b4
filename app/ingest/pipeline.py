"""The one way bytes become a stored file.

Every transport (raw body, multipart part, file signal, later tus and S3) turns
its wire format into chunks and feeds an `Ingest`. Limits, hashing, type
sniffing, durable storage and clean-up live here and nowhere else.
"""

import hashlib
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass

from stario.exceptions import ClientDisconnected, RequestBodyError

from app.accounts.quotas import QuotaExceeded, Reservation
from app.common.units import human_bytes
from app.ingest.names import display_name
from app.ingest.sniff import OCTET_STREAM, SNIFF_BYTES, sniff
from app.storage.errors import LowOnSpace, StorageFull, StoreUnavailable
from app.storage.store import Store


class IngestError(Exception):
    """An upload refused or failed; `status` and `message` are what the client is told.
    `retry_after`: seconds after which the same upload may go through (a refusal that
    is about now, not about the file), sent as Retry-After."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class storage_errors:  # noqa: N801 - used as `with storage_errors():`, like a function
    """Disk or object-store trouble, in words the uploader can act on. A class rather
    than a @contextmanager: it wraps every chunk an upload feeds, and a generator-based
    context manager costs several times more per use."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        if exc is None or not isinstance(exc, OSError):
            return
        if isinstance(exc, LowOnSpace):
            raise almost_out_of_space(exc) from exc
        if isinstance(exc, StorageFull):
            raise IngestError(507, "the server has no space left for uploads") from exc
        if isinstance(exc, StoreUnavailable):
            raise IngestError(503, f"{exc}; nothing was kept, try again in a moment") from exc
        raise IngestError(500, "the server could not store the upload") from exc


def almost_out_of_space(exc: LowOnSpace) -> IngestError:
    return IngestError(
        507,
        f"the server is almost out of space: {human_bytes(max(exc.free, 0))} free, and it"
        f" keeps {human_bytes(exc.floor)} free for its catalog; this upload does not fit",
    )


def too_large(name: str, limit: int) -> IngestError:
    return IngestError(413, f"{name} is larger than the {human_bytes(limit)} limit")


class OverQuota(IngestError):
    """Refused because the account's quota has no room (413 here; WebDAV answers 507)."""


def over_quota(what: str, exc: QuotaExceeded, *, several: bool = False) -> IngestError:
    held = (
        f" ({human_bytes(exc.unfinished)} of it held by unfinished resumable uploads, given"
        " back when they are cancelled or expire)"
        if exc.unfinished
        else ""
    )
    return OverQuota(
        413,
        f"over {exc.whose} quota: {human_bytes(exc.used)} of {human_bytes(exc.quota)} used"
        f"{held}; {what} {'do' if several else 'does'} not fit",
    )


def declared_type(value: str | None) -> str | None:
    """A client's Content-Type, reduced to `type/subtype`, or None when absent or odd."""
    if not value:
        return None
    media_type = value.split(";", 1)[0].strip().lower()
    kind, slash, sub = media_type.partition("/")
    if not slash or not kind or not sub or len(media_type) > 127:
        return None
    if not all(c.isalnum() or c in "!#$&-^_.+" for c in kind + sub):
        return None
    return media_type


@dataclass(frozen=True, slots=True)
class IngestedFile:
    """A blob durably committed to the store; the catalog row is written after this."""

    id: str
    name: str
    size: int
    sha256: str
    mime: str
    declared_mime: str | None
    # Folders under the upload's folder it goes into ("a", "b" for a/b/), from a
    # relative path the client gave (app/ingest/names.py `relative_path`).
    directory: tuple[str, ...] = ()


class Ingest:
    """One file on its way in. `feed` chunks, then `finish`; `abort` on any failure.

    `expected_bytes` is what the transport was promised (Content-Length of a raw
    body): more than `max_bytes` is refused before a byte is read, and fewer at
    the end means the client was cut off.

    `on_progress(name, count)`, when given, hears of every chunk accepted: the
    file's display name and the chunk's length (see `app/ingest/progress.py`).

    `directory`: the folders under the upload's folder it goes into (from a relative
    path the client gave, app/ingest/names.py `relative_path`).

    `quota`, when given, is the account's space for this upload: `expected_bytes`
    are held before a byte is read, and every byte beyond them before it is written,
    so an upload is refused the moment it passes the quota.
    """

    def __init__(
        self,
        store: Store,
        *,
        name: str,
        declared_mime: str | None,
        max_bytes: int,
        expected_bytes: int | None = None,
        on_progress: Callable[[str, int], None] | None = None,
        quota: Reservation | None = None,
        directory: tuple[str, ...] = (),
    ) -> None:
        self.name = display_name(name)
        self.directory = directory
        self.declared_mime = declared_type(declared_mime)
        self.max_bytes = max_bytes
        self.expected_bytes = expected_bytes
        if expected_bytes is not None and expected_bytes > max_bytes:
            raise too_large(self.name, max_bytes)
        self._quota = quota
        self._counted = 0
        if expected_bytes:
            self._count(expected_bytes)
        self._store = store
        self._digest = hashlib.sha256()
        self._head = b""
        self._blob = store.create(self._digest)
        self._on_progress = on_progress
        self.received = 0

    def _count(self, total: int) -> None:
        """Hold quota for `total` bytes of this file."""
        if self._quota is not None and total > self._counted:
            try:
                self._quota.cover(total - self._counted)
            except QuotaExceeded as exc:
                raise over_quota(self.name, exc) from None
            self._counted = total

    async def feed(self, chunk: bytes | memoryview) -> None:
        if not chunk:
            return
        self.received += len(chunk)
        if self.received > self.max_bytes:
            raise too_large(self.name, self.max_bytes)
        self._count(self.received)
        if len(self._head) < SNIFF_BYTES:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
        with storage_errors():
            await self._blob.write(chunk)
        if self._on_progress is not None:
            self._on_progress(self.name, len(chunk))

    async def finish(self) -> IngestedFile:
        if self.expected_bytes is not None and self.received != self.expected_bytes:
            raise IngestError(
                400,
                f"{self.name} was cut off after {self.received} of {self.expected_bytes} bytes",
            )
        with storage_errors():
            await self._blob.commit()
        return IngestedFile(
            id=self._blob.id,
            name=self.name,
            size=self.received,
            sha256=self._digest.hexdigest(),
            mime=sniff(self._head) if self.received else OCTET_STREAM,
            declared_mime=self.declared_mime,
            directory=self.directory,
        )

    async def abort(self) -> None:
        await self._blob.discard()


def body_error(exc: RequestBodyError | ClientDisconnected) -> IngestError:
    """What the server's own body errors and a vanished client mean to the uploader."""
    if isinstance(exc, RequestBodyError):
        if exc.status_code == 413:
            return IngestError(413, "the request body is larger than the server accepts")
        if exc.status_code == 408:
            return IngestError(408, "the upload stalled: no bytes arrived for too long")
        return IngestError(exc.status_code, str(exc.detail or "bad request body"))
    return IngestError(400, "the client went away before the upload finished")


async def ingest_stream(
    ingest: Ingest,
    chunks: AsyncIterable[bytes],
    *,
    cut_off: Callable[[], bool] | None = None,
) -> IngestedFile:
    """Feed a whole body into `ingest` and commit it; on any failure nothing is kept.

    `cut_off` is called after the body ends: Stario can end a stream normally when
    the client leaves, so the transport says whether that happened.
    """
    try:
        try:
            async for chunk in chunks:
                await ingest.feed(chunk)
        except (RequestBodyError, ClientDisconnected) as exc:
            raise body_error(exc) from exc
        if cut_off is not None and cut_off():
            raise IngestError(400, f"{ingest.name} was cut off: the client went away")
        return await ingest.finish()
    except BaseException:
        await ingest.abort()
        raise
