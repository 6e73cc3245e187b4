"""Archive suite: a stored ZIP of 8 files of 32 MiB (`GET /api/archives/{token}`)
against a plain download of one 256 MiB file (`GET /files/{id}`), same server, same run,
MB/s of bytes received, timed by curl (to /dev/null)."""

from __future__ import annotations

import json
import time

from bench.harness import (
    MB,
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

MEMBERS = 8


def _store(server: Server, name: str, size: int) -> str:
    source = random_file(WORK / "files" / name, size)
    t = curl(server.base + f"/uploads/{name}", *server.curl_auth, "-T", str(source))
    if t.status != 201:
        raise RuntimeError(f"could not store {name}: {t.status} {t.body[:200]!r}")
    return str(json.loads(t.body)["files"][0]["id"])


def _get(url: str, auth: tuple[str, ...], size: int):
    def measure() -> float:
        t = curl(url, *auth, output="/dev/null")
        if t.status != 200:
            raise RuntimeError(f"{url} answered {t.status}")
        return size / t.seconds / MB

    return measure


def run_archive(settings: Settings) -> None:
    member_size = 4 * MiB if settings.quick else 32 * MiB
    total = member_size * MEMBERS
    work = fresh_dir(WORK / "archive")
    server = stowage("Stowage", work / "stowage-data", "--log", "off")
    start_all([server])
    try:
        members = [_store(server, f"member-{i}.bin", member_size) for i in range(MEMBERS)]
        whole = _store(server, "whole.bin", total)
        body = json.dumps({"ids": members})
        started = time.perf_counter()
        t = curl(server.base + "/api/archives", *server.curl_auth, "-H",
                 "content-type: application/json", "--data-binary", body)  # fmt: skip
        made = time.perf_counter() - started
        if t.status != 201:
            raise RuntimeError(f"POST /api/archives answered {t.status}: {t.body[:200]!r}")
        archive = json.loads(t.body)
        log(
            f"archive: {MEMBERS} x {human_size(member_size)} stored in a ZIP of "
            f"{archive['size']:,} bytes; POST /api/archives (CRC-32 and layout, reads the "
            f"selection twice) took {made:.2f} s"
        )
        targets = [
            Target(
                "ZIP of 8 files",
                _get(server.base + archive["url"], server.curl_auth, archive["size"]),
                server,
            ),
            Target(
                "plain download",
                _get(f"{server.base}/files/{whole}", server.curl_auth, total),
                server,
            ),
        ]
        run_targets(targets, settings)
        report(
            SuiteResult(
                "archive",
                f"GET a ZIP of {MEMBERS} x {human_size(member_size)} vs one "
                f"{human_size(total)} file (from the page cache)",
                "MB/s",
                settings.runs,
                settings.warmups,
                targets,
                [Pair("ZIP of 8 files", "plain download", 0.9)],
                [
                    "One Stowage server (--log off) serves both; curl -o /dev/null.",
                    f"Making the archive (POST) took {made:.2f} s, not in the figures.",
                ],
            )
        )
    finally:
        stop_all([server])
