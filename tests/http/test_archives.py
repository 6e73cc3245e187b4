"""ZIP downloads of several files (issue 13, item 5) through the TestClient on the
production bootstrap: the API's answers, the archive's bytes (checked by Python's
zipfile and `unzip -t`), ranges joined into the same bytes, and the access rule."""

import io
import itertools
import shutil
import sqlite3
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from stario.testing import TestClient
from tests.support.fixtures import add_account, app_client, bearer

from app.config import Config
from app.downloads.validators import modified_at
from app.downloads.zip_layout import (
    MEMBER_MODE,
    READ_BYTES,
    Layout,
    Literal,
    Member,
    build_layout,
    crc32_of,
)
from app.features.archives.data import (
    MAX_ARCHIVE_FILES,
    MAX_LIVE_ARCHIVES,
    Archive,
    ArchiveMemoryFull,
    Archives,
    archive_names,
    safe_member_name,
)
from app.storage.ids import new_blob_id

UNZIP = shutil.which("unzip")


async def upload(client: TestClient, name: str, body: bytes) -> dict[str, Any]:
    response = await client.post("/uploads", params={"name": name}, content=body)
    assert response.status_code == 201, response.text
    file: dict[str, Any] = response.json()["files"][0]
    return file


async def make_archive(client: TestClient, ids: list[str]) -> dict[str, Any]:
    response = await client.post("/api/archives", json={"ids": ids})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert response.headers.get("location") == body["url"]
    return body


