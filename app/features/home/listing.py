"""What the Files screen shows: one page of the list (`Listing`) and the account's usage."""

from dataclasses import dataclass

from app.files.query import EVERY_FILE, FileQuery
from app.files.store import FileRow
from app.folders.store import ROOT, FolderRow, Totals
from app.previews.thumbnails import NO_PREVIEWS, Previews

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of the list as `query` asks for it (by default all, newest first)."""

    rows: list[FileRow]
    total: int
    page: int
    pages: int
    query: FileQuery = EVERY_FILE
    # Which rows show a thumbnail (the others a type icon).
    previews: Previews = NO_PREVIEWS
    # The folder shown ('' the root), the folders from the top down to it, and the
    # folders directly in it with what each holds (none while searching by name).
    folder: str = ROOT
    trail: tuple[FolderRow, ...] = ()
    folders: tuple[tuple[FolderRow, Totals], ...] = ()
    # A search by name runs across every folder; each row's folder path is shown.
    paths: dict[str, str] | None = None
    # The folder asked for does not exist (deleted meanwhile, or never this account's).
    gone: bool = False

    @property
    def across(self) -> bool:
        """The rows come from every folder (a search by name), not the one shown."""
        return self.paths is not None


@dataclass(frozen=True, slots=True)
class Usage:
    """What the account stores, against its quota (None: no quota)."""

    used: int
    quota: int | None
