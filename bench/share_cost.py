"""What a share-link download costs over the owner's own download of the same file.

Starts `stowage serve` (log off) on 127.0.0.1 with a fresh data dir, stores one file of
random bytes (256 MiB by default), makes a share link to it, then downloads it with
curl through `/s/{token}/file` and through `/files/{id}` (Bearer token), alternating
which goes first, and prints the median MB/s of each and their ratio (goal >= 0.95x).
Each share download counts (one SQL UPDATE), as in real use. Also prints the
server's CPU seconds per download of each (utime + stime of the server process, all
its threads, from /proc); `--limited` gives the link a download limit, so every
download also holds and settles its bytes in the catalog.

    uv run --group dev python -m bench.share_cost [--mib 256] [--runs 9] [--limited]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.accounts.passwords import hash_password  # noqa: E402
from app.accounts.store import create_account, create_token  # noqa: E402
from app.catalog.open import open_catalog  # noqa: E402
from app.config import Config  # noqa: E402

CURL = shutil.which("curl") or "/usr/bin/curl"


async def make_account(data_dir: Path) -> str:
    db = await open_catalog(Config.load({"data_dir": str(data_dir)}, environ={}))
    try:
        account = await create_account(db, "bench", hash_password("bench password 123"))
        return (await create_token(db, account.id, "bench"))[1]
    finally:
        await db.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def curl(*args: str) -> str:
    done = subprocess.run(
        [CURL, "--silent", "--show-error", "--fail", *args],
        capture_output=True,
        check=True,
        timeout=300,
    )
    return done.stdout.decode()


def megabytes_per_second(url: str, *headers: str) -> float:
    speed = curl("-o", "/dev/null", "-w", "%{speed_download}", *headers, url)
    return float(speed) / 1e6


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads (fields 14 and 15 of its stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="file size in MiB")
    parser.add_argument("--runs", type=int, default=9, help="counted runs of each")
    parser.add_argument(
        "--control",
        action="store_true",
        help="time /files/{id} in both columns: the spread this machine gives two equal paths",
    )
    parser.add_argument(
        "--limited", action="store_true", help="a link with a download limit (runs + 2)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="share-bench-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        data_dir = work / "data"
        token = asyncio.run(make_account(data_dir))
        auth = ("-H", f"Authorization: Bearer {token}")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port),
             "--data-dir", str(data_dir), "--log", "off"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while subprocess.run([CURL, "-s", "-o", "/dev/null", base + "/login"]).returncode:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.1)

        source = work / "random.bin"
        with source.open("wb") as out:
            for _ in range(args.mib):
                out.write(os.urandom(1024 * 1024))
        stored = json.loads(curl(*auth, "-T", str(source), base + "/uploads/"))["files"][0]
        limit = args.runs + 2 if args.limited else None
        source.unlink()
        made = json.loads(
            curl(
                *auth,
                "-H",
                "Content-Type: application/json",
                "-d",
                json.dumps({"expires_in": None, "max_downloads": limit}),
                base + f"/api/files/{stored['id']}/shares",
            )  # fmt: skip
        )["share"]
        direct_url, share_url = base + stored["url"], base + made["url"] + "/file"
        share_headers: tuple[str, ...] = ()
        if args.control:
            share_url, share_headers = direct_url, auth
            print("control: both columns are /files/{id}")

        megabytes_per_second(direct_url, *auth)  # warm-up: the page cache, both paths
        megabytes_per_second(share_url, *share_headers)
        direct: list[float] = []
        shared: list[float] = []
        direct_cpu: list[float] = []
        shared_cpu: list[float] = []
        for run in range(args.runs):
            order = [("direct", direct_url), ("share", share_url)]
            if run % 2:
                order.reverse()
            for kind, url in order:
                before = cpu_seconds(server.pid)
                if kind == "direct":
                    direct.append(megabytes_per_second(url, *auth))
                    direct_cpu.append(cpu_seconds(server.pid) - before)
                else:
                    shared.append(megabytes_per_second(url, *share_headers))
                    shared_cpu.append(cpu_seconds(server.pid) - before)
            print(
                f"run {run + 1}: direct {direct[-1]:7.0f} MB/s {direct_cpu[-1]:.2f} s CPU"
                f"   share {shared[-1]:7.0f} MB/s {shared_cpu[-1]:.2f} s CPU"
            )
        counted = json.loads(curl(*auth, base + "/api/shares"))["shares"][0]["downloads"]
        d, s = statistics.median(direct), statistics.median(shared)
        print(f"\n{args.mib} MiB, {args.runs} runs each, medians (min-max):")
        print(f"  /files/{{id}}       {d:7.0f} MB/s ({min(direct):.0f}-{max(direct):.0f})")
        print(f"  /s/{{token}}/file   {s:7.0f} MB/s ({min(shared):.0f}-{max(shared):.0f})")
        print(f"  share / direct    {s / d:.2f}x (goal >= 0.95x)")
        # Each run's two downloads ran back to back: their ratio cancels slower drift
        # (other processes, page-cache state) that the medians above still carry.
        paired = statistics.median(x / y for x, y in zip(shared, direct, strict=True))
        print(f"  median of the runs' own ratios {paired:.2f}x")
        dc, sc = statistics.median(direct_cpu), statistics.median(shared_cpu)
        print(f"  server CPU per download: /files/{{id}} {dc:.3f} s, /s/{{token}}/file {sc:.3f} s")
        mean_ratio = sum(shared_cpu) / sum(direct_cpu)
        print(
            f"  server CPU share / direct {sc / dc:.2f}x (of the totals {mean_ratio:.3f}x:"
            f" {sum(shared_cpu):.2f} s / {sum(direct_cpu):.2f} s)"
        )
        if not args.control:
            print(f"  share downloads counted: {counted} (expected {args.runs + 1})")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
