"""moto's S3 server (PyPI `moto[s3]` with flask: `moto_server`) as a second S3
implementation for tests: on a free 127.0.0.1 port, always killed. It keeps
everything in memory, accepts any credentials, and differs from SeaweedFS (and AWS)
where docs/direct-transfers.md "A second S3 implementation" says.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.s3_process import S3Process
from tests.support.seaweed import free_ports

START_TIMEOUT_SECONDS = 30.0


class MotoUnavailable(RuntimeError):
    """`moto_server` is not installed or did not start."""


def moto_executable() -> str:
    beside = Path(sys.executable).parent / "moto_server"
    if beside.exists():
        return str(beside)
    found = shutil.which("moto_server")
    if found is None:
        raise MotoUnavailable("no `moto_server`: install the dev dependencies (moto[s3], flask)")
    return found


@dataclass
class Moto(S3Process):
    """One running `moto_server`; `endpoint_url` is its S3 address (path-style)."""

    port: int = 0
    log_name = "moto.log"
    stop_grace_seconds = 2.0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not self.port:
            (self.port,) = free_ports(1)
        self.root.mkdir(parents=True, exist_ok=True)
        # Its own credentials' checks off, as with any access key (moto's default).
        self.launch(
            [moto_executable(), "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, **self.env},
        )
        self.wait_ready(START_TIMEOUT_SECONDS, MotoUnavailable, "moto_server")


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """One moto S3 server for the run, with the bucket `stowage`."""
    server = Moto(tmp_path_factory.mktemp("moto"))
    try:
        server.start()
    except MotoUnavailable as exc:
        pytest.fail(str(exc))
    try:
        server.create_bucket()
        yield server
    finally:
        server.stop()
