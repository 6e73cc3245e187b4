"""Memory suite: peak RSS (VmHWM) of the Stowage server during a 1 GiB upload and a
1 GiB download, each measured from a reset peak (Linux `clear_refs` 5)."""

from __future__ import annotations

import json
import statistics

from bench.harness import (
    MB,
    RESULTS,
    WORK,
    GiB,
    MiB,
    Settings,
    SuiteResult,
    Target,
    curl,
    fresh_dir,
    human_size,
    log,
    random_file,
    remove_files,
    settle,
    start_all,
    stop_all,
    stowage,
)

GOAL_BYTES = 64 * MB


def run_memory(settings: Settings) -> None:
    size = 128 * MiB if settings.quick else 1 * GiB
    runs = 1 if settings.quick else 3
    work = fresh_dir(WORK / "memory")
    source = random_file(WORK / "files" / f"random-{size}", size)
    data = work / "stowage-data"
    server = stowage("Stowage", data)
    log(f"memory: peak RSS of Stowage (as shipped) over a {human_size(size)} upload and download")
    start_all([server])
    idle = server.rss_now() or 0
    uploads: list[float] = []
    downloads: list[float] = []
    try:
        for run in range(runs):
            server.reset_peak()
            t = curl(server.base + "/uploads/memory.bin", *server.curl_auth, "-T", str(source))
            if t.status != 201:
                raise RuntimeError(f"upload answered {t.status}: {t.body[:200]!r}")
            uploads.append(float(server.peak_rss() or 0))
            blob_id = json.loads(t.body)["files"][0]["id"]
            server.reset_peak()
            d = curl(f"{server.base}/files/{blob_id}", *server.curl_auth, output="/dev/null")
            if d.status != 200:
                raise RuntimeError(f"download answered {d.status}")
            downloads.append(float(server.peak_rss() or 0))
            log(
                f"  run {run + 1}: upload {size / t.seconds / MB:,.0f} MB/s, peak "
                f"{uploads[-1] / MB:.1f} MB; download {size / d.seconds / MB:,.0f} MB/s, "
                f"peak {downloads[-1] / MB:.1f} MB"
            )
            remove_files(data / "uploads")
            settle()
    finally:
        stop_all([server])
    verdict = "met" if max(uploads + downloads) <= GOAL_BYTES else "MISSED"
    log()
    log(f"== memory: Stowage peak RSS (VmHWM), {human_size(size)} file, {runs} run(s)")
    log(f"   idle after start      {idle / MB:6.1f} MB")
    for label, values in (("upload", uploads), ("download", downloads)):
        log(
            f"   during the {label:9} {max(values) / MB:6.1f} MB"
            f" (median {statistics.median(values) / MB:.1f})"
        )
    log(f"   goal <= {GOAL_BYTES / MB:.0f} MB (1 MB = 10^6 bytes): {verdict}")
    report_only = [
        Target("upload peak RSS", lambda: 0.0, values=[v / MB for v in uploads]),
        Target("download peak RSS", lambda: 0.0, values=[v / MB for v in downloads]),
    ]
    RESULTS.append(
        SuiteResult(
            "memory",
            f"Stowage peak RSS, {human_size(size)} upload and download",
            "MB",
            runs,
            0,
            report_only,
            [],
            [f"idle RSS {idle / MB:.1f} MB", f"goal <= {GOAL_BYTES / MB:.0f} MB: {verdict}"],
        )
    )
