"""The byte layout of a stored (uncompressed) ZIP64 of stored files, kept compact.

A member stored with its size and CRC-32 known up front has no data descriptor, and no
byte of the ZIP's structure depends on anything but each member's name, time, size,
CRC-32 and offset. So a layout keeps only those, packed into a few flat arrays (about
60 bytes a member plus its name, against ~420 for a tuple of header objects), and
writes the headers and the central directory again for whichever byte range is asked
for; the members' bytes come straight from their blobs. The total length is known
before the first byte, and any range costs no more than the bytes it covers.

The structure written is exactly what `stream-zip`'s `NO_COMPRESSION_64` writes (with
its default extended timestamps): tests/http/test_archives.py compares the two byte for
byte, so the library stays the reference for every byte of ZIP structure.
"""

import hashlib
import os
import stat
import sys
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from struct import Struct

READ_BYTES = 1024 * 1024
# Members are plain files, readable by everyone who unpacks them; a name ending in "/"
# is a folder (an empty one survives the trip), with the MS-DOS directory bit too, as
# stream-zip writes it.
MEMBER_MODE = stat.S_IFREG | 0o644
DIRECTORY_MODE = stat.S_IFDIR | 0o755
_MS_DOS_DIRECTORY = 0x10
# A local file header's fixed part (APPNOTE 4.3.7).
FIXED_HEADER = 30
OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW

_LOCAL_HEADER = Struct("<4sHHH4sIIIHH")  # signature, then stream-zip's local_header_struct
_DIRECTORY_ENTRY = Struct("<4sBBBBHH4sIIIHHHHHII")
_LOCAL_ZIP64_EXTRA = Struct("<2sHQQ")
_DIRECTORY_ZIP64_EXTRA = Struct("<2sHQQQ")
_UNIX_TIME_EXTRA = Struct("<2sH1sl")
_DOS_TIME = Struct("<HH")
_ZIP64_END = Struct("<4sQHHIIQQQQ")
_ZIP64_LOCATOR = Struct("<4sIQI")
_END = Struct("<4sHHHHIIH")
_UTF8_FLAG = 0b0000100000000000
_VERSION = 45  # ZIP64
_SYSTEM_UNIX = 3
_ALL_ONES_32 = 0xFFFFFFFF
# Each member's fields after its name: the ZIP64 extra (sizes; the central one also
# the offset) and the extended timestamp.
LOCAL_EXTRA = _LOCAL_ZIP64_EXTRA.size + _UNIX_TIME_EXTRA.size
DIRECTORY_EXTRA = _DIRECTORY_ZIP64_EXTRA.size + _UNIX_TIME_EXTRA.size
END_RECORDS = _ZIP64_END.size + _ZIP64_LOCATOR.size + _END.size
# The central directory is written out this many entries at a time.
ENTRIES_PER_PIECE = 256


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # already unique and safe (see `archive_names`); "a/b/" is a folder
    path: str  # the blob on disk ('' for a folder)
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
    size: int
    blob_id: str
    index: int  # the member's place in the archive


Piece = Literal | FileBytes


@dataclass(frozen=True, slots=True)
class Recipe:
    """What lays an archive out again without reading a byte of its files: the ids in
    order and their CRC-32s (the rest comes from the rows), and the digest the result
    must have (a file renamed since gives another). It shares its layout's arrays."""

    blob_ids: bytes
    blob_ends: array
    crcs: array
    digest: str

    @property
    def nbytes(self) -> int:
        parts = (self.blob_ids, self.blob_ends, self.crcs, self.digest)
        return sys.getsizeof(self) + sum(sys.getsizeof(part) for part in parts)

    def file_ids(self) -> list[str]:
        starts = [0, *self.blob_ends[:-1]]
        return [
            self.blob_ids[start:end].decode("ascii")
            for start, end in zip(starts, self.blob_ends, strict=True)
        ]

    def crc_list(self) -> list[int]:
        return self.crcs.tolist()


class ChangedOnDisk(Exception):
    """A blob is missing or not the size its row says."""


