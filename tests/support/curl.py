"""curl against a real `stowage serve`: ranges, resuming, headers, and a look at the
blobs a server holds open."""

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.fixtures import RunningServer

CURL = shutil.which("curl") or "/usr/bin/curl"


def curl(
    server: RunningServer, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """curl as the owner of `server`'s token."""
    return subprocess.run(
        [CURL, "--silent", "--show-error", *server.curl_auth, *args],
        capture_output=True,
        timeout=timeout,
        check=True,
    )


def upload(server: RunningServer, path: Path) -> dict[str, Any]:
    done = curl(server, "--fail", "-T", str(path), f"{server.base_url}/uploads/")
    file: dict[str, Any] = httpx.Response(201, content=done.stdout).json()["files"][0]
    return file


def head_of(raw: bytes) -> tuple[int, dict[str, list[str]]]:
    """Status and headers of the last response curl printed with --dump-header."""
    block = raw.replace(b"\r\n", b"\n").strip().split(b"\n\n")[-1].decode("latin-1")
    status_line, *lines = block.split("\n")
    headers: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(status_line.split()[1]), headers


def open_blobs_when(pid: int, file_id: str, wanted: int, seconds: float = 10) -> int:
    """`open_blobs` once it is `wanted` (a reader just started may not have reached the
    blob yet, nor a closed one been let go, on a loaded machine), or after `seconds`."""
    deadline = time.monotonic() + seconds
    while (count := open_blobs(pid, file_id)) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def open_blobs(pid: int, file_id: str) -> int:
    """How many of the server's file descriptors point at the blob of `file_id`."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).endswith("/" + file_id)
        except OSError:  # closed meanwhile
            pass
    return count
