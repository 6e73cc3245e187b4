"""A bounded HTTP/1.1 load generator: N requests over C keep-alive connections, then stop.

The `small` suite uses wrk when it is installed; this is the fallback, run as its
own process so it does not share the harness's interpreter. The `signin` suite uses
it for its timed loops (`--duration`, `--latency-file`):

    python -m bench.loadgen --port P --method PUT --path /x --body FILE \
        [--header 'name: value'] -n 2000 -c 16
    python -m bench.loadgen --port P --method GET --path /files/ID \
        --header 'Authorization: Bearer TOKEN' -c 1 --duration 4 --latency-file OUT

Prints one JSON line: {"requests", "unexpected", "errors", "seconds", "statuses",
"p50_ms", "p99_ms", "max_ms"}. `unexpected` counts answers whose status is not in
--expect (default: any 2xx). With --latency-file, every request's latency in seconds
is written there, one per line. 127.0.0.1 only; stops after -n requests or at the
time limit, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from pathlib import Path


class Run:
    def __init__(self, budget: int | None, deadline: float, expect: set[int] | None) -> None:
        self.budget = budget
        self.deadline = deadline
        self.expect = expect
        self.requests = 0
        self.unexpected = 0
        self.errors = 0
        self.statuses: dict[int, int] = {}
        self.latencies: list[float] = []
        self.seconds = 0.0

    def take(self) -> bool:
        """One more request allowed?"""
        if time.monotonic() >= self.deadline:
            return False
        if self.budget is None:
            return True
        if self.budget <= 0:
            return False
        self.budget -= 1
        return True

    def answered(self, status: int, seconds: float) -> None:
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append(seconds)
        ok = status in self.expect if self.expect is not None else 200 <= status < 300
        if not ok:
            self.unexpected += 1


async def _connection(port: int, request: bytes, run: Run) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while run.take():
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            run.answered(status, time.perf_counter() - began)
            if b"connection: close" in head.lower():
                break
    except (OSError, asyncio.IncompleteReadError, ValueError):
        run.errors += 1
    finally:
        writer.close()


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of unsorted values; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(share * len(ordered))))
    return ordered[rank - 1]


async def run(
    port: int,
    request: bytes,
    total: int | None,
    concurrency: int,
    limit: float,
    expect: set[int] | None = None,
) -> Run:
    began = time.monotonic()
    state = Run(total, began + limit, expect)
    await asyncio.gather(*(_connection(port, request, state) for _ in range(concurrency)))
    state.seconds = time.monotonic() - began
    return state


def build_request(method: str, path: str, headers: list[str], body: bytes, port: int) -> bytes:
    # With the port, as curl and wrk send it: Stowage answers only its own Host (421).
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if body or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body)}")
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="PUT")
    parser.add_argument("--path", required=True)
    parser.add_argument("--body", type=Path, help="request body (default: none)")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("-n", type=int, default=2000, help="requests in all")
    parser.add_argument("-c", type=int, default=16, help="connections")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument(
        "--duration", type=float, help="run for this many seconds instead of -n requests"
    )
    parser.add_argument(
        "--expect", type=int, action="append", help="status that counts as a good answer"
    )
    parser.add_argument("--latency-file", type=Path, help="write each latency (s) here")
    args = parser.parse_args()
    body = args.body.read_bytes() if args.body else b""
    request = build_request(args.method, args.path, args.header, body, args.port)
    total = None if args.duration is not None else args.n
    limit = min(args.duration, args.time_limit) if args.duration is not None else args.time_limit
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    expect = set(args.expect) if args.expect else None
    state = runner(run(args.port, request, total, args.c, limit, expect))
    if args.latency_file:
        args.latency_file.write_text("".join(f"{x:.7f}\n" for x in state.latencies))
    result = {
        "requests": state.requests,
        "unexpected": state.unexpected,
        "errors": state.errors,
        "seconds": state.seconds,
        "statuses": {str(k): v for k, v in sorted(state.statuses.items())},
        "p50_ms": percentile(state.latencies, 0.50) * 1000,
        "p99_ms": percentile(state.latencies, 0.99) * 1000,
        "max_ms": max(state.latencies, default=0.0) * 1000,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
