"""Bodies held in memory are bounded: concurrent JSON file signals against a real server."""

import asyncio
import base64
import json
import os

import httpx
import pytest

pytestmark = pytest.mark.slow
MB = 1_000_000
CONCURRENT = 60


def signals_body(total_bytes: int) -> bytes:
    """A JSON file-signals body of about `total_bytes` (one file, base64)."""
    contents = base64.b64encode(os.urandom(total_bytes * 3 // 4 - 100)).decode()
    return json.dumps({"files": [{"name": "big.bin", "contents": contents}]}).encode()


def test_60_concurrent_15_mb_signal_uploads_keep_memory_bounded(server):
    """Every request is stored (201) or told to come back (503 with Retry-After), never
    a 500, and the server's peak RSS stays under 256 MB (it took 885 MiB before)."""
    body = signals_body(15 * MB)

    async def upload_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=CONCURRENT)
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=server.headers, limits=limits, timeout=120
        ) as http:
            return await asyncio.gather(
                *(
                    http.post(
                        "/uploads", content=body, headers={"content-type": "application/json"}
                    )
                    for _ in range(CONCURRENT)
                )
            )

    responses = asyncio.run(upload_all())
    peak_mib = server.peak_rss_kib() / 1024
    statuses = sorted(r.status_code for r in responses)
    stored = statuses.count(201)
    busy = [r for r in responses if r.status_code == 503]
    print(
        f"\n{CONCURRENT} concurrent {len(body) / MB:.1f} MB signal uploads: {stored} stored,"
        f" {len(busy)} told to retry; server peak RSS {peak_mib:.0f} MiB"
    )
    assert set(statuses) <= {201, 503}, [r.text for r in responses if r.status_code >= 500]
    assert stored >= 1
    for r in busy:
        assert r.headers.get("retry-after", "").isdigit()
        assert "try again" in r.json()["error"]
    listed = server.http().get("/api/files").json()["files"]
    assert len(listed) == stored
    assert peak_mib < 256
