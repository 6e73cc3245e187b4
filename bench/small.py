"""Small-upload suite: 64 KiB files, 16 connections, a bounded number of requests.

Stowage takes each through its full durable pipeline (`PUT /uploads/{name}`: sha256,
the blob written straight under its id and made durable with its directory entry, in a
round with the other small blobs waiting, written by two threads (one syncfs per
round; a lone blob is fsynced with its directory), then an SQLite row with
synchronous=FULL, group-committed);
FastAPI writes, fsyncs and inserts a row per request, from a multipart `UploadFile` or
the raw body. Figures are requests/s.
The load generator is wrk (Debian package) when installed, else bench/loadgen.py.

Files stay until the suite ends (only `sync` runs between measurements): on ext4
without a journal, as here, creating a file scans past every inode deleted in the
last minutes (`recently_deleted`), so deleting 2,000 files per run made every later
create cost ~1 ms of CPU and measured the file system, not the servers.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import (
    ROOT,
    WORK,
    Pair,
    Server,
    Settings,
    SuiteResult,
    Target,
    checkout,
    fastapi_peer,
    fresh_dir,
    log,
    random_file,
    report,
    run_targets,
    start_all,
    stop_all,
    stowage,
)

SIZE = 64 * 1024
CONNECTIONS = 16
TIME_LIMIT = 60
BOUNDARY = "benchboundary7MA4YWxkTrZu0gW"

WRK_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
int kill(int pid, int sig);
int getpid(void);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
local f = assert(io.open(%(body)s, "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = %(method)s
wrk.path = %(path)s
wrk.headers["Content-Type"] = %(ctype)s
%(headers)s
target = %(count)d
seen = 0
bad = 0
t0 = 0
t1 = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) t0 = now() end
function response(status, headers, body)
  seen = seen + 1
  if status < 200 or status > 299 then bad = bad + 1 end
  if seen == target then
    t1 = now()
    -- Stop sending, then wake wrk's main thread (it sleeps for -d) with SIGINT.
    wrk.thread:stop()
    ffi.C.kill(ffi.C.getpid(), 2)
  end
end
function done(summary, latency, requests)
  local th = threads[1]
  local e = summary.errors
  io.write(string.format("BENCH %%d %%d %%.6f %%d\\n", th:get("seen"), th:get("bad"),
    th:get("t1") - th:get("t0"), e.connect + e.read + e.write + e.timeout))
end
"""


def _lua(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal for these


def wrk_measure(
    server: Server, method: str, path: str, ctype: str, body: Path, count: int
) -> Callable[[], float]:
    """wrk with the script above; every request carries `server.headers` (its token)."""
    script = WORK / "small" / f"wrk-{server.port}.lua"
    script.parent.mkdir(parents=True, exist_ok=True)
    headers = "\n".join(
        f"wrk.headers[{_lua(name)}] = {_lua(value)}" for name, value in server.headers.items()
    )
    script.write_text(
        WRK_SCRIPT
        % {
            "body": _lua(str(body)),
            "method": _lua(method),
            "path": _lua(path),
            "ctype": _lua(ctype),
            "headers": headers,
            "count": count,
        }
    )

    def measure() -> float:
        command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{TIME_LIMIT}s", "--timeout", "10s",
                   "-s", str(script), server.base]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIME_LIMIT + 30)
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no result: {done.stdout[-500:]} {done.stderr[-500:]}")
        seen, bad, seconds, errors = line.split()[1:]
        if int(bad) or int(errors) or int(seen) < count or float(seconds) <= 0:
            raise RuntimeError(
                f"{server.label}: {seen} responses, {bad} not 2xx, {errors} socket errors"
            )
        return int(seen) / float(seconds)

    return measure


def loadgen_measure(
    server: Server, method: str, path: str, ctype: str, body: Path, count: int
) -> Callable[[], float]:
    """bench/loadgen.py; every request carries `server.headers` (its token)."""
    headers = [f"Content-Type: {ctype}", *(f"{k}: {v}" for k, v in server.headers.items())]

    def measure() -> float:
        command = [sys.executable, "-m", "bench.loadgen", "--port", str(server.port),
                   "--method", method, "--path", path, "--body", str(body),
                   *(arg for h in headers for arg in ("--header", h)), "-n", str(count),
                   "-c", str(CONNECTIONS), "--time-limit", str(TIME_LIMIT)]  # fmt: skip
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=TIME_LIMIT + 30
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if result["unexpected"] or result["errors"] or result["requests"] < count:
            raise RuntimeError(f"{server.label}: {result}")
        return float(result["requests"]) / float(result["seconds"])

    return measure


