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
import os
import time
from collections.abc import Iterator
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


def _pieces(source: Path, start: int, length: int) -> Iterator[bytes]:
    with source.open("rb") as f:
        f.seek(start)
        while length > 0:
            piece = f.read(min(MiB, length))
            if not piece:
                raise RuntimeError(f"{source} ended early")
            length -= len(piece)
            yield piece


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
            start = (part["number"] - 1) * step
            # Streamed from the file with its length (a part may be the whole GiB):
            # the URL signs Content-Length, so never chunked.
            headers = {**(part.get("headers") or {}), "Content-Length": str(part["size"])}
            with httpx.Client(timeout=600) as bucket:
                for attempt in range(2):  # once more after a 5xx, as the page does
                    answer = bucket.put(
                        part["url"], content=_pieces(source, start, part["size"]), headers=headers
                    )
                    if answer.status_code < 500:
                        break
                    time.sleep(0.5 * (attempt + 1))
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


@dataclass(frozen=True, slots=True)
class PageUpload:
    # From picking the file to its row saying done (the node's 201 included).
    seconds: float
    # From picking the file to the last part's answer from the bucket.
    parts_seconds: float
    parts: int
    # The node's CPU seconds over the whole upload (the session, the completion and
    # its read-back); the store's; Chromium's and Playwright's (the rest of the
    # harness's process tree). The machine has 2 cores for all three.
    node_cpu: float
    store_cpu: float
    browser_cpu: float


def page_upload(
    server: Server, source: Path, bucket_origin: str, store_pid: int, *, timeout_ms: int = 600_000
) -> PageUpload:
    """`source` picked in the Files screen of a real Chromium (assets/resumable.js, the
    direct path: 4 parts in flight, each a cross-origin PUT to the bucket); timed to
    its row in the page's queue saying done."""
    from playwright.sync_api import Request, sync_playwright

    from bench.drop import CHROMIUM, CHROMIUM_ARGS, _descendants_cpu, sign_in
    from bench.harness import process_cpu

    def spent() -> tuple[float, float, float]:
        return (server.cpu(), process_cpu(store_pid), _descendants_cpu(os.getpid()))

    landed: list[float] = []

    def finished(request: Request) -> None:
        if request.method == "PUT" and request.url.startswith(bucket_origin):
            response = request.response()
            if response is not None and response.status == 200:
                landed.append(time.perf_counter())

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            tab.on("requestfinished", finished)
            sign_in(tab, server)
            tab.wait_for_selector("#files")
            tab.wait_for_function("() => !document.documentElement.hasAttribute('data-nonce')")
            said_direct = tab.locator("#resumable").get_attribute("data-direct-uploads")
            if not said_direct:
                raise RuntimeError("the page has no direct uploads (#resumable lacks the URL)")
            cpu_before = spent()
            began = time.perf_counter()
            tab.locator("#picker").set_input_files(str(source))
            said = tab.wait_for_function(PAGE_DONE, polling=20, timeout=timeout_ms).json_value()
            seconds = time.perf_counter() - began
            node_cpu, store_cpu, tree = (b - a for a, b in zip(cpu_before, spent(), strict=True))
        finally:
            browser.close()
    if said != "done":
        raise RuntimeError(f"the page did not store the file: {said}; errors {errors}")
    if not landed:
        raise RuntimeError("no part went to the bucket: the page did not upload directly")
    browser_cpu = max(0.0, tree - node_cpu - store_cpu)
    return PageUpload(seconds, max(landed) - began, len(landed), node_cpu, store_cpu, browser_cpu)


# The page's queue: one row per file, `done` once stored, `failed`/`refused` otherwise.
PAGE_DONE = """() => {
  const rows = [...document.querySelectorAll('#resumable .transfer')];
  if (!rows.length) return false;
  const bad = rows.find((r) => r.dataset.state === 'failed' || r.dataset.state === 'refused');
  if (bad) return 'failed ' + bad.textContent;
  return rows.every((r) => r.dataset.state === 'done') ? 'done' : false;
}"""


# ----------------------------------------------------------------------------- the suite's part


CPU_GOAL = 0.05
PAGE_RATIO_GOAL = 0.9
FINISH_GOAL_SECONDS = 2.0
REDIRECTS = 50


