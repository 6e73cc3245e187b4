"""Thumbnails suite: images per second for 12-megapixel JPEGs, and the event loop's
worst stall while they are made, for the shipped worker processes (app/previews/pool.py)
and, for comparison, the same work on threads in the server's own process.

The stall probe is a task that asks to wake every millisecond and records how late it
woke: the figure is what any request on the loop would have waited at worst.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.harness import WORK, Settings, fresh_dir, log

GOAL_STALL_MS = 20.0
WIDTH, HEIGHT = 4000, 3000  # 12 megapixels


def _photos(folder: Path, count: int) -> list[Path]:
    """`count` 12 MP JPEGs with photo-like detail (noise over a gradient): four
    distinct images, copied."""
    from PIL import Image, ImageFilter

    made = []
    for n in range(4):
        noise = Image.effect_noise((WIDTH // 4, HEIGHT // 4), 40 + 10 * n).resize((WIDTH, HEIGHT))
        gradient = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
        photo = Image.merge("RGB", (noise, gradient, noise.filter(ImageFilter.BLUR)))
        path = folder / f"photo-{n}.jpg"
        photo.save(path, "JPEG", quality=90)
        made.append(path)
    for n in range(4, count):
        copy = folder / f"photo-{n}.jpg"
        shutil.copyfile(made[n % 4], copy)
        made.append(copy)
    return made[:count]


async def _with_stall_probe(
    work: Callable[[], Awaitable[None]],
) -> tuple[float, float, float]:
    """(seconds the work took, the probe's worst and 99th-percentile lateness in ms)."""
    late: list[float] = []
    done = False

    async def probe() -> None:
        while not done:
            asked = time.perf_counter()
            await asyncio.sleep(0.001)
            late.append(time.perf_counter() - asked - 0.001)

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.05)
    late.clear()
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    done = True
    await prober
    late.sort()
    return took, late[-1] * 1000, late[int(len(late) * 0.99)] * 1000


def run_thumbnails(settings: Settings) -> None:
    from app.previews.make import configure_pillow, make_thumbnail
    from app.previews.pool import WorkerPool

    count = 8 if settings.quick else 24
    folder = fresh_dir(WORK / "thumbnails")
    photos = _photos(folder, count)
    size = photos[0].stat().st_size
    log(
        f"thumbnails: {count} JPEGs of {WIDTH}x{HEIGHT} ({size / 1e6:.1f} MB each)"
        " to WebP <= 320 px"
    )

    async def with_processes(workers: int) -> tuple[float, float]:
        pool = WorkerPool(workers=workers, seconds=60)
        try:
            # Start the children before the clock (a running server has them already).
            await asyncio.gather(
                *(pool.run(str(photos[n]), str(folder / f"warm-{n}.webp")) for n in range(workers))
            )

            async def work() -> None:
                await asyncio.gather(
                    *(pool.run(str(p), str(p.with_suffix(".webp"))) for p in photos)
                )

            return await _with_stall_probe(work)
        finally:
            await asyncio.to_thread(pool.close)

    async def with_threads(workers: int) -> tuple[float, float]:
        configure_pillow()
        limit = asyncio.Semaphore(workers)

        async def one(p: Path) -> None:
            async with limit:
                await asyncio.to_thread(make_thumbnail, str(p), str(p.with_suffix(".t.webp")))

        async def work() -> None:
            await asyncio.gather(*(one(p) for p in photos))

        return await _with_stall_probe(work)

    async def idle(workers: int) -> tuple[float, float, float]:
        """The machine's own noise: the probe alone for as long as a run takes."""

        async def work() -> None:
            await asyncio.sleep(count / 15)

        return await _with_stall_probe(work)

    runs = 1 if settings.quick else 3
    log(
        "  (each run is preceded by the probe alone for as long: that noise floor is the"
        " machine's, not Stowage's)"
    )
    variants = (
        ("processes (shipped)", with_processes, (1, 2)),
        ("threads", with_threads, (1, 2)),
    )
    for label, variant, worker_counts in variants:
        for workers in worker_counts:
            results, floors = [], []
            for _ in range(runs):
                floors.append(asyncio.run(idle(workers))[1])
                results.append(asyncio.run(variant(workers)))
            rate = statistics.median(count / took for took, _, _ in results)
            worst = [w for _, w, _ in results]
            p99 = max(p for _, _, p in results)
            verdict = "goal met" if max(worst) < GOAL_STALL_MS else "goal MISSED"
            log(
                f"  {label:19} workers={workers}: {rate:5.1f} images/s, loop stall worst"
                f" {max(worst):5.1f} ms (runs: {', '.join(f'{w:.1f}' for w in worst)};"
                f" noise floor {', '.join(f'{f:.1f}' for f in floors)}),"
                f" p99 {p99:4.1f} ms ({verdict}: < {GOAL_STALL_MS:.0f} ms)"
            )
