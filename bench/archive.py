"""Archive suite: a stored ZIP of 8 files of 32 MiB (`GET /api/archives/{token}`)
against a plain download of one 256 MiB file (`GET /files/{id}`), same server, same run,
MB/s of bytes received, timed by curl (to /dev/null). Then the archives' memory: 1,000
archives of 10,000 files (50 with --quick) from one account, the server's peak RSS
(VmHWM) against its resting size and `--archive-memory-bytes`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import httpx

from bench.harness import (
    ACCOUNT_NAME,
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
# The archives' memory: as many archives of as many files as the issue names.
MEMORY_FILES = 10_000
MEMORY_ARCHIVES = 1000
MEMORY_BUDGET = 64 * MiB  # --archive-memory-bytes, its default


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
    run_archive_memory(settings)


def _seed_files(data_dir: Path, count: int) -> list[str]:
    """`count` empty files of the bench account, straight into the catalog and the blob
    store before the server starts (uploading 10,000 files would take minutes)."""
    from app.storage.ids import new_blob_id

    ids = [new_blob_id() for _ in range(count)]
    for file_id in ids:
        blob = data_dir / "uploads" / file_id[:2] / file_id
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.touch()
    empty = hashlib.sha256(b"").hexdigest()
    with sqlite3.connect(data_dir / "stowage.db") as catalog:
        found = catalog.execute("SELECT id FROM users WHERE name = ?", (ACCOUNT_NAME,))
        (owner,) = found.fetchone()
        catalog.executemany(
            "INSERT INTO files (id, name, size, sha256, mime, created_at, owner)"
            " VALUES (?, ?, 0, ?, 'image/jpeg', ?, ?)",
            [
                (file_id, f"IMG_{index:08d} from the summer holiday.jpg", empty,
                 f"2026-07-{index % 28 + 1:02d}T12:00:00Z", owner)
                for index, file_id in enumerate(ids)
            ],
        )  # fmt: skip
    return ids


def run_archive_memory(settings: Settings) -> None:
    archives = 50 if settings.quick else MEMORY_ARCHIVES
    work = fresh_dir(WORK / "archive-memory")
    data_dir = work / "stowage-data"
    server = stowage("Stowage", data_dir, "--log", "off")
    ids = _seed_files(data_dir, MEMORY_FILES)
    start_all([server])
    try:
        with httpx.Client(base_url=server.base, headers=server.headers, timeout=120) as http:
            # The first archive warms what making one touches (catalog pages, threads):
            # part of the resting size, not of the archives.
            first = http.post("/api/archives", json={"ids": ids})
            if first.status_code != 201:
                raise RuntimeError(f"POST /api/archives answered {first.status_code}")
            resting = server.rss_now() or 0
            server.reset_peak()
            started = time.perf_counter()
            statuses: dict[int, int] = {}
            for index in range(1, archives):
                made = http.post("/api/archives", json={"ids": ids[index:] + ids[:index]})
                statuses[made.status_code] = statuses.get(made.status_code, 0) + 1
            took = time.perf_counter() - started
            peak = server.peak_rss() or 0
    finally:
        stop_all([server])
    verdict = "met" if peak < resting + MEMORY_BUDGET else "MISSED"
    log()
    log(f"== archive memory: {archives} archives of {MEMORY_FILES:,} files, one account")
    log(f"   POSTs answered {statuses} in {took:.0f} s ({took / max(1, archives - 1):.2f} s each)")
    log(f"   server RSS resting {resting / MiB:.1f} MiB, peak {peak / MiB:.1f} MiB")
    log(
        f"   goal: peak < resting + budget ({MEMORY_BUDGET / MiB:.0f} MiB) ="
        f" {(resting + MEMORY_BUDGET) / MiB:.1f} MiB: {verdict}"
    )
