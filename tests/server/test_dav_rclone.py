"""rclone 1.60 (webdav backend, vendor "other") against a real Stowage at /dav/: a tree
of 1,000 files in nested folders (non-ASCII names, empty files, one of 5 MB) copied up,
checked, changed locally and synced up, then synced down into an empty folder and
compared byte for byte, and the account's file list through the JSON API compared with
the tree at every step.

rclone's "other" vendor has no hash and no settable modification time here, so `sync`
and plain `check` compare sizes: every local change below changes a file's size. The
contents are proven without rclone's own re-download (`check --download` costs ~10 s a
pass of 1,000 files, rclone spacing its calls 10 ms apart): the sha256 the server
computed for each file equals the local file's, and the tree synced down is compared
byte for byte."""

import filecmp
import hashlib
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.fixtures import RunningServer
from tests.support.rclone import Rclone

FILES = 1_000
BIG = 5_000_000
REMOTE_DIR = "tree"
TOPS = ["docs", "Fotos été", "日本語のフォルダ", "music", "src", "Zürich", "backup", "ελληνικά"]


def _name(rng: random.Random, i: int) -> str:
    kind = i % 7
    if kind == 0:
        return f"naïve café {i}.txt"
    if kind == 1:
        return f"файл-{i}.bin"
    if kind == 2:
        return f"写真 {i}.jpg"
    return f"file-{i:04d}.{rng.choice(['txt', 'md', 'json', 'csv', 'log'])}"


def make_tree(root: Path, seed: int = 27) -> None:
    """FILES files: a 5 MB one, two dotfiles (one in a dot-folder), three empty ones,
    the rest 1 B-8 KiB of random bytes, in folders up to four deep."""
    rng = random.Random(seed)
    (root / "big").mkdir(parents=True)
    (root / "big" / "video 5MB.bin").write_bytes(rng.randbytes(BIG))
    (root / ".gitignore").write_bytes(b"*.log\n")
    (root / ".config").mkdir()
    (root / ".config" / ".settings.json").write_bytes(b'{"sync": true}\n')
    made = 3
    i = 0
    while made < FILES:
        top = TOPS[i % len(TOPS)]
        depth = i % 4
        parts = [top, f"sub {i % 5}", "deeper", "deepest ✓"][: depth + 1]
        folder = root.joinpath(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / _name(rng, i)
        empty = made in (10, 500, 990)
        path.write_bytes(b"" if empty else rng.randbytes(rng.randint(1, 8192)))
        made += 1
        i += 1


def local_sizes(root: Path) -> dict[str, int]:
    """Every file under root: its path from root ("a/b.txt") and its size."""
    return {
        path.relative_to(root).as_posix(): path.stat().st_size
        for path in root.rglob("*")
        if path.is_file()
    }


def local_hashes(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file()
    }


def api_files(server: RunningServer) -> list[dict[str, Any]]:
    """Every file of the account under /tree/ through the JSON API."""
    with server.http(timeout=60) as http:
        answer = http.get("/api/files", params={"limit": 10_000})
    assert answer.status_code == 200, answer.text
    prefix = f"/{REMOTE_DIR}/"
    files = answer.json()["files"]
    assert all(f["path"].startswith(prefix) for f in files), "files outside the synced tree"
    return [{**f, "path": f["path"].removeprefix(prefix)} for f in files]


def api_sizes(server: RunningServer) -> dict[str, int]:
    return {f["path"]: f["size"] for f in api_files(server)}


def api_hashes(server: RunningServer) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in api_files(server)}


def change_tree(root: Path) -> None:
    """Grow 20 files, add 15 (some in a new folder), delete 10 and one whole folder."""
    rng = random.Random(99)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != "big")
    for path in files[:20]:
        with path.open("ab") as f:
            f.write(rng.randbytes(rng.randint(1, 500)))
    for path in files[100:110]:
        path.unlink()
    new = root / "new folder ✨" / "nested"
    new.mkdir(parents=True)
    for i in range(15):
        target = (new if i % 2 else root / TOPS[i % len(TOPS)]) / f"added {i} ünïcode.txt"
        target.write_bytes(rng.randbytes(rng.randint(0 if i == 3 else 1, 3000)))
    shutil.rmtree(root / TOPS[1] / "sub 1")


def assert_same_bytes(left: Path, right: Path) -> None:
    assert local_sizes(left) == local_sizes(right)
    for name in local_sizes(left):
        assert filecmp.cmp(left / name, right / name, shallow=False), name


def test_rclone_copy_sync_check_both_ways(server: RunningServer, tmp_path: Path) -> None:
    began = time.monotonic()
    rclone = Rclone.for_server(server.base_url, server.token, tmp_path / "rclone")
    local = tmp_path / "local"
    make_tree(local)
    sizes = local_sizes(local)
    assert len(sizes) == FILES
    assert sum(1 for size in sizes.values() if size == 0) == 3
    assert any(not name.isascii() for name in sizes)

    rclone.run("copy", str(local), f"stow:{REMOTE_DIR}")
    rclone.run("check", str(local), f"stow:{REMOTE_DIR}")
    assert api_sizes(server) == sizes

    change_tree(local)
    changed = local_sizes(local)
    assert changed != sizes
    rclone.run("sync", str(local), f"stow:{REMOTE_DIR}")
    rclone.run("check", str(local), f"stow:{REMOTE_DIR}")
    assert api_sizes(server) == changed
    assert api_hashes(server) == local_hashes(local)  # every byte, as the server stored it

    down = tmp_path / "down"
    down.mkdir()
    rclone.run("sync", f"stow:{REMOTE_DIR}", str(down))
    assert_same_bytes(local, down)
    rclone.run("check", str(down), f"stow:{REMOTE_DIR}")
    # A second sync either way has nothing to do.
    again = rclone.run("sync", "-v", str(local), f"stow:{REMOTE_DIR}")
    assert "There was nothing to transfer" in again.stderr, again.stderr[-2000:]
    print(f"rclone round trip of {FILES:,} files: {time.monotonic() - began:.1f} s")


def test_rclone_sees_only_its_own_account(server: RunningServer, tmp_path: Path) -> None:
    """A wrong token is refused (rclone fails, nothing listed); the right one lists only
    what this account stored."""
    rclone = Rclone.for_server(server.base_url, server.token, tmp_path / "rclone")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.txt").write_text("a")
    rclone.run("copy", str(tmp_path / "one"), "stow:only")
    listed = rclone.run("lsf", "-R", "stow:").stdout.split()
    assert sorted(listed) == ["only/", "only/a.txt"]

    wrong = Rclone.for_server(server.base_url, "not-a-token", tmp_path / "wrong")
    done = wrong.run("lsf", "stow:", check=False)
    assert done.returncode != 0
    assert "401" in done.stderr or "Unauthorized" in done.stderr, done.stderr[-2000:]
    with httpx.Client(base_url=server.base_url) as anonymous:
        assert anonymous.request("PROPFIND", "/dav/", headers={"Depth": "1"}).status_code == 401
    assert os.listdir(tmp_path / "one") == ["a.txt"]