def create_cost(where: Path, count: int = 200) -> float:
    """Microseconds of CPU one file creation takes in `where` (a machine figure)."""
    probe = fresh_dir(where / "create-probe")
    began = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(count):
        os.close(os.open(probe / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    ended = resource.getrusage(resource.RUSAGE_SELF)
    used = ended.ru_utime + ended.ru_stime - began.ru_utime - began.ru_stime
    return used / count * 1e6


def fsync_cost(where: Path, count: int = 50) -> float:
    """Median milliseconds to create, write and fsync one 64 KiB file in `where` (a
    machine figure): the floor of a server that does that per upload, one at a time,
    as the FastAPI peers do on their event loop. Where it is low, as on this VM
    (a fraction of a millisecond), one upload at a time is cheap and batching wins
    less."""
    probe = fresh_dir(where / "fsync-probe")
    body = os.urandom(SIZE)
    took = []
    for i in range(count):
        began = time.perf_counter()
        fd = os.open(probe / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        took.append(time.perf_counter() - began)
    return statistics.median(took) * 1e3


def _multipart(source: Path, out: Path) -> Path:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="small.bin"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    out.write_bytes(head + source.read_bytes() + f"\r\n--{BOUNDARY}--\r\n".encode())
    return out


NOW = "Stowage, Bearer token"
NOW_OFF = "Stowage --log off, Bearer token"
BEFORE = "Stowage before accounts, no auth"
FASTAPI = "FastAPI UploadFile+fsync+SQLite"
FASTAPI_RAW = "FastAPI request.stream()+fsync+SQLite"


def run_small(settings: Settings) -> None:
    count = 300 if settings.quick else 2000
    work = fresh_dir(WORK / "small")
    source = random_file(work / "small.bin", SIZE)
    form = _multipart(source, work / "small.multipart")
    data, data_off = work / "stowage-data", work / "stowage-off-data"
    fast_out = fresh_dir(work / "fastapi-out")
    # Stowage as shipped at the commit before accounts: its own app/ (git archive),
    # this venv, no account and no token. The same run, the same machine, alternated.
    tree = checkout(settings.baseline) if settings.baseline else None
    before = stowage(BEFORE, work / "before-data", cwd=tree, account=False) if tree else None
    shipped = stowage(NOW, data)
    quiet = stowage(NOW_OFF, data_off, "--log", "off")
    fast = fastapi_peer(FASTAPI, fast_out, fast_out, work / "f.db")
    servers = [*([before] if before else []), shipped, quiet, fast]
    use_wrk = shutil.which("wrk") is not None
    measure = wrk_measure if use_wrk else loadgen_measure
    tool = "wrk" if use_wrk else "bench/loadgen.py (wrk not installed)"
    log(f"small: 64 KiB uploads, {CONNECTIONS} connections, {count} requests each, with {tool}")
    log(f"  creating an empty file in the work dir costs {create_cost(work):.0f} us of CPU here")
    log(f"  writing and fsyncing a new 64 KiB file takes {fsync_cost(work):.2f} ms here (median)")
    start_all(servers)
    octet = "application/octet-stream"
    form_type = f"multipart/form-data; boundary={BOUNDARY}"
    try:
        targets = [
            Target(
                NOW, measure(shipped, "PUT", "/uploads/small.bin", octet, source, count), shipped
            ),
            Target(
                NOW_OFF, measure(quiet, "PUT", "/uploads/small.bin", octet, source, count), quiet
            ),
            Target(FASTAPI, measure(fast, "POST", "/small", form_type, form, count), fast),
            Target(
                FASTAPI_RAW, measure(fast, "PUT", "/small/small.bin", octet, source, count), fast
            ),
        ]
        if before:
            put = measure(before, "PUT", "/uploads/small.bin", octet, source, count)
            targets.insert(0, Target(BEFORE, put, before))
        run_targets(targets, settings)
    finally:
        stop_all(servers)
    report(
        SuiteResult(
            "small",
            f"64 KiB uploads, {CONNECTIONS} concurrent, {count} requests (durable)",
            "requests/s",
            settings.runs,
            settings.warmups,
            targets,
            [
                *([Pair(NOW, BEFORE, 0.95)] if before else []),
                # Raw against raw: the goal is 2x the durable peer of the same transport.
                Pair(NOW, FASTAPI_RAW, 2.0),
                Pair(NOW, FASTAPI),
                Pair(NOW_OFF, FASTAPI),
                Pair(NOW, NOW_OFF),
            ],
            [
                f"load generator: {tool}; uvicorn as shipped (access log on).",
                "Stowage also makes the blob's directory entry durable (fsync of the"
                " directory, or the round's syncfs); the peer fsyncs the file only.",
                f"{BEFORE}: app/ of commit {settings.baseline} (before accounts), run with this"
                " venv, log on as shipped; the token's cost is the first ratio (goal: at"
                " most 5% slower)"
                if before
                else f"no A/B target: commit {settings.baseline or '(none)'} not available",
            ],
        )
    )
