"""davfs2 (a FUSE file system over WebDAV) mounts a real Stowage's /dav/: files are
written, read, renamed and deleted through the mount as any program would, and each
change is checked through the JSON API; the mount is always taken down at the end.

davfs2 needs root (no fstab entry here) and /dev/fuse. It runs its daemon as the
user `davfs2`, so its cache lives in a directory that user can reach (pytest's
tmp_path is 0700 root). Credentials go in a secrets file named by a davfs2.conf of
the test's own (`-o conf=`): the token never appears on a command line."""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.fixtures import RunningServer

MOUNT_TIMEOUT = 60
# davfs2 uploads a closed file in the background (delay_upload 0 starts it at once);
# the API sees it a moment later.
SEEN_TIMEOUT = 30


def require_davfs2() -> None:
    """Skip, saying exactly why, on a machine where davfs2 cannot mount."""
    if shutil.which("mount.davfs") is None:
        pytest.skip("mount.davfs is not installed (Debian package davfs2)")
    if os.geteuid() != 0:
        pytest.skip("mounting davfs2 without an fstab entry needs root")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse on this machine: davfs2 cannot mount")
    try:
        pwd.getpwnam("davfs2")
    except KeyError:
        pytest.skip("the user davfs2 (made by the davfs2 package) is missing")


def eventually(check: Callable[[], bool], what: str, timeout: float = SEEN_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not seen within {timeout:.0f} s: {what}", pytrace=False)
        time.sleep(0.2)


class Mount:
    def __init__(self, server: RunningServer, scratch: Path) -> None:
        self.server = server
        # Reachable by the davfs2 user: its own 0755 directory under /tmp.
        self.home = Path(tempfile.mkdtemp(prefix="stowage-davfs2-"))
        self.home.chmod(0o755)
        self.point = scratch / "mnt"
        self.point.mkdir()
        cache = self.home / "cache"
        cache.mkdir()
        account = pwd.getpwnam("davfs2")
        os.chown(cache, account.pw_uid, account.pw_gid)
        # Owned by davfs2 with 0755, mount.davfs still answered "can't access directory"
        # here; 0777 (inside our own 0755 directory) is what worked.
        cache.chmod(0o777)
        secrets = self.home / "secrets"
        secrets.write_text(f'"{self.point}" davfs2-test "{server.token}"\n')
        secrets.chmod(0o600)
        self.conf = self.home / "davfs2.conf"
        self.conf.write_text(
            f"secrets {secrets}\n"
            f"cache_dir {cache}\n"
            "use_locks 1\n"
            "delay_upload 0\n"
            "dir_refresh 1\n"
            "file_refresh 1\n"
        )
        self.mounted = False

    def mount(self) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["mount.davfs", "-o", f"conf={self.conf}", f"{self.server.base_url}/dav/",
             str(self.point)],
            capture_output=True, text=True, timeout=MOUNT_TIMEOUT,
        )  # fmt: skip
        self.mounted = done.returncode == 0
        return done

    def unmount(self) -> None:
        if self.mounted:
            done = subprocess.run(
                ["umount", str(self.point)], capture_output=True, text=True, timeout=120
            )
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(self.point)], timeout=30)
            self.mounted = False
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
def mount(server: RunningServer, tmp_path: Path) -> Iterator[Mount]:
    require_davfs2()
    mount = Mount(server, tmp_path)
    try:
        done = mount.mount()
        if done.returncode != 0:
            reason = (done.stderr or done.stdout).strip()
            # Only the kernel refusing FUSE is a skip; davfs2 failing to talk to the
            # server (a 401, a bad PROPFIND) is Stowage's failure.
            if "fuse" in reason.lower() or "not permitted" in reason.lower():
                pytest.skip(f"davfs2 cannot mount here: {reason}")
            pytest.fail(f"mount.davfs exited {done.returncode}: {reason}", pytrace=False)
        yield mount
    finally:
        mount.unmount()


def api_files(server: RunningServer) -> dict[str, int]:
    with server.http(timeout=30) as http:
        answer = http.get("/api/files", params={"limit": 10_000})
    assert answer.status_code == 200, answer.text
    return {f["path"]: f["size"] for f in answer.json()["files"]}


def api_folders(server: RunningServer) -> list[str]:
    with server.http(timeout=30) as http:
        answer = http.get("/api/folders/root")
    assert answer.status_code == 200, answer.text
    return sorted(f["name"] for f in answer.json()["folders"])


def test_davfs2_write_read_rename_delete(mount: Mount) -> None:
    server, root = mount.server, mount.point
    blob = os.urandom(1_500_000)

    (root / "hello.txt").write_text("hello from davfs2\n")
    (root / "Ordner ü").mkdir()
    (root / "Ordner ü" / "blob.bin").write_bytes(blob)
    expected = {"/hello.txt": 18, "/Ordner ü/blob.bin": len(blob)}
    eventually(lambda: api_files(server) == expected, f"the API lists {expected}")
    assert api_folders(server) == ["Ordner ü"]
    with server.http() as http:
        [blob_id] = [f["id"] for f in http.get("/api/files").json()["files"] if f["size"] > 100]
        assert http.get(f"/files/{blob_id}").content == blob

    # A file stored through the API reads back through the mount.
    with server.http() as http:
        assert http.put("/uploads/from-api.txt", content=b"stored by the API").status_code == 201
    eventually(lambda: (root / "from-api.txt").exists(), "from-api.txt in the mount")
    assert (root / "from-api.txt").read_bytes() == b"stored by the API"
    assert (root / "Ordner ü" / "blob.bin").read_bytes() == blob

    # Rename within and across folders (MOVE), then delete (DELETE).
    os.rename(root / "hello.txt", root / "Ordner ü" / "hallo.txt")
    os.rename(root / "from-api.txt", root / "renamed.txt")
    expected = {"/Ordner ü/hallo.txt": 18, "/Ordner ü/blob.bin": len(blob), "/renamed.txt": 17}
    eventually(lambda: api_files(server) == expected, f"the API lists {expected}")
    (root / "Ordner ü" / "blob.bin").unlink()
    (root / "renamed.txt").unlink()
    eventually(lambda: api_files(server) == {"/Ordner ü/hallo.txt": 18}, "deletes seen")

    # Overwrite in place: the same name gets the new bytes, no second file.
    (root / "Ordner ü" / "hallo.txt").write_text("overwritten through the mount, longer\n")
    expected = {"/Ordner ü/hallo.txt": 38}
    eventually(lambda: api_files(server) == expected, "the overwrite seen")

    (root / "Ordner ü" / "hallo.txt").unlink()
    (root / "Ordner ü").rmdir()
    eventually(lambda: api_files(server) == {} and api_folders(server) == [], "all gone")
    # davfs2 keeps no lock behind it: the mount comes down cleanly (checked in unmount).