@dataclass
class DirectFigures:
    """What `measure_direct` found; `bench/s3.py` prints it beside the proxied figures."""

    size: int
    big: int
    # Node CPU seconds per upload / download of `size` bytes.
    readback_cpu: list[float]
    store_cpu: list[float]
    download_cpu: list[float]
    readback_rates: list[float]
    store_rates: list[float]
    download_rates: list[float]
    # One 302 (no bytes followed): node CPU and wall, milliseconds.
    redirect_cpu_ms: float
    redirect_ms: list[float]
    # The `big` file: the page against aiobotocore (seconds), and the finish.
    page: list[PageUpload]
    boto_seconds: list[float]
    finish_store: list[float]
    finish_readback: list[float]
    finish_store_cpu: list[float]
    finish_readback_cpu: list[float]
    # aiobotocore's runs: the harness's own CPU (the client) and the store's.
    boto_client_cpu: list[float]
    boto_store_cpu: list[float]


def _delete(server: Server, file_id: str) -> None:
    from bench.harness import curl

    curl(f"{server.base}/files/{file_id}", *server.curl_auth, "-X", "DELETE")


def _delete_named(server: Server, name: str) -> None:
    import httpx

    with httpx.Client(base_url=server.base, headers=server.headers, timeout=60) as node:
        listed = node.get("/api/files", params={"limit": 1000}).json()["files"]
    for file in listed:
        if file["name"] == name:
            _delete(server, file["id"])


def _timed_upload(server: Server, source: Path, **how: Any) -> tuple[DirectUpload, float]:
    before = server.cpu()
    done = direct_upload(server, source, **how)
    return done, server.cpu() - before


