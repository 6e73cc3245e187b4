"""What the tests' S3 servers share (SeaweedFS, tests/support/seaweed.py, and moto,
tests/support/moto.py): a child process in its own session and temp dir, its log, a
wait for its S3 port, a signed CreateBucket, and a stop that never leaves it behind
(SIGTERM, a short grace, then SIGKILL to its whole process group)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "stowage-test-key"
SECRET_KEY = "stowage-test-secret-0123456789"
REGION = "us-east-1"


@dataclass
class S3Process:
    root: Path
    process: subprocess.Popen[bytes] | None = None
    bucket: str = "stowage"
    # The child's log, in `root`.
    log_name = "s3.log"
    stop_grace_seconds = 1.0

    @property
    def endpoint_url(self) -> str:
        raise NotImplementedError

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables a Stowage process reads its credentials from."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
        }

    def launch(self, args: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.root / self.log_name, "ab")  # noqa: SIM115 - the child owns it
        try:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                start_new_session=True,
                env=env,
            )
        finally:
            log.close()

    def wait_ready(self, seconds: float, unavailable: type[Exception], name: str) -> None:
        """Until the S3 port answers (an unsigned request's 403 counts: the gateway is
        up and checking credentials); `unavailable` with the log's tail otherwise."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise unavailable(f"{name} exited at start:\n{self.log_tail()}")
            try:
                urllib.request.urlopen(self.endpoint_url, timeout=1).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise unavailable(f"{name}'s S3 port did not answer in time:\n{self.log_tail()}")

    def create_bucket(self) -> None:
        """The bucket, made with a signed CreateBucket."""
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
            text = (self.root / self.log_name).read_text(errors="replace")
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
            process.wait(self.stop_grace_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
