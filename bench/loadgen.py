"""A bounded HTTP/1.1 load generator: N requests over C keep-alive connections, then stop.

The `small` suite uses wrk when it is installed; this is the fallback, run as its
own process so it does not share the harness's interpreter:

    python -m bench.loadgen --port P --method PUT --path /x --body FILE \
        [--header 'name: value'] -n 2000 -c 16

Prints one JSON line: {"requests", "non_2xx", "errors", "seconds"}. 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path


async def _connection(
    port: int, request: bytes, budget: list[int], counts: dict[str, int], deadline: float
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while budget[0] > 0 and time.monotonic() < deadline:
            budget[0] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            counts["requests"] += 1
            if not 200 <= status < 300:
                counts["non_2xx"] += 1
            if b"connection: close" in head.lower():
                break
    except (OSError, asyncio.IncompleteReadError, ValueError):
        counts["errors"] += 1
    finally:
        writer.close()


async def run(port: int, request: bytes, total: int, concurrency: int, limit: float) -> dict:
    counts = {"requests": 0, "non_2xx": 0, "errors": 0}
    budget = [total]
    began = time.monotonic()
    deadline = began + limit
    await asyncio.gather(
        *(_connection(port, request, budget, counts, deadline) for _ in range(concurrency))
    )
    return {**counts, "seconds": time.monotonic() - began}


def build_request(method: str, path: str, headers: list[str], body: bytes, port: int) -> bytes:
    # With the port, as curl and wrk send it: Stowage answers only its own Host (421).
    host = f"Host: 127.0.0.1:{port}"
    lines = [f"{method} {path} HTTP/1.1", host, f"Content-Length: {len(body)}"]
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="PUT")
    parser.add_argument("--path", required=True)
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=16)
    parser.add_argument("--time-limit", type=float, default=60.0)
    args = parser.parse_args()
    request = build_request(args.method, args.path, args.header, args.body.read_bytes(), args.port)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(run(args.port, request, args.n, args.c, args.time_limit))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