def measure_direct(
    weed: Any, work: Path, source: Path, big_source: Path, runs: int, prefix: str
) -> DirectFigures:
    """A node with direct transfers on (the default `--s3-direct all`) over the same
    SeaweedFS: uploads through the protocol (read back: parts of 8 MiB; store-checked:
    one part with its sha256 signed), downloads with `curl -L`, the page's own upload
    of `big_source` in Chromium against aiobotocore, and the finish of `big_source`
    both ways."""
    import statistics

    import httpx

    from bench.harness import (
        MB,
        curl,
        human_size,
        log,
        own_cpu,
        process_cpu,
        settle,
        start_all,
        stop_all,
        stowage,
    )

    size = source.stat().st_size
    big = big_source.stat().st_size
    server = stowage(
        "Stowage on S3 direct",
        work / "stowage-direct-data",
        "--log", "off",
        "--storage", f"s3://{weed.bucket}/{prefix}-direct",
        "--s3-endpoint-url", weed.endpoint_url,
    )  # fmt: skip
    server.env.update(weed.env)
    figures = DirectFigures(
        size, big, [], [], [], [], [], [], 0.0, [], [], [], [], [], [], [], [], []
    )
    log(
        f"s3 direct: node CPU per transfer of {human_size(size)} ({runs} runs), one 302 x"
        f" {REDIRECTS}; then {human_size(big)} from the page vs aiobotocore, and its finish"
    )
    try:
        start_all([server])
        for run in range(runs):
            order = ("read-back", "store") if run % 2 == 0 else ("store", "read-back")
            kept = None
            for kind in order:
                done, cpu = _timed_upload(
                    server, source,
                    **({"part_size": size, "declare_sha256": True} if kind == "store" else {}),
                )  # fmt: skip
                if done.checksum != ("store" if kind == "store" else "read-back"):
                    raise RuntimeError(f"{kind} upload answered checksum {done.checksum!r}")
                if done.file["size"] != size:
                    raise RuntimeError(f"{kind} upload stored {done.file['size']} bytes")
                rate = size / done.seconds / MB
                if kind == "store":
                    figures.store_cpu.append(cpu)
                    figures.store_rates.append(rate)
                    kept = done.file["id"]
                else:
                    figures.readback_cpu.append(cpu)
                    figures.readback_rates.append(rate)
                    _delete(server, done.file["id"])
                settle()
            assert kept is not None
            before = server.cpu()
            got = curl(f"{server.base}/files/{kept}", *server.curl_auth, "-L", output="/dev/null")
            figures.download_cpu.append(server.cpu() - before)
            if got.status != 200:
                raise RuntimeError(f"direct download (curl -L) ended {got.status}")
            figures.download_rates.append(size / got.seconds / MB)
            if run == runs - 1:
                with httpx.Client(base_url=server.base, headers=server.headers) as node:
                    before = server.cpu()
                    for _ in range(REDIRECTS):
                        began = time.perf_counter()
                        answer = node.get(f"/files/{kept}")
                        figures.redirect_ms.append((time.perf_counter() - began) * 1000)
                        if answer.status_code != 302:
                            raise RuntimeError(f"a direct download answered {answer.status_code}")
                    figures.redirect_cpu_ms = (server.cpu() - before) / REDIRECTS * 1000
            _delete(server, kept)
            log(
                f"  run {run + 1}: node CPU upload read-back {figures.readback_cpu[-1]:.2f} s,"
                f" store-checked {figures.store_cpu[-1]:.2f} s, download (302)"
                f" {figures.download_cpu[-1]:.2f} s; upload {figures.readback_rates[-1]:.0f}"
                f" / {figures.store_rates[-1]:.0f} MB/s, download {figures.download_rates[-1]:.0f}"
                " MB/s"
            )
        log(
            f"  302 alone: {figures.redirect_cpu_ms:.1f} ms node CPU each, p50"
            f" {statistics.median(figures.redirect_ms):.1f} ms"
        )
        for run in range(runs):
            order = ("page", "aiobotocore") if run % 2 == 0 else ("aiobotocore", "page")
            for who in order:
                if who == "page":
                    assert weed.process is not None
                    figures.page.append(
                        page_upload(server, big_source, weed.endpoint_url, weed.process.pid)
                    )
                    _delete_named(server, big_source.name)
                else:
                    key = f"direct-peer/run-{run}"
                    client_before, store_before = own_cpu(), process_cpu(weed.process.pid)
                    figures.boto_seconds.append(
                        asyncio.run(aiobotocore_parallel_put(weed, key, big_source, 8 * MiB))
                    )
                    figures.boto_client_cpu.append(own_cpu() - client_before)
                    figures.boto_store_cpu.append(process_cpu(weed.process.pid) - store_before)
                settle()
            page = figures.page[-1]
            log(
                f"  run {run + 1}: {human_size(big)} from the page {big / page.seconds / MB:.0f}"
                f" MB/s to stored ({big / page.parts_seconds / MB:.0f} MB/s to the last of"
                f" {page.parts} parts; CPU s: node {page.node_cpu:.2f}, store"
                f" {page.store_cpu:.2f}, browser {page.browser_cpu:.2f}), aiobotocore"
                f" {big / figures.boto_seconds[-1] / MB:.0f} MB/s"
            )
        for run in range(runs):
            order = ("store", "read-back") if run % 2 == 0 else ("read-back", "store")
            for kind in order:
                how: dict[str, Any] = (
                    {"part_size": big, "declare_sha256": True} if kind == "store" else {}
                )
                done, cpu = _timed_upload(server, big_source, **how)
                if done.checksum != ("store" if kind == "store" else "read-back"):
                    raise RuntimeError(f"{kind} upload answered checksum {done.checksum!r}")
                if kind == "store":
                    figures.finish_store.append(done.finish_seconds)
                    figures.finish_store_cpu.append(cpu)
                else:
                    figures.finish_readback.append(done.finish_seconds)
                    figures.finish_readback_cpu.append(cpu)
                _delete(server, done.file["id"])
                settle()
            log(
                f"  run {run + 1}: {human_size(big)} last part to 201: store-checked (one part)"
                f" {figures.finish_store[-1]:.2f} s, read-back"
                f" ({-(-big // (8 * MiB))} parts) {figures.finish_readback[-1]:.2f} s"
            )
    finally:
        stop_all([server])
    return figures


