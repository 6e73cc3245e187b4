"""Search, type filter and sort in the API (`GET /api/files?q=&type=&sort=&order=`)."""

import asyncio
import json
import sqlite3
from urllib.parse import quote

import pytest
from tests.support.fixtures import add_account, signed_in_client

from app.catalog.open import open_catalog

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PDF = b"%PDF-1.4\n" + b"x" * 10
BINARY = bytes(range(256)) * 2


async def put(client, name: str, body: bytes) -> dict:
    r = await client.put("/uploads/" + quote(name), content=body)
    assert r.status_code == 201, r.text
    return r.json()["files"][0]


async def names(client, query: str = "") -> list[str]:
    r = await client.get("/api/files" + query)
    assert r.status_code == 200, r.text
    return [entry["name"] for entry in r.json()["files"]]


@pytest.fixture
async def stocked(client):
    await put(client, "Holiday-Beach.png", PNG)
    await put(client, "report 100%.pdf", PDF)
    await put(client, "notes_2026.txt", b"a few words\n" * 30)
    await put(client, "holiday video.bin", BINARY)
    return client


async def test_default_list_is_still_newest_first(stocked):
    assert await names(stocked) == [
        "holiday video.bin",
        "notes_2026.txt",
        "report 100%.pdf",
        "Holiday-Beach.png",
    ]


async def test_q_is_a_substring_match_ignoring_ascii_case(stocked):
    assert await names(stocked, "?q=HOLIDAY") == ["holiday video.bin", "Holiday-Beach.png"]
    assert await names(stocked, "?q=each") == ["Holiday-Beach.png"]
    assert await names(stocked, "?q=nothing-like-it") == []


async def test_percent_and_underscore_in_q_are_literal(stocked):
    assert await names(stocked, "?q=100%25") == ["report 100%.pdf"]
    assert await names(stocked, "?q=s_2") == ["notes_2026.txt"]
    assert await names(stocked, "?q=%25") == ["report 100%.pdf"]


async def test_type_filters_by_the_sniffed_type(stocked):
    assert await names(stocked, "?type=images") == ["Holiday-Beach.png"]
    assert await names(stocked, "?type=documents") == ["notes_2026.txt", "report 100%.pdf"]
    assert await names(stocked, "?type=other") == ["holiday video.bin"]
    assert await names(stocked, "?type=video") == []
    assert await names(stocked, "?type=other&q=holiday") == ["holiday video.bin"]


async def test_sort_by_name_and_size_either_way(stocked):
    by_name = ["holiday video.bin", "Holiday-Beach.png", "notes_2026.txt", "report 100%.pdf"]
    assert await names(stocked, "?sort=name") == by_name
    assert await names(stocked, "?sort=name&order=desc") == by_name[::-1]
    by_size = ["holiday video.bin", "notes_2026.txt", "Holiday-Beach.png", "report 100%.pdf"]
    assert await names(stocked, "?sort=size") == by_size
    assert await names(stocked, "?sort=size&order=asc") == by_size[::-1]
    assert (await names(stocked, "?sort=created&order=asc"))[0] == "Holiday-Beach.png"
    assert await names(stocked, "?sort=name&limit=1&offset=1") == ["Holiday-Beach.png"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?sort=date", "sort must be one of created, name, size"),
        ("?order=up", "order must be asc or desc"),
        (
            "?type=pictures",
            "type must be one of images, video, audio, documents, other (or left out)",
        ),
        ("?q=" + "x" * 201, "q must be at most 200 characters"),
        ("?q=a%0Ab", "q must not contain control characters"),
    ],
)
async def test_bad_list_parameters_are_400_in_words(client, query, words):
    r = await client.get("/api/files" + query)
    assert r.status_code == 400
    assert r.json() == {"error": words}


async def test_search_never_finds_another_accounts_files(stocked, config):
    _, token = await add_account(config, "other")
    async with signed_in_client(config, token) as other:
        await put(other, "holiday other.txt", b"mine\n")
        assert await names(other, "?q=holiday") == ["holiday other.txt"]
    assert "holiday other.txt" not in await names(stocked, "?q=holiday")


