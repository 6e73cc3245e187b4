"""Archives asked for with `POST /api/archives`: kept in memory, for a while.

In memory rather than in the catalog: an archive is derived data (its layout is
rebuilt from the rows and blobs by posting the same ids again, and the bytes come out
identical), it needs no schema change in the shared catalog, and a restart only costs
a client one POST. A download manager resuming after a restart gets 404 and must ask
again; within `ARCHIVE_LIFETIME_SECONDS` it resumes onto identical bytes. The
archives share a memory budget (`--archive-memory-bytes`), each account a share of it:
a layout dropped to make room is laid out again from its small recipe when its URL is
used; an archive dropped whole answers 404 like an expired one.
"""

import secrets
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from app.downloads.zip_layout import Layout, Recipe
from app.folders.contents import safe_segment, unique_segments

MiB = 1024 * 1024
# Ten thousand files is a whole photo library; each costs ~90 bytes of layout.
MAX_ARCHIVE_FILES = 10_000
# Long enough for a slow download of a big selection to be paused and resumed.
ARCHIVE_LIFETIME_SECONDS = 24 * 3600
# A count cap besides the memory budget: many one-file archives cost little each.
MAX_LIVE_ARCHIVES = 1000
DEFAULT_MEMORY_BYTES = 64 * MiB
# An account's archives may hold a quarter of the budget: room for a dozen or more laid
# out archives of 10,000 files (one is ~0.9 MB with 27-character names, ~11 MB at worst
# with 255-character ones, which a 64 MiB budget's share still holds) and fifty more
# as recipes (~0.3 MB), while four accounts at their full share fit at once, so
# nobody's archives give way to another's until several accounts are busy; then the
# biggest holder gives way.
ACCOUNT_SHARES = 4
# What an archive costs besides its layout: the token, the record, its time and the
# registry's entries, ~350 bytes by sys.getsizeof and the dicts' entry sizes, rounded up.
RECORD_BYTES = 512
# When the memory is held by archives being downloaded: about how long a download of a
# few hundred MB takes here, after which their room may be free.
RETRY_AFTER_SECONDS = 30
# Tokens of archives dropped to make room, remembered so their owner is told why.
MAX_REMEMBERED_DROPS = 1000


@dataclass(slots=True)
class Archive:
    owner: str
    # None once dropped to make room: laid out again from `recipe` when asked for.
    layout: Layout | None
    modified_at: str  # the newest member's upload time (ISO), its Last-Modified
    expires: float  # monotonic
    # What was asked for: the folders chosen (their trees are laid out again from the
    # catalog) and the files chosen on their own; empty for an archive of files only,
    # whose recipe names its files.
    folders: tuple[str, ...] = ()
    loose: tuple[str, ...] = ()
    recipe: Recipe = field(init=False)

    def __post_init__(self) -> None:
        assert self.layout is not None
        self.recipe = self.layout.recipe()

    @property
    def file_ids(self) -> list[str]:
        """The files in it, in order (its folders' entries have no file)."""
        return [i for i in self.recipe.file_ids() if i]

    @property
    def nbytes(self) -> int:
        """What it holds; a layout includes the arrays its recipe shares."""
        held = self.recipe.nbytes if self.layout is None else self.layout.nbytes
        chosen = sum(sys.getsizeof(i) for i in (*self.folders, *self.loose))
        return held + chosen + RECORD_BYTES


class ArchiveMemoryFull(Exception):
    """No room for another archive now: the message says why, in words."""

    retry_after = RETRY_AFTER_SECONDS