class Layout:
    """Where every byte of one archive comes from, in flat arrays (see the module)."""

    __slots__ = (
        "_blob_ends",
        "_blob_ids",
        "_crcs",
        "_dos_times",
        "_name_ends",
        "_names",
        "_sizes",
        "_starts",
        "_unix_times",
        "digest",
        "directory_start",
        "size",
    )

    def __init__(self, members: list[Member], crcs: list[int]) -> None:
        names = [m.name.encode("utf-8") for m in members]
        blob_ids = [m.blob_id.encode("ascii") for m in members]
        self._names = b"".join(names)
        self._name_ends = array("I", _running_total(len(n) for n in names))
        self._blob_ids = b"".join(blob_ids)
        self._blob_ends = array("I", _running_total(len(b) for b in blob_ids))
        self._sizes = array("Q", (m.size for m in members))
        self._crcs = array("I", crcs)
        self._dos_times = array("I", (_dos_time(m.modified) for m in members))
        self._unix_times = array("q", (int(m.modified.timestamp()) for m in members))
        starts = array("Q")
        position = 0
        for name, member in zip(names, members, strict=True):
            starts.append(position)
            position += FIXED_HEADER + len(name) + LOCAL_EXTRA + member.size
        self._starts = starts
        self.directory_start = position
        directory_size = sum(_DIRECTORY_ENTRY.size + len(name) + DIRECTORY_EXTRA for name in names)
        self.size = position + directory_size + END_RECORDS
        # The ETag: the members' sha256s, then every piece of ZIP structure, each
        # header alone and the central directory with the end records as one.
        digest = hashlib.sha256()
        for member in members:
            digest.update(bytes.fromhex(member.sha256))
        for index in range(len(members)):
            header = self.local_header(index)
            digest.update(len(header).to_bytes(8, "big") + header)
        digest.update((self.size - self.directory_start).to_bytes(8, "big"))
        for piece in self._trailer_from(0):
            digest.update(piece.data)
        self.digest = digest.hexdigest()

    def __len__(self) -> int:
        return len(self._sizes)

    @property
    def nbytes(self) -> int:
        """The memory this layout holds (what the archives' budget counts)."""
        held = sys.getsizeof(self) + sys.getsizeof(self.digest)
        for part in (self._names, self._blob_ids):
            held += sys.getsizeof(part)
        for numbers in (
            self._name_ends,
            self._blob_ends,
            self._sizes,
            self._crcs,
            self._dos_times,
            self._unix_times,
            self._starts,
        ):
            held += sys.getsizeof(numbers)
        return held

    def recipe(self) -> Recipe:
        return Recipe(self._blob_ids, self._blob_ends, self._crcs, self.digest)

    def _name(self, index: int) -> bytes:
        return self._names[self._name_ends[index - 1] if index else 0 : self._name_ends[index]]

    def blob_id(self, index: int) -> str:
        start = self._blob_ends[index - 1] if index else 0
        return self._blob_ids[start : self._blob_ends[index]].decode("ascii")

    def blob_ids(self) -> list[str]:
        return [self.blob_id(index) for index in range(len(self))]

    def _unix_extra(self, index: int) -> bytes:
        return _UNIX_TIME_EXTRA.pack(b"UT", 5, b"\x01", self._unix_times[index])

    def local_header(self, index: int) -> bytes:
        name, size = self._name(index), self._sizes[index]
        extra = _LOCAL_ZIP64_EXTRA.pack(b"\x01\x00", 16, size, size) + self._unix_extra(index)
        fixed = _LOCAL_HEADER.pack(
            b"PK\x03\x04",
            _VERSION,
            _UTF8_FLAG,
            0,  # stored
            self._dos_times[index].to_bytes(4, "little"),
            self._crcs[index],
            _ALL_ONES_32,  # sizes: in the ZIP64 extra
            _ALL_ONES_32,
            len(name),
            len(extra),
        )
        return fixed + name + extra

    def _directory_entry(self, index: int) -> bytes:
        name, size = self._name(index), self._sizes[index]
        extra = _DIRECTORY_ZIP64_EXTRA.pack(
            b"\x01\x00", 24, size, size, self._starts[index]
        ) + self._unix_extra(index)
        fixed = _DIRECTORY_ENTRY.pack(
            b"PK\x01\x02",
            _VERSION,
            _SYSTEM_UNIX,
            _VERSION,
            0,
            _UTF8_FLAG,
            0,
            self._dos_times[index].to_bytes(4, "little"),
            self._crcs[index],
            _ALL_ONES_32,
            _ALL_ONES_32,
            len(name),
            len(extra),
            0,  # comment length
            0,  # disk number
            0,  # internal attributes
            _external_attributes(name),
            _ALL_ONES_32,  # offset: in the ZIP64 extra
        )
        return fixed + name + extra

    def _end_records(self) -> bytes:
        count = len(self)
        directory_end = self.size - END_RECORDS
        directory_size = directory_end - self.directory_start
        return (
            _ZIP64_END.pack(
                b"PK\x06\x06",
                44,
                _VERSION,
                _VERSION,
                0,
                0,
                count,
                count,
                directory_size,
                self.directory_start,
            )  # fmt: skip
            + _ZIP64_LOCATOR.pack(b"PK\x06\x07", 0, directory_end, 1)
            + _END.pack(
                b"PK\x05\x06", 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, _ALL_ONES_32, _ALL_ONES_32, 0
            )  # fmt: skip
        )

    def _trailer_from(self, offset: int) -> Iterator[Literal]:
        """The central directory and end records, in pieces, from the piece holding
        archive offset `offset` on (entries wholly before it are skipped unwritten)."""
        index, position = 0, self.directory_start
        while index < len(self):
            length = _DIRECTORY_ENTRY.size + len(self._name(index)) + DIRECTORY_EXTRA
            if position + length > offset:
                break
            index, position = index + 1, position + length
        while index < len(self):
            batch = range(index, min(index + ENTRIES_PER_PIECE, len(self)))
            data = b"".join(self._directory_entry(i) for i in batch)
            yield Literal(position, data)
            index, position = batch.stop, position + len(data)
        yield Literal(position, self._end_records())

    def pieces_from(self, offset: int) -> Iterator[Piece]:
        """Every piece of the archive in order, from the one holding `offset` on."""
        first = max(0, bisect_right(self._starts, offset) - 1)
        for index in range(first if offset < self.directory_start else len(self), len(self)):
            header = self.local_header(index)
            start = self._starts[index]
            yield Literal(start, header)
            yield FileBytes(start + len(header), self._sizes[index], self.blob_id(index), index)
        yield from self._trailer_from(offset)

    @property
    def pieces(self) -> Iterator[Piece]:
        return self.pieces_from(0)


