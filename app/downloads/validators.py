"""Validators and conditional requests for stored files (RFC 9110 §8.8, §13).

Pure functions: the handler reads the request headers and passes the values in.
A stored file never changes under its id, so its sha256 is a strong validator
and its upload time is an honest Last-Modified.
"""

import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from enum import Enum

# One list member: an entity-tag, optionally weak. etagc is any visible
# character but DQUOTE, so a comma may stand inside the quotes.
_ENTITY_TAG = re.compile(r'[ \t]*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*(?:,|$)')
_LIST_SEPARATOR = re.compile(r"[ \t]*,")


def strong_etag(sha256: str) -> str:
    """The quoted entity-tag of a file: its content hash, so equal bytes give equal tags."""
    return f'"{sha256}"'


def modified_at(created_at: str) -> datetime:
    """The row's ISO-8601 upload time, cut to whole seconds as HTTP dates are."""
    moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def sent_modified(modified: datetime, date: datetime) -> datetime:
    """The Last-Modified to send and to judge conditions by: never later than the
    answer's Date (RFC 9110 §8.8.2.1: a time after it is replaced by the Date). A file
    uploaded within the last second is the one case."""
    return min(modified, date)


def http_date(moment: datetime) -> str:
    """IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    """Any of the three HTTP-date forms (IMF-fixdate, RFC 850, asctime); None if invalid."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # asctime carries no zone; HTTP dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _entity_tags(value: str) -> list[tuple[bool, str]]:
    """(weak, opaque-tag) for each member of an entity-tag list; [] when malformed."""
    tags: list[tuple[bool, str]] = []
    position = 0
    while position < len(value):
        separator = _LIST_SEPARATOR.match(value, position)
        if separator:  # empty list elements are allowed (RFC 9110 §5.6.1)
            position = separator.end()
            continue
        if not value[position:].strip(" \t"):
            break
        member = _ENTITY_TAG.match(value, position)
        if member is None:
            return []
        tags.append((member.group(1) is not None, member.group(2)))
        position = member.end()
    return tags


def _split_tag(etag: str) -> tuple[bool, str]:
    weak = etag.startswith("W/")
    return weak, etag.removeprefix("W/").strip('"')


def matches_weakly(value: str, etag: str) -> bool:
    """If-None-Match: `*` or any member equal to `etag` ignoring W/ (§8.8.3.2)."""
    if value.strip(" \t") == "*":
        return True
    _, opaque = _split_tag(etag)
    return any(tag == opaque for _, tag in _entity_tags(value))


def matches_strongly(value: str, etag: str) -> bool:
    """If-Match: `*` or a member equal to `etag` with neither side weak (§8.8.3.2)."""
    if value.strip(" \t") == "*":
        return True
    weak, opaque = _split_tag(etag)
    return not weak and any(not w and tag == opaque for w, tag in _entity_tags(value))


class Precondition(Enum):
    PROCEED = "proceed"
    NOT_MODIFIED = "304"
    FAILED = "412"


def evaluate_preconditions(
    etag: str,
    modified: datetime,
    *,
    if_match: str | None = None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
    if_unmodified_since: str | None = None,
) -> Precondition:
    """RFC 9110 §13.2.2 for GET and HEAD, in its order: If-Match, else If-Unmodified-Since
    (412 when false); then If-None-Match, else If-Modified-Since (304 when false).

    If-None-Match takes precedence: when present, If-Modified-Since is not looked at."""
    if if_match is not None:
        if not matches_strongly(if_match, etag):
            return Precondition.FAILED
    elif (since := parse_http_date(if_unmodified_since)) is not None and modified > since:
        return Precondition.FAILED
    if if_none_match is not None:
        return (
            Precondition.NOT_MODIFIED
            if matches_weakly(if_none_match, etag)
            else Precondition.PROCEED
        )
    if (since := parse_http_date(if_modified_since)) is not None and modified <= since:
        return Precondition.NOT_MODIFIED
    return Precondition.PROCEED


def if_range_holds(value: str, etag: str, modified: datetime) -> bool:
    """If-Range (§13.1.5): an entity-tag must match strongly; a date must equal
    Last-Modified exactly. Anything else (weak tag, bad date) means: send it all."""
    text = value.strip(" \t")
    if text.startswith(('"', "W/")):
        tags = _entity_tags(text)
        weak, opaque = _split_tag(etag)
        return len(tags) == 1 and not weak and tags[0] == (False, opaque)
    return parse_http_date(text) == modified
