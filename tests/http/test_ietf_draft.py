"""The IETF resumable-upload draft (interop versions 6, 7 and 8) at /tus/ and on
/uploads, through the production bootstrap (TestClient)."""

import base64
import hashlib

import pytest
from tests.support.fixtures import add_account, app_client, both_configurations, signed_in_client

from app.config import Config

PROBLEMS = "https://iana.org/assignments/http-problem-types#"


def draft(version: int = 8, **headers: str) -> dict[str, str]:
    return {"upload-draft-interop-version": str(version), **headers}


def limits(answer) -> dict[str, int]:
    value = answer.headers.get("upload-limit")
    assert value, f"no Upload-Limit on {answer.status_code}"
    return {key.strip(): int(v) for key, _, v in (p.partition("=") for p in value.split(","))}


async def start(client, version: int = 8, length: int | None = None, **headers: str) -> str:
    sent = draft(version, **{"upload-complete": "?0"}, **headers)
    if length is not None:
        sent["upload-length"] = str(length)
    answer = await client.post("/tus/", headers=sent)
    assert answer.status_code == 201, answer.text
    location = answer.headers.get("location")
    assert location.startswith("/tus/") and len(location) == len("/tus/") + 32
    return location


async def append(client, url: str, offset: int, body: bytes, last: bool, version: int = 8,
                 **headers: str):  # fmt: skip
    fields = {"content-type": "application/partial-upload", "upload-offset": str(offset),
              "upload-complete": "?1" if last else "?0"}  # fmt: skip
    sent = draft(version, **{**fields, **headers})
    return await client.request("PATCH", url, content=body, headers=sent)


async def offset_of(client, url: str, version: int = 8) -> tuple[int, str]:
    answer = await client.request("HEAD", url, headers=draft(version))
    assert answer.status_code == 204, answer.status_code
    assert answer.headers.get("cache-control") == "no-store"
    assert answer.headers.get("upload-draft-interop-version") == str(version)
    return int(answer.headers.get("upload-offset")), answer.headers.get("upload-complete")


async def listed(client) -> list[dict]:
    return (await client.get("/api/files")).json()["files"]


async def test_options_offers_partial_upload_appends_and_limits(client, config: Config):
    for path in ("/tus/", "/tus/" + "a" * 32):
        answer = await client.request("OPTIONS", path, headers=draft(6))
        assert answer.status_code == 204
        assert "application/partial-upload" in answer.headers.get("accept-patch")
        assert limits(answer)["max-size"] == config.max_file_bytes
        assert limits(answer)["max-append-size"] == config.max_request_body_bytes
        assert limits(answer)["max-age"] == int(config.upload_expiry)
        assert answer.headers.get("upload-draft-interop-version") == "6"
        assert answer.headers.get("tus-version") == "1.0.0"  # tus is answered beside


@both_configurations
@pytest.mark.parametrize("version", [6, 7, 8])
async def test_upload_in_appends_becomes_a_file_on_upload_complete(client, version: int):
    data = b"resumable by the draft\n" * 500
    meta = "filename " + base64.b64encode(b"draft.txt").decode()
    url = await start(client, version, **{"upload-metadata": meta, "content-type": "text/plain"})
    assert await offset_of(client, url, version) == (0, "?0")
    answer = await append(client, url, 0, data[:4000], last=False, version=version)
    # draft-05 (interop 6) says 201 for an append that leaves the upload incomplete.
    assert answer.status_code == (201 if version == 6 else 204), answer.text
    assert answer.headers.get("upload-offset") == "4000"
    assert answer.headers.get("upload-complete") == "?0"
    assert answer.headers.get("upload-draft-interop-version") == str(version)
    assert 0 < limits(answer)["max-age"] <= 24 * 3600
    assert await listed(client) == []  # not a file until complete
    assert await offset_of(client, url, version) == (4000, "?0")
    answer = await append(client, url, 4000, data[4000:], last=True, version=version)
    assert answer.status_code == 201, answer.text
    assert answer.headers.get("upload-complete") == "?1"
    assert answer.headers.get("upload-offset") == str(len(data))
    stored = answer.json()["files"][0]
    assert answer.headers.get("location") == f"/files/{stored['id']}"
    assert stored["name"] == "draft.txt"
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored["declared_mime"] == "text/plain"
    assert [f["id"] for f in await listed(client)] == [stored["id"]]
    assert (await client.get(f"/files/{stored['id']}")).content == data
    assert await offset_of(client, url, version) == (len(data), "?1")


