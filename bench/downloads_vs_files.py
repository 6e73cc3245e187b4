"""Download speed: Stowage's GET /files/{id} against Stario's own `stario.Files`.

Standalone (not a test): `uv run python bench/downloads_vs_files.py [--size-mib 1024]
[--runs 5]`. It makes one file, uploads it to a real `stowage serve` with PUT, serves
the very same stored blob from a minimal Stario app mounting `stario.Files`, then
downloads it with curl from each server, alternating which goes first, one warm-up
each and `--runs` counted runs. Prints both medians (MB/s) and the ratio (goal:
Stowage >= 0.9x Files). Both servers run on uvloop with the no-op tracer. Everything
it made is deleted at the end.
"""

import argparse
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
MiB = 1024 * 1024
CURL = shutil.which("curl") or "/usr/bin/curl"

FILES_APP = """
import sys
import uvloop
from stario import Files, ServerConfig, serve
from stario.telemetry.noop import NoOpTracer

directory, port = sys.argv[1], int(sys.argv[2])

async def bootstrap(app, span):
    await Files(directory, "/data").attach(app)
    yield

tracer = NoOpTracer()
uvloop.run(serve(bootstrap, config=ServerConfig(host="127.0.0.1", port=port), tracer=tracer))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early ({process.returncode})")
        done = subprocess.run(
            [CURL, "-s", "-o", os.devnull, "-w", "%{http_code}", url], capture_output=True
        )
        if done.stdout not in (b"", b"000"):
            return
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def make_file(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as f:
        for i in range(size // MiB):
            f.write(block[i % MiB :] + block[: i % MiB])


def speed(url: str) -> float:
    """MB/s (10^6 bytes) of one curl download to /dev/null."""
    done = subprocess.run(
        [CURL, "-s", "--fail", "-o", os.devnull, "-w", "%{speed_download}", url],
        capture_output=True,
        check=True,
    )
    return float(done.stdout) / 1e6


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mib * MiB

    work = Path(tempfile.mkdtemp(prefix="stowage-bench-"))
    servers: list[subprocess.Popen[bytes]] = []
    try:
        source = work / "payload.bin"
        print(f"making a {args.size_mib} MiB file ...", flush=True)
        make_file(source, size)

        stowage_port = free_port()
        data_dir = work / "data"
        servers.append(
            subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(stowage_port),
                 "--data-dir", str(data_dir), "--log", "off",
                 "--max-request-body-bytes", str(max(size, MiB) + MiB)],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        stowage = f"http://127.0.0.1:{stowage_port}"
        wait_until_up(stowage + "/api/files", servers[-1])
        print("uploading it to stowage serve ...", flush=True)
        done = subprocess.run(
            [CURL, "-s", "--fail", "-T", str(source), stowage + "/uploads/"],
            capture_output=True,
            check=True,
        )
        file_id = done.stdout.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
        source.unlink()  # both servers read the same stored blob
        blob = next(p for p in (data_dir / "uploads").rglob(file_id) if p.is_file())

        files_port = free_port()
        servers.append(
            subprocess.Popen(
                [sys.executable, "-c", FILES_APP, str(blob.parent), str(files_port)],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        files = f"http://127.0.0.1:{files_port}"
        wait_until_up(files + "/data/" + file_id, servers[-1])

        urls = {"stowage": f"{stowage}/files/{file_id}", "stario.Files": f"{files}/data/{file_id}"}
        for name, url in urls.items():  # warm-up: page cache, code paths
            print(f"warm-up {name}: {speed(url):,.0f} MB/s", flush=True)
        results: dict[str, list[float]] = {name: [] for name in urls}
        names = list(urls)
        for run in range(args.runs):
            order = names if run % 2 == 0 else names[::-1]
            for name in order:
                results[name].append(speed(urls[name]))
            print(
                f"run {run + 1}: "
                + ", ".join(f"{name} {results[name][-1]:,.0f}" for name in names)
                + " MB/s",
                flush=True,
            )
        medians = {name: statistics.median(values) for name, values in results.items()}
        print()
        for name in names:
            print(f"{name:>13}: median {medians[name]:,.0f} MB/s over {args.runs} runs")
        ratio = medians["stowage"] / medians["stario.Files"]
        print(f"{'ratio':>13}: stowage / stario.Files = {ratio:.2f} (goal >= 0.90)")
    finally:
        for process in servers:
            stop(process)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
