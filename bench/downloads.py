"""Download suite: one blob Stowage stored, served by Stowage, `stario.Files`, nginx
(sendfile) and Starlette's FileResponse. MB/s of file bytes, timed by curl (to /dev/null)."""

from __future__ import annotations

import json
from collections.abc import Callable

from bench.harness import (
    MB,
    ROOT,
    WORK,
    GiB,
    MiB,
    Pair,
    Server,
    Settings,
    SuiteResult,
    Target,
    _app_cli,
    curl,
    fastapi_peer,
    fresh_dir,
    have_nginx,
    human_size,
    log,
    nginx_peer,
    random_file,
    report,
    run_targets,
    stario_peer,
    start_all,
    stop_all,
    stowage,
)


def download(url: str, size: int, auth: tuple[str, ...] = ()) -> Callable[[], float]:
    def measure() -> float:
        t = curl(url, *auth, output="/dev/null")
        if t.status != 200:
            raise RuntimeError(f"{url} answered {t.status}")
        return size / t.seconds / MB

    return measure


def _store(server: Server, size: int) -> str:
    """Upload a random file through Stowage itself; returns its id."""
    source = random_file(WORK / "files" / f"random-{size}", size)
    t = curl(server.base + f"/uploads/random-{size}.bin", *server.curl_auth, "-T", str(source))
    if t.status != 201:
        raise RuntimeError(f"could not store the download file: {t.status} {t.body[:200]!r}")
    return str(json.loads(t.body)["files"][0]["id"])


def run_downloads(settings: Settings) -> None:
    sizes = [64 * MiB] if settings.quick else [256 * MiB, 1 * GiB]
    work = fresh_dir(WORK / "downloads")
    data = work / "stowage-data"
    blobs = data / "uploads"
    empty = fresh_dir(work / "empty")
    shipped = stowage("Stowage", data)
    files = stario_peer("stario.Files", empty, blobs)
    fast = fastapi_peer("Starlette FileResponse", empty, blobs, work / "fastapi.db")
    nginx = nginx_peer("nginx sendfile", blobs) if have_nginx() else None
    start_all([shipped])
    servers = [shipped, files, fast, *([nginx] if nginx else [])]
    try:
        ids = {size: _store(shipped, size) for size in sizes}
        # One server owns a data dir (its lock): the --log off server serves a copy made
        # by `stowage backup` (hard links, so the same blocks of the page cache), with
        # the same account and token.
        copy = work / "stowage-copy"
        _app_cli(ROOT, "backup", "--data-dir", str(data), str(copy))
        quiet = stowage("Stowage --log off", copy, "--log", "off", account=False)
        quiet.token = shipped.token
        servers.insert(1, quiet)
        start_all(servers[1:])
        for size in sizes:
            blob_id = ids[size]
            blob_path = f"{blob_id[:2]}/{blob_id}"
            log(f"downloads: {human_size(size)}, one stored blob, curl -o /dev/null")
            targets = [
                Target(
                    "Stowage",
                    download(f"{shipped.base}/files/{blob_id}", size, shipped.curl_auth),
                    shipped,
                ),
                Target(
                    "Stowage --log off",
                    download(f"{quiet.base}/files/{blob_id}", size, quiet.curl_auth),
                    quiet,
                ),
                Target("stario.Files", download(f"{files.base}/files/{blob_path}", size), files),
                Target(
                    "Starlette FileResponse",
                    download(f"{fast.base}/files/{blob_path}", size),
                    fast,
                ),
            ]
            if nginx:
                targets.append(
                    Target("nginx sendfile", download(f"{nginx.base}/{blob_path}", size), nginx)
                )
            else:
                log("  nginx not found: that comparison is left out")
            run_targets(targets, settings)
            pairs = [
                Pair("Stowage", "stario.Files", 0.9),
                Pair("Stowage", "Starlette FileResponse", 4.0),
                Pair("Stowage --log off", "stario.Files"),
            ]
            if nginx:
                pairs.insert(1, Pair("Stowage", "nginx sendfile", 0.9))
            report(
                SuiteResult(
                    "downloads",
                    f"download {human_size(size)} (from the page cache)",
                    "MB/s",
                    settings.runs,
                    settings.warmups,
                    targets,
                    pairs,
                    ["nginx: 1 worker, sendfile on, tcp_nopush on, access_log off."],
                )
            )
    finally:
        stop_all(servers)
