"""moto's S3 server (PyPI `moto[s3]` with flask: `moto_server`) as a second S3
implementation for tests: on a free 127.0.0.1 port, always killed. It keeps
everything in memory, accepts any credentials, and differs from SeaweedFS (and AWS)
where docs/direct-transfers.md "A second S3 implementation" says.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, free_ports

STOP_GRACE_SECONDS = 2.0
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
class Moto:
    """One running `moto_server`; `endpoint_url` is its S3 address (path-style)."""

    root: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    bucket: str = "stowage"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
        }

    def start(self) -> None:
        if not self.port:
            (self.port,) = free_ports(1)
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "moto.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            self.process = subprocess.Popen(
                [moto_executable(), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                start_new_session=True,
                # Its own credentials' checks off, as with any access key (moto's default).
                env={**os.environ, **self.env},
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MotoUnavailable(f"moto_server exited at start:\n{self.log_tail()}")
            try:
                urllib.request.urlopen(self.endpoint_url, timeout=1).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise MotoUnavailable(f"moto_server did not answer in time:\n{self.log_tail()}")

    def create_bucket(self) -> None:
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
            text = (self.root / "moto.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
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
