"""What every JSON endpoint answers the same way."""

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import quote

from anyascii import anyascii
from stario import Context, Handler, Writer
from stario.exceptions import ClientDisconnected, RequestBodyError
from stario.json import loads as json_loads

# Routes that answer JSON, refusals included; everything else is a page.
JSON_PREFIXES = ("/api", "/files", "/uploads", "/tus")


# tus (app/features/resumable/tus.py) wants `Tus-Resumable` on every answer but
# OPTIONS, refusals made before its handler runs included (the gate's).
TUS_RESUMABLE = "1.0.0"
_TUS_PATH = re.compile(r"(/r/[^/]+)?/tus(/|$)")


def tag_tus_refusal(c: Context, w: Writer) -> None:
    if (
        _TUS_PATH.match(c.req.path)
        and c.req.method != "OPTIONS"
        and c.req.headers.get("upload-draft-interop-version") is None
    ):
        w.headers.set("tus-resumable", TUS_RESUMABLE)


def speaks_json(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in JSON_PREFIXES)


def path_param(c: Context, name: str) -> str:
    """A route capture; stario's Match declares `params` only in `__slots__`."""
    return str(c.match.params[name])  # type: ignore[attr-defined]


def whole_number(text: str | None, default: int, high: int) -> int | None:
    """A number from a query parameter, `default` when absent, None (answer 400) unless
    it is ASCII digits, no more of them than `high` has, and at most `high`. Python's
    `isdigit()` and `int()` alone take "²" and "١" and fail on 4,300+ digits."""
    if text is None:
        return default
    if not (0 < len(text) <= len(str(high)) and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= high else None


def is_datastar(c: Context) -> bool:
    """Sent by Datastar (`Datastar-Request: true`): answered as a 200 event stream."""
    return c.req.headers.get("datastar-request") == "true"


def is_plain_form(c: Context) -> bool:
    """A browser's own form post (scripts off, or before Datastar loaded): no
    `Datastar-Request`, and it asks for HTML. curl and other API clients send
    `Accept: */*` or ask for JSON, and keep getting JSON."""
    if is_datastar(c):
        return False
    accept = ", ".join(c.req.headers.getlist("accept")).lower()
    return "text/html" in accept


def wants_html(c: Context) -> bool:
    """A browser's own form or link (it asks for HTML, or says it is opening a page:
    `Sec-Fetch-Mode: navigate`, `Sec-Fetch-Dest: document`): a refusal is a page. API
    clients (curl sends `*/*`, scripts ask for JSON) get JSON refusals."""
    accept = ", ".join(c.req.headers.getlist("accept")).lower()
    if "text/html" in accept:
        return True
    navigating = (
        c.req.headers.get("sec-fetch-mode") == "navigate"
        or c.req.headers.get("sec-fetch-dest") == "document"
    )
    return navigating and "json" not in accept


class BodyError(ValueError):
    """A small JSON body that cannot be used; the message says why."""


NOT_JSON = "the body is not valid JSON"
LONE_SURROGATE = (
    "the body is not valid JSON/UTF-8 text: it holds a lone UTF-16 surrogate"
    " (such as \\ud800), half of a character pair"
)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class NotJson(ValueError):
    """A client's JSON that cannot be used as text; the message says why."""


def _holds_surrogate(value: object) -> bool:
    """Whether any string in a parsed JSON value (keys included) holds a surrogate.
    Iterative: JSON nested as deep as the parser takes must not overflow the stack."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def parse_json(data: str | bytes | bytearray) -> object:
    """A client's JSON (a body, a query's Datastar signals), the one place it is
    decoded; NotJson, in words, when it is not JSON. Python's decoder takes `"\\ud800"`
    (and raw UTF-8 surrogates) and yields a string that is not text: SQLite, headers
    and pages fail to encode it, so such a document is refused here, as not UTF-8.
    (A valid pair, `"\\ud83d\\ude00"`, decodes to one character and passes.)"""
    try:
        value = json_loads(data)
    except (ValueError, RecursionError):
        raise NotJson(NOT_JSON) from None
    if _holds_surrogate(value):
        raise NotJson(LONE_SURROGATE)
    return value


async def read_json_object(c: Context, max_bytes: int) -> dict[str, object] | None:
    """A small request body as a JSON object; None when it is empty. BodyError, in
    words, when it is too large, cut off, not JSON, or not an object."""
    try:
        body = await c.req.body(max_size=max_bytes)
    except (RequestBodyError, ClientDisconnected):
        raise BodyError(
            f"the body could not be read (over {max_bytes} bytes, or cut off)"
        ) from None
    if not body.strip():
        return None
    try:
        parsed = parse_json(body)
    except NotJson as exc:
        raise BodyError(str(exc)) from None
    if not isinstance(parsed, dict):
        raise BodyError("the body must be a JSON object")
    return parsed


def only_fields(parsed: dict[str, object], fields: tuple[str, ...]) -> dict[str, object]:
    """`parsed`, or BodyError naming the first field that is not one of `fields`."""
    unknown = sorted(set(parsed) - set(fields))
    if unknown:
        raise BodyError(f"unknown field {unknown[0]!r}; the fields are {', '.join(fields)}")
    return parsed


def wanted_ids(parsed: dict[str, object] | None, *, most: int) -> list[str]:
    """`{"ids": [...]}` (a ZIP of files, a bulk delete): the ids, each once and in order,
    from 1 to `most` of them; BodyError, in words, otherwise."""
    if parsed is None:
        raise BodyError('send a JSON object such as {"ids": ["FILE_ID", ...]}')
    ids = only_fields(parsed, ("ids",)).get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BodyError('"ids" must be a list of file ids (strings)')
    unique = list(dict.fromkeys(ids))
    if not 1 <= len(unique) <= most:
        raise BodyError(f'"ids" must name from 1 to {most:,} files')
    return unique


def _id_list(parsed: dict[str, object], field: str, what: str) -> list[str]:
    found = parsed.get(field, [])
    if not isinstance(found, list) or not all(isinstance(i, str) for i in found):
        raise BodyError(f'"{field}" must be a list of {what} ids (strings)')
    return list(dict.fromkeys(found))


def wanted_selection(parsed: dict[str, object] | None, *, most: int) -> tuple[list[str], list[str]]:
    """`{"ids": [...], "folders": [...]}` (a ZIP of files and folders, a collection):
    the file ids and the folder ids, each once and in order, from 1 to `most` in all,
    either list may be left out; BodyError, in words, otherwise."""
    if parsed is None:
        raise BodyError('send a JSON object such as {"ids": ["FILE_ID"], "folders": ["ID"]}')
    only_fields(parsed, ("ids", "folders"))
    ids = _id_list(parsed, "ids", "file")
    folders = _id_list(parsed, "folders", "folder")
    if not 1 <= len(ids) + len(folders) <= most:
        raise BodyError(f'"ids" and "folders" must name from 1 to {most:,} files and folders')
    return ids, folders


class BadTarget(ValueError):
    """A `next` address (where to go back to) that no redirect can carry."""


BAD_TARGET = "the address to go back to (next) must not contain control characters"
_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def local_target(value: str | None, fallback: str) -> str:
    """Where a `next` parameter sends a person back to: a path on this site, else
    `fallback` (`//host`, `https://host` and backslashes would be an open redirect,
    and Stario refuses a backslash in `Location`). BadTarget for control characters:
    no page's address has them raw, and CR/LF would split the header (Stario raises)."""
    if value and _CONTROL_OR_SURROGATE.search(value):
        raise BadTarget(BAD_TARGET)
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return fallback
    return value


