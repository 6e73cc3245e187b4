"""Previews of a whole file, shown in the page: what kind of preview a file gets, the
first 1 MiB of a text file, and the full-size image renditions browsers need.

An image is shown as it is stored whenever a browser can: only an image that needs
it gets a rendition (a JPEG at most `RENDITION_EDGE` on its long side): an EXIF
orientation other than upright, a format browsers do not show (HEIC/HEIF, TIFF), or
more pixels than a page should decode (make.py `MAX_ORIGINAL_PIXELS`). Renditions are made
in the thumbnails' worker processes (app/previews/pool.py) and kept beside the
thumbnail (`<id>.view.jpg`); an image whose original serves is marked once
(`<id>.view.same`), one that gave no rendition too (`<id>.view.none`), so the
question is asked of each file once.

The question is asked ahead, right after an upload is stored (`Renditions.stored`):
a worker looks at the image's header and leaves either the rendition or the marker,
so the first preview finds its answer ready. That work waits behind every thumbnail
(the pool's later lane) and is bounded: at most `MAX_AHEAD` files at once, none
while the workers have `BUSY_WAITING` jobs waiting; a file past either is asked
about when first previewed, as before. Someone previewing a file whose answer is
still waiting moves it into the queue of work someone waits for (`promote`).
"""

from __future__ import annotations

import asyncio
import codecs
import sqlite3
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from stario import Writer

from app.catalog.protocol import CatalogUnavailable, Database
from app.files.store import FileRow, get_file
from app.previews.make import needs_rendition_of
from app.previews.pool import WorkerPool
from app.storage.store import Store

type PreviewKind = Literal["image", "video", "audio", "pdf", "text", "other"]
type ImageSource = Literal["original", "rendition", "none"]

# The text preview: the first this many bytes, decoded.
TEXT_PREVIEW_BYTES = 1024 * 1024
# A NUL in the first bytes means binary: shown as "other", not as mojibake.
BINARY_PROBE_BYTES = 8192
# Files whose rendition (or marker) is being made ahead at once, at most; an upload
# past it (a burst of 1,000 photos) is looked at when first previewed instead.
MAX_AHEAD = 16
# Nothing is made ahead while this many jobs wait for the workers (thumbnails, and
# previews someone waits for): they come first.
BUSY_WAITING = 32

# Browsers show these as they are (when upright and not too large).
BROWSER_IMAGES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
     "image/x-icon"}
)  # fmt: skip
# Browsers (but Safari) show none of these: always a rendition.
CONVERTED_IMAGES = frozenset({"image/heic", "image/heif", "image/tiff"})
VIDEO = frozenset({"video/mp4", "video/webm", "video/quicktime", "video/3gpp"})
AUDIO = frozenset({"audio/mpeg", "audio/ogg", "audio/wav", "audio/flac", "audio/mp4"})
PDF = "application/pdf"
# Shown as their source, never rendered: markup and script are text here.
TEXT_TYPES = frozenset(
    {"application/json", "application/xml", "image/svg+xml", "application/javascript",
     "application/x-javascript", "application/ecmascript", "application/xhtml+xml",
     "application/x-sh", "application/toml", "application/yaml", "application/x-yaml",
     "application/sql"}
)  # fmt: skip
# Source and config files the sniffer may call octet-stream (or text/plain).
TEXT_EXTENSIONS = frozenset(
    {"txt", "md", "markdown", "rst", "csv", "tsv", "log", "ini", "cfg", "conf", "toml",
     "yaml", "yml", "json", "xml", "html", "htm", "svg", "css", "js", "mjs", "cjs", "ts",
     "tsx", "jsx", "py", "pyi", "rb", "go", "rs", "c", "h", "cc", "cpp", "hpp", "java",
     "kt", "swift", "cs", "php", "pl", "lua", "sh", "bash", "zsh", "fish", "ps1", "sql",
     "r", "scala", "hs", "ex", "exs", "erl", "clj", "el", "vim", "tex", "diff", "patch",
     "env", "gitignore", "dockerfile", "makefile", "properties", "gradle", "lock"}
)  # fmt: skip


