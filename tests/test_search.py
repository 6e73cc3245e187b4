"""Search, type filter and sort in the API (`GET /api/files?q=&type=&sort=&order=`)."""

from urllib.parse import quote

import pytest
from tests.conftest import add_account, signed_in_client

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