def json_error(w: Writer, status: int, message: str, *, close: bool = False) -> None:
    """`{"error": message}`; `close` drops the connection so an unread body is not drained."""
    if close:
        w.headers.set("connection", "close")
    w.json({"error": message}, status)


def json_errors(*answered_further_out: type[Exception]) -> Callable[[Handler], Handler]:
    """Turn an unexpected failure into a JSON 500 instead of a bare text one; the
    exceptions named are left to a middleware further out (`unavailable_answers`)."""

    def middleware(inner: Handler) -> Handler:
        async def handler(c: Context, w: Writer) -> None:
            try:
                await inner(c, w)
            except answered_further_out:
                raise
            except Exception as exc:
                if w.started:
                    raise
                c.span.exception(exc)
                json_error(w, 500, "the server failed to handle this request", close=True)

        return handler

    return middleware


def unavailable_answers(unavailable: type[Exception]) -> Callable[[Handler], Handler]:
    """A dependency every route needs unreachable (the catalog's database during a
    PostgreSQL restart: `CatalogUnavailable`): 503 with the reason and Retry-After, for
    any route, instead of a 500. Named by the composition root, so that common/ needs
    no engine."""

    def middleware(inner: Handler) -> Handler:
        async def handler(c: Context, w: Writer) -> None:
            try:
                await inner(c, w)
            except unavailable as exc:
                if w.started:
                    raise
                c.span.exception(exc)
                w.headers.set("retry-after", "1")
                json_error(w, 503, str(exc), close=True)

        return handler

    return middleware


async def json_not_found(c: Context, w: Writer) -> None:
    json_error(w, 404, f"nothing here: {c.req.path}")