@both_configurations
@pytest.mark.parametrize("how", ["POST /uploads?name=notes.txt", "PUT /uploads/notes.txt"])
async def test_upload_complete_0_on_uploads_starts_a_resumable_upload(client, how: str):
    method, path = how.split()
    data = b"first bytes, then the rest\n" * 300
    answer = await client.request(
        method, path, content=data[:1000],
        headers=draft(8, **{"upload-complete": "?0", "upload-length": str(len(data)),
                            "content-type": "text/plain"}),
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    url = answer.headers.get("location")
    assert url.startswith("/tus/")
    assert answer.headers.get("upload-offset") == "1000"
    assert answer.headers.get("upload-complete") == "?0"
    assert answer.headers.get("upload-length") == str(len(data))
    assert limits(answer)["max-append-size"] > 0
    assert await listed(client) == []
    answer = await append(client, url, 1000, data[1000:], last=True)
    assert answer.status_code == 201, answer.text
    stored = answer.json()["files"][0]
    assert (stored["name"], stored["declared_mime"]) == ("notes.txt", "text/plain")
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()


async def test_upload_complete_1_on_uploads_is_a_single_request_upload(client):
    answer = await client.post(
        "/uploads?name=whole.txt", content=b"all of it",
        headers=draft(8, **{"upload-complete": "?1"}),
    )  # fmt: skip
    assert answer.status_code == 201
    assert answer.headers.get("location").startswith("/files/")
    assert answer.json()["files"][0]["name"] == "whole.txt"


async def test_upload_complete_0_on_uploads_needs_a_name(client):
    headers = draft(8, **{"upload-complete": "?0"})
    answer = await client.post("/uploads", content=b"x", headers=headers)
    assert answer.status_code == 400
    assert "name" in answer.json()["error"]


async def test_unsupported_interop_version_is_a_readable_400(client):
    answer = await client.post("/tus/", headers=draft(5, **{"upload-complete": "?0"}))
    assert answer.status_code == 400
    assert "6, 7 or 8" in answer.json()["error"]
    url = await start(client)
    for method in ("HEAD", "DELETE"):
        refused = await client.request(method, url, headers=draft(99))
        assert refused.status_code == 400
    assert (await append(client, url, 0, b"abc", last=False, version=4)).status_code == 400
    on_uploads = await client.post(
        "/uploads?name=a.txt", content=b"x", headers=draft(3, **{"upload-complete": "?0"})
    )
    assert on_uploads.status_code == 400
    assert await offset_of(client, url) == (0, "?0")


async def test_offset_mismatch_is_a_409_problem_with_both_offsets(client):
    url = await start(client)
    await append(client, url, 0, b"abcde", last=False)
    answer = await append(client, url, 2, b"xyz", last=False)
    assert answer.status_code == 409
    assert answer.headers.get("content-type").startswith("application/problem+json")
    assert answer.headers.get("upload-offset") == "5"
    problem = answer.json()
    assert problem["type"] == PROBLEMS + "mismatching-upload-offset"
    assert (problem["expected-offset"], problem["provided-offset"]) == (5, 2)
    assert await offset_of(client, url) == (5, "?0")


async def test_appends_need_partial_upload_type_offset_and_upload_complete(client):
    url = await start(client)
    wrong_type = await append(client, url, 0, b"abc", last=False,
                              **{"content-type": "application/offset+octet-stream"})  # fmt: skip
    assert wrong_type.status_code == 415
    assert "application/partial-upload" in wrong_type.json()["error"]
    no_complete = await client.request(
        "PATCH", url, content=b"abc",
        headers=draft(8, **{"content-type": "application/partial-upload", "upload-offset": "0"}),
    )  # fmt: skip
    assert no_complete.status_code == 400
    bad = await append(client, url, 0, b"abc", last=False, **{"upload-complete": "true"})
    assert bad.status_code == 400
    assert await offset_of(client, url) == (0, "?0")


@pytest.mark.parametrize(("version", "empty_status"), [(6, 400), (8, 410)])
async def test_a_completed_upload_takes_no_more(client, version: int, empty_status: int):
    url = await start(client, version)
    assert (await append(client, url, 0, b"done", last=True, version=version)).status_code == 201
    more = await append(client, url, 4, b"more", last=True, version=version)
    assert more.status_code == 400
    assert more.json()["type"] == PROBLEMS + "completed-upload"
    empty = await append(client, url, 4, b"", last=True, version=version)
    assert empty.status_code == empty_status
    assert empty.json()["type"] == PROBLEMS + "completed-upload"
    assert [f["size"] for f in await listed(client)] == [4]


@both_configurations
async def test_inconsistent_lengths_are_refused_and_keep_nothing_new(client):
    creation = await client.post(
        "/tus/", content=b"abc", headers=draft(8, **{"upload-complete": "?1", "upload-length": "5"})
    )
    assert creation.status_code == 400
    assert creation.json()["type"] == PROBLEMS + "inconsistent-upload-length"
    url = await start(client, length=10)
    await append(client, url, 0, b"abc", last=False)
    short = await append(client, url, 3, b"def", last=True)  # ends at 6, not 10
    assert short.status_code == 400
    assert short.json()["type"] == PROBLEMS + "inconsistent-upload-length"
    other = await append(client, url, 3, b"def", last=False, **{"upload-length": "12"})
    assert other.status_code == 400
    assert other.json()["type"] == PROBLEMS + "inconsistent-upload-length"
    beyond = await append(client, url, 3, b"d" * 8, last=False)
    assert beyond.status_code == 400
    assert await offset_of(client, url) == (3, "?0")
    assert await listed(client) == []


@both_configurations
async def test_known_length_reached_completes_even_with_upload_complete_0(client):
    # tus-js-client's ietf-draft-05 sends ?0 on the last chunk of a file it reads in parts.
    url = await start(client, 6, length=6)
    answer = await append(client, url, 0, b"abcdef", last=False, version=6)
    assert answer.status_code == 201
    assert answer.headers.get("upload-complete") == "?1"
    assert [f["size"] for f in await listed(client)] == [6]
    # And a zero-byte file is complete at its creation (the client sends no append).
    empty = await client.post(
        "/tus/", headers=draft(6, **{"upload-complete": "?0", "upload-length": "0"})
    )
    assert empty.status_code == 201
    assert empty.headers.get("upload-complete") == "?1"
    assert sorted(f["size"] for f in await listed(client)) == [0, 6]


@both_configurations
async def test_upload_complete_1_sets_the_length_where_the_bytes_end(client):
    url = await start(client)  # no length given
    assert (await append(client, url, 0, b"abc", last=False)).status_code == 204
    head = await client.request("HEAD", url, headers=draft())
    assert "upload-length" not in head.headers
    answer = await append(client, url, 3, b"", last=True)  # "complete now, no more data"
    assert answer.status_code == 201
    assert answer.headers.get("upload-length") == "3"
    assert [f["size"] for f in await listed(client)] == [3]
    whole = await client.post(
        "/tus/", content=b"in one go",
        headers=draft(8, **{"upload-complete": "?1", "content-disposition":
                            'attachment; filename="one.txt"'}),
    )  # fmt: skip
    assert whole.status_code == 201
    assert whole.headers.get("location").startswith("/tus/")  # the upload resource
    assert whole.json()["files"][0]["name"] == "one.txt"


async def test_head_and_delete_refuse_state_headers(client):
    url = await start(client)
    head = await client.request("HEAD", url, headers=draft(8, **{"upload-offset": "0"}))
    assert head.status_code == 400
    delete = await client.request("DELETE", url, headers=draft(8, **{"upload-complete": "?1"}))
    assert delete.status_code == 400
    assert await offset_of(client, url) == (0, "?0")


@both_configurations
async def test_delete_cancels_the_upload(client):
    url = await start(client)
    await append(client, url, 0, b"abc", last=False)
    answer = await client.request("DELETE", url, headers=draft(6))
    assert answer.status_code == 204
    assert answer.headers.get("upload-draft-interop-version") == "6"
    assert (await client.request("HEAD", url, headers=draft())).status_code == 404
    assert (await append(client, url, 3, b"def", last=True)).status_code == 404


async def test_413_carries_upload_limit(client, config: Config):
    too_big = str(config.max_file_bytes + 1)
    answer = await client.post(
        "/tus/", headers=draft(8, **{"upload-complete": "?0", "upload-length": too_big})
    )
    assert answer.status_code == 413
    assert limits(answer)["max-size"] == config.max_file_bytes


async def test_method_override_speaks_the_draft(client):
    url = await start(client)
    answer = await client.post(
        url, content=b"abc",
        headers=draft(8, **{"x-http-method-override": "PATCH", "upload-offset": "0",
                            "upload-complete": "?1", "content-type": "application/partial-upload"}),
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert answer.headers.get("upload-complete") == "?1"


async def test_another_account_sees_nothing(config: Config, client):
    url = await start(client)
    _, other_token = await add_account(config, "other")
    async with signed_in_client(config, other_token) as other:
        assert (await other.request("HEAD", url, headers=draft())).status_code == 404
        assert (await append(other, url, 0, b"abc", last=True)).status_code == 404
        assert (await other.request("DELETE", url, headers=draft())).status_code == 404
    assert await offset_of(client, url) == (0, "?0")


async def test_upload_complete_alone_on_uploads_is_the_current_draft(client):
    answer = await client.put(
        "/uploads/later.bin", content=b"part", headers={"upload-complete": "?0"}
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers.get("upload-draft-interop-version") == "8"
    assert answer.headers.get("upload-offset") == "4"
    assert await listed(client) == []  # not stored as if it were the whole file


@both_configurations
async def test_the_draft_through_a_file_request_tells_no_ids(config: Config, client):
    made = await client.post("/api/requests", json={"label": "Send me", "max_files": 2})
    link = "/r/" + made.json()["request"]["url"].rstrip("/").rsplit("/r/", 1)[1]
    async with app_client(config) as stranger:  # no account: the link is the credential
        created = await stranger.post(
            f"{link}/tus/", content=b"abc",
            headers=draft(6, **{"upload-complete": "?0", "content-disposition":
                                'attachment; filename="sent.txt"'}),
        )  # fmt: skip
        assert created.status_code == 201, created.text
        url = created.headers.get("location")
        assert url.startswith(f"{link}/tus/")
        assert (await offset_of(stranger, url, 6)) == (3, "?0")
        done = await append(stranger, url, 3, b"def", last=True, version=6)
        assert done.status_code == 201, done.text
        for header in ("location", "stowage-file-id", "stowage-file-location"):
            assert header not in done.headers
        assert "id" not in done.json()["files"][0]
        head = await stranger.request("HEAD", url, headers=draft(6))
        assert head.headers.get("upload-complete") == "?1"
        assert "stowage-file-id" not in head.headers
        await client.delete(f"/api/requests/{made.json()['request']['id']}")
        closed = await stranger.post(f"{link}/tus/", headers=draft(8, **{"upload-complete": "?0"}))
        assert closed.status_code in (404, 410)
        assert closed.headers.get("upload-draft-interop-version") == "8"
        assert "tus-resumable" not in closed.headers
    assert [(f["name"], f["size"]) for f in await listed(client)] == [("sent.txt", 6)]


@pytest.mark.parametrize("how", ["POST uploads?name=part.txt", "PUT uploads/part.txt"])
async def test_upload_complete_0_through_a_file_request_is_resumable_not_stored_short(
    config: Config, client, how: str
):
    """`Upload-Complete: ?0` on a request link's /uploads, as on the account's own: the
    body is the first bytes of a resumable upload, never a whole file cut short."""
    method, where = how.split()
    made = await client.post("/api/requests", json={"label": "Send me", "max_files": 1})
    link = "/r/" + made.json()["request"]["url"].rstrip("/").rsplit("/r/", 1)[1]
    data = b"the first part, then the rest\n" * 100
    async with app_client(config) as stranger:
        started = await stranger.request(
            method, f"{link}/{where}", content=data[:1000],
            headers=draft(8, **{"upload-complete": "?0", "upload-length": str(len(data))}),
        )  # fmt: skip
        assert started.status_code == 201, started.text
        url = started.headers.get("location")
        assert url.startswith(f"{link}/tus/"), url
        assert started.headers.get("upload-offset") == "1000"
        assert started.headers.get("upload-complete") == "?0"
        assert await listed(client) == []  # not stored as if it were the whole file
        assert (await client.get("/api/requests")).json()["requests"][0]["files"] == 0
        done = await append(stranger, url, 1000, data[1000:], last=True)
        assert done.status_code == 201, done.text
        assert "id" not in done.json()["files"][0]
    [stored] = await listed(client)
    assert (stored["name"], stored["sha256"]) == ("part.txt", hashlib.sha256(data).hexdigest())
    assert (await client.get("/api/requests")).json()["requests"][0]["files"] == 1