def direct_lines(figures: DirectFigures, proxied_cpu: dict[str, list[float]]) -> list[str]:
    """The suite's notes on direct transfers, goals and verdicts included. CPU seconds
    are summed over the runs before dividing (the kernel counts in 10 ms ticks); a
    direct download's node CPU is the mean over REDIRECTS 302s (it does not depend on
    the file's size)."""
    import statistics

    from bench.harness import MB, GiB, human_size

    def per_gib(spent: list[float], each: int) -> float:
        return sum(spent) / (len(spent) * each / GiB)

    def verdict(met: bool) -> str:
        return "met" if met else "MISSED"

    size, big = figures.size, figures.big
    proxied_up = per_gib(proxied_cpu["upload"], size)
    proxied_down = per_gib(proxied_cpu["download"], size)
    one_302 = figures.redirect_cpu_ms / 1000
    lines = []
    for label, mine, against in (
        (
            f"direct upload, read back ({-(-size // (8 * MiB))} parts of 8 MiB)",
            per_gib(figures.readback_cpu, size),
            proxied_up,
        ),
        (
            "direct upload, store-checked (one part, its sha256 signed)",
            per_gib(figures.store_cpu, size),
            proxied_up,
        ),
        ("direct download (the 302)", one_302 / (size / GiB), proxied_down),
    ):
        ratio = mine / against if against else float("nan")
        lines.append(
            f"node CPU per GiB at {human_size(size)}, {label}: {mine:.3f} s against"
            f" {against:.3f} s proxied = {ratio:.1%} (goal <= {CPU_GOAL:.0%}):"
            f" {verdict(ratio <= CPU_GOAL)}"
        )
    store_each = sum(figures.store_cpu) / len(figures.store_cpu)
    store_big = per_gib(figures.finish_store_cpu, big)
    readback_big = per_gib(figures.finish_readback_cpu, big)
    one_302_big = one_302 / (big / GiB)
    lines.append(
        f"at {human_size(big)}: store-checked {store_big:.3f} s per GiB"
        f" ({store_big / proxied_up:.1%} of proxied), read back {readback_big:.3f} s per GiB"
        f" ({readback_big / proxied_up:.1%}); direct download"
        f" {one_302_big * 1000:.1f} ms per GiB ({one_302_big / proxied_down:.2%})."
        f" A direct session costs about {store_each * 1000:.0f} ms of node CPU whatever its size"
        f" (open + complete), so it is within 5% of proxying from"
        f" {store_each / (CPU_GOAL * proxied_up) * 1024:.0f} MiB up; a read-back adds the"
        f" sha256 of every byte (hashlib alone about 2 GB/s here, 0.5 s per GiB)"
    )
    lines.append(
        f"one 302: {figures.redirect_cpu_ms:.1f} ms node CPU, p50"
        f" {statistics.median(figures.redirect_ms):.1f} ms wall ({REDIRECTS} requests); curl -L"
        f" of {human_size(size)} {statistics.median(figures.download_rates):.0f} MB/s (node CPU"
        f" by ticks {sum(figures.download_cpu) / len(figures.download_cpu) * 1000:.0f} ms each);"
        f" the Python client's upload {statistics.median(figures.readback_rates):.0f} MB/s read"
        f" back, {statistics.median(figures.store_rates):.0f} MB/s store-checked ({PARALLEL}"
        " parts in flight)"
    )
    page_total = statistics.median(p.seconds for p in figures.page)
    page_parts = statistics.median(p.parts_seconds for p in figures.page)
    boto = statistics.median(figures.boto_seconds)
    ratio = boto / page_total
    lines.append(
        f"{human_size(big)} from the page (Chromium, {PARALLEL} parts in flight) to stored"
        f" {big / page_total / MB:.0f} MB/s against aiobotocore ({PARALLEL} parts of 8 MiB in"
        f" flight) {big / boto / MB:.0f} MB/s = {ratio:.2f}x (goal >= {PAGE_RATIO_GOAL}):"
        f" {verdict(ratio >= PAGE_RATIO_GOAL)}; to the last part's answer"
        f" {big / page_parts / MB:.0f} MB/s = {boto / page_parts:.2f}x (after it: the"
        f" node's read-back). CPU s per upload, medians: node"
        f" {statistics.median(p.node_cpu for p in figures.page):.2f}, store"
        f" {statistics.median(p.store_cpu for p in figures.page):.2f}, browser"
        f" {statistics.median(p.browser_cpu for p in figures.page):.2f}; aiobotocore's"
        f" client {statistics.median(figures.boto_client_cpu):.2f}, store"
        f" {statistics.median(figures.boto_store_cpu):.2f}"
    )
    store = statistics.median(figures.finish_store)
    store_met = verdict(store < FINISH_GOAL_SECONDS)
    lines.append(
        f"{human_size(big)} last part to the row committed (201): store-checked, one part"
        f" {store:.2f} s (goal < {FINISH_GOAL_SECONDS:.0f} s): {store_met};"
        f" read back, {-(-big // (8 * MiB))} parts {statistics.median(figures.finish_readback):.2f}"
        f" s (report)"
    )
    return lines
