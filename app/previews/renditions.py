"""Previews of a whole file, shown in the page: what kind of preview a file gets, the
first 1 MiB of a text file, and the full-size image renditions browsers need.

An image is shown as it is stored whenever a browser can: only an image that needs
it gets a rendition (a JPEG at most `RENDITION_EDGE` on its long side): an EXIF
orientation other than upright, a format browsers do not show (HEIC/HEIF, TIFF), or
more pixels than a page should decode (`MAX_ORIGINAL_PIXELS`). Renditions are made
in the thumbnails' worker processes (app/previews/pool.py) and kept beside the
thumbnail (`<id>.view.jpg`); an image whose original serves is marked once
(`<id>.view.same`), one that gave no rendition too (`<id>.view.none`), so the
question is asked of each file once.
"""

from __future__ import annotations

import asyncio
import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from stario import Writer

from app.files.store import FileRow
from app.previews.pool import WorkerPool
from app.storage.store import Store

type PreviewKind = Literal["image", "video", "audio", "pdf", "text", "other"]
type ImageSource = Literal["original", "rendition", "none"]

# The text preview: the first this many bytes, decoded.
TEXT_PREVIEW_BYTES = 1024 * 1024
# A NUL in the first bytes means binary: shown as "other", not as mojibake.
BINARY_PROBE_BYTES = 8192
# A rendition's long side; and the most pixels an original is shown with as it is
# (a 12-megapixel phone photo is shown as stored; a 50-megapixel scan is not).
MAX_ORIGINAL_PIXELS = 24_000_000

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
            width, height = image.size
            if width * height > MAX_ORIGINAL_PIXELS:
                return True
            orientation = image.getexif().get(0x0112, 1)
            return orientation not in (0, 1)
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
    """Full-size image previews: which bytes show an image (`source`), made once."""

    store: Store
    pool: WorkerPool
    # One making per file at a time; a second viewer waits for the first's.
    making: dict[str, asyncio.Future[ImageSource]] | None = None

    async def source(self, row: FileRow) -> ImageSource:
        """ "original" (serve the file itself), "rendition" (`rendition_path`), or
        "none" (an image no browser shows and no rendition could be made of)."""
        known = await asyncio.to_thread(_known_source, self.store, row.id)
        if known is not None:
            return known
        if self.making is None:
            self.making = {}
        pending = self.making.get(row.id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ImageSource] = asyncio.get_running_loop().create_future()
        self.making[row.id] = future
        try:
            found = await self._find(row)
            future.set_result(found)
            return found
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # read: no "never retrieved" warning if nobody waits
            raise
        finally:
            self.making.pop(row.id, None)

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
            made = await self.pool.run(
                str(source), str(target), "rendition", account=f"preview:{row.owner or ''}"
            )
        if made:
            return "rendition"
        if mime in CONVERTED_IMAGES:
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
