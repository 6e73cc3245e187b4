"""Live suite: many open live pages, one account uploading, and everyone else's service.

1,000 `GET /live` streams (100 pages on each of 10 accounts; --quick: 100 over 5) stay
open on one Stowage, read by raw sockets in a process of their own (`python -m
bench.live pages`, at nice 10: they play browsers, which would be on other machines,
so the server and the other account's GETs get the CPU first). Then, in rounds:

(a) idle: another account (not one with pages) GETs a 4 KiB file of its own, one GET
    due every 10 ms on one keep-alive connection, each timed from when it was due (a
    stall makes every GET due meanwhile late, not just fewer), for a few seconds:
    its p50/p99 with every page open and quiet;
(b) control: the same while an account with no pages uploads one-byte files, as in
    (c): what the uploads cost by themselves;
(c) during: the same while the first account uploads one-byte files
    (`PUT /uploads/NAME`, one every `GAP` seconds). For each upload, the time from
    its 201 to the moment its name appears in the stream of a page of that account:
    per page (every upload x page pair) and for all of them (the last page of the
    account to show it), p50/p99; and the SSE bytes all streams received per upload.
    Rounds of (a), (b) and (c) alternate their order; their figures are pooled.
    The uploader and the GETs run in processes of their own too (`python -m bench.live
    upload|probe`), so their clocks never wait on the thousand streams; a page's time
    is when its process read it, which a busy reader makes later, never earlier.

The server runs with `--max-connections-per-address 0` (every stream comes from
127.0.0.1) and STOWAGE_MAX_LIVE_PAGES_PER_ACCOUNT set above the pages per account, so no
stream is closed by the per-account cap (a server that does not know the variable
ignores it, so the same suite runs on older commits). Goals (the issue): repaint p99
under 1 s; the other account's p50 during at most 1.5x idle.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import (
    RESULTS,
    ROOT,
    WORK,
    CpuWatch,
    Server,
    Settings,
    SuiteResult,
    Target,
    curl,
    fresh_dir,
    log,
    random_file,
    start_all,
    stop_all,
    stowage,
    stowage_account,
)
from bench.loadgen import percentile

GAP = 0.1
IDLE, CONTROL, DURING = (
    "idle (pages open, no uploads)",
    "control (uploads by an account with no pages)",
    "during (uploads by an account with pages)",
)
# The other account's GETs: one due every PROBE_EVERY seconds.
PROBE_EVERY = 0.01
HELPER_START = 1.5
# The pages' reader yields the CPU to the server and the other account's GETs.
PAGES_NICE = 10
# The uploads' names (`live-ROUND-NUMBER-STAMP.bin`), as a page's stream carries them.
NAMES = re.compile(rb"live-[0-9]+-[0-9]{4}-[0-9]+\.bin")
# How long an upload's name may take to reach every page before it counts as missed.
REPAINT_TIMEOUT = 15.0
OPEN_TIMEOUT = 60.0


@dataclass
class Page:
    """One open `/live` stream and when each awaited name first appeared in it."""

    account: int
    received: int = 0
    painted: asyncio.Event = field(default_factory=asyncio.Event)
    seen: dict[str, float] = field(default_factory=dict)
    closed: bool = False


def _dechunk(buffer: bytearray) -> tuple[bytes, bool]:
    """The whole chunks at the front of `buffer` (taken out of it); True at the end."""
    out = bytearray()
    while True:
        line_end = buffer.find(b"\r\n")
        if line_end < 0:
            return bytes(out), False
        size = int(buffer[:line_end].split(b";")[0] or b"0", 16)
        if size == 0:
            return bytes(out), True
        if len(buffer) < line_end + 2 + size + 2:
            return bytes(out), False
        out += buffer[line_end + 2 : line_end + 2 + size]
        del buffer[: line_end + 2 + size + 2]


async def _read_page(port: int, token: str, page: Page) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"/live answered {head[:80]!r}")
        chunked = b"transfer-encoding: chunked" in head.lower()
        raw, text = bytearray(), b""
        while True:
            data = await reader.read(65536)
            if not data:
                break
            page.received += len(data)
            if chunked:
                raw += data
                body, ended = _dechunk(raw)
            else:
                body, ended = data, False
            now = time.monotonic()
            # Keep a tail so a name split across reads is still found.
            text = text[-64:] + body
            if b'id="files"' in body:
                page.painted.set()
            # One pass over what came, whatever the number of names awaited.
            for found in NAMES.findall(text):
                page.seen.setdefault(found.decode(), now)
            if ended:
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        page.closed = True
        writer.close()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> bytes:
    """One request on a keep-alive connection; its status line."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return head.split(b"\r\n", 1)[0]


