"""Resumable suite: one file through tus (one PATCH; 16 MiB appends; 4 parallel partials
and a final concatenation) against Stowage's own single-request PUT, in the same run,
on the same server, with the same client (bench/rawhttp.py: the body goes by sendfile
from the page cache). Every figure is MB/s of file bytes over the whole upload: the
creation POST, every PATCH and the final answer (the file stored, its row committed)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import (
    MB,
    WORK,
    MiB,
    Pair,
    Server,
    Settings,
    SuiteResult,
    Target,
    Unavailable,
    fresh_dir,
    human_size,
    log,
    random_file,
    remove_files,
    report,
    run_targets,
    start_all,
    stop_all,
    stowage,
)
from bench.rawhttp import Connection, Response
from bench.uploads import upload as curl_upload

APPEND = 16 * MiB
PARTS = 4
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {"Content-Type": "application/offset+octet-stream"}
METADATA = "filename " + base64.b64encode(b"bench.bin").decode()

PUT = "Stowage PUT"
PUT_CURL = "Stowage PUT, curl"
ONE_PATCH = "tus, one PATCH"
APPENDS = f"tus, {APPEND // MiB} MiB PATCHes"
PARALLEL = f"tus, {PARTS} partials + final"


def _error(answer: Response) -> str:
    try:
        return str(json.loads(answer.body)["error"])
    except (ValueError, KeyError, TypeError):
        return answer.body[:200].decode(errors="replace")


def _expect(answer: Response, status: int, what: str) -> Response:
    if answer.status != status:
        raise RuntimeError(f"{what} answered {answer.status}: {_error(answer)}")
    return answer


def _timed(size: int, upload: Callable[[], None]) -> Callable[[], float]:
    def measure() -> float:
        began = time.perf_counter()
        upload()
        return size / (time.perf_counter() - began) / MB

    return measure


def put(server: Server, source: Path) -> None:
    with Connection(server.base, server.headers) as conn:
        answer = conn.request("PUT", "/uploads/bench.bin", file=source)
        _expect(answer, 201, "PUT /uploads/bench.bin")


def tus_create(conn: Connection, length: int, *, partial: bool = False) -> str:
    headers = {**TUS, "Upload-Length": str(length)}
    if partial:
        headers["Upload-Concat"] = "partial"
    else:
        headers["Upload-Metadata"] = METADATA
    answer = _expect(conn.request("POST", "/tus/", headers), 201, "POST /tus/")
    return answer.headers["location"]


def tus_send(conn: Connection, url: str, source: Path, start: int, end: int, append: int) -> str:
    """PATCH bytes [start, end) of `source` to `url` (whose offset 0 is `start`), in
    appends of `append` bytes; returns the last answer's Stowage-File-Id ('' if none)."""
    offset = 0
    answer: Response | None = None
    while start + offset < end:
        count = min(append, end - start - offset)
        headers = {**TUS, **OCTETS, "Upload-Offset": str(offset)}
        answer = conn.request("PATCH", url, headers, file=source, offset=start + offset,
                              count=count)  # fmt: skip
        _expect(answer, 204, f"PATCH {url}")
        now = int(answer.headers["upload-offset"])
        if now != offset + count:
            raise RuntimeError(f"PATCH {url}: offset {now} after sending {offset + count}")
        offset = now
    return "" if answer is None else answer.headers.get("stowage-file-id", "")


def tus_upload(server: Server, source: Path, size: int, append: int) -> None:
    with Connection(server.base, server.headers) as conn:
        url = tus_create(conn, size)
        if not tus_send(conn, url, source, 0, size, append):
            raise RuntimeError("the last PATCH did not finish the upload (no Stowage-File-Id)")


def tus_parallel(server: Server, source: Path, size: int, parts: int) -> None:
    """As tus-js-client's parallelUploads does it: each part on its own connection
    (creation + one PATCH), then `Upload-Concat: final` with the parts in order."""
    step = size // parts
    bounds = [(i * step, size if i == parts - 1 else (i + 1) * step) for i in range(parts)]

    def part(start: int, end: int) -> str:
        with Connection(server.base, server.headers) as conn:
            url = tus_create(conn, end - start, partial=True)
            tus_send(conn, url, source, start, end, end - start)
            return url

    with ThreadPoolExecutor(parts) as pool:
        urls = list(pool.map(lambda b: part(*b), bounds))
    with Connection(server.base, server.headers) as conn:
        headers = {**TUS, "Upload-Concat": "final;" + " ".join(urls), "Upload-Metadata": METADATA}
        answer = _expect(conn.request("POST", "/tus/", headers), 201, "POST /tus/ (final)")
        if not answer.headers.get("stowage-file-id"):
            raise RuntimeError("the final upload did not become a file (no Stowage-File-Id)")


def _probe(server: Server) -> Callable[[], None]:
    def probe() -> None:
        with Connection(server.base, server.headers) as conn:
            answer = conn.request("OPTIONS", "/tus/", TUS)
        if answer.status != 204 or "tus-version" not in answer.headers:
            raise Unavailable(f"OPTIONS /tus/ answered {answer.status}")

    return probe


def run_resumable(settings: Settings) -> None:
    size = 64 * MiB if settings.quick else 256 * MiB
    work = fresh_dir(WORK / "resumable")
    source = random_file(WORK / "files" / f"random-{size}", size)
    data = work / "stowage-data"
    # As shipped: no --log flag; stdout is a file, so the JSON request log is on.
    server = stowage("Stowage", data)
    blobs = data / "uploads"
    log(
        f"resumable: {human_size(size)}, tus in one PATCH, in {human_size(APPEND)} PATCHes"
        f" ({size // APPEND} requests + creation) and as {PARTS} parallel partials + final,"
        " against a single PUT; Python client with sendfile, one server"
    )
    start_all([server])

    def clean() -> None:
        remove_files(blobs)

    probe = _probe(server)
    try:
        targets = [
            Target(PUT, _timed(size, lambda: put(server, source)), server, clean),
            Target(
                ONE_PATCH,
                _timed(size, lambda: tus_upload(server, source, size, size)),
                server,
                clean,
                probe,
            ),
            Target(
                APPENDS,
                _timed(size, lambda: tus_upload(server, source, size, APPEND)),
                server,
                clean,
                probe,
            ),
            Target(
                PARALLEL,
                _timed(size, lambda: tus_parallel(server, source, size, PARTS)),
                server,
                clean,
                probe,
            ),
            Target(
                PUT_CURL,
                curl_upload(
                    lambda: server.base + "/uploads/bench.bin",
                    size,
                    *server.curl_auth,
                    "-T",
                    str(source),
                ),
                server,
                clean,
            ),
        ]
        run_targets(targets, settings)
    finally:
        stop_all([server])
    report(
        SuiteResult(
            "resumable",
            f"resumable upload {human_size(size)} through tus vs a single PUT"
            " (sha256, fsync, row committed)",
            "MB/s",
            settings.runs,
            settings.warmups,
            targets,
            [
                Pair(ONE_PATCH, PUT, 0.9),
                Pair(APPENDS, PUT, 0.8),
                Pair(PARALLEL, ONE_PATCH),
                Pair(PUT, PUT_CURL),
            ],
            [
                "Every tus figure includes the creation POST; every PATCH is fsynced before"
                " its answer, and a long one records a durable offset every 64 MiB.",
                f"{PARALLEL}: each part on its own connection, then the server joins them"
                " (copy_file_range) and reads the whole file again for its sha256.",
                f"{PUT} / {PUT_CURL}: the same upload with this suite's client and with curl"
                " (shows the client is not what limits the figures).",
            ],
        )
    )
