"""cadaver, the command-line WebDAV client (Debian package), against a real server:
mkcol, put, ls, get, move, copy, delete, lock and unlock, signed in through a
~/.netrc that holds an API token as the password."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.support.fixtures import RunningServer, start_server


@pytest.fixture
def dav_server(tmp_path: Path) -> Iterator[RunningServer]:
    if shutil.which("cadaver") is None:
        pytest.skip("cadaver is not installed (Debian package cadaver)")
    yield from start_server(tmp_path)


def cadaver(server: RunningServer, home: Path, script: str, cwd: Path) -> str:
    done = subprocess.run(
        ["cadaver", f"{server.base_url}/dav/"],
        input=script, capture_output=True, text=True, timeout=60, cwd=cwd,
        env={**os.environ, "HOME": str(home)},
    )  # fmt: skip
    return done.stdout + done.stderr


def test_cadaver_does_every_common_command(dav_server: RunningServer, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    host = urlsplit(dav_server.base_url).hostname
    netrc = home / ".netrc"
    netrc.write_text(f"machine {host}\nlogin cadaver\npassword {dav_server.token}\n")
    netrc.chmod(0o600)
    work = tmp_path / "work"
    work.mkdir()
    (work / "hello.txt").write_bytes(b"hello from cadaver\n")
    script = "\n".join([
        "mkcol Docs",
        "cd Docs",
        "put hello.txt",
        "ls",
        "get hello.txt back.txt",
        "copy hello.txt copy.txt",
        "move hello.txt moved.txt",
        "lock moved.txt",
        "discover moved.txt",
        "unlock moved.txt",
        "delete copy.txt",
        "ls",
        "quit",
    ]) + "\n"  # fmt: skip
    out = cadaver(dav_server, home, script, work)
    assert (work / "back.txt").read_bytes() == b"hello from cadaver\n", out
    assert "succeeded" in out and "failed" not in out.lower(), out
    assert "Lock token <opaquelocktoken:" in out and "Scope: exclusive" in out, out
    with dav_server.http() as http:
        files = http.get("/api/files").json()["files"]
    assert sorted(f["path"] for f in files) == ["/Docs/moved.txt"], out
    listed = out.split("Listing collection")
    assert "hello.txt" in listed[1] and "copy.txt" not in listed[2], out
    assert "moved.txt" in listed[2], out