def preview_kind(row: FileRow) -> PreviewKind:
    """How a file is previewed, by the type sniffed at upload (and, for text that the
    sniffer could not name, the name's extension)."""
    mime = row.mime.split(";")[0].strip().lower()
    if mime in BROWSER_IMAGES or mime in CONVERTED_IMAGES:
        return "image"
    if mime in VIDEO:
        return "video"
    if mime in AUDIO:
        return "audio"
    if mime == PDF:
        return "pdf"
    if mime.startswith("text/") or mime in TEXT_TYPES:
        return "text"
    extension = row.name.rpartition(".")[2].lower() if "." in row.name else row.name.lower()
    if mime in ("application/octet-stream", "") and extension in TEXT_EXTENSIONS:
        return "text"
    return "other"


@dataclass(frozen=True, slots=True)
class TextHead:
    """The start of a text file: `lines` decoded (invalid UTF-8 replaced), `cut` when
    the file goes on past them, `binary` when it is not text after all."""

    lines: list[str]
    cut: bool
    binary: bool = False


class _Collector:
    """Enough of a Writer for `OpenBlob.send` to hand its bytes to us."""

    closing = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))

    async def drain(self) -> None:
        return None

    def abort(self) -> None:
        self.closing = True


def decode_text(data: bytes, cut: bool) -> TextHead:
    """`data`, the file's first bytes: as lines, or binary. A cut may split a UTF-8
    sequence; an incremental decoder leaves its start out rather than replacing it."""
    if b"\0" in data[:BINARY_PROBE_BYTES]:
        return TextHead([], cut, binary=True)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text = decoder.decode(data, final=not cut)
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "" and len(lines) > 1:
        lines.pop()
    return TextHead([line.removesuffix("\r") for line in lines], cut)


async def read_text_head(store: Store, row: FileRow) -> TextHead | None:
    """The first `TEXT_PREVIEW_BYTES` of a stored file; None when its contents are
    missing."""
    blob = await store.open(row.id)
    if blob is None:
        return None
    try:
        length = min(blob.size, TEXT_PREVIEW_BYTES)
        collector = _Collector()
        if length and not await blob.send(cast(Writer, collector), 0, length):
            return None
        return decode_text(b"".join(collector.parts), blob.size > TEXT_PREVIEW_BYTES)
    finally:
        await blob.close()


def needs_rendition(source: str, mime: str) -> bool:
    """Whether the image at `source` needs a rendition to be shown (see the module's
    docstring). Reads the header only (a thread of the server's process: Pillow's
    `open` decodes no pixels). An image Pillow cannot read is left to the browser."""
    if mime in CONVERTED_IMAGES:
        return True
    from PIL import Image

    try:
        with Image.open(source) as image:
            return needs_rendition_of(image)
    except Exception:
        return False


def rendition_path(store: Store, file_id: str) -> Path:
    thumbnail = store.thumbnail_path_of(file_id)
    return thumbnail.with_name(f"{file_id}.view.jpg")


def _marker(store: Store, file_id: str, end: str) -> Path:
    return store.thumbnail_path_of(file_id).with_name(f"{file_id}.view.{end}")


def _known_source(store: Store, file_id: str) -> ImageSource | None:
    if rendition_path(store, file_id).exists():
        return "rendition"
    if _marker(store, file_id, "same").exists():
        return "original"
    if _marker(store, file_id, "none").exists():
        return "none"
    return None


def _mark(store: Store, file_id: str, end: str) -> None:
    path = _marker(store, file_id, end)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


