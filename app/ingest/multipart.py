"""multipart/form-data, streamed: python-multipart's push parser turns body chunks into
part events, and every file part is fed to its own `Ingest` as the bytes arrive.

Nothing is spooled: the only copy on disk is the pipeline's own temp file. A form is
atomic: on any failure every file of the request is removed.
"""

from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from email.message import Message

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser
from stario.exceptions import ClientDisconnected, RequestBodyError

from app.accounts.quotas import Reservation
from app.ingest.names import (
    BadPath,
    Placed,
    filename_from_disposition,
    holds_path,
    relative_path,
)
from app.ingest.pipeline import Ingest, IngestedFile, IngestError, body_error
from app.storage.store import Store

MAX_PARTS = 100
MAX_PART_HEADER_BYTES = 8 * 1024
MAX_FIELD_BYTES = 64 * 1024
# RFC 2046 caps a boundary at 70 characters.
MAX_BOUNDARY_CHARS = 70


MANY_FILES_ONE_PATH = (
    "?path= names one file, and this form holds several: leave ?path= out and put each"
    " file's relative path in its filename"
)


@dataclass(slots=True)
class ReceivedForm:
    files: list[IngestedFile] = field(default_factory=list)
    fields: dict[str, str | list[str]] = field(default_factory=dict)


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a multipart Content-Type, or a 400 saying what is wrong."""
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise IngestError(400, "the multipart body has no boundary in its Content-Type")
    if len(boundary) > MAX_BOUNDARY_CHARS or not boundary.isascii():
        raise IngestError(400, "the multipart boundary is malformed")
    return boundary.encode("ascii")


def _browser_unescape(name: str) -> str:
    # Browsers percent-escape exactly these three in multipart names and filenames.
    return name.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


class _PartEvents:
    """Collects what the parser reports during one `write`; handled after it returns,
    because the parser's callbacks cannot await."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self._field = b""
        self._value = b""
        self.ended = False

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self.headers, self.header_bytes = [], 0

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]
        self._count(end - start)

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]
        self._count(end - start)

    def _count(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > MAX_PART_HEADER_BYTES:
            raise IngestError(413, "a form part's headers are larger than 8 KiB")

    def _header_end(self) -> None:
        self.headers.append((self._field.lower(), self._value))
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        self.events.append(("headers", self.headers))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        # A view, not a copy: most of a big upload's chunks are one part's data.
        if end - start == len(data):
            self.events.append(("data", data))
        elif end > start:
            self.events.append(("data", memoryview(data)[start:end]))

    def _part_end(self) -> None:
        self.events.append(("end", None))

    def _end(self) -> None:
        self.ended = True


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class _FormIngest:
    def __init__(
        self,
        store: Store,
        max_file_bytes: int,
        on_progress: Callable[[str, int], None] | None = None,
        quota: Reservation | None = None,
        claim_files: Callable[[int], None] | None = None,
        placed: Placed | None = None,
    ) -> None:
        self.claim_files = claim_files
        self.placed = placed
        self.store = store
        self.max_file_bytes = max_file_bytes
        self.on_progress = on_progress
        self.quota = quota
        self.form = ReceivedForm()
        self.parts = 0
        self.field_bytes = 0
        self.ingest: Ingest | None = None
        self.field_name: str | None = None
        self.field_value = bytearray()

    async def handle(self, kind: str, payload: object) -> None:
        if kind == "headers":
            assert isinstance(payload, list)
            self._start_part(payload)
        elif kind == "data":
            assert isinstance(payload, bytes | memoryview)
            if self.ingest is not None:
                await self.ingest.feed(payload)
            elif self.field_name is not None:
                self.field_bytes += len(payload)
                if self.field_bytes > MAX_FIELD_BYTES:
                    raise IngestError(413, "the form's text fields are larger than 64 KiB")
                self.field_value += payload
        elif kind == "end":
            await self._end_part()

    def _start_part(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise IngestError(413, f"the form has more than {MAX_PARTS} parts")
        found = dict(headers)
        disposition = _decode(found.get(b"content-disposition", b""))
        if not disposition.lower().startswith("form-data"):
            raise IngestError(400, "a form part has no Content-Disposition: form-data header")
        filename = filename_from_disposition(disposition)
        if filename is not None:
            if filename == "":
                # An empty file input: the browser sends a nameless, empty part.
                self.field_name = None
                return
            directory, file_name = self._place(_browser_unescape(filename))
            if self.claim_files is not None:
                self.claim_files(1)  # before a byte of this file is read
            self.ingest = Ingest(
                self.store,
                name=file_name,
                directory=directory,
                declared_mime=_decode(found.get(b"content-type", b"")) or None,
                max_bytes=self.max_file_bytes,
                on_progress=self.on_progress,
                quota=self.quota,
            )
            return
        message = Message()
        message["content-disposition"] = disposition
        name = message.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise IngestError(400, "a form field has no name")
        self.field_name = _browser_unescape(name)
        self.field_value = bytearray()

    def _place(self, filename: str) -> Placed:
        """Where a file part goes: the request's one `?path=` (a form of one file), or
        the relative path in its filename ("a/b/c.txt", as browsers send the files of
        a chosen folder), or just its name."""
        if self.placed is not None:
            if self.form.files or self.ingest is not None:
                raise IngestError(400, MANY_FILES_ONE_PATH)
            return self.placed
        if not holds_path(filename):
            return (), filename
        try:
            return relative_path(filename)
        except BadPath as exc:
            raise IngestError(400, str(exc)) from None

    async def _end_part(self) -> None:
        if self.ingest is not None:
            ingest, self.ingest = self.ingest, None
            try:
                self.form.files.append(await ingest.finish())
            except BaseException:
                await ingest.abort()
                raise
        elif self.field_name is not None:
            try:
                value = self.field_value.decode("utf-8")
            except UnicodeDecodeError:
                raise IngestError(400, f"form field {self.field_name!r} is not UTF-8") from None
            existing = self.form.fields.get(self.field_name)
            if existing is None:
                self.form.fields[self.field_name] = value
            elif isinstance(existing, list):
                existing.append(value)
            else:
                self.form.fields[self.field_name] = [existing, value]
            self.field_name = None

    async def discard_all(self) -> None:
        if self.ingest is not None:
            await self.ingest.abort()
        await self.store.remove([f.id for f in self.form.files])


async def ingest_multipart(
    store: Store,
    chunks: AsyncIterable[bytes],
    *,
    boundary: bytes,
    max_file_bytes: int,
    expected_bytes: int | None = None,
    cut_off: Callable[[], bool] | None = None,
    on_progress: Callable[[str, int], None] | None = None,
    quota: Reservation | None = None,
    claim_files: Callable[[int], None] | None = None,
    placed: Placed | None = None,
) -> ReceivedForm:
    """Every file part through the pipeline; committed blobs, not yet recorded.
    `on_progress` and `quota` are handed to each file's `Ingest` (the Content-Length
    of a form includes its framing, so a form's quota is held as its files' bytes
    arrive rather than from Content-Length). `claim_files(1)` is called as each file
    part begins, before its bytes, and may refuse it. `placed`: where the form's one
    file goes (a request's `?path=`); a second file part is refused."""
    events = _PartEvents()
    parser = MultipartParser(boundary, events.callbacks(), max_header_size=MAX_PART_HEADER_BYTES)  # type: ignore[arg-type]
    form = _FormIngest(store, max_file_bytes, on_progress, quota, claim_files, placed)
    received = 0
    try:
        try:
            async for chunk in chunks:
                received += len(chunk)
                if events.ended:
                    continue  # an epilogue after the closing boundary carries nothing
                try:
                    parser.write(chunk)
                except FormParserError as exc:
                    raise IngestError(400, f"the multipart body is malformed: {exc}") from exc
                pending, events.events = events.events, []
                for kind, payload in pending:
                    await form.handle(kind, payload)
        except (RequestBodyError, ClientDisconnected) as exc:
            raise body_error(exc) from exc
        if (cut_off is not None and cut_off()) or (
            expected_bytes is not None and received != expected_bytes
        ):
            raise IngestError(400, "the form was cut off: the client went away")
        if not events.ended:
            raise IngestError(400, "the multipart body ended before its closing boundary")
        if not form.form.files:
            raise IngestError(400, "the form has no file in it")
        return form.form
    except BaseException:
        await form.discard_all()
        raise