def unzip_test(tmp_path: Path, data: bytes) -> None:
    if UNZIP is None:
        pytest.fail("unzip is not installed (.ci/run installs it)")
    path = tmp_path / "check.zip"
    path.write_bytes(data)
    done = subprocess.run([UNZIP, "-t", str(path)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_archive_holds_the_files_under_safe_unique_names(
    client: TestClient, tmp_path: Path
) -> None:
    bodies = {
        "a.txt": b"first a\n" * 1000,
        "b.bin": bytes(range(256)) * 4096,  # 1 MiB: spans a read
        "empty": b"",
    }
    files = [await upload(client, name, body) for name, body in bodies.items()]
    files.append(await upload(client, "a.txt", b"second a\n"))
    archive = await make_archive(client, [f["id"] for f in files])
    response = await client.get(archive["url"])
    assert response.status_code == 200
    assert response.headers.get("content-type") == "application/zip"
    assert (
        int(response.headers.get("content-length") or 0) == archive["size"] == len(response.content)
    )
    assert response.headers.get("content-encoding") is None
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        assert z.testzip() is None
        assert z.namelist() == ["a.txt", "b.bin", "empty", "a (2).txt"]
        assert z.read("a.txt") == bodies["a.txt"]
        assert z.read("b.bin") == bodies["b.bin"]
        assert z.read("empty") == b""
        assert z.read("a (2).txt") == b"second a\n"
        for info, file in zip(z.infolist(), files, strict=True):
            assert info.compress_type == zipfile.ZIP_STORED
            uploaded = modified_at(file["created_at"])
            # DOS times have two-second steps.
            got = info.date_time
            assert got[:5] == uploaded.timetuple()[:5] and got[5] == uploaded.second // 2 * 2
    unzip_test(tmp_path, response.content)
    # Deterministic: the same selection again gives the same bytes and validator.
    again = await make_archive(client, [f["id"] for f in files])
    second = await client.get(again["url"])
    assert second.content == response.content
    assert second.headers.get("etag") == response.headers.get("etag")


async def test_two_ranges_joined_are_the_archive(client: TestClient, tmp_path: Path) -> None:
    files = [await upload(client, f"part{i}.bin", bytes([i]) * 700_000) for i in range(3)]
    archive = await make_archive(client, [f["id"] for f in files])
    whole = await client.get(archive["url"])
    etag = whole.headers.get("etag")
    size = archive["size"]
    cut = 1_000_003  # inside the second member's bytes
    first = await client.get(archive["url"], headers={"range": f"bytes=0-{cut - 1}"})
    rest = await client.get(archive["url"], headers={"range": f"bytes={cut}-", "if-range": etag})
    assert first.status_code == rest.status_code == 206
    assert rest.headers.get("content-range") == f"bytes {cut}-{size - 1}/{size}"
    joined = first.content + rest.content
    assert joined == whole.content
    with zipfile.ZipFile(io.BytesIO(joined)) as z:
        assert z.testzip() is None
    unzip_test(tmp_path, joined)
    # Every small range inside the headers and across member boundaries, too.
    for start in (0, 29, 30, 700_050, size - 22, size - 1):
        part = await client.get(archive["url"], headers={"range": f"bytes={start}-{start + 99}"})
        assert part.content == whole.content[start : start + 100]
    stale = await client.get(archive["url"], headers={"range": "bytes=5-", "if-range": '"old"'})
    assert stale.status_code == 200 and stale.content == whole.content
    beyond = await client.get(archive["url"], headers={"range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers.get("content-range") == f"bytes */{size}"
    unchanged = await client.get(archive["url"], headers={"if-none-match": etag})
    assert unchanged.status_code == 304


async def test_head_answers_the_length(client: TestClient) -> None:
    file = await upload(client, "x.txt", b"x" * 5000)
    archive = await make_archive(client, [file["id"]])
    head = await client.head(archive["url"])
    assert head.status_code == 200
    assert int(head.headers.get("content-length") or 0) == archive["size"]
    assert head.content == b""
    ranged = await client.head(archive["url"], headers={"range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.headers.get("content-length") == "10"


async def test_another_account_gets_404(client: TestClient, config: Config) -> None:
    mine = await upload(client, "mine.txt", b"private words")
    archive = await make_archive(client, [mine["id"]])
    _, other_token = await add_account(config, "other")
    other = bearer(other_token)
    # The same server (archives live in its memory), another account's token.
    assert (await client.get("/api/tokens", headers=other)).status_code == 200
    assert (await client.get(archive["url"], headers=other)).status_code == 404
    assert (await client.head(archive["url"], headers=other)).status_code == 404
    refused = await client.post("/api/archives", json={"ids": [mine["id"]]}, headers=other)
    assert refused.status_code == 404
    assert "mine.txt" not in refused.text
    stored = await client.post(
        "/uploads", params={"name": "theirs.txt"}, content=b"other words", headers=other
    )
    theirs = stored.json()["files"][0]
    # Nor may the owner pack another account's file in with its own.
    mixed = await client.post("/api/archives", json={"ids": [mine["id"], theirs["id"]]})
    assert mixed.status_code == 404 and "theirs.txt" not in mixed.text
    unknown = await client.post("/api/archives", json={"ids": ["nope"]})
    assert unknown.status_code == 404 and unknown.json()["error"] == "no such file: nope"
    assert (await client.get("/api/archives/not-a-token")).status_code == 404
    # The owner still gets it.
    assert (await client.get(archive["url"])).status_code == 200


async def test_nobody_gets_401(client: TestClient) -> None:
    file = await upload(client, "x.txt", b"x")
    archive = await make_archive(client, [file["id"]])
    nobody = {"authorization": "Bearer not-a-live-token"}
    assert (await client.get(archive["url"], headers=nobody)).status_code == 401
    refused = await client.post("/api/archives", json={"ids": [file["id"]]}, headers=nobody)
    assert refused.status_code == 401


async def test_a_deleted_member_makes_the_archive_404(client: TestClient) -> None:
    file = await upload(client, "gone.txt", b"soon gone")
    archive = await make_archive(client, [file["id"]])
    assert (await client.delete(f"/files/{file['id']}")).status_code in (200, 204)
    gone = await client.get(archive["url"])
    assert gone.status_code == 404 and "deleted" in gone.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": []},
        {"ids": "abc"},
        {"ids": [1, 2]},
        {"ids": ["a"], "extra": 1},
        {"ids": [f"id{i}" for i in range(MAX_ARCHIVE_FILES + 1)]},
    ],
)
async def test_bad_requests_get_400_in_words(client: TestClient, body: dict[str, Any]) -> None:
    response = await client.post("/api/archives", json=body)
    assert response.status_code == 400
    assert response.json()["error"]


async def test_not_json_gets_400(client: TestClient) -> None:
    response = await client.post("/api/archives", content=b"{not json")
    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_member_names_are_single_safe_segments() -> None:
    assert safe_member_name("../../etc/passwd") == ".._.._etc_passwd"
    assert safe_member_name("/abs/path.txt") == "_abs_path.txt"
    assert safe_member_name("C:\\win\\x.txt") == "C:_win_x.txt"
    assert safe_member_name("..") == "file"
    assert safe_member_name("line\nbreak") == "line_break"
    assert archive_names(["a.txt", "A.TXT", "a.txt", "noext", "noext", ".rc", ".rc"]) == [
        "a.txt",
        "A (2).TXT",
        "a (3).txt",
        "noext",
        "noext (2)",
        ".rc",
        ".rc (2)",
    ]


def joined_archive(layout: Layout, members: list[Member]) -> bytes:
    """Every piece of the layout in order: literal bytes, and each member's file."""
    joined = bytearray()
    for piece in layout.pieces:
        assert piece.start == len(joined)
        if isinstance(piece, Literal):
            joined += piece.data
        else:
            assert piece.blob_id == members[piece.index].blob_id
            joined += Path(members[piece.index].path).read_bytes()
    assert len(joined) == layout.size
    return bytes(joined)


def library_archive(members: list[Member]) -> bytes:
    """The same members zipped by stream-zip, the reference for every byte."""
    from stream_zip import NO_COMPRESSION_64, stream_zip

    files = (
        (m.name, m.modified, MEMBER_MODE, NO_COMPRESSION_64(m.size, crc32_of(m.path, m.size)),
         iter([Path(m.path).read_bytes()]))
        for m in members
    )  # fmt: skip
    return b"".join(stream_zip(files, chunk_size=READ_BYTES))


def test_layout_survives_headers_split_across_the_librarys_blocks(tmp_path: Path) -> None:
    """stream-zip hands out 1 MiB blocks: a member ending just before a block's end puts
    part of the next header in that block and the rest in the next one."""
    sizes = [READ_BYTES - 10, READ_BYTES - 40, 3, 0, READ_BYTES + 1, 2 * READ_BYTES - 35]
    members = []
    for index, size in enumerate(sizes):
        path = tmp_path / f"m{index}"
        path.write_bytes(bytes([index + 1]) * size)
        members.append(
            Member(
                f"m{index}.bin",
                str(path),
                size,
                datetime(2026, 5, 6, tzinfo=UTC),
                "00" * 32,
                f"blob{index}",
            )
        )
    layout = build_layout(members)
    joined = joined_archive(layout, members)
    assert joined == library_archive(members)
    with zipfile.ZipFile(io.BytesIO(joined)) as z:
        assert z.testzip() is None
        assert [z.getinfo(m.name).file_size for m in members] == sizes
        assert z.read("m4.bin") == bytes([5]) * sizes[4]


def test_layout_is_the_librarys_zip_byte_for_byte(tmp_path: Path) -> None:
    """The compact layout writes the ZIP structure itself: every byte is stream-zip's,
    for names in UTF-8 of every length, empty members, any time zone, and every range
    starts at most one piece before the one holding its first byte."""
    plus_five = timezone(timedelta(hours=5))
    specs = [
        ("a.txt", 5, datetime(2026, 5, 6, 1, 2, 3, 999_999, tzinfo=UTC)),
        ("ünïcødé 名前.bin", 70_000, datetime(1999, 12, 31, 23, 59, 59, tzinfo=plus_five)),
        ("empty", 0, datetime(1980, 1, 1, tzinfo=UTC)),
        ("x" * 255, READ_BYTES + 3, datetime(2037, 12, 31, 23, 59, 58, tzinfo=UTC)),
    ]
    for i in range(300):
        specs.append((f"many {i}.txt", i, datetime(2026, 1, 1, 0, i // 60, i % 60, tzinfo=UTC)))
    members = []
    for index, (name, size, moment) in enumerate(specs):
        path = tmp_path / f"m{index}"
        path.write_bytes(bytes([index % 251 + 1]) * size)
        members.append(Member(name, str(path), size, moment, f"{index:064x}", f"id{index}"))
    layout = build_layout(members)
    joined = joined_archive(layout, members)
    assert joined == library_archive(members)
    assert len(layout) == len(members) and layout.blob_ids() == [m.blob_id for m in members]
    with zipfile.ZipFile(io.BytesIO(joined)) as z:
        assert z.namelist() == [m.name for m in members]
    for offset in [*range(0, layout.size, 977), layout.directory_start, layout.size - 1]:
        # The member's header and bytes, or the piece of the trailer, that holds it.
        first_two = list(itertools.islice(layout.pieces_from(offset), 2))
        assert first_two[0].start <= offset
        assert any(
            p.start <= offset < p.start + (len(p.data) if isinstance(p, Literal) else p.size)
            for p in first_two
        )
    # Compact: a few tens of bytes a member besides its name and id, not hundreds.
    assert layout.nbytes < len(members) * 100 + 2000


def small_layout(tmp_path: Path, members: int) -> Layout:
    path = tmp_path / "empty"
    path.touch()
    moment = datetime(2026, 5, 6, tzinfo=UTC)
    return build_layout(
        [Member(f"f{i}.txt", str(path), 0, moment, "00" * 32, f"{i:022d}") for i in range(members)]
    )


def test_archives_share_the_budget_and_the_biggest_holder_gives_way(tmp_path: Path) -> None:
    layout = small_layout(tmp_path, 2000)
    cost = Archive("x", layout, "2026-05-06T00:00:00Z", 0).nbytes
    # A share holds three and a half laid-out archives; the budget four shares.
    archives = Archives(memory_bytes=4 * (3 * cost + cost // 2))

    def add(owner: str) -> str:
        return archives.add(Archive(owner, layout, "2026-05-06T00:00:00Z", archives.lifetime_end()))

    def laid_out(token: str) -> bool | None:
        archive = archives.get(token)
        return None if archive is None else archive.layout is not None

    mine = [add("a") for _ in range(5)]
    # Beyond its share, an account's own least recently used layouts give way first,
    # their small recipes kept; the newest stays laid out.
    states = [laid_out(t) for t in mine]
    assert None not in states and states[0] is False and states[-1] is True
    assert states == sorted(states, key=bool)  # the older, the sooner dropped
    # Then whole archives, least recently used first.
    mine += [add("a") for _ in range(30)]
    assert laid_out(mine[0]) is None and laid_out(mine[-1]) is True
    assert archives.dropped_for_room(mine[0], "a") and not archives.dropped_for_room(mine[0], "b")
    assert archives.held <= archives.share
    others = {owner: [add(owner) for _ in range(3)] for owner in ("b", "c", "d")}
    assert archives.held <= archives.memory_bytes
    # A fifth account still gets its archives: the biggest holders make room, and the
    # one used most lately of theirs stays laid out.
    archives.get(others["b"][-1])
    newcomer = [add("e") for _ in range(3)]
    assert all(laid_out(t) is not None for t in newcomer) and laid_out(newcomer[-1])
    assert laid_out(others["b"][-1]) is True
    assert archives.held <= archives.memory_bytes


def test_archives_being_downloaded_are_kept_and_a_full_budget_answers_in_words(
    tmp_path: Path,
) -> None:
    layout = small_layout(tmp_path, 2000)
    cost = Archive("x", layout, "2026-05-06T00:00:00Z", 0).nbytes
    archives = Archives(memory_bytes=4 * (2 * cost + cost // 2))

    def add(owner: str) -> str:
        return archives.add(Archive(owner, layout, "2026-05-06T00:00:00Z", archives.lifetime_end()))

    first, second = add("a"), add("a")
    with archives.download(first), archives.download(second):
        with pytest.raises(ArchiveMemoryFull, match="try again") as refused:
            add("a")
        assert refused.value.retry_after > 0
        for token in (first, second):
            kept = archives.get(token)
            assert kept is not None and kept.layout is not None
    third = add("a")  # the downloads ended: the oldest's layout gives way
    dropped = archives.get(first)
    assert dropped is not None and dropped.layout is None
    # Laid out again (by the download handler), it is kept when there is room, and
    # what it holds is counted once (its recipe now shares the new layout's arrays).
    again = small_layout(tmp_path, 2000)
    assert archives.keep_layout(first, again)
    assert dropped.layout is again and dropped.recipe.crcs is again.recipe().crcs
    live = [archives.get(t) for t in (first, second, third)]
    assert archives.held == sum(a.nbytes for a in live if a is not None)
    assert archives.held <= archives.share
    with pytest.raises(ArchiveMemoryFull, match="choose fewer files"):
        Archives(memory_bytes=cost).add(Archive("a", layout, "2026-05-06T00:00:00Z", 1e18))


async def test_many_archives_of_one_account_leave_anothers_alone(
    client: TestClient, config: Config
) -> None:
    """Beyond the count cap, the account with the most archives gives way (it was the
    oldest archive of anybody's, another account's made before them all)."""
    _, other_token = await add_account(config, "other")
    other = bearer(other_token)
    stored = await client.post(
        "/uploads", params={"name": "theirs.txt"}, content=b"their words", headers=other
    )
    theirs = await client.post(
        "/api/archives", json={"ids": [stored.json()["files"][0]["id"]]}, headers=other
    )
    assert theirs.status_code == 201
    mine = await upload(client, "mine.txt", b"my words")
    for _ in range(MAX_LIVE_ARCHIVES):
        await make_archive(client, [mine["id"]])
    kept = await client.get(theirs.json()["url"], headers=other)
    assert kept.status_code == 200 and kept.content[:4] == b"PK\x03\x04"


async def test_an_archive_beyond_the_accounts_share_gets_503_in_words(tmp_path: Path) -> None:
    """The smallest budget (4 MiB, a 1 MiB share) cannot hold 4,000 files with long
    names: a readable 503 with Retry-After, and the account's other archive stays."""
    config = Config.load(
        {"data_dir": str(tmp_path / "data"), "archive_memory_bytes": str(4 * 1024 * 1024)},
        environ={},
    )
    account, token = await add_account(config, "owner")
    ids = [new_blob_id() for _ in range(4000)]
    for file_id in ids:
        blob = config.uploads_dir / file_id[:2] / file_id
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.touch()
    with sqlite3.connect(config.db_path) as catalog:
        catalog.executemany(
            "INSERT INTO files (id, name, size, sha256, mime, created_at, owner)"
            " VALUES (?, ?, 0, ?, 'text/plain', '2026-07-01T12:00:00Z', ?)",
            [(i, f"{i} {'long name ' * 25}.txt", "00" * 32, account.id) for i in ids],
        )
    async with app_client(config, headers=bearer(token)) as client:
        small = await make_archive(client, ids[:10])
        refused = await client.post("/api/archives", json={"ids": ids})
        assert refused.status_code == 503
        assert refused.headers.get("retry-after", "").isdigit()
        assert "choose fewer files" in refused.json()["error"]
        assert (await client.get(small["url"])).status_code == 200


async def test_a_dropped_layout_is_laid_out_again_byte_for_byte(tmp_path: Path) -> None:
    """With a 1 MiB share, the layouts of the first archives are dropped as more are
    made; their URLs still answer, laid out again from the rows without reading a file,
    the same bytes and ETag, so a download resumes with If-Range. A file renamed since
    would change the bytes: that archive answers 404 in words."""
    config = Config.load(
        {"data_dir": str(tmp_path / "data"), "archive_memory_bytes": str(4 * 1024 * 1024)},
        environ={},
    )
    account, token = await add_account(config, "owner")
    ids = []
    for index in range(2000):
        file_id = new_blob_id()
        blob = config.uploads_dir / file_id[:2] / file_id
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(f"file {index}\n".encode() * (index % 7))
        ids.append(file_id)
    with sqlite3.connect(config.db_path) as catalog:
        catalog.executemany(
            "INSERT INTO files (id, name, size, sha256, mime, created_at, owner)"
            " VALUES (?, ?, ?, ?, 'text/plain', '2026-07-01T12:00:00Z', ?)",
            [
                (file_id, f"note {index:05d}.txt", len(f"file {index}\n") * (index % 7),
                 "00" * 32, account.id)
                for index, file_id in enumerate(ids)
            ],
        )  # fmt: skip
    async with app_client(config, headers=bearer(token)) as client:
        first = await make_archive(client, ids)
        renamed = await make_archive(client, ids[1:] + ids[:1])
        whole = await client.get(first["url"])
        assert whole.status_code == 200
        etag = whole.headers.get("etag")
        with zipfile.ZipFile(io.BytesIO(whole.content)) as z:
            assert z.testzip() is None and len(z.namelist()) == 2000
        # More archives than the share holds laid out: the oldest layouts give way.
        for shift in range(2, 12):
            await make_archive(client, ids[shift:] + ids[:shift])
        cut = len(whole.content) // 3
        rest = await client.get(first["url"], headers={"range": f"bytes={cut}-", "if-range": etag})
        assert rest.status_code == 206 and rest.headers.get("etag") == etag
        assert whole.content[:cut] + rest.content == whole.content
        patched = await client.patch(f"/files/{ids[1]}", json={"name": "another name.txt"})
        assert patched.status_code == 200
        gone = await client.get(renamed["url"])
        assert gone.status_code == 404 and "renamed" in gone.json()["error"]


async def test_a_folders_dropped_layout_is_laid_out_again_from_the_tree(tmp_path: Path) -> None:
    """An archive of a folder whose layout gave way is laid out again from the tree as
    it is, byte for byte (a resumed download continues onto the same bytes); once a
    file has moved out of the folder, it answers 404 in words instead."""
    config = Config.load(
        {"data_dir": str(tmp_path / "data"), "archive_memory_bytes": str(4 * 1024 * 1024)},
        environ={},
    )
    account, token = await add_account(config, "owner")
    async with app_client(config, headers=bearer(token)) as client:
        # Written once the server runs (its start sweeps blobs without rows).
        ids = []
        for index in range(2000):
            file_id = new_blob_id()
            blob = config.uploads_dir / file_id[:2] / file_id
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(f"file {index}\n".encode() * (index % 5))
            ids.append(file_id)
        made = await client.post("/api/folders", json={"name": "Notes"})
        folder = made.json()["folder"]["id"]
        sub = (await client.post("/api/folders", json={"name": "sub", "parent": folder})).json()
        with sqlite3.connect(config.db_path) as catalog:
            catalog.executemany(
                "INSERT INTO files (id, name, name_key, size, sha256, mime, created_at, owner,"
                " folder_id) VALUES (?, ?, ?, ?, ?, 'text/plain', '2026-07-01T12:00:00Z', ?, ?)",
                [
                    (file_id, f"note {index:05d}.txt", f"note {index:05d}.txt",
                     len(f"file {index}\n") * (index % 5), "00" * 32, account.id,
                     sub["folder"]["id"] if index % 2 else folder)
                    for index, file_id in enumerate(ids)
                ],
            )  # fmt: skip
        first = await client.post("/api/archives", json={"folders": [folder]})
        assert first.status_code == 201, first.text
        url = first.json()["url"]
        whole = await client.get(url)
        etag = whole.headers.get("etag")
        with zipfile.ZipFile(io.BytesIO(whole.content)) as z:
            assert z.testzip() is None and len(z.namelist()) == 2002
            assert z.namelist()[:2] == ["Notes/", "Notes/note 00000.txt"]
        for shift in range(1, 12):
            await make_archive(client, ids[shift:] + ids[:shift])
        cut = len(whole.content) // 3
        rest = await client.get(url, headers={"range": f"bytes={cut}-", "if-range": etag})
        assert rest.status_code == 206 and rest.headers.get("etag") == etag
        assert whole.content[:cut] + rest.content == whole.content
        moved = await client.post("/api/files/move", json={"ids": [ids[3]], "to": "root"})
        assert moved.status_code == 200, moved.text
        for shift in range(12, 24):
            await make_archive(client, ids[shift:] + ids[:shift])
        gone = await client.get(url)
        assert gone.status_code == 404 and "moved" in gone.json()["error"]