def zip_length(members: Iterable[tuple[str, int]]) -> int:
    """The length of the archive of these (name, size) members, as `Layout` lays it
    out, without reading a byte (the CRC-32s change no length)."""
    total = END_RECORDS
    for name, size in members:
        encoded = len(name.encode("utf-8"))
        total += FIXED_HEADER + encoded + LOCAL_EXTRA + size
        total += _DIRECTORY_ENTRY.size + encoded + DIRECTORY_EXTRA
    return total


def is_folder_name(name: bytes | str) -> bool:
    return name[-1:] in (b"/", "/")


def _external_attributes(name: bytes) -> int:
    if is_folder_name(name):
        return DIRECTORY_MODE << 16 | _MS_DOS_DIRECTORY
    return MEMBER_MODE << 16


def _running_total(lengths: Iterator[int]) -> Iterator[int]:
    total = 0
    for length in lengths:
        total += length
        yield total


def _dos_time(moment: datetime) -> int:
    """MS-DOS date and time (two-second steps), as stream-zip packs them."""
    time_part, date_part = (
        moment.second // 2 | moment.minute << 5 | moment.hour << 11,
        moment.day | moment.month << 5 | (moment.year - 1980) << 9,
    )
    return int.from_bytes(_DOS_TIME.pack(time_part, date_part), "little")


def _read_all(path: str, size: int) -> Iterator[bytes]:
    try:
        fd = os.open(path, OPEN_FLAGS)
    except FileNotFoundError:
        raise ChangedOnDisk(path) from None
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
    """Blocking (run it on a thread): reads every member once, for its CRC-32."""
    return Layout(
        members, [0 if is_folder_name(m.name) else crc32_of(m.path, m.size) for m in members]
    )
