"""Direct transfers on S3 (docs/direct-transfers.md), for the s3 suite (bench/s3.py):
a client of the JSON protocol that sends parts straight to the bucket, the page's own
code path in Chromium, and aiobotocore sending the same parts for the peer figure.

What is measured here, beside the proxied figures of bench/s3.py:
- node CPU seconds per GiB, direct against proxied, both ways (goal: direct <= 5%);
- a direct upload from the page (assets/resumable.js, parts in parallel) against
  aiobotocore writing the same object with as many parts in flight (goal >= 0.9x);
- the time from the last part's answer to the file's 201: with the sha256 verified by
  the store (one part, its checksum signed) and read back by the node (many parts).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import MiB, Server

# As many parts in flight as the page sends (assets/resumable.js DIRECT_PARALLEL).
PARALLEL = 4


@dataclass(frozen=True, slots=True)
class DirectUpload:
    seconds: float
    # From the last part's answer to the complete's 201 (the node's checks).
    finish_seconds: float
    checksum: str
    file: dict[str, Any]


def _read(source: Path, start: int, length: int) -> bytes:
    with source.open("rb") as f:
        f.seek(start)
        return f.read(length)


def direct_upload(
    server: Server, source: Path, *, part_size: int | None = None, declare_sha256: bool = False
) -> DirectUpload:
    """`source` through a direct session: opened on the node, parts PUT to the bucket
    (PARALLEL at once), completed on the node."""
    import httpx

    size = source.stat().st_size
    asked: dict[str, Any] = {"name": source.name, "size": size}
    if part_size is not None:
        asked["part_size"] = part_size
    if declare_sha256:
        digest = hashlib.sha256()
        with source.open("rb") as f:
            while chunk := f.read(8 * MiB):
                digest.update(chunk)
        asked["sha256"] = digest.hexdigest()
    headers = dict(server.headers)
    began = time.perf_counter()
    with httpx.Client(base_url=server.base, headers=headers, timeout=600) as node:
        opened = node.post("/api/uploads/direct", json=asked)
        if opened.status_code != 201:
            raise RuntimeError(f"opening a session answered {opened.status_code}: {opened.text}")
        session = opened.json()["session"]
        parts = list(session["parts"])
        while session.get("more"):
            after = parts[-1]["number"] + 1
            session = node.get(f"/api/uploads/direct/{session['id']}?from={after}").json()[
                "session"
            ]
            parts += session["parts"]
        etags: dict[int, str] = {}
        step = session["part_size"]

        def send(part: dict[str, Any]) -> None:
            body = _read(source, (part["number"] - 1) * step, part["size"])
            with httpx.Client(timeout=600) as bucket:
                answer = bucket.put(part["url"], content=body, headers=part.get("headers") or {})
            if answer.status_code != 200:
                raise RuntimeError(f"part {part['number']}: {answer.status_code} {answer.text}")
            etags[part["number"]] = answer.headers["etag"]

        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(send, parts))
        last_part = time.perf_counter()
        done = node.post(
            f"/api/uploads/direct/{session['id']}/complete",
            json={"parts": [{"number": n, "etag": e} for n, e in sorted(etags.items())]},
        )
        finished = time.perf_counter()
    if done.status_code != 201:
        raise RuntimeError(f"completing answered {done.status_code}: {done.text}")
    answer = done.json()
    file = answer["files"][0] if "files" in answer else answer
    return DirectUpload(finished - began, finished - last_part, session["checksum"], file)


async def aiobotocore_parallel_put(weed: Any, key: str, source: Path, part_size: int) -> float:
    """The peer: aiobotocore writing the same object as a multipart upload with
    PARALLEL parts in flight, each read from the file as it is sent; seconds from the
    first request to the completed object."""
    from aiobotocore.session import get_session
    from tests.support.seaweed import ACCESS_KEY, REGION, SECRET_KEY

    size = source.stat().st_size
    async with get_session().create_client(
        "s3",
        endpoint_url=weed.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ) as s3:
        began = time.perf_counter()
        upload = await s3.create_multipart_upload(Bucket=weed.bucket, Key=key)
        numbers = list(range(1, -(-size // part_size) + 1))
        etags: dict[int, str] = {}
        gate = asyncio.Semaphore(PARALLEL)

        async def send(number: int) -> None:
            async with gate:
                start = (number - 1) * part_size
                body = await asyncio.to_thread(_read, source, start, min(part_size, size - start))
                answer = await s3.upload_part(
                    Bucket=weed.bucket, Key=key, UploadId=upload["UploadId"],
                    PartNumber=number, Body=body,
                )  # fmt: skip
                etags[number] = answer["ETag"]

        await asyncio.gather(*(send(n) for n in numbers))
        await s3.complete_multipart_upload(
            Bucket=weed.bucket,
            Key=key,
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in numbers]},
        )
        return time.perf_counter() - began


def page_upload(server: Server, source: Path, *, timeout_ms: int = 600_000) -> float:
    """Seconds from picking `source` in the Files screen of a real Chromium to its row
    in the page's queue saying done (assets/resumable.js, the direct path)."""
    from playwright.sync_api import sync_playwright

    from bench.drop import CHROMIUM, CHROMIUM_ARGS, sign_in

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_context().new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            sign_in(tab, server)
            tab.wait_for_function("() => !document.documentElement.hasAttribute('data-nonce')")
            began = time.perf_counter()
            tab.locator("#picker").set_input_files(str(source))
            said = tab.wait_for_function(PAGE_DONE, polling=20, timeout=timeout_ms).json_value()
            seconds = time.perf_counter() - began
        finally:
            browser.close()
    if said != "done":
        raise RuntimeError(f"the page did not store the file: {said}; errors {errors}")
    return seconds


# The page's queue: one row per file, `done` once stored, `failed`/`refused` otherwise.
PAGE_DONE = """() => {
  const rows = [...document.querySelectorAll('#resumable .transfer')];
  if (!rows.length) return false;
  const bad = rows.find((r) => r.dataset.state === 'failed' || r.dataset.state === 'refused');
  if (bad) return 'failed ' + bad.textContent;
  return rows.every((r) => r.dataset.state === 'done') ? 'done' : false;
}"""
