"""Which of an account's files a list shows, in what order: `?q=&type=&sort=&order=`.

Search is a substring match on names (`LIKE '%q%'`, ASCII letters in any case). It
stays fast without a full-text index because every order the list can take has an
index that carries the name and the type too (app/catalog/migrations/): a search walks
one index in the wanted order and reads no table row until it has its page. Measured
against SQLite FTS5 with the trigram tokenizer at 100,000 rows, the covering indexes
won for common words (FTS5 must collect and sort every match: ~50 ms for a term in
40% of names) and tied for rare ones; trigrams also cannot look up 1-2 characters.
`python -m bench search` prints the figures."""

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from app.common.http import whole_number

Sort = Literal["name", "size", "created"]
Order = Literal["asc", "desc"]

SORTS: tuple[Sort, ...] = ("created", "name", "size")
ORDERS: tuple[Order, ...] = ("asc", "desc")
# Newest, biggest first; names A to Z.
DEFAULT_ORDER: dict[Sort, Order] = {"created": "desc", "size": "desc", "name": "asc"}
MAX_QUERY_CHARS = 200

# Kinds of file by their sniffed type (`mime`, never the declared one).
DOCUMENT_TYPES = (
    "application/pdf",
    "application/msword",
    "application/rtf",
    "application/epub+zip",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
)
DOCUMENT_PREFIXES = (
    "text/",
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.oasis.opendocument.",
)


def _documents_sql() -> str:
    exact = ", ".join(f"'{t}'" for t in DOCUMENT_TYPES)
    prefixes = " OR ".join(f"mime LIKE '{p}%'" for p in DOCUMENT_PREFIXES)
    return f"(mime IN ({exact}) OR {prefixes})"


_MEDIA = {"images": "image/", "video": "video/", "audio": "audio/"}
TYPE_SQL: dict[str, str] = {
    **{kind: f"mime LIKE '{prefix}%'" for kind, prefix in _MEDIA.items()},
    "documents": _documents_sql(),
}
TYPE_SQL["other"] = "NOT (" + " OR ".join(TYPE_SQL.values()) + ")"
TYPES: tuple[str, ...] = ("images", "video", "audio", "documents", "other")


def kind_of(mime: str) -> str:
    """The type filter's kind of a sniffed type, as TYPE_SQL classifies it."""
    for kind, prefix in _MEDIA.items():
        if mime.startswith(prefix):
            return kind
    if mime in DOCUMENT_TYPES or mime.startswith(DOCUMENT_PREFIXES):
        return "documents"
    return "other"


_ORDER_SQL: dict[Sort, str] = {
    "created": "{t}created_at {d}, {t}rowid {d}",
    "size": "{t}size {d}, {t}rowid {d}",
    "name": "{t}name COLLATE NOCASE {d}, {t}rowid {d}",
}


class QueryError(ValueError):
    """A list parameter that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class FileQuery:
    q: str = ""
    type: str | None = None
    sort: Sort = "created"
    order: Order = "desc"

    @property
    def is_default(self) -> bool:
        return self == FileQuery()

    def where(self, table: str = "") -> tuple[str, tuple[object, ...]]:
        """SQL conditions to follow `owner = ?` (columns of `table`, an alias and a
        dot, or none), and their parameters."""
        clauses: list[str] = []
        params: list[object] = []
        if self.q:
            clauses.append(f"{table}name LIKE ? ESCAPE '\\'")
            params.append("%" + escape_like(self.q) + "%")
        if self.type is not None:
            clauses.append(TYPE_SQL[self.type].replace("mime", table + "mime"))
        return "".join(" AND " + clause for clause in clauses), tuple(params)

    def order_by(self, table: str = "") -> str:
        return _ORDER_SQL[self.sort].format(t=table, d=self.order.upper())

    def params(self) -> dict[str, str]:
        """The query string that asks for this again (defaults left out)."""
        wanted: dict[str, str] = {}
        if self.q:
            wanted["q"] = self.q
        if self.type is not None:
            wanted["type"] = self.type
        if self.sort != "created" or self.order != "desc":
            wanted["sort"], wanted["order"] = self.sort, self.order
        return wanted

    def query_string(self) -> str:
        return urlencode(self.params())


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_file_query(
    q: str | None, type_: str | None, sort: str | None, order: str | None
) -> FileQuery:
    """The list's parameters from a query string; QueryError in words when one is
    not a value it can take. Empty values mean "not given"."""
    text = (q or "").strip()
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"q must be at most {MAX_QUERY_CHARS} characters")
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise QueryError("q must not contain control characters")
    if type_ and type_ not in TYPES:
        raise QueryError(f"type must be one of {', '.join(TYPES)} (or left out)")
    if sort and sort not in SORTS:
        raise QueryError(f"sort must be one of {', '.join(SORTS)}")
    if order and order not in ORDERS:
        raise QueryError("order must be asc or desc")
    chosen: Sort = sort or "created"
    direction: Order = order or DEFAULT_ORDER[chosen]
    return FileQuery(text, type_ or None, chosen, direction)


# No search, no filter, newest first: the list as it always was.
EVERY_FILE = FileQuery()


# A page of a list: `?limit=&offset=` (GET /api/files, GET /api/folders/{id}).
MAX_LIST_LIMIT = 10_000
# Far beyond any catalog, and inside SQLite's 64-bit integers.
MAX_LIST_OFFSET = 10**15


def parse_window(limit: str | None, offset: str | None) -> tuple[int, int]:
    """`?limit=` (default 1000) and `?offset=` (default 0); QueryError in words."""
    wanted = whole_number(limit, 1000, MAX_LIST_LIMIT), whole_number(offset, 0, MAX_LIST_OFFSET)
    if wanted[0] is None or wanted[1] is None:
        raise QueryError(
            f"limit must be a whole number from 0 to {MAX_LIST_LIMIT} and offset "
            f"one from 0 to {MAX_LIST_OFFSET}, in ASCII digits"
        )
    return wanted[0], wanted[1]
