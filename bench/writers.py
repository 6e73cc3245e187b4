"""aiofiles against the blob store's own writer, for one 256 MiB blob.

Why Stowage does not use aiofiles (docs/dependencies.md): run it with aiofiles
brought in for this run only, since the app does not depend on it:

    uv run --with aiofiles==25.1.0 python -m bench.writers [--mib 256] [--runs 5]

Each run feeds the same bytes in 256 KiB chunks (the size of Stario's `stream()`
chunks for a Content-Length body) from the event loop, as an upload handler does,
then makes the file durable (fsync). Writers:

- store: `BlobStore.create()`, `write()` per chunk, `commit()` (the app's path: 4 MiB
  batches, one thread hop per batch, writev in 512 KiB pieces, fsync, rename);
- store+sha256: the same with the digest fed on a second thread (what uploads do);
- aiofiles: `aiofiles.open(..., "wb")`, `await f.write(chunk)` per chunk, then
  `flush()` and `os.fsync` in the default executor;
- aiofiles+sha256: the same, hashing each chunk on the loop.

Printed per writer: median / min / max MB/s over the runs (order alternates, the
file is removed and `sync` runs between runs), and the loop's worst stall (the
longest gap seen by a 1 ms ticker running meanwhile). All local; nothing is sent
anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from app.storage.local.writer import BlobStore
from bench.harness import WORK

CHUNK = 256 * 1024
MB = 1_000_000


async def _ticker(stop: asyncio.Event, worst: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        worst[0] = max(worst[0], now - last)
        last = now


async def _store(chunks: list[bytes], root: Path, digest: bool) -> None:
    store = BlobStore(root)
    store.prepare()
    try:
        blob = store.create(hashlib.sha256() if digest else None)
        for chunk in chunks:
            await blob.write(chunk)
        await blob.commit()
    finally:
        store.close()


async def _aiofiles(chunks: list[bytes], root: Path, digest: bool) -> None:
    import aiofiles  # only for this benchmark: `uv run --with aiofiles==25.1.0`

    root.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256() if digest else None
    async with aiofiles.open(root / "blob.part", "wb") as f:
        for chunk in chunks:
            if sha is not None:
                sha.update(chunk)
            await f.write(chunk)
        await f.flush()
        await asyncio.get_running_loop().run_in_executor(None, os.fsync, f.fileno())


WRITERS: dict[str, Callable[[list[bytes], Path], Awaitable[None]]] = {
    "store": lambda c, r: _store(c, r, False),
    "store+sha256": lambda c, r: _store(c, r, True),
    "aiofiles": lambda c, r: _aiofiles(c, r, False),
    "aiofiles+sha256": lambda c, r: _aiofiles(c, r, True),
}


async def _measure(name: str, chunks: list[bytes], root: Path) -> tuple[float, float]:
    stop, worst = asyncio.Event(), [0.0]
    ticker = asyncio.create_task(_ticker(stop, worst))
    started = time.perf_counter()
    await WRITERS[name](chunks, root)
    elapsed = time.perf_counter() - started
    stop.set()
    await ticker
    return elapsed, worst[0]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.writers")
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    block = os.urandom(CHUNK * 16)
    chunks = [block[(i % 16) * CHUNK : (i % 16 + 1) * CHUNK] for i in range(size // CHUNK)]
    work = WORK / "writers"
    names = list(WRITERS)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for run in range(args.runs + 1):  # run 0 warms up and is not counted
        for name in names if run % 2 else reversed(names):
            shutil.rmtree(work, ignore_errors=True)
            subprocess.run(["sync"], check=False)
            elapsed, stall = asyncio.run(_measure(name, chunks, work / name))
            if run:
                figures[name].append((size / MB / elapsed, stall * 1000))
    shutil.rmtree(work, ignore_errors=True)
    print(f"{args.mib} MiB in {CHUNK // 1024} KiB chunks, {args.runs} runs, fsync included")
    print(f"{'writer':<16} {'median MB/s':>11} {'min':>7} {'max':>7} {'worst loop stall ms':>20}")
    for name in names:
        rates = [rate for rate, _ in figures[name]]
        stall = max(ms for _, ms in figures[name])
        print(
            f"{name:<16} {statistics.median(rates):>11.0f} {min(rates):>7.0f}"
            f" {max(rates):>7.0f} {stall:>20.1f}"
        )


if __name__ == "__main__":
    main()
