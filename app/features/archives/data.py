"""Archives asked for with `POST /api/archives`: kept in memory, for a while.

In memory rather than in the catalog: an archive is derived data (its layout is
rebuilt from the rows and blobs by posting the same ids again, and the bytes come out
identical), it needs no schema change in the shared catalog, and a restart only costs
a client one POST. A download manager resuming after a restart gets 404 and must ask
again; within `ARCHIVE_LIFETIME_SECONDS` it resumes onto identical bytes.
"""

import re
import secrets
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.features.archives.layout import Layout

# Long enough for a slow download of a big selection to be paused and resumed.
ARCHIVE_LIFETIME_SECONDS = 24 * 3600
# Each layout is a few hundred bytes per member; this keeps the whole registry small.
MAX_LIVE_ARCHIVES = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Archive:
    owner: str
    file_ids: tuple[str, ...]
    layout: Layout
    modified_at: str  # the newest member's upload time (ISO), its Last-Modified
    expires: float  # monotonic


class Archives:
    """token -> Archive; the oldest are dropped beyond MAX_LIVE_ARCHIVES."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._archives: OrderedDict[str, Archive] = OrderedDict()
        self._clock = clock

    def lifetime_end(self) -> float:
        return self._clock() + ARCHIVE_LIFETIME_SECONDS

    def add(self, archive: Archive) -> str:
        self._drop_expired()
        token = secrets.token_urlsafe(24)
        self._archives[token] = archive
        while len(self._archives) > MAX_LIVE_ARCHIVES:
            self._archives.popitem(last=False)
        return token

    def get(self, token: str) -> Archive | None:
        archive = self._archives.get(token)
        if archive is not None and archive.expires <= self._clock():
            del self._archives[token]
            return None
        return archive

    def _drop_expired(self) -> None:
        now = self._clock()
        for token in [t for t, a in self._archives.items() if a.expires <= now]:
            del self._archives[token]


def safe_member_name(name: str) -> str:
    """One path segment: no directory parts (so no `..`, no absolute path, nothing a
    careless unzip could write outside its folder), no control characters."""
    name = unicodedata.normalize("NFC", name)
    name = _CONTROL.sub("_", name).replace("/", "_").replace("\\", "_").strip()
    return "file" if name.strip(". ") == "" else name


def archive_names(names: list[str]) -> list[str]:
    """Safe names, unique ignoring case: `a.txt`, `a (2).txt`, `a (3).txt`."""
    taken: set[str] = set()
    result: list[str] = []
    for raw in names:
        name = safe_member_name(raw)
        stem, dot, suffix = name.rpartition(".")
        if not stem:  # no dot, or a leading one (".bashrc"): the whole name is the stem
            stem, dot, suffix = name, "", ""
        candidate, counter = name, 2
        while candidate.casefold() in taken:
            candidate = f"{stem} ({counter}){dot}{suffix}"
            counter += 1
        taken.add(candidate.casefold())
        result.append(candidate)
    return result
