"""The pure parts of issue 27's HTTP details: Vary without Accept-Encoding for
fixed-length answers, the Date an answer carries, Last-Modified clamped to it."""

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from stario import Context, Writer
from stario.http.headers import Headers

from app.common.http import (
    MAX_FALLBACK_CHARS,
    RESPONSE_DATE,
    content_disposition,
    never_compressed,
    response_date,
)
from app.downloads.validators import sent_modified


def _writer(*vary: str) -> Any:
    headers = Headers()
    for value in vary:
        headers.add("vary", value)
    return SimpleNamespace(headers=headers)


def test_never_compressed_keeps_every_other_vary_field() -> None:
    # Origin added before and after the middleware's Accept-Encoding, and both in one.
    for given in (
        ["Origin", "Accept-Encoding"],
        ["Accept-Encoding", "Origin"],
        ["accept-encoding, Origin"],
    ):
        w = _writer(*given)
        never_compressed(cast(Writer, w))
        assert w.headers.getlist("vary") == ["Origin"], given
    w = _writer("Accept-Encoding")
    never_compressed(cast(Writer, w))
    assert w.headers.getlist("vary") == []


def test_response_date_reads_starios_box_else_the_clock() -> None:
    box = [b"date: Mon, 07 Dec 2026 21:36:57 GMT\r\n"]
    c = cast(Context, SimpleNamespace(state={RESPONSE_DATE: box}))
    assert response_date(c) == datetime(2026, 12, 7, 21, 36, 57, tzinfo=UTC)
    box[0] = b"date: Mon, 07 Dec 2026 21:36:58 GMT\r\n"  # the box moves on
    assert response_date(c) == datetime(2026, 12, 7, 21, 36, 58, tzinfo=UTC)
    before = datetime.now(UTC).replace(microsecond=0)
    assert before <= response_date(cast(Context, SimpleNamespace(state={}))) <= datetime.now(UTC)


def test_last_modified_is_clamped_to_the_date() -> None:
    date = datetime(2026, 12, 7, 21, 36, 57, tzinfo=UTC)
    uploaded = datetime(2026, 12, 7, 21, 36, 58, tzinfo=UTC)
    assert sent_modified(uploaded, date) == date
    older = datetime(2026, 1, 1, tzinfo=UTC)
    assert sent_modified(older, date) == older


def test_a_long_transliterated_name_stays_a_name_file_systems_take() -> None:
    """80 × 中 transliterates to 400 characters: `curl -OJ` then saved nothing (`File
    name too long`). The fallback is cut, its extension kept."""
    header = content_disposition("attachment", "中" * 80 + ".txt")
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert len(fallback) == MAX_FALLBACK_CHARS and fallback.startswith("ZhongZhong")
    assert fallback.endswith(".txt")
    assert "%E4%B8%AD" * 80 + ".txt" in header  # the exact name, whole, in filename*
    plain = content_disposition("attachment", "x" * 251 + ".txt")  # a stored name's most
    assert plain.startswith('attachment; filename="' + "x" * 251 + '.txt"')
