"""WebDAV suite (issue 27): Stowage's /dav/ against its own HTTP routes, same server,
same run, alternating order.

- PUT of 256 MiB to `/dav/bench.bin` against `PUT /uploads/bench.bin`, and GET of one
  stored 256 MiB file through `/dav/` against `GET /files/{id}` (goal >= 0.95x both).
  The uploads go by sendfile from bench/rawhttp.py (one client for both), the downloads
  by curl to /dev/null; the uploaded file is deleted and `sync` runs after each.
- PROPFIND Depth: 1 of a folder holding 10,000 files: p50/p99 of 50 requests (goal p99
  < 200 ms). The folder is seeded through Stowage's own `PUT /uploads/NAME?path=` by 4
  keep-alive connections (small bodies), so its rows are exactly what uploads make.
- 1,000 small files (1 B-8 KiB, in 10 folders): `rclone sync` up into an empty folder
  and down into an empty directory (rclone's defaults: 4 transfers, 8 checkers),
  beside the same files through tus (tuspy, 4 threads) up and `GET /files/{id}` (4
  threads, each file written to disk) down; files per second.

Every request signs in with HTTP Basic and the account's API token (what WebDAV
clients send), the Stowage routes included, so sign-in costs the same on both sides.
`--quick`: 32 MiB, 1,000 files in the PROPFIND folder, 100 small files, fewer runs.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import httpx

from bench.harness import (
    MB,
    RESULTS,
    WORK,
    MiB,
    Pair,
    Server,
    Settings,
    SuiteResult,
    Target,
    curl,
    fresh_dir,
    human_size,
    log,
    random_file,
    report,
    run_targets,
    start_all,
    stop_all,
    stowage,
)
from bench.loadgen import percentile
from bench.rawhttp import Connection

DAV_PUT = "WebDAV PUT"
API_PUT = "PUT /uploads"
DAV_GET = "WebDAV GET"
API_GET = "GET /files/{id}"
RCLONE_UP = "rclone sync up"
TUS_UP = "tus up (tuspy)"
RCLONE_DOWN = "rclone sync down"
API_DOWN = "GET /files/{id} down"
THREADS = 4
RCLONE_TIMEOUT = 600


def basic(server: Server) -> dict[str, str]:
    assert server.token is not None
    pair = base64.b64encode(f"bench:{server.token}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def _expect(status: int, wanted: tuple[int, ...], what: str, body: bytes = b"") -> None:
    if status not in wanted:
        raise RuntimeError(f"{what} answered {status}: {body[:300]!r}")


# ----------------------------------------------------------------------------- big files


def _put(server: Server, path: str, source: Path, size: int) -> Callable[[], float]:
    def measure() -> float:
        with Connection(server.base, basic(server)) as conn:
            began = time.perf_counter()
            answer = conn.request("PUT", path, file=source)
            seconds = time.perf_counter() - began
        _expect(answer.status, (201, 204), f"PUT {path}", answer.body)
        return size / seconds / MB

    return measure


def _delete_bench_file(server: Server) -> Callable[[], None]:
    """Both uploads land as /bench.bin in the root: one DELETE removes either."""

    def clean() -> None:
        with Connection(server.base, basic(server)) as conn:
            answer = conn.request("DELETE", "/dav/bench.bin")
        _expect(answer.status, (200, 204, 404), "DELETE /dav/bench.bin", answer.body)

    return clean


def _get(url: str, server: Server, size: int) -> Callable[[], float]:
    assert server.token is not None
    auth = ("-u", f"bench:{server.token}")

    def measure() -> float:
        done = curl(url, *auth, output="/dev/null")
        _expect(done.status, (200,), f"GET {url}")
        return size / done.seconds / MB

    return measure


def _big_files(server: Server, settings: Settings) -> None:
    size = 32 * MiB if settings.quick else 256 * MiB
    source = random_file(WORK / "files" / f"random-{size}", size)
    log(f"webdav: PUT and GET of {human_size(size)}, WebDAV vs Stowage's own routes")
    clean = _delete_bench_file(server)
    puts = [
        Target(DAV_PUT, _put(server, "/dav/bench.bin", source, size), server, clean),
        Target(API_PUT, _put(server, "/uploads/bench.bin", source, size), server, clean),
    ]
    run_targets(puts, settings)
    report(
        SuiteResult(
            "webdav",
            f"upload {human_size(size)}: WebDAV PUT vs PUT /uploads (sha256, fsync, row)",
            "MB/s",
            settings.runs,
            settings.warmups,
            puts,
            [Pair(DAV_PUT, API_PUT, 0.95)],
            [
                "One client for both (bench/rawhttp.py, body by sendfile); the file is"
                " deleted and `sync` runs after every upload."
            ],  # fmt: skip
        )
    )
    with Connection(server.base, basic(server)) as conn:
        answer = conn.request("PUT", "/uploads/stored.bin", file=source)
    _expect(answer.status, (201,), "PUT /uploads/stored.bin", answer.body)
    file_id = json.loads(answer.body)["files"][0]["id"]
    gets = [
        Target(DAV_GET, _get(f"{server.base}/dav/stored.bin", server, size), server),
        Target(API_GET, _get(f"{server.base}/files/{file_id}", server, size), server),
    ]
    run_targets(gets, settings)
    report(
        SuiteResult(
            "webdav",
            f"download {human_size(size)} (from the page cache): WebDAV GET vs GET /files/{{id}}",
            "MB/s",
            settings.runs,
            settings.warmups,
            gets,
            [Pair(DAV_GET, API_GET, 0.95)],
            ["curl -o /dev/null, HTTP Basic with the token on both."],
        )
    )


# ----------------------------------------------------------------------------- PROPFIND


def _seed(server: Server, folder: str, count: int) -> float:
    """`count` small files into `folder` through PUT /uploads/NAME?path=; files per second."""

    def upload(indexes: range) -> None:
        with Connection(server.base, basic(server)) as conn:
            for i in indexes:
                path = quote(f"{folder}/file {i:05d}.txt")
                answer = conn.request("PUT", f"/uploads/seed.txt?path={path}", body=b"%05d\n" % i)
                _expect(answer.status, (201,), "PUT /uploads/seed.txt?path=", answer.body)

    began = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(upload, [range(t, count, THREADS) for t in range(THREADS)]))
    return count / (time.perf_counter() - began)


RESPONSE = re.compile(rb"<([A-Za-z][\w.-]*:)?response[\s>]")


def _propfind(server: Server, settings: Settings) -> None:
    count = 1_000 if settings.quick else 10_000
    requests = 10 if settings.quick else 50
    rate = _seed(server, "many", count)
    log(f"webdav: PROPFIND Depth: 1 of a folder of {count:,} files (seeded by PUT /uploads,"
        f" {rate:,.0f} files/s)")  # fmt: skip
    times: list[float] = []
    size = 0
    headers = {**basic(server), "Depth": "1", "Content-Type": "application/xml",
               "Accept-Encoding": "gzip"}  # fmt: skip
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
        b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/>"
        b"<D:getcontenttype/></D:prop></D:propfind>"
    )
    with httpx.Client(base_url=server.base, timeout=60) as http:
        for n in range(requests + 2):
            began = time.perf_counter()
            answer = http.request("PROPFIND", "/dav/many/", headers=headers, content=body)
            elapsed = (time.perf_counter() - began) * 1000
            _expect(answer.status_code, (207,), "PROPFIND /dav/many/", answer.content)
            found = len(RESPONSE.findall(answer.content))
            if found != count + 1:
                raise RuntimeError(f"PROPFIND listed {found} responses, not {count + 1}")
            size = len(answer.content)
            if n >= 2:  # two warm-ups
                times.append(elapsed)
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    verdict = "met" if p99 < 200 else "MISSED"
    log()
    log(f"== PROPFIND Depth: 1, {count:,} files ({requests} requests after 2 warm-ups,"
        f" one keep-alive connection, gzip asked; {size / MB:.1f} MB of XML)")  # fmt: skip
    log(f"   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   max {max(times):6.1f} ms"
        f"   (goal: p99 < 200 ms)  {verdict}")  # fmt: skip
    RESULTS.append(
        SuiteResult(
            "webdav",
            f"PROPFIND Depth: 1 of {count:,} files",
            "ms",
            requests,
            2,
            [
                Target("PROPFIND p50", lambda: 0.0, values=[p50]),
                Target("PROPFIND p99", lambda: 0.0, values=[p99]),
            ],
            [],
            [f"seeded {count:,} files by PUT /uploads/NAME?path= at {rate:,.0f} files/s"],
        )
    )


# ----------------------------------------------------------------------------- small files


def _small_tree(root: Path, count: int) -> list[str]:
    rng = random.Random(27)
    names = []
    for i in range(count):
        name = f"folder {i % 10}/small {i:04d}.bin"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(1, 8192)))
        names.append(name)
    return names


def _rclone_env(server: Server, scratch: Path) -> dict[str, str]:
    assert server.token is not None
    scratch.mkdir(parents=True, exist_ok=True)
    config = scratch / "rclone.conf"
    config.write_text("")
    obscured = subprocess.run(
        ["rclone", "obscure", server.token], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    env.update(
        {
            "RCLONE_CONFIG": str(config),
            "RCLONE_CACHE_DIR": str(scratch / "cache"),
            "RCLONE_CONFIG_STOW_TYPE": "webdav",
            "RCLONE_CONFIG_STOW_URL": f"{server.base}/dav/",
            "RCLONE_CONFIG_STOW_VENDOR": "other",
            "RCLONE_CONFIG_STOW_USER": "bench",
            "RCLONE_CONFIG_STOW_PASS": obscured,
        }
    )
    return env


def _rclone(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        ["rclone", *args], env=env, capture_output=True, text=True, timeout=RCLONE_TIMEOUT
    )
    if done.returncode != 0:
        raise RuntimeError(f"rclone {' '.join(args)}: {done.stderr[-1500:]}")


def _top_folder(server: Server, name: str) -> str | None:
    with httpx.Client(base_url=server.base, headers=basic(server), timeout=60) as http:
        answer = http.get("/api/folders/root")
    _expect(answer.status_code, (200,), "GET /api/folders/root", answer.content)
    ids = [f["id"] for f in answer.json()["folders"] if f["name"] == name]
    return ids[0] if ids else None


def _delete_top_folder(server: Server, name: str) -> None:
    folder = _top_folder(server, name)
    if folder is not None:
        with httpx.Client(base_url=server.base, headers=basic(server), timeout=60) as http:
            answer = http.delete(f"/api/folders/{folder}")
        _expect(answer.status_code, (200,), f"DELETE /api/folders/{folder}", answer.content)


def _files_per_second(count: int, work: Callable[[], None]) -> Callable[[], float]:
    def measure() -> float:
        began = time.perf_counter()
        work()
        return count / (time.perf_counter() - began)

    return measure


def _tus_up(server: Server, local: Path, names: list[str]) -> None:
    from tusclient.client import TusClient

    def upload(part: list[str]) -> None:
        client = TusClient(f"{server.base}/tus/", headers=basic(server))
        for name in part:
            path = local / name
            uploader = client.uploader(
                file_path=str(path),
                chunk_size=16 * MiB,
                metadata={"filename": path.name, "relativePath": f"tusup/{name}"},
            )
            uploader.upload()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(upload, [names[t::THREADS] for t in range(THREADS)]))


def _ids_under(server: Server, name: str) -> list[tuple[str, str]]:
    """(id, path) of every file under the top folder `name`."""
    with httpx.Client(base_url=server.base, headers=basic(server), timeout=60) as http:
        answer = http.get("/api/files", params={"limit": 10_000})
    _expect(answer.status_code, (200,), "GET /api/files", answer.content)
    prefix = f"/{name}/"
    return [(f["id"], f["path"]) for f in answer.json()["files"] if f["path"].startswith(prefix)]


def _api_down(server: Server, files: list[tuple[str, str]], into: Path) -> None:
    def download(part: list[tuple[str, str]]) -> None:
        with httpx.Client(base_url=server.base, headers=basic(server), timeout=60) as http:
            for file_id, path in part:
                answer = http.get(f"/files/{file_id}")
                _expect(answer.status_code, (200,), f"GET /files/{file_id}", answer.content)
                target = into / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(answer.content)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(download, [files[t::THREADS] for t in range(THREADS)]))


def _small_files(server: Server, settings: Settings, work: Path) -> None:
    if shutil.which("rclone") is None:
        log("webdav: rclone not found: the small-file comparison is left out")
        return
    count = 100 if settings.quick else 1_000
    local = fresh_dir(work / "small")
    names = _small_tree(local, count)
    env = _rclone_env(server, work / "rclone")
    down = work / "down"
    # The download side reads one stored copy: rclone puts it up once.
    _rclone(env, "copy", str(local), "stow:source")
    stored = _ids_under(server, "source")
    if len(stored) != count:
        raise RuntimeError(f"stow:source holds {len(stored)} files, not {count}")
    log(f"webdav: {count:,} small files (1 B-8 KiB, 10 folders): rclone sync vs tus + GET")

    def empty_down() -> None:
        fresh_dir(down)

    targets = [
        Target(
            RCLONE_UP,
            _files_per_second(count, lambda: _rclone(env, "sync", str(local), "stow:up")),
            server,
            lambda: _delete_top_folder(server, "up"),
        ),
        Target(
            TUS_UP,
            _files_per_second(count, lambda: _tus_up(server, local, names)),
            server,
            lambda: _delete_top_folder(server, "tusup"),
        ),
        Target(
            RCLONE_DOWN,
            _files_per_second(count, lambda: _rclone(env, "sync", "stow:source", str(down))),
            server,
            empty_down,
        ),
        Target(
            API_DOWN,
            _files_per_second(count, lambda: _api_down(server, stored, down)),
            server,
            empty_down,
        ),
    ]
    empty_down()
    # Each measurement moves every file: fewer runs than the big-file comparisons.
    small = replace(settings, runs=min(settings.runs, 1 if settings.quick else 3))
    run_targets(targets, small)
    report(
        SuiteResult(
            "webdav",
            f"{count:,} small files up and down: rclone sync over WebDAV vs tus + GET /files",
            "files/s",
            small.runs,
            small.warmups,
            targets,
            [Pair(RCLONE_UP, TUS_UP), Pair(RCLONE_DOWN, API_DOWN)],
            [
                "rclone 1.60 webdav backend, vendor other, its defaults (4 transfers,"
                " 8 checkers); a sync up goes into an empty folder, a sync down into an"
                " empty directory (the listing is in the figure).",
                "rclone's webdav backend paces its calls at least 10 ms apart (its"
                " minSleep; 1.60 has no setting for it), whatever --transfers says: a sync"
                " up makes 3 calls a file (MKCOL of the folder, PUT, PROPFIND), so at most"
                " ~33 files/s, a sync down 1 (GET), at most ~100. Compare server CPU.",
                f"tus: tuspy, {THREADS} threads, creation + one PATCH per file;"
                f" GET: httpx, {THREADS} threads on keep-alive connections, files written"
                " to disk.",
            ],
        )
    )


def run_webdav(settings: Settings) -> None:
    work = fresh_dir(WORK / "webdav")
    # As shipped: no --log flag; stdout is a file, so the JSON request log is on.
    server = stowage("Stowage", work / "stowage-data")
    start_all([server])
    try:
        with Connection(server.base, basic(server)) as conn:
            probe = conn.request("OPTIONS", "/dav/")
        if probe.status >= 400 or "1" not in probe.headers.get("dav", ""):
            log(f"webdav: /dav/ is not served here (OPTIONS answered {probe.status}): skipped")
            return
        _big_files(server, settings)
        log()
        _propfind(server, settings)
        log()
        _small_files(server, settings, work)
    finally:
        stop_all([server])
