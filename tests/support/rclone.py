"""rclone 1.60's webdav backend against a real Stowage, configured only by environment:
the caller's own rclone.conf is never read (RCLONE_CONFIG names an empty file of the
test's), and the token goes in obscured, as `rclone config` would store it."""

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REMOTE = "stow"
# rclone's default: 4 transfers, 8 checkers. A whole test's rclone runs finish in well
# under a minute here; a hang (a lock never released, a PROPFIND that never ends) fails
# the test after this long instead of blocking the run.
RCLONE_TIMEOUT = 300


def require_rclone() -> str:
    rclone = shutil.which("rclone")
    if rclone is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have rclone; .ci/run installs it")
        pytest.skip("rclone is not installed (Debian package rclone)")
    return rclone


@dataclass
class Rclone:
    """`rclone` with the remote `stow:` at `base_url/dav/`, signed in with `token`."""

    binary: str
    env: dict[str, str]

    @classmethod
    def for_server(cls, base_url: str, token: str, scratch: Path) -> "Rclone":
        binary = require_rclone()
        scratch.mkdir(parents=True, exist_ok=True)
        config = scratch / "rclone.conf"
        config.write_text("")
        obscured = subprocess.run(
            [binary, "obscure", token], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        prefix = f"RCLONE_CONFIG_{REMOTE.upper()}_"
        env = {name: value for name, value in os.environ.items() if not name.startswith("RCLONE_")}
        env.update(
            {
                "RCLONE_CONFIG": str(config),
                "RCLONE_CACHE_DIR": str(scratch / "cache"),
                prefix + "TYPE": "webdav",
                prefix + "URL": f"{base_url}/dav/",
                prefix + "VENDOR": "other",
                prefix + "USER": "rclone",
                prefix + "PASS": obscured,
            }
        )
        return cls(binary, env)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`rclone ARGS` (quiet unless it fails); with `check`, a non-zero exit fails the
        test with rclone's own report."""
        done = subprocess.run(
            [self.binary, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=RCLONE_TIMEOUT,
        )
        if check and done.returncode != 0:
            pytest.fail(
                f"rclone {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}",
                pytrace=False,
            )
        return done