async def _upload(port: int, token: str, at: float, out: Path, names: list[str]) -> None:
    """`PUT /uploads/NAME` of one byte for each name, one every GAP seconds; each
    name's 201 time (monotonic, which every process here shares) written to `out`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    answered = []
    for name in names:
        began = time.monotonic()
        request = (
            f"PUT /uploads/{name} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 1\r\n\r\nx"
        )
        status = await _exchange(reader, writer, request.encode())
        answered.append(f"{name} {time.monotonic():.6f}\n")
        if b" 201 " not in status + b" ":
            raise RuntimeError(f"upload answered {status!r}")
        await asyncio.sleep(max(0.0, GAP - (time.monotonic() - began)))
    writer.close()
    out.write_text("".join(answered))


async def _probe(port: int, token: str, at: float, path: str, seconds: float, out: Path) -> None:
    """A GET every PROBE_EVERY seconds on one keep-alive connection, each timed from
    when it was due, not when it was sent: a server that stalls for 300 ms makes the
    30 GETs due meanwhile late, instead of only fewer (no coordinated omission)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    latencies = []
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    began = last = time.monotonic()
    for due in (began + i * PROBE_EVERY for i in range(int(seconds / PROBE_EVERY))):
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        # Late because the last GET was (the server's doing): timed from when due;
        # late only because this process woke late: from when sent.
        since = due if last > due else time.monotonic()
        status = await _exchange(reader, writer, request)
        if b" 200 " not in status + b" ":
            raise RuntimeError(f"GET answered {status!r}")
        last = time.monotonic()
        latencies.append(f"{last - since:.7f}\n")
    writer.close()
    out.write_text("".join(latencies))


def _helper(mode: str, port: int, token: str, *args: str) -> subprocess.Popen[bytes]:
    """This module's uploader or prober in a process of its own, so their clocks do not
    wait on this process's thousand streams. It starts its work `HELPER_START` seconds
    from now, when every helper has started (a process's start takes a core a while)."""
    at = time.monotonic() + HELPER_START
    command = [sys.executable, "-m", "bench.live", mode, str(port), token, f"{at:.6f}", *args]
    return subprocess.Popen(command, cwd=ROOT)


def _finish(process: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    try:
        if process.wait(timeout) != 0:
            raise RuntimeError(f"{what} failed ({process.returncode})")
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise RuntimeError(f"{what} did not stop in time") from None


def _ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 0.5):.1f} ms, p99 {percentile(values, 0.99):.1f} ms"


async def _pages(port: int, per_account: int, tokens: list[str]) -> None:
    """The pages, in a process of their own at a lower priority (`PAGES_NICE`): they play
    the browsers, which would be on other machines, so what CPU they need goes to the
    server and to the other account's GETs first. A page's time is when this process
    read it, which a busy reader makes later, never earlier.

    Says `ready SECONDS` once every page has painted, then answers, on stdin: `count`
    (bytes the pages received so far), `wait NAME...` (`ok` once every page of the
    first account shows them, or after REPAINT_TIMEOUT), `done` (JSON: what each page of
    the first account saw, and when; how many streams ended)."""
    os.nice(PAGES_NICE)
    pages = [Page(a) for a in range(len(tokens)) for _ in range(per_account)]
    readers = [asyncio.create_task(_read_page(port, tokens[p.account], p)) for p in pages]
    began = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(p.painted.wait() for p in pages)), OPEN_TIMEOUT)
    print(f"ready {time.monotonic() - began:.3f}", flush=True)
    first = [p for p in pages if p.account == 0]
    loop = asyncio.get_running_loop()
    while True:
        command, *args = (await loop.run_in_executor(None, sys.stdin.readline)).split() or ["done"]
        if command == "count":
            print(sum(p.received for p in pages), flush=True)
        elif command == "wait":
            deadline = time.monotonic() + REPAINT_TIMEOUT
            while time.monotonic() < deadline and any(
                not all(name in p.seen for name in args) for p in first
            ):
                await asyncio.sleep(0.05)
            print("ok", flush=True)
        else:
            closed = sum(p.closed for p in pages)
            print(json.dumps({"seen": [p.seen for p in first], "closed": closed}), flush=True)
            break
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


