"""Quotas in the ingest pipeline, for every transport; the concurrent race; the page."""

import asyncio
import base64
import json

from tests.support.fixtures import add_account, signed_in_client, stored_blobs

from app.config import Config

BOUNDARY = "quotaboundary"


def multipart(name: str, body: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{name}"\r\n\r\n'
        ).encode()
        + body
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def quota_config(tmp_path, quota: str) -> Config:
    return Config.load({"data_dir": str(tmp_path / "data"), "default_quota": quota}, environ={})


async def test_raw_upload_over_what_is_left_is_refused_before_reading(tmp_path):
    config = quota_config(tmp_path, "10MiB")
    async with signed_in_client(config) as client:
        first = await client.put("/uploads/a.bin", content=b"a" * (9 * 1024 * 1024 + 838_861))
        assert first.status_code == 201
        refused = await client.put("/uploads/b.bin", content=b"b" * 1024 * 1024)
        assert refused.status_code == 413
        assert refused.json() == {
            "error": "over your quota: 9.8 MiB of 10 MiB used; b.bin does not fit"
        }
        assert refused.headers.get("connection") == "close"
        assert len(stored_blobs(config)) == 1
        listed = (await client.get("/api/files")).json()["files"]
        assert [f["name"] for f in listed] == ["a.bin"]


async def test_exactly_the_quota_fits_and_one_byte_more_does_not(tmp_path):
    config = quota_config(tmp_path, "1000")
    async with signed_in_client(config) as client:
        assert (await client.put("/uploads/a", content=b"a" * 600)).status_code == 201
        assert (await client.put("/uploads/b", content=b"b" * 401)).status_code == 413
        assert (await client.put("/uploads/c", content=b"c" * 400)).status_code == 201
        assert (await client.put("/uploads/d", content=b"d")).status_code == 413
        # Deleting gives the space back at once.
        files = (await client.get("/api/files")).json()["files"]
        assert (await client.delete(files[0]["url"])).status_code == 204
        assert (await client.put("/uploads/e", content=b"e" * 400)).status_code == 201


async def test_multipart_and_signals_are_held_to_the_quota(tmp_path):
    config = quota_config(tmp_path, "1000")
    async with signed_in_client(config) as client:
        form = await client.post(
            "/uploads",
            content=multipart("form.bin", b"f" * 1001),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        assert form.status_code == 413 and "over your quota" in form.json()["error"]
        signals = {
            "files": [
                {"name": "one.bin", "contents": base64.b64encode(b"1" * 600).decode()},
                {"name": "two.bin", "contents": base64.b64encode(b"2" * 600).decode()},
            ]
        }
        refused = await client.post(
            "/uploads", content=json.dumps(signals), headers={"content-type": "application/json"}
        )
        assert refused.status_code == 413
        assert (
            refused.json()["error"]
            == ("over your quota: 0 bytes of 1000 bytes used; these 2 files does not fit")
            or "these 2 files" in refused.json()["error"]
        )
        on_page = await client.post(
            "/uploads",
            content=json.dumps(signals),
            headers={"content-type": "application/json", "datastar-request": "true"},
        )
        assert on_page.status_code == 200 and "over your quota" in on_page.text
        assert stored_blobs(config) == []
        assert (await client.get("/api/files")).json() == {"files": []}


async def test_an_account_quota_wins_over_the_default(tmp_path):
    config = quota_config(tmp_path, "100")
    _, roomy = await add_account(config, "roomy", quota_kind="bytes", quota_bytes=10_000)
    _, free = await add_account(config, "free", quota_kind="none")
    async with signed_in_client(config, roomy) as client:
        assert (await client.put("/uploads/a", content=b"a" * 5000)).status_code == 201
    async with signed_in_client(config, free) as client:
        assert (await client.put("/uploads/a", content=b"a" * 50_000)).status_code == 201
    async with signed_in_client(config) as client:  # "owner", on the default
        assert (await client.put("/uploads/a", content=b"a" * 101)).status_code == 413


async def test_concurrent_uploads_that_fit_alone_but_not_together(tmp_path):
    config = quota_config(tmp_path, "1000000")
    async with signed_in_client(config) as client:
        for _ in range(5):
            answers = await asyncio.gather(
                *(client.put(f"/uploads/race{n}", content=b"r" * 600_000) for n in range(2))
            )
            assert sorted(r.status_code for r in answers) == [201, 413]
            listed = (await client.get("/api/files")).json()["files"]
            assert len(listed) == 1
            assert (await client.delete(listed[0]["url"])).status_code == 204
        assert stored_blobs(config) == []


async def test_quotas_are_per_account(tmp_path):
    config = quota_config(tmp_path, "1000")
    _, other = await add_account(config, "other")
    async with signed_in_client(config) as client:
        assert (await client.put("/uploads/a", content=b"a" * 900)).status_code == 201
    async with signed_in_client(config, other) as client:
        assert (await client.put("/uploads/b", content=b"b" * 900)).status_code == 201


async def test_the_page_shows_usage_and_repaints_it(tmp_path):
    config = quota_config(tmp_path, "10MiB")
    async with signed_in_client(config) as client:
        page = await client.get("/")
        assert "0 bytes of 10 MiB used (0%)" in page.text and 'id="usage-bar"' in page.text
        async with client.stream("GET", "/live", headers={"accept-encoding": "identity"}) as s:
            events = s.iter_events()
            await _until(events, "0 bytes of 10 MiB used")
            await client.put("/uploads/half", content=b"h" * (5 * 1024 * 1024))
            await _until(events, "5 MiB of 10 MiB used (50%)")


async def _until(events, text: str) -> None:
    async with asyncio.timeout(5):
        while text not in (await anext(events))["data"]:
            pass