def json_method_not_allowed(allowed: frozenset[str]) -> Handler:
    """Stario's `method_not_allowed` hook: 405 in JSON, with `Allow`."""
    allow = ", ".join(sorted(allowed))

    async def respond(c: Context, w: Writer) -> None:
        w.headers.set("allow", allow)
        json_error(w, 405, f"{c.req.method} is not allowed on {c.req.path}; allowed: {allow}")

    return respond


# Never in the ASCII `filename=`: `%` reads as an escape to some agents, a backslash
# or quote would need quoted-string escaping that many agents ignore, `/` is a path
# separator, and `:*?<>|` are refused in Windows file names.
UNSAFE_IN_FALLBACK = '%\\"/:*?<>|'
# A run of what may not stand in the fallback: control characters, anything beyond
# printable ASCII that transliteration left, and UNSAFE_IN_FALLBACK.
_UNSAFE_RUN = re.compile("[^ -~]+|[" + re.escape(UNSAFE_IN_FALLBACK) + "]+")
# RFC 8187 attr-char: what may stand unencoded in `filename*`.
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"
# The stem when nothing of a name survives in ASCII (e.g. a name of symbols).
FALLBACK_STEM = "download"


# The ASCII fallback's length: the 255 bytes a file name may take on Linux, macOS and
# Windows file systems (a stored name is at most 255 characters, app/ingest/names.py).
MAX_FALLBACK_CHARS = 255
MAX_FALLBACK_EXTENSION = 16


def _ascii_fallback(name: str) -> str:
    """The `filename` for agents without RFC 8187 (`curl -OJ`, `wget
    --content-disposition`): the name transliterated (é -> e, Привет -> Privet,
    日本語 -> RiBenYu, by anyascii; pictographs left out), each run of unsafe or control
    characters one `_`, no dot or space at either end. A name left with no letter or
    digit is `download` with its extension. RFC 6266 Appendix D: agents do not unescape
    a quoted-string, so the value never needs escaping; the exact name is in
    `filename*`."""
    # Pictographs (emoji, ★) would come out as `:shortcode:` words: left out instead.
    words = "".join(
        char for char in unicodedata.normalize("NFC", name) if unicodedata.category(char) != "So"
    )
    plain = _UNSAFE_RUN.sub("_", anyascii(words))
    stem, dot, extension = plain.rpartition(".")
    if not dot or not extension.isalnum():
        stem, extension = plain, ""
    if len(extension) > MAX_FALLBACK_EXTENSION:
        stem, extension = plain, ""
    # Transliteration lengthens a name (中 -> Zhong): kept under what file systems take
    # (255 bytes), or `curl -OJ` saves nothing ("File name too long").
    room = MAX_FALLBACK_CHARS - (len(extension) + 1 if extension else 0)
    stem = stem[:room].strip(" .")
    if not any(char.isalnum() for char in stem):
        stem = FALLBACK_STEM
    return f"{stem}.{extension}" if extension else stem


def content_disposition(kind: Literal["inline", "attachment"], name: str) -> str:
    """RFC 6266: an ASCII `filename` fallback plus the exact name in `filename*`
    (RFC 8187, UTF-8, percent-encoded). Whatever `name` holds, the value is printable
    ASCII: control characters come out as `_` or `%0D`-style escapes, never raw."""
    encoded = quote(name, safe=_ATTR_CHAR_SAFE) or "download"
    return f"{kind}; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{encoded}"


# In a request's state: Stario's one-slot box holding the `date: ...\r\n` line its
# writer puts on every answer (app/server/peers.py sets it). Stario refreshes that line
# once a second and refuses a `date` header of ours, so an answer's Date may be up to a
# second behind the clock; a Last-Modified must never be later than it (RFC 9110
# §8.8.2.1), see `response_date`.
RESPONSE_DATE = "stowage.response_date"


def response_date(c: Context) -> datetime:
    """The Date this request's answer carries if its head is written from now on (the
    box only moves forward). Without the box (the in-process TestClient), the clock."""
    box = c.state.get(RESPONSE_DATE)
    if box:
        line = box[0].decode("ascii").partition(":")[2].strip()
        try:
            return parsedate_to_datetime(line).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    return datetime.now(UTC).replace(microsecond=0)


def never_compressed(w: Writer) -> None:
    """For an answer with a Content-Length of its own, which Stario never compresses:
    Accept-Encoding out of Vary (app/server/vary.py put it there), every other field
    name kept, on one line."""
    kept = [
        name.strip()
        for value in w.headers.getlist("vary")
        for name in value.split(",")
        if name.strip() and name.strip().lower() != "accept-encoding"
    ]
    w.headers.remove("vary")
    if kept:
        w.headers.set("vary", ", ".join(kept))
