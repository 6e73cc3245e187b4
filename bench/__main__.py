"""`python -m bench SUITE [--quick] [--runs N] [--json PATH] [--keep] [--baseline REV]`.

See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import (
    BASELINE,
    WORK,
    Settings,
    have_curl,
    log,
    machine_line,
    peer_versions,
    results_json,
)


def _suites() -> dict[str, Callable[[Settings], None]]:
    from bench.archive import run_archive
    from bench.crowd import run_crowd
    from bench.downloads import run_downloads
    from bench.drop import run_drop
    from bench.folders import run_folders
    from bench.live import run_live
    from bench.memory import run_memory
    from bench.previews import run_previews
    from bench.resumable import run_resumable
    from bench.s3 import run_s3
    from bench.screens import run_screens
    from bench.search import run_search
    from bench.signin import run_signin
    from bench.small import run_small
    from bench.thumbnails import run_thumbnails
    from bench.uploads import run_multipart, run_signals, run_uploads
    from bench.webdav import run_webdav

    return {
        "uploads": run_uploads,
        "multipart": run_multipart,
        "signals": run_signals,
        "downloads": run_downloads,
        "small": run_small,
        "memory": run_memory,
        "resumable": run_resumable,
        "signin": run_signin,
        "archive": run_archive,
        "thumbnails": run_thumbnails,
        "previews": run_previews,
        "search": run_search,
        "folders": run_folders,
        "s3": run_s3,
        "crowd": run_crowd,
        "live": run_live,
        "drop": run_drop,
        "screens": run_screens,
        "webdav": run_webdav,
    }


def main(argv: list[str] | None = None) -> int:
    suites = _suites()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Stowage against its peers and the machine's limits, on 127.0.0.1. "
        "Prints figures; asserts nothing.",
    )
    parser.add_argument("suite", choices=[*suites, "all"])
    parser.add_argument("--quick", action="store_true", help="small files, 3 runs (CI)")
    parser.add_argument("--runs", type=int, help="counted runs (default 11, quick 3)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep bench/.work/ afterwards")
    parser.add_argument(
        "--baseline",
        default=BASELINE,
        metavar="REV",
        help=f"commit whose Stowage `small` runs beside today's (default {BASELINE}, the last"
        " before accounts; 'none' leaves it out)",
    )
    args = parser.parse_args(argv)
    if not have_curl():
        parser.exit(2, "bench: curl is needed (apt-get install curl)\n")
    baseline = None if args.baseline.lower() == "none" else args.baseline
    settings = Settings.make(args.quick, args.runs, baseline)
    chosen = list(suites) if args.suite == "all" else [args.suite]
    began = time.monotonic()
    log(f"bench {' '.join(sys.argv[1:])}  ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    log(f"machine: {machine_line()}")
    versions = peer_versions()
    log("peers: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    try:
        for name in chosen:
            log()
            started = time.monotonic()
            suites[name](settings)
            log(f"   ({name}: {time.monotonic() - started:.0f} s)")
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    log()
    log(f"bench: done in {time.monotonic() - began:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": machine_line(), "peers": versions, "suites": results_json()},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
