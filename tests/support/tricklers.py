"""Reconnecting tricklers: many slow clients that open a connection again as soon as
theirs is cut, run in a process of their own (so the test's ordinary client is not
slowed by the attack's own work) against 127.0.0.1 only.

    python -m tests.support.tricklers PORT TOKEN COUNT FIRST_ADDRESS LAST_ADDRESS SECONDS

Trickler n connects from 127.0.0.(FIRST + n % spread) and sends one of four things a
byte at a time (a second apart): a request head, a small body Stario buffers, a large
body its handler reads, a chunked body; or nothing at all. It prints "ready" once every
trickler has tried its first connection, and when its stdin closes (or SECONDS pass)
one JSON line with what the server answered, by kind, then exits.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter

PIECE_EVERY_SECONDS = 1.0


def kinds(token: str) -> list[tuple[str, bytes, bytes]]:
    """(name, what is sent at once, what is sent every second)."""
    put = f"PUT /uploads/t.bin HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n"
    return [
        ("head", b"GET /api/files HTTP/1.1\r\nhost: 127.0.0.1\r\n", b"x"),
        ("small body", f"{put}content-length: 100\r\n\r\n".encode(), b"x"),
        ("large body", f"{put}content-length: 10485760\r\n\r\n".encode(), b"x"),
        ("chunked body", f"{put}transfer-encoding: chunked\r\n\r\n".encode(), b"1\r\nx\r\n"),
        ("silent", b"", b""),
    ]


async def read_answer(reader: asyncio.StreamReader) -> str:
    """What the server said before it closed: its status, or "closed" or "reset"."""
    answer = bytearray()
    try:
        while chunk := await reader.read(65536):
            answer.extend(chunk)
    except ConnectionError:
        if not answer:
            return "reset"
    if answer.startswith(b"HTTP/1.1 "):
        return answer[9:12].decode()
    return "closed"


async def trickler(
    port: int, local: str, kind: tuple[str, bytes, bytes], stop: asyncio.Event, seen: Counter[str]
) -> None:
    name, first, piece = kind
    stopping = asyncio.ensure_future(stop.wait())
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
        except OSError:
            seen[f"{name}: refused"] += 1
            await asyncio.sleep(0.05)
            continue
        answer = asyncio.ensure_future(read_answer(reader))
        try:
            writer.write(first)
            while not answer.done() and not stop.is_set():
                await asyncio.wait([answer, stopping], timeout=PIECE_EVERY_SECONDS)
                if piece and not answer.done() and not writer.is_closing():
                    writer.write(piece)
        except ConnectionError:
            pass
        finally:
            writer.close()
        if answer.done():
            seen[f"{name}: {answer.result()}"] += 1
        else:
            answer.cancel()
    stopping.cancel()


async def flood(port: int, token: str, count: int, addresses: list[str], seconds: float) -> None:
    stop = asyncio.Event()
    seen: Counter[str] = Counter()
    every = kinds(token)
    tasks = [
        asyncio.ensure_future(
            trickler(port, addresses[n % len(addresses)], every[n % len(every)], stop, seen)
        )
        for n in range(count)
    ]
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    started = time.monotonic()
    await asyncio.wait([stdin_closed], timeout=seconds)
    stop.set()
    await asyncio.wait(tasks, timeout=5)
    for task in tasks:
        task.cancel()
    print(json.dumps({"seconds": round(time.monotonic() - started, 1), **seen}), flush=True)


def main() -> None:
    port, token, count, first, last, seconds = sys.argv[1:7]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    addresses = [f"127.0.0.{n}" for n in range(int(first), int(last) + 1)]
    asyncio.run(flood(int(port), token, int(count), addresses, float(seconds)))


if __name__ == "__main__":
    main()
