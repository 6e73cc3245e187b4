"""The byte layout of a stored (uncompressed) ZIP of stored files, made by `stream-zip`.

Every byte of ZIP structure comes from the library; this module only remembers where
each member's raw bytes sit in its output. With sizes and CRC-32s given up front
(`NO_COMPRESSION_64(size, crc)`) stream-zip writes no data descriptors and no byte of
its output depends on anything but the names, times, sizes and CRC-32s, so the layout
is a short list of literal pieces (headers, central directory) and references to file
bytes. Any byte range of the archive is then served straight from the blobs, and the
total length is known before the first byte.
"""

import hashlib
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

READ_BYTES = 1024 * 1024
# Members are plain files, readable by everyone who unpacks them.
MEMBER_MODE = stat.S_IFREG | 0o644
# A local file header's fixed part (APPNOTE 4.3.7).
FIXED_HEADER = 30
OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # already unique and safe (see `archive_names`)
    path: str  # the blob on disk
    size: int
    modified: datetime  # aware, UTC
    sha256: str  # hex, the stored file's: part of the archive's ETag
    blob_id: str = ""  # what the download reads through the store (path: a local copy)


@dataclass(frozen=True, slots=True)
class Literal:
    start: int  # offset in the archive
    data: bytes


@dataclass(frozen=True, slots=True)
class FileBytes:
    start: int
    path: str
    size: int
    blob_id: str = ""


Piece = Literal | FileBytes


@dataclass(frozen=True, slots=True)
class Layout:
    pieces: tuple[Piece, ...]
    size: int
    digest: str  # sha256 over the members' sha256s and every literal piece: the ETag


class ChangedOnDisk(Exception):
    """A blob is missing or not the size its row says."""


def _read_all(path: str, size: int) -> Iterator[bytes]:
    fd = os.open(path, OPEN_FLAGS)
    try:
        offset = 0
        while offset < size:
            data = os.pread(fd, min(READ_BYTES, size - offset), offset)
            if not data:
                raise ChangedOnDisk(path)
            offset += len(data)
            yield data
        if os.pread(fd, 1, size):
            raise ChangedOnDisk(path)
    except FileNotFoundError:
        raise ChangedOnDisk(path) from None
    finally:
        os.close(fd)


def crc32_of(path: str, size: int) -> int:
    crc = 0
    for chunk in _read_all(path, size):
        crc = zlib.crc32(chunk, crc)
    return crc


def build_layout(members: list[Member]) -> Layout:
    """Blocking (run it on a thread): reads every member twice, once for its CRC-32
    and once through stream-zip, which checks each CRC-32 as it goes."""
    # Imported here: stream-zip brings pycryptodome (about 4 MB of a server's memory)
    # that only a server making archives needs.
    from stream_zip import NO_COMPRESSION_64, stream_zip

    crcs = [crc32_of(m.path, m.size) for m in members]
    files = (
        (m.name, m.modified, MEMBER_MODE, NO_COMPRESSION_64(m.size, crc), _read_all(m.path, m.size))
        for m, crc in zip(members, crcs, strict=True)
    )
    # Each member is its local header (30 fixed bytes giving the lengths of the name
    # and extra fields that follow, APPNOTE 4.3.7), then exactly its bytes; after the
    # last member comes the central directory, all of it literal.
    pieces: list[Piece] = []
    digest = hashlib.sha256()
    for member in members:
        digest.update(bytes.fromhex(member.sha256))
    position = 0  # archive offset of the next byte of output
    index = 0  # the member whose header or bytes come next
    data_left: int | None = None  # bytes of that member still to come; None: its header
    header = bytearray()
    trailer = bytearray()
    trailer_start = 0

    def add_literal(start: int, data: bytes) -> None:
        pieces.append(Literal(start, data))
        digest.update(len(data).to_bytes(8, "big") + data)

    for block in stream_zip(files, chunk_size=READ_BYTES):
        view = memoryview(block)
        while view:
            if index == len(members):
                if not trailer:
                    trailer_start = position
                trailer += view
                position += len(view)
                break
            if data_left is not None:
                taken = min(data_left, len(view))
            else:
                wanted = FIXED_HEADER
                if len(header) >= FIXED_HEADER:
                    wanted += int.from_bytes(header[26:28], "little")
                    wanted += int.from_bytes(header[28:30], "little")
                taken = min(wanted - len(header), len(view))
                header += view[:taken]
            view = view[taken:]
            position += taken
            if data_left is not None:
                data_left -= taken
            elif len(header) >= FIXED_HEADER and len(header) == FIXED_HEADER + int.from_bytes(
                header[26:28], "little"
            ) + int.from_bytes(header[28:30], "little"):
                add_literal(position - len(header), bytes(header))
                header.clear()
                member = members[index]
                pieces.append(FileBytes(position, member.path, member.size, member.blob_id))
                data_left = member.size
            if data_left == 0:
                data_left = None
                index += 1
    if trailer:
        add_literal(trailer_start, bytes(trailer))
    return Layout(tuple(pieces), position, digest.hexdigest())
