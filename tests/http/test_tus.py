"""tus 1.0 at /tus/ through the production bootstrap (TestClient): core, every
extension, ownership, quota, expiry with a moved clock."""

import asyncio
import base64
import hashlib
import os

import pytest
from stario.testing import TestClient
from tests.support.fixtures import (
    SETUP_TOKEN,
    add_account,
    app_client,
    bearer,
    every_configuration,
    request_policy,
    signed_in_client,
    unfinished_resumable,
)
from tests.support.tus import OCTETS, TUS, create, listed, metadata, offset_of, patch

from app.accounts.store import set_quota
from app.catalog.open import open_catalog
from app.config import Config
from app.main import make_bootstrap


async def test_options_tells_what_the_server_speaks(client, config: Config):
    answer = await client.request("OPTIONS", "/tus/")
    assert answer.status_code == 204
    assert answer.headers.get("tus-version") == "1.0.0"
    extensions = set(answer.headers.get("tus-extension").split(","))
    assert {
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "expiration",
        "checksum",
        "termination",
        "concatenation",
    } <= extensions
    assert int(answer.headers.get("tus-max-size")) == config.max_file_bytes
    assert {"sha1", "sha256", "md5"} <= set(answer.headers.get("tus-checksum-algorithm").split(","))
    assert "tus-resumable" not in answer.headers