@dataclass(slots=True)
class Renditions:
    """Full-size image previews: which bytes show an image (`source`), made once,
    ahead when it can be (`stored`)."""

    store: Store
    pool: WorkerPool
    # To learn that a file made ahead was deleted meanwhile (its rendition goes too).
    db: Database | None = None
    # One making per file at a time; a second viewer waits for the first's.
    making: dict[str, asyncio.Future[ImageSource]] = field(default_factory=dict)
    # The files being made ahead (each also in `making`).
    ahead: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    made_ahead: int = 0
    skipped_ahead: int = 0
    failed_ahead: int = 0

    def stored(self, rows: list[FileRow]) -> None:
        """After an upload's rows committed (and their thumbnails were queued): make
        each image's rendition, or its marker, ahead of any preview."""
        for row in rows:
            if preview_kind(row) == "image" and row.owner is not None:
                self.make_ahead(row)

    def make_ahead(self, row: FileRow) -> bool:
        """Queue `row`'s answer in the workers' later lane, unless it is on its way
        already or the bounds say no (see the module's docstring); True if queued."""
        if row.id in self.making:
            return False
        if len(self.ahead) >= MAX_AHEAD or self.pool.queue.waiting_now() >= BUSY_WAITING:
            self.skipped_ahead += 1
            return False
        task = asyncio.get_running_loop().create_task(
            self._ahead(row), name=f"stowage.rendition.{row.id}"
        )
        self.ahead[row.id] = task
        task.add_done_callback(lambda _: self.ahead.pop(row.id, None))
        return True

    async def _ahead(self, row: FileRow) -> None:
        try:
            await self._once(row.id, self._make_ahead(row))
        except (OSError, sqlite3.Error, CatalogUnavailable):
            # A full disk or a catalog error: the first preview asks again.
            self.failed_ahead += 1

    async def _make_ahead(self, row: FileRow) -> ImageSource:
        target = rendition_path(self.store, row.id)
        async with self.store.local_copy(row.id) as source:
            if source is None:
                return "none"  # deleted meanwhile, or its contents are missing
            made = await self.pool.run(str(source), str(target), "view", later=True)
        found = await self._after(row, made)
        # Deleted while it was being made: the delete removed nothing yet to remove.
        if self.db is not None and await get_file(self.db, row.id) is None:
            await self.store.remove_derived([row.id])
        else:
            self.made_ahead += 1
        return found

    async def source(self, row: FileRow) -> ImageSource:
        """ "original" (serve the file itself), "rendition" (`rendition_path`), or
        "none" (an image no browser shows and no rendition could be made of)."""
        known = await asyncio.to_thread(_known_source, self.store, row.id)
        if known is not None:
            return known
        pending = self.making.get(row.id)
        if pending is not None:
            # Made ahead and maybe still behind every thumbnail: someone waits now.
            self.pool.promote(str(rendition_path(self.store, row.id)), _viewer(row))
            return await asyncio.shield(pending)
        return await self._once(row.id, self._find(row))

    async def _once(self, file_id: str, finding: Awaitable[ImageSource]) -> ImageSource:
        """`finding`'s answer, which whoever asks about `file_id` meanwhile waits for."""
        future: asyncio.Future[ImageSource] = asyncio.get_running_loop().create_future()
        self.making[file_id] = future
        try:
            found = await finding
            future.set_result(found)
            return found
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # read: no "never retrieved" warning if nobody waits
            raise
        finally:
            self.making.pop(file_id, None)

    async def _find(self, row: FileRow) -> ImageSource:
        mime = row.mime.split(";")[0].strip().lower()
        async with self.store.local_copy(row.id) as source:
            if source is None:
                return "none"
            if not await asyncio.to_thread(needs_rendition, str(source), mime):
                await asyncio.to_thread(_mark, self.store, row.id, "same")
                return "original"
            target = rendition_path(self.store, row.id)
            # Its own turn in the workers' queue: a preview someone is waiting for does
            # not queue behind that account's backlog of thumbnails.
            made = await self.pool.run(str(source), str(target), "rendition", account=_viewer(row))
        return await self._after(row, made)

    async def _after(self, row: FileRow, made: bool) -> ImageSource:
        """What a worker's job left: the rendition or the marker it made, else the
        marker of its failure (a format no browser shows has none; any other shows
        as it is)."""
        if made:
            known = await asyncio.to_thread(_known_source, self.store, row.id)
            if known is not None:
                return known
        if row.mime.split(";")[0].strip().lower() in CONVERTED_IMAGES:
            await asyncio.to_thread(_mark, self.store, row.id, "none")
            return "none"
        await asyncio.to_thread(_mark, self.store, row.id, "same")
        return "original"

    async def read(self, file_id: str) -> bytes | None:
        def read() -> bytes | None:
            try:
                return rendition_path(self.store, file_id).read_bytes()
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(read)

    async def close(self) -> None:
        """Stop making ahead (before the pool closes)."""
        for task in list(self.ahead.values()):
            task.cancel()
        await asyncio.gather(*self.ahead.values(), return_exceptions=True)


def _viewer(row: FileRow) -> str:
    """The workers' queue of previews someone waits for, per account."""
    return f"preview:{row.owner or ''}"