def _measure(
    server: Server, tokens: list[str], other: tuple[str, str], quiet: str,
    pages_per_account: int, uploads: int, rounds: int, work: Path,
) -> dict:  # fmt: skip
    stamp = time.time_ns() % 10**9
    names = [[f"live-{r}-{i:04d}-{stamp}.bin" for i in range(uploads)] for r in range(rounds)]
    port, path = server.port, f"/files/{other[1]}"
    command = [sys.executable, "-m", "bench.live", "pages", str(port), "-", "0",
               str(pages_per_account), *tokens]  # fmt: skip
    pages = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    assert pages.stdin is not None and pages.stdout is not None

    def ask(line: str) -> str:
        assert pages.stdin is not None and pages.stdout is not None
        pages.stdin.write(line + "\n")
        pages.stdin.flush()
        return pages.stdout.readline().strip()

    try:
        ready = pages.stdout.readline().split()
        if not ready or ready[0] != "ready":
            raise RuntimeError("the pages did not open")
        opened = float(ready[1])
        time.sleep(1.0)
        seconds = str(uploads * GAP + 0.5)
        latencies: dict[str, list[float]] = {IDLE: [], CONTROL: [], DURING: []}
        watches: list[CpuWatch] = []
        sent: dict[str, float] = {}
        received = 0
        for r in range(rounds):
            # Rounds alternate which phase goes first.
            for phase in list(latencies)[:: 1 if r % 2 == 0 else -1]:
                out, sent_file = work / f"{phase}-{r}.lat", work / f"sent-{phase}-{r}"
                before = int(ask("count"))
                with CpuWatch(server) as watch:
                    helpers = [_helper("probe", port, other[0], path, seconds, str(out))]
                    if phase == DURING:
                        helpers.append(
                            _helper("upload", port, tokens[0], str(sent_file), *names[r])
                        )
                    elif phase == CONTROL:
                        control = [f"control-{r}-{i:04d}-{stamp}.bin" for i in range(uploads)]
                        helpers.append(_helper("upload", port, quiet, str(sent_file), *control))
                    for helper in helpers:
                        _finish(helper, float(seconds) + 60, f"the {phase} helpers")
                watches.append(watch)
                latencies[phase] += [float(x) * 1000 for x in out.read_text().split()]
                if phase == DURING:
                    lines = sent_file.read_text().splitlines()
                    sent |= {name: float(at) for name, at in (line.split() for line in lines)}
                    ask("wait " + " ".join(names[r]))
                    time.sleep(0.5)
                    received += int(ask("count")) - before
        done = json.loads(ask("done"))
        pages.wait(30)
    finally:
        if pages.poll() is None:
            pages.kill()
            pages.wait()
    first: list[dict[str, float]] = done["seen"]
    per_page, everywhere, missed = [], [], 0
    for name in sent:
        times = [seen[name] - sent[name] for seen in first if name in seen]
        missed += len(first) - len(times)
        per_page += [t * 1000 for t in times]
        if len(times) == len(first):
            everywhere.append(max(times) * 1000)
    return {
        "opened": opened,
        "idle": latencies[IDLE],
        "control": latencies[CONTROL],
        "during": latencies[DURING],
        "per_page": per_page,
        "everywhere": everywhere,
        "missed": missed,
        "received": received,
        "closed": done["closed"],
        "server_cpu": sum(w.server_cpu for w in watches) / sum(w.wall for w in watches),
        "others": max(w.foreign for w in watches),
    }