# The page: GET / and its stream take the same search -------------------------------

IDENTITY = {"accept-encoding": "identity"}


async def test_the_page_shows_the_search_from_its_address(stocked):
    r = await stocked.get("/", params={"q": "holiday", "type": "images", "sort": "name-asc"})
    assert r.status_code == 200
    files = r.text[r.text.index('id="files"') :]
    assert "Holiday-Beach.png" in files and "holiday video.bin" not in files
    assert "notes_2026.txt" not in files and "1 file match" in files
    assert 'type="search" name="q" value="holiday"' in r.text
    assert '<option value="images" selected>' in r.text
    assert '<option value="name-asc" selected>' in r.text
    assert '"listQ":"holiday"' in r.text.replace("&#34;", '"').replace("&quot;", '"')


async def test_the_page_says_when_nothing_matches_and_ignores_nonsense(stocked):
    r = await stocked.get("/", params={"q": "no-such-name"})
    assert "No files match." in r.text and "No files yet" not in r.text
    r = await stocked.get("/", params={"sort": "nonsense", "type": "pictures", "q": "notes"})
    assert r.status_code == 200
    files = r.text[r.text.index('id="files"') :]
    assert "notes_2026.txt" in files and "report 100%.pdf" not in files


async def test_page_links_keep_the_search(client):
    for i in range(51):
        await put(client, f"scan-{i:02d}.txt", b"x\n")
    await put(client, "other.txt", b"y\n")
    r = await client.get("/", params={"q": "scan", "sort": "name-asc"})
    text = r.text.replace("&amp;", "&")
    assert "51 files match, showing 1–50" in text
    assert 'href="/?q=scan&sort=name&order=asc&page=2"' in text
    first = text[text.index('id="files"') :]
    assert first.index("scan-00.txt") < first.index("scan-49.txt")


async def next_files(events, containing: str = "") -> str:
    async with asyncio.timeout(5):
        while True:
            event = await anext(events)
            if 'id="files"' in event["data"] and containing in event["data"]:
                return event["data"]


async def test_the_stream_repaints_with_the_tabs_own_search(stocked):
    signals = {"listQ": "holiday", "listType": "", "listSort": "name-asc", "listPage": 1}
    query = {"datastar": json.dumps(signals)}
    async with stocked.stream("GET", "/live", params=query, headers=IDENTITY) as live:
        events = live.iter_events()
        painted = await next_files(events)
        assert painted.index("holiday video.bin") < painted.index("Holiday-Beach.png")
        assert "notes_2026.txt" not in painted
        # Every repaint keeps the tab's search and order (the usage line repaints
        # for a file that does not match, the list stays as it was).
        await put(stocked, "unrelated.txt", b"z\n")
        await put(stocked, "a holiday plan.txt", b"plan\n")
        painted = await next_files(events, containing="a holiday plan.txt")
        assert "unrelated.txt" not in painted and "notes_2026.txt" not in painted
        assert painted.index("a holiday plan.txt") < painted.index("holiday video.bin")


async def test_a_catalog_made_before_search_gets_its_indexes_at_start(config):
    config.db_path.parent.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(config.db_path)
    old.executescript(
        "CREATE TABLE files (id TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL,"
        " sha256 TEXT NOT NULL, mime TEXT NOT NULL, declared_mime TEXT,"
        " created_at TEXT NOT NULL, owner TEXT);"
        "INSERT INTO files VALUES ('a', 'kept.txt', 1, '', 'text/plain', NULL, 'x', 'o');"
    )
    old.close()
    db = await open_catalog(config)
    await db.close()
    conn = sqlite3.connect(config.db_path)
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"files_by_created", "files_by_size", "files_by_name"} <= indexes
    assert conn.execute("SELECT name FROM files").fetchall() == [("kept.txt",)]
    conn.close()
