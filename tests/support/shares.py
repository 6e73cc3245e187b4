"""Many clients reading one share link at once, each with its own source address."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

MiB = 1024 * 1024
READ_WINDOW = MiB  # app/storage/local/store.py READ_BYTES: what one read hands the client


def attack(base_urls: list[str], path: str, size: int) -> tuple[int, Counter[int], list[str]]:
    """Every way to take more than a limit's worth at once, bounded (a few seconds):
    all-but-the-last-byte ranges, whole GETs, many small and overlapping ranges, on
    parallel connections from several client addresses (and every node given).
    Returns the file bytes served in all, the statuses, and the refusals' words."""
    window = 64 * 1024
    asks: list[str | None] = [f"bytes=0-{size - 2}"] * 20 + [None] * 6
    asks += [f"bytes={at}-{at + window - 1}" for at in range(0, size, window // 2)]
    asks += ["bytes=-100", f"bytes={size // 2}-", "bytes=0-0"]
    jobs = [
        (base_urls[n % len(base_urls)], f"127.0.0.{2 + n % 5}", ask) for n, ask in enumerate(asks)
    ]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda job: take(job[0], path, job[1], job[2]), jobs))
    served = sum(len(body) for status, body in answers if status in (200, 206))
    refusals = [body.decode() for status, body in answers if status not in (200, 206)]
    return served, Counter(status for status, _ in answers), refusals


def take(base_url: str, path: str, source: str, range_: str | None = None) -> tuple[int, bytes]:
    """GET `path` from the client address `source` (a 127.0.0.x); status and body."""
    headers = {} if range_ is None else {"range": range_}
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=base_url, transport=transport, timeout=30) as client:
        r = client.get(path, headers=headers)
    return r.status_code, r.content