def run_live(settings: Settings) -> None:
    quick = settings.quick
    accounts, per_account = (5, 20) if quick else (10, 100)
    uploads = 10 if quick else 30
    rounds = 2 if quick else 4
    work = fresh_dir(WORK / "live")
    data = work / "stowage-data"
    tokens = [stowage_account(data, f"live{i}") for i in range(accounts)]
    other_token = stowage_account(data, "other")
    quiet_token = stowage_account(data, "quiet")
    server = stowage("Stowage", data, "--log", "off", "--max-connections-per-address", "0")
    server.env["STOWAGE_MAX_LIVE_PAGES_PER_ACCOUNT"] = str(per_account * 2)
    source = random_file(work / "small.bin", 4096)
    log(
        f"live: {accounts * per_account:,} /live pages over {accounts} accounts; {uploads}"
        f" one-byte uploads on one, every {GAP:g} s; another account's GET of 4 KiB"
        f" {IDLE}, {CONTROL} and {DURING}; {rounds} round(s)"
    )
    start_all([server])
    try:
        t = curl(f"{server.base}/uploads/small.bin", "-H", f"Authorization: Bearer {other_token}",
                 "-T", str(source))  # fmt: skip
        if t.status != 201:
            raise RuntimeError(f"upload answered {t.status}: {t.body[:200]!r}")
        file_id = str(json.loads(t.body)["files"][0]["id"])
        other = (other_token, file_id)
        got = _measure(server, tokens, other, quiet_token, per_account, uploads, rounds, work)
    finally:
        stop_all([server])
    idle, control, during = got["idle"], got["control"], got["during"]
    ratio50 = percentile(during, 0.5) / max(1e-9, percentile(idle, 0.5))
    ratio99 = percentile(during, 0.99) / max(1e-9, percentile(idle, 0.99))
    log()
    log(f"== live: {accounts * per_account:,} open pages, uploads on one account of {accounts}")
    log(f"   pages open and first painted in {got['opened']:.1f} s")
    log(
        f"   upload 201 -> its name on a page of that account ({per_account} pages):"
        f" {_ms(got['per_page'])}, max {max(got['per_page'], default=0):.0f} ms"
    )
    log(
        f"   upload 201 -> on every page of that account: {_ms(got['everywhere'])}"
        f" ({len(got['everywhere'])} of {uploads * rounds} uploads; page misses: {got['missed']};"
        " goal p99 < 1000 ms)"
    )
    log(
        f"   SSE received by all pages during the uploads: {got['received'] / 1e6:.1f} MB"
        f" ({got['received'] / (uploads * rounds) / 1e3:,.0f} kB per upload)"
    )
    log(f"   another account's GET, one due every {PROBE_EVERY * 1000:g} ms, timed from when due:")
    for name, values in ((IDLE, idle), (CONTROL, control), (DURING, during)):
        log(f"     {name:46} {_ms(values)}, max {max(values):.1f} ms ({len(values):,} GETs)")
    log(f"   during / idle: p50 {ratio50:.2f}x (goal <= 1.5x), p99 {ratio99:.2f}x")
    c50 = percentile(during, 0.5) / max(1e-9, percentile(control, 0.5))
    c99 = percentile(during, 0.99) / max(1e-9, percentile(control, 0.99))
    log(f"   during / the same uploads without pages: p50 {c50:.2f}x, p99 {c99:.2f}x")
    log(
        f"   server CPU: {got['server_cpu']:.0%} of a core over the phases;"
        f" streams ended early: {got['closed']}; others used up to {got['others']:.0%}"
        " of the machine"
    )

    def figure(label: str, values: list[float]) -> Target:
        return Target(label, lambda: 0.0, values=values)

    RESULTS.append(
        SuiteResult(
            "live",
            "open live pages, uploads on one account: repaint latency and another's GETs",
            "ms",
            rounds,
            0,
            [
                figure("repaint per page p50", [percentile(got["per_page"], 0.5)]),
                figure("repaint per page p99", [percentile(got["per_page"], 0.99)]),
                figure("repaint every page p50", [percentile(got["everywhere"], 0.5)]),
                figure("repaint every page p99", [percentile(got["everywhere"], 0.99)]),
                figure("other GET p50 idle", [percentile(idle, 0.5)]),
                figure("other GET p99 idle", [percentile(idle, 0.99)]),
                figure("other GET p50 control", [percentile(control, 0.5)]),
                figure("other GET p99 control", [percentile(control, 0.99)]),
                figure("other GET p50 during", [percentile(during, 0.5)]),
                figure("other GET p99 during", [percentile(during, 0.99)]),
            ],
            [],
            [
                f"{got['received'] / (uploads * rounds) / 1e3:,.0f} kB of SSE per upload",
                f"{accounts * per_account} pages",
            ],
        )
    )


if __name__ == "__main__":
    mode, port, token, at, *rest = sys.argv[1:]
    if mode == "upload":
        asyncio.run(_upload(int(port), token, float(at), Path(rest[0]), rest[1:]))
    elif mode == "pages":
        asyncio.run(_pages(int(port), int(rest[0]), rest[1:]))
    elif mode == "probe":
        asyncio.run(_probe(int(port), token, float(at), rest[0], float(rest[1]), Path(rest[2])))
    else:
        sys.exit(f"bench.live: no such helper {mode!r}")