class Archives:
    """token -> Archive, within a memory budget shared by every account.

    An account's archives together hold at most `share` bytes. Making room means, first,
    dropping the layout of the least recently used archive that still has one (keeping
    its recipe, ~30 bytes a member, from which it is laid out again without reading its
    files), then dropping whole archives, least recently used first. Room for a new
    archive is made first from the account's own; when the whole budget is full, the
    account holding the most gives way, so one account's archives never push out
    another's while it holds more. An archive being downloaded is never touched; when
    those alone fill the room, a new archive is refused (`ArchiveMemoryFull`).
    """

    def __init__(
        self,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.memory_bytes = memory_bytes
        self.share = memory_bytes // ACCOUNT_SHARES
        # Least recently used first.
        self._archives: OrderedDict[str, Archive] = OrderedDict()
        self._held: Counter[str] = Counter()  # owner -> bytes
        self._counts: Counter[str] = Counter()  # owner -> archives
        self._downloads: Counter[str] = Counter()  # token -> downloads in flight
        self._dropped: OrderedDict[str, str] = OrderedDict()  # token -> owner
        self._clock = clock

    @property
    def held(self) -> int:
        """Bytes the live archives hold together."""
        return sum(self._held.values())

    def lifetime_end(self) -> float:
        return self._clock() + ARCHIVE_LIFETIME_SECONDS

    def add(self, archive: Archive) -> str:
        """The new archive's token; `ArchiveMemoryFull` if there is no room for it."""
        self._drop_expired()
        cost = archive.nbytes
        if cost > self.share:
            raise ArchiveMemoryFull(
                f"this selection's archive needs {cost / MiB:.1f} MiB of the server's"
                f" memory, more than one account's share ({self.share / MiB:.1f} MiB):"
                " choose fewer files"
            )
        refusal = self._make_room(archive.owner, cost, one_more=True)
        if refusal is not None:
            raise ArchiveMemoryFull(refusal)
        token = secrets.token_urlsafe(24)
        self._archives[token] = archive
        self._held[archive.owner] += cost
        self._counts[archive.owner] += 1
        return token

    def get(self, token: str) -> Archive | None:
        archive = self._archives.get(token)
        if archive is not None and archive.expires <= self._clock():
            self._forget(token)
            return None
        if archive is not None:
            self._archives.move_to_end(token)
        return archive

    def keep_layout(self, token: str, layout: Layout) -> bool:
        """Keep an archive's layout, laid out again, if there is room for it now."""
        archive = self._archives.get(token)
        if archive is None or archive.layout is not None:
            return False
        extra = layout.nbytes - archive.recipe.nbytes
        if self._make_room(archive.owner, extra, one_more=False) is not None:
            return False
        if token not in self._archives:  # dropped itself to make the room
            return False
        archive.layout = layout
        # The recipe from now on shares the new layout's arrays (the old ones go).
        archive.recipe = layout.recipe()
        self._held[archive.owner] += extra
        return True

    @contextmanager
    def download(self, token: str) -> Iterator[Archive | None]:
        """The archive, kept whole while the block runs (a download is never cut short)."""
        archive = self.get(token)
        if archive is None:
            yield None
            return
        self._downloads[token] += 1
        try:
            yield archive
        finally:
            self._downloads[token] -= 1
            if not self._downloads[token]:
                del self._downloads[token]

    def dropped_for_room(self, token: str, owner: str) -> bool:
        """Whether this owner's archive `token` was dropped to make room."""
        return self._dropped.get(token) == owner

    def _make_room(self, owner: str, cost: int, *, one_more: bool) -> str | None:
        """None once `cost` more bytes fit (and, with `one_more`, one more archive);
        else why not, in words."""
        while self._held[owner] + cost > self.share:
            if not self._give_way(owner, whole=False):
                return (
                    "your archives being downloaded fill your share of the server's"
                    " archive memory; try again when a download ends"
                )
        while self.held + cost > self.memory_bytes or (
            one_more and len(self._archives) >= MAX_LIVE_ARCHIVES
        ):
            by_bytes = self.held + cost > self.memory_bytes
            # The count cap is met only by dropping whole archives.
            if not any(self._give_way(o, whole=not by_bytes) for o in self._biggest(by_bytes)):
                return (
                    "the server's archive memory is full of archives being downloaded;"
                    " try again in a moment"
                )
        return None

    def _biggest(self, by_bytes: bool) -> list[str]:
        """Owners, the one holding the most (bytes, or archives) first."""
        holding = self._held if by_bytes else self._counts
        return sorted((o for o in holding if holding[o]), key=holding.__getitem__, reverse=True)

    def _give_way(self, owner: str, *, whole: bool) -> bool:
        """Drop the least recently used layout of `owner`'s (or, with `whole` or when
        none is left, a whole archive); False if everything it holds is downloading."""
        idle = [
            (token, archive)
            for token, archive in self._archives.items()
            if archive.owner == owner and token not in self._downloads
        ]
        if not whole:
            for _, archive in idle:
                if archive.layout is not None:
                    before = archive.nbytes
                    archive.layout = None
                    self._held[owner] -= before - archive.nbytes
                    return True
        if not idle:
            return False
        token = idle[0][0]
        self._forget(token)
        self._dropped[token] = owner
        while len(self._dropped) > MAX_REMEMBERED_DROPS:
            self._dropped.popitem(last=False)
        return True

    def _forget(self, token: str) -> None:
        archive = self._archives.pop(token)
        self._held[archive.owner] -= archive.nbytes
        self._counts[archive.owner] -= 1
        if not self._counts[archive.owner]:
            del self._held[archive.owner], self._counts[archive.owner]

    def _drop_expired(self) -> None:
        now = self._clock()
        for token in [t for t, a in self._archives.items() if a.expires <= now]:
            self._forget(token)


def safe_member_name(name: str) -> str:
    """One path segment, safe to unpack (see `safe_segment`)."""
    return safe_segment(name)


def archive_names(names: list[str]) -> list[str]:
    """Safe names, unique ignoring case: `a.txt`, `a (2).txt`, `a (3).txt`."""
    return unique_segments(names)
