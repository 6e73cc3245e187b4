"""Which S3 client for Stowage: each candidate streams the same 256 MiB to a real
SeaweedFS as a multipart upload (16 MiB parts, fed 1 MiB at a time as an upload
arrives) and reads it back in 1 MiB pieces, in a fresh process so its peak RSS is
its own. Run with the candidates that are not dependencies added on the fly:

    uv run --with obstore==0.12.1 --with boto3==1.43.117 python -m bench.s3_clients

Prints MB/s both ways (median of the runs) and peak RSS per client.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

MiB = 1024 * 1024
TOTAL = 256 * MiB
CHUNK = MiB
PART = 16 * MiB
CLIENTS = ("aiobotocore", "obstore", "boto3-threads")


async def chunks() -> AsyncIterator[bytes]:
    block = os.urandom(CHUNK)
    for _ in range(TOTAL // CHUNK):
        yield block
        await asyncio.sleep(0)


async def run_aiobotocore(endpoint: str, bucket: str, key: str) -> tuple[float, float]:
    from aiobotocore.session import get_session

    session = get_session()
    async with session.create_client("s3", endpoint_url=endpoint) as s3:
        started = time.perf_counter()
        upload = await s3.create_multipart_upload(Bucket=bucket, Key=key)
        upload_id = upload["UploadId"]

        async def send(data: bytes, number: int) -> dict[str, object]:
            got = await s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
            return {"ETag": got["ETag"], "PartNumber": number}

        parts = await two_in_flight(send)
        await s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        put = time.perf_counter() - started
        started = time.perf_counter()
        got = await s3.get_object(Bucket=bucket, Key=key)
        received = 0
        async with got["Body"] as body:
            while data := await body.read(CHUNK):
                received += len(data)
        assert received == TOTAL
        return put, time.perf_counter() - started


async def two_in_flight(send) -> list[dict[str, object]]:  # noqa: ANN001
    """Parts of PART bytes gathered from the chunks, at most two on the wire at once
    (as obstore's max_concurrency=2), so every client gets the same overlap."""
    parts: list[dict[str, object]] = []
    pending: set[asyncio.Task[dict[str, object]]] = set()
    buffer: list[bytes] = []
    size, number = 0, 1

    async def flush() -> None:
        nonlocal buffer, size, number
        if len(pending) >= 2:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                pending.discard(task)
                parts.append(task.result())
        pending.add(asyncio.create_task(send(b"".join(buffer), number)))
        buffer, size, number = [], 0, number + 1

    async for chunk in chunks():
        buffer.append(chunk)
        size += len(chunk)
        if size >= PART:
            await flush()
    if buffer:
        await flush()
    parts.extend(await asyncio.gather(*pending))
    return sorted(parts, key=lambda part: int(str(part["PartNumber"])))


async def run_obstore(endpoint: str, bucket: str, key: str) -> tuple[float, float]:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        bucket,
        endpoint=endpoint,
        client_options={"allow_http": True},
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region="us-east-1",
    )
    started = time.perf_counter()
    await obstore.put_async(store, key, chunks(), chunk_size=PART, max_concurrency=2)
    put = time.perf_counter() - started
    started = time.perf_counter()
    got = await obstore.get_async(store, key)
    received = 0
    async for data in got.stream(min_chunk_size=CHUNK):
        received += len(data)
    assert received == TOTAL
    return put, time.perf_counter() - started


async def run_boto3_threads(endpoint: str, bucket: str, key: str) -> tuple[float, float]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint)
    started = time.perf_counter()
    upload = await asyncio.to_thread(s3.create_multipart_upload, Bucket=bucket, Key=key)

    async def send(data: bytes, number: int) -> dict[str, object]:
        got = await asyncio.to_thread(
            s3.upload_part,
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data,
        )
        return {"ETag": got["ETag"], "PartNumber": number}

    parts = await two_in_flight(send)
    await asyncio.to_thread(
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    put = time.perf_counter() - started
    started = time.perf_counter()
    got = await asyncio.to_thread(s3.get_object, Bucket=bucket, Key=key)
    body = got["Body"]
    received = 0
    while data := await asyncio.to_thread(body.read, CHUNK):
        received += len(data)
    assert received == TOTAL
    return put, time.perf_counter() - started


def child(client: str, endpoint: str, bucket: str) -> None:
    runner = {
        "aiobotocore": run_aiobotocore,
        "obstore": run_obstore,
        "boto3-threads": run_boto3_threads,
    }[client]
    put, get = asyncio.run(runner(endpoint, bucket, f"bench-{client}-{os.getpid()}"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"put": put, "get": get, "peak": peak}))


def main(rounds: int = 3) -> None:
    from tests.support.seaweed import Seaweed

    with tempfile.TemporaryDirectory(prefix="stowage-s3-clients-") as tmp:
        weed = Seaweed(Path(tmp))
        weed.start()
        try:
            env = {**os.environ, **weed.env}
            import boto3  # only to make the bucket

            boto3.client(
                "s3",
                endpoint_url=weed.endpoint_url,
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                region_name="us-east-1",
            ).create_bucket(Bucket=weed.bucket)
            results: dict[str, list[dict[str, float]]] = {c: [] for c in CLIENTS}
            crashes = dict.fromkeys(CLIENTS, 0)
            for round_ in range(rounds):
                order = CLIENTS if round_ % 2 == 0 else tuple(reversed(CLIENTS))
                for client in order:
                    done = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "bench.s3_clients",
                            "--child",
                            client,
                            weed.endpoint_url,
                            weed.bucket,
                        ],
                        env=env,
                        capture_output=True,
                        text=True,
                    )
                    if done.returncode != 0:
                        crashes[client] += 1
                        print(f"{client} failed ({done.returncode}): {done.stderr[-300:]}")
                        continue
                    results[client].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"256 MiB, {rounds} runs each, median (SeaweedFS on loopback)")
            print(f"{'client':<15} {'put MB/s':>9} {'get MB/s':>9} {'peak RSS MB':>12} failed")
            for client, runs in results.items():
                if not runs:
                    print(f"{client:<15} every run failed")
                    continue
                put = statistics.median(TOTAL / r["put"] / 1e6 for r in runs)
                get = statistics.median(TOTAL / r["get"] / 1e6 for r in runs)
                peak = max(r["peak"] for r in runs) / 1e6
                print(f"{client:<15} {put:>9.0f} {get:>9.0f} {peak:>12.0f} {crashes[client]}")
        finally:
            weed.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
    else:
        main()