@every_configuration
async def test_upload_in_appends_becomes_a_file_when_complete(client):
    data = b"hello resumable world\n" * 1000
    url = await create(client, len(data))
    assert await offset_of(client, url) == 0
    answer = await patch(client, url, 0, data[:5000])
    assert answer.status_code == 204, answer.text
    assert answer.headers.get("upload-offset") == "5000"
    assert answer.headers.get("tus-resumable") == "1.0.0"
    assert "upload-expires" in answer.headers
    assert await listed(client) == []  # not a file until complete
    assert await offset_of(client, url) == 5000
    answer = await patch(client, url, 5000, data[5000:])
    assert answer.status_code == 204
    assert answer.headers.get("upload-offset") == str(len(data))
    file_id = answer.headers.get("stowage-file-id")
    files = await listed(client)
    assert [f["id"] for f in files] == [file_id]
    assert files[0]["name"] == "notes.txt"
    assert files[0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert files[0]["declared_mime"] == "text/plain"
    download = await client.get(f"/files/{file_id}")
    assert download.content == data
    # Asked again after the end: complete, so a client never sends it twice.
    assert await offset_of(client, url) == len(data)


async def test_wrong_offset_type_and_version_are_refused(client):
    url = await create(client, 10)
    assert (await patch(client, url, 3, b"abc")).status_code == 409
    wrong_type = await client.request(
        "PATCH", url, content=b"abc", headers={**TUS, "upload-offset": "0"}
    )
    assert wrong_type.status_code == 415
    old = await client.request(
        "PATCH", url, content=b"abc", headers={**OCTETS, "tus-resumable": "0.2.2",
                                               "upload-offset": "0"}
    )  # fmt: skip
    assert old.status_code == 412
    assert old.headers.get("tus-version") == "1.0.0"
    too_long = await patch(client, url, 0, b"x" * 11)
    assert too_long.status_code == 413
    assert await offset_of(client, url) == 0


@every_configuration
async def test_creation_with_upload_and_checksums(client):
    data = b"0123456789" * 100
    good = base64.b64encode(hashlib.sha1(data).digest()).decode()
    answer = await client.post(
        "/tus/",
        content=data,
        headers={**OCTETS, "upload-length": str(len(data)), "upload-checksum": f"sha1 {good}",
                 "upload-metadata": metadata(name="digits.txt")},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert answer.headers.get("upload-offset") == str(len(data))
    assert [f["name"] for f in await listed(client)] == ["digits.txt"]

    url = await create(client, 20)
    assert (await patch(client, url, 0, b"a" * 10)).status_code == 204
    bad = base64.b64encode(hashlib.sha256(b"not these").digest()).decode()
    answer = await patch(client, url, 10, b"b" * 10, **{"upload-checksum": f"sha256 {bad}"})
    assert answer.status_code == 460
    assert await offset_of(client, url) == 10  # that append's bytes are gone
    md5 = base64.b64encode(hashlib.md5(b"b" * 10).digest()).decode()
    answer = await patch(client, url, 10, b"b" * 10, **{"upload-checksum": f"md5 {md5}"})
    assert answer.status_code == 204
    file_id = answer.headers.get("stowage-file-id")
    stored = [f for f in await listed(client) if f["id"] == file_id][0]
    assert stored["sha256"] == hashlib.sha256(b"a" * 10 + b"b" * 10).hexdigest()
    unknown = await patch(client, await create(client, 1), 0, b"x",
                          **{"upload-checksum": "crc32 AAAA"})  # fmt: skip
    assert unknown.status_code == 400


@every_configuration
async def test_deferred_length(client):
    url = await create(client, None)
    head = await client.request("HEAD", url, headers=TUS)
    assert head.headers.get("upload-defer-length") == "1"
    assert (await patch(client, url, 0, b"abc")).status_code == 204
    answer = await patch(client, url, 3, b"def", **{"upload-length": "6"})
    assert answer.status_code == 204
    assert "stowage-file-id" in answer.headers
    assert [f["size"] for f in await listed(client)] == [6]


@every_configuration
async def test_termination(client):
    url = await create(client, 10)
    await patch(client, url, 0, b"abc")
    answer = await client.request("DELETE", url, headers=TUS)
    assert answer.status_code == 204
    assert (await client.request("HEAD", url, headers=TUS)).status_code == 404
    assert (await patch(client, url, 3, b"def")).status_code == 404


@every_configuration
async def test_concatenation(client):
    parts = [b"first part;", b"second part;", b"third."]
    urls = []
    for part in parts:
        url = await create(client, len(part), **{"upload-concat": "partial"})
        assert (await patch(client, url, 0, part)).status_code == 204
        urls.append(url)
    assert await listed(client) == []  # partials are not files
    absolute = [f"http://127.0.0.1:8000{urls[0]}", *urls[1:]]
    answer = await client.post(
        "/tus/",
        headers={**TUS, "upload-concat": "final;" + " ".join(absolute),
                 "upload-metadata": metadata(filename="joined.txt")},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    files = await listed(client)
    assert [f["name"] for f in files] == ["joined.txt"]
    assert (await client.get(files[0]["url"])).content == b"".join(parts)
    assert files[0]["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert (await client.request("HEAD", urls[0], headers=TUS)).status_code == 404


async def test_method_override(client):
    url = await create(client, 3)
    answer = await client.post(
        url, content=b"abc", headers={**OCTETS, "upload-offset": "0",
                                      "x-http-method-override": "PATCH"}
    )  # fmt: skip
    assert answer.status_code == 204
    assert answer.headers.get("upload-offset") == "3"


async def test_another_account_sees_nothing(config: Config, client):
    url = await create(client, 10)
    _, other_token = await add_account(config, "other")
    async with signed_in_client(config, other_token) as other:
        assert (await other.request("HEAD", url, headers=TUS)).status_code == 404
        assert (await patch(other, url, 0, b"abc")).status_code == 404
        assert (await other.request("DELETE", url, headers=TUS)).status_code == 404
    assert await offset_of(client, url) == 0


async def test_anonymous_is_refused(config: Config, owner):
    async with app_client(config) as anonymous:
        answer = await anonymous.post("/tus/", headers={**TUS, "upload-length": "3"})
        assert answer.status_code == 401


@every_configuration
async def test_quota_reserved_at_creation_and_while_deferred(config: Config):
    _, token = await add_account(config, "small", quota_kind="bytes", quota_bytes=100)
    async with app_client(config, headers=bearer(token)) as client:
        first = await create(client, 60)
        over = await client.post("/tus/", headers={**TUS, "upload-length": "50"})
        assert over.status_code == 413
        assert "quota" in over.json()["error"]
        deferred = await create(client, None)
        answer = await patch(client, deferred, 0, b"x" * 50)
        assert answer.status_code == 413
        assert await offset_of(client, deferred) == 0
        assert (await patch(client, deferred, 0, b"x" * 40)).status_code == 204
        await client.request("DELETE", first, headers=TUS)
        again = await client.post("/tus/", headers={**TUS, "upload-length": "50"})
        assert again.status_code == 201


@every_configuration
async def test_expired_uploads_answer_404_and_are_removed(config: Config, owner):
    now = [1_000_000.0]
    _, token = owner
    async with TestClient(
        make_bootstrap(config, setup_token=SETUP_TOKEN, clock=lambda: now[0]),
        base_url=config.public_url,
        requests=request_policy(config),
        headers=bearer(token),
    ) as client:
        url = await create(client, 10)
        await patch(client, url, 0, b"abc")
        assert await unfinished_resumable(config) == 1
        now[0] += config.upload_expiry + 1
        assert (await client.request("HEAD", url, headers=TUS)).status_code == 404
        assert (await patch(client, url, 3, b"def")).status_code == 404
        alive = await create(client, 10)
        await patch(client, alive, 0, b"abc")
    # The next start removes what expired, and only that.
    async with TestClient(
        make_bootstrap(config, setup_token=SETUP_TOKEN, clock=lambda: now[0]),
        base_url=config.public_url,
        requests=request_policy(config),
        headers=bearer(token),
    ) as client:
        assert await unfinished_resumable(config) == 1
        assert await offset_of(client, alive) == 3


@pytest.mark.parametrize("header", ["upload-length: x", "none"])
async def test_creation_needs_a_length(client, header):
    headers = dict(TUS)
    if header != "none":
        headers["upload-length"] = "x"
    assert (await client.post("/tus/", headers=headers)).status_code == 400


@every_configuration
async def test_an_empty_file_is_complete_at_creation(client):
    answer = await client.post(
        "/tus/", headers={**TUS, "upload-length": "0", "upload-metadata": metadata(name="e")}
    )
    assert answer.status_code == 201
    assert answer.headers.get("stowage-file-id")
    assert [(f["name"], f["size"]) for f in await listed(client)] == [("e", 0)]


async def test_refusals_before_the_handler_carry_the_tus_version(config: Config, owner):
    async with app_client(config) as anonymous:
        answer = await anonymous.request("HEAD", "/tus/" + "a" * 32, headers=TUS)
        assert answer.status_code == 401
        assert answer.headers.get("tus-resumable") == "1.0.0"


async def test_every_page_shows_an_unfinished_upload_as_paused(client):
    url = await create(client, 1000, name="half.bin")
    await patch(client, url, 0, b"x" * 400)
    page = (await client.get("/")).text
    assert "Paused" in page and "half.bin" in page and "400 bytes of 1000 bytes (40%)" in page
    await patch(client, url, 400, b"x" * 600)
    page = (await client.get("/")).text
    assert "Paused" not in page


async def _file_request(client, **fields) -> str:
    """A file request's link path (/r/TOKEN) made by the signed-in owner."""
    answer = await client.post("/api/requests", json={"label": "Send me", **fields})
    assert answer.status_code == 201, answer.text
    return "/r/" + answer.json()["request"]["url"].rstrip("/").rsplit("/r/", 1)[1]


@every_configuration
async def test_resumable_upload_through_a_file_request(config: Config, client):
    link = await _file_request(client, max_files=1)
    async with app_client(config) as stranger:  # no account: the link is the credential
        answer = await stranger.post(
            f"{link}/tus/", headers={**TUS, "upload-length": "6",
                                     "upload-metadata": metadata(filename="sent.txt")}
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        url = answer.headers.get("location")
        assert url.startswith(f"{link}/tus/")
        assert (await patch(stranger, url, 0, b"abc")).status_code == 204
        # The owner's own /tus/ does not know it, nor does another link.
        assert (await client.request("HEAD", "/tus/" + url.rsplit("/", 1)[1],
                                     headers=TUS)).status_code == 404  # fmt: skip
        other = await _file_request(client)
        other_url = f"{other}/tus/{url.rsplit('/', 1)[1]}"
        assert (await stranger.request("HEAD", other_url, headers=TUS)).status_code == 404
        done = await patch(stranger, url, 3, b"def")
        assert done.status_code == 204, done.text
        files = await listed(client)
        assert [(f["name"], f["size"]) for f in files] == [("sent.txt", 6)]
        # The request is full now: a new upload through it is refused at creation.
        full = await stranger.post(f"{link}/tus/", headers={**TUS, "upload-length": "6"})
        assert full.status_code == 410


@every_configuration
async def test_the_whole_file_is_hashed_while_it_arrives_not_read_again(client, monkeypatch):
    """The running sha256 starts with the first append, so completing an upload made
    in one process never reads the file back (only a restart does)."""
    from app.resumable.partials.local import LocalPartials
    from app.resumable.partials.s3 import S3Partials

    async def no_rereading(*_args):
        raise AssertionError("the file was read again to hash it")

    monkeypatch.setattr(LocalPartials, "sha256", no_rereading)
    monkeypatch.setattr(S3Partials, "sha256", no_rereading)
    url = await create(client, 6)
    await patch(client, url, 0, b"abc")
    answer = await patch(client, url, 3, b"def")
    assert answer.status_code == 204, answer.text
    assert (await listed(client))[0]["sha256"] == hashlib.sha256(b"abcdef").hexdigest()


async def test_a_quota_refusal_says_what_unfinished_uploads_hold(config: Config):
    _, token = await add_account(config, "held", quota_kind="bytes", quota_bytes=100)
    async with app_client(config, headers=bearer(token)) as client:
        await create(client, 90)
        over = await client.post("/tus/", headers={**TUS, "upload-length": "20"})
        assert over.status_code == 413
        assert "90 bytes of it held by unfinished resumable uploads" in over.json()["error"]


# ---- concatenation cannot amplify -----------------------------------------------


async def partial_upload(client, body: bytes, at: str = "/tus/") -> str:
    """A complete `Upload-Concat: partial` upload of `body` made at `at`: its URL."""
    made = await client.post(
        at, headers={**TUS, "upload-length": str(len(body)), "upload-concat": "partial"}
    )
    assert made.status_code == 201, made.text
    url = made.headers.get("location")
    assert (await patch(client, url, 0, body)).status_code == 204
    return str(url)


async def final(client, urls: list[str], at: str = "/tus/", name: str = "joined.bin"):
    return await client.post(
        at, headers={**TUS, "upload-concat": "final;" + " ".join(urls),
                     "upload-metadata": metadata(filename=name)},
    )  # fmt: skip


def local_files(config: Config) -> list[tuple[str, int]]:
    """Every file under the uploads dir (partials' bytes, blobs, temp files) and its
    size: what a refused final must leave as it was."""
    if config.storage.kind == "s3":
        return []  # the bucket is compared by what the parts still answer
    root = config.uploads_dir
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*")
                  if p.is_file())  # fmt: skip


async def still_usable(client, urls: list[str], parts: list[bytes], at: str = "/tus/") -> None:
    """The partials are untouched: each answers its full offset, and they still join."""
    for url, part in zip(urls, parts, strict=True):
        head = await client.request("HEAD", url, headers=TUS)
        assert head.status_code == 200, head.text
        assert head.headers.get("upload-offset") == str(len(part))
    joined = await final(client, urls, at)
    assert joined.status_code == 201, joined.text


@every_configuration
async def test_a_final_naming_a_partial_twice_is_refused_before_copying(client, config: Config):
    """One 1 MiB partial named 1,500 times once stored 1.5 GB (past any quota or request
    cap): a partial is joined once, and the refusal leaves it as it was."""
    parts = [b"a" * 1000, b"b" * 10]
    urls = [await partial_upload(client, part) for part in parts]
    before = local_files(config)
    for named in ([urls[0], urls[0]], [urls[0], urls[1], urls[0]], [urls[1]] * 1500):
        answer = await final(client, named)
        assert answer.status_code == 400, answer.text
        assert "more than once" in answer.json()["error"]
    assert local_files(config) == before
    assert await listed(client) == []
    await still_usable(client, urls, parts)
    [joined] = await listed(client)
    assert (await client.get(joined["url"])).content == b"".join(parts)


async def test_a_final_may_name_only_partials_of_its_own_destination(
    client, anonymous, config: Config
):
    made = await client.post("/api/requests", json={"label": "drop box"})
    assert made.status_code == 201, made.text
    through = made.json()["request"]["url"] + "/tus"
    _, other_token = await add_account(config, "other")
    async with signed_in_client(config, other_token) as other:
        others = await partial_upload(other, b"theirs")
    mine = await partial_upload(client, b"mine")
    dropped = await partial_upload(anonymous, b"dropped", through)
    assert dropped.startswith("/r/")
    before = local_files(config)
    refusals = [
        (anonymous, [mine], through),  # the account's own, through its request link
        (anonymous, [dropped, others], through),  # another account's
        (client, [dropped], "/tus/"),  # the request's, by the account itself
        (client, [mine, others], "/tus/"),
    ]
    for who, named, at in refusals:
        answer = await final(who, named, at)
        assert answer.status_code == 404, answer.text
        assert "no such partial upload" in answer.json()["error"]
    assert local_files(config) == before
    assert await listed(client) == []
    await still_usable(client, [mine], [b"mine"])
    await still_usable(anonymous, [dropped], [b"dropped"], through)
    # The second file of the same name takes the next free number.
    assert sorted(f["name"] for f in await listed(client)) == ["joined (2).bin", "joined.bin"]


@every_configuration
async def test_a_final_over_the_quota_is_refused_before_copying_and_keeps_its_parts(
    config: Config,
):
    """The parts' reservations fit the quota when they were made; lowered since, the
    final is refused before a byte is copied, and its parts wait for more room."""
    account, token = await add_account(config, "small", quota_kind="bytes", quota_bytes=3000)
    parts = [b"x" * 1000, b"y" * 1000]
    async with app_client(config, headers=bearer(token)) as client:
        urls = [await partial_upload(client, part) for part in parts]
        before = local_files(config)
        await quota_of(config, account.id, 1500)
        answer = await final(client, urls)
        assert answer.status_code == 413, answer.text
        assert "quota" in answer.json()["error"]
        assert local_files(config) == before
        assert await listed(client) == []
        await quota_of(config, account.id, 3000)
        await still_usable(client, urls, parts)


async def test_a_final_through_a_request_obeys_its_limits_before_copying(
    client, anonymous, config: Config
):
    made = await client.post(
        "/api/requests", json={"label": "capped", "max_file_bytes": 1000, "max_files": 1}
    )
    assert made.status_code == 201, made.text
    through = made.json()["request"]["url"] + "/tus"
    parts = [b"p" * 600, b"q" * 300]
    urls = [await partial_upload(anonymous, part, through) for part in parts]
    before = local_files(config)
    for named, status in (([urls[0], urls[1], urls[1]], 400), ([urls[0], urls[0]], 400)):
        answer = await final(anonymous, named, through)
        assert answer.status_code == status, answer.text
    big = await partial_upload(anonymous, b"r" * 600, through)
    over_cap = await final(anonymous, [urls[0], big], through)
    assert over_cap.status_code == 413, over_cap.text
    assert "limit" in over_cap.json()["error"]
    assert await listed(client) == []
    assert [f for f in local_files(config) if f not in before] == (
        [] if config.storage.kind == "s3" else [(f".resumable/{big.rsplit('/', 1)[-1]}", 600)]
    )
    await still_usable(anonymous, urls, parts, through)
    [joined] = await listed(client)
    assert joined["size"] == 900


async def quota_of(config: Config, account_id: str, quota_bytes: int) -> None:
    db = await open_catalog(config)
    try:
        await set_quota(db, account_id, "bytes", quota_bytes)
    finally:
        await db.close()


async def test_finals_at_once_join_a_partial_only_once(client, config: Config):
    """Six finals naming the same partial at the same moment: one file, five refusals."""
    part = os.urandom(4 * 1024 * 1024)
    url = await partial_upload(client, part)
    answers = await asyncio.gather(*(final(client, [url]) for _ in range(6)))
    assert sorted(a.status_code for a in answers) == [201] + [404] * 5
    [stored] = await listed(client)
    assert stored["sha256"] == hashlib.sha256(part).hexdigest()
    assert [f for f in local_files(config) if f[0].startswith(".")] == []
