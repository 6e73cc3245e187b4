"""The Range header for stored files (RFC 9110 §14). Pure functions.

Multiple ranges are answered with the whole file (200), never multipart/byteranges:
RFC 9110 §14.2 lets a server ignore Range, browsers and video players only ever ask
for one range, download managers open one connection per range, and a server that
builds multipart bodies from many small or overlapping ranges hands out a cheap
amplification (the "Apache Killer", CVE-2011-3192). Amazon S3 does the same.
"""

import re
from dataclasses import dataclass
from typing import Final

# RFC 9110 §14.1.1 int-range and suffix-range: ASCII digits only, no sign, no spaces.
_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
# More digits than any file size has: read as "beyond the end" rather than parsed
# (int() refuses strings over 4300 digits, and the header may be 64 KiB).
_MAX_DIGITS = 30
_BEYOND = 10**_MAX_DIGITS


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Inclusive first and last byte positions inside a file of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


class Unsatisfiable:
    def __repr__(self) -> str:
        return "UNSATISFIABLE"


# No requested range overlaps the file: 416 with `Content-Range: bytes */size`.
UNSATISFIABLE: Final = Unsatisfiable()


def unsatisfied_range(size: int) -> str:
    return f"bytes */{size}"


def _number(digits: str) -> int:
    return _BEYOND if len(digits) > _MAX_DIGITS else int(digits)


def parse_range(value: str | None, size: int) -> ByteRange | Unsatisfiable | None:
    """What a Range header asks of a file of `size` bytes.

    None means "send the whole file": no header, a unit other than bytes, a malformed
    or invalid range set (ignored per §14.2), or more than one range (see module doc).
    """
    if value is None:
        return None
    unit, equals, range_set = value.partition("=")
    if not equals or unit.strip(" \t").lower() != "bytes":
        return None
    specs = [spec.strip(" \t") for spec in range_set.split(",")]
    specs = [spec for spec in specs if spec]  # 1#range-spec allows empty elements
    parsed: list[tuple[str, str]] = []
    for spec in specs:
        match = _RANGE_SPEC.fullmatch(spec)
        if match is None or match.group(0) == "-":
            return None
        first, last = match.groups()
        if first and last and _number(last) < _number(first):
            return None  # an invalid range-spec makes the whole field invalid
        parsed.append((first, last))
    if len(parsed) != 1:
        return None
    first, last = parsed[0]
    if not first:  # suffix-range: the last n bytes
        length = _number(last)
        if length == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(size - length, 0), size - 1, size)
    start = _number(first)
    if start >= size:
        return UNSATISFIABLE
    end = min(_number(last), size - 1) if last else size - 1
    return ByteRange(start, end, size)
