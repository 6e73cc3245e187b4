"""The Datastar bundle: third-party code, so fetched once from the package index, never committed.

PyPI's `stario-create` 5.2.0 carries the unmodified Datastar v1.0.4 bundle; we take
that one file, check its hash and keep it under assets/vendor/ (git-ignored).
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

DATASTAR_VERSION = "1.0.4"
DATASTAR_SHA256 = "727844adfc825ee651fb93c544a2a739986f9a21820a94524b35f0cac470cf91"
CARRIER = "stario-create==5.2.0"
CARRIER_PATH = Path("stario_create") / "vendor" / "datastar.js"
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
BUNDLE_PATH = ASSETS_DIR / "vendor" / "datastar.js"


class BundleError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_datastar(uv: str | None, target: Path = BUNDLE_PATH) -> bool:
    """Make sure the verified bundle is in place; True when it had to be fetched."""
    if target.is_file() and _sha256(target) == DATASTAR_SHA256:
        return False
    uv = uv or shutil.which("uv")
    if uv is None:
        raise BundleError("uv is not on PATH; run Stowage through `uv run`")
    with tempfile.TemporaryDirectory(prefix="stowage-datastar-") as scratch:
        command = [
            uv, "pip", "install", "--quiet", "--target", scratch, "--no-deps",
            "--python-version", "3.14", CARRIER,
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BundleError(f"could not run uv: {exc}") from exc
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise BundleError(
                f"could not fetch the Datastar bundle ({CARRIER} from the Python package "
                f"index); are you offline? uv said: {reason}"
            )
        fetched = Path(scratch) / CARRIER_PATH
        if not fetched.is_file() or _sha256(fetched) != DATASTAR_SHA256:
            raise BundleError(
                f"the Datastar bundle in {CARRIER} is missing or does not match its "
                f"known sha256 {DATASTAR_SHA256}; refusing to serve it"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        # A staging name of this process's own: two processes fetching at once (two
        # nodes started together, the suite's two workers) each put a whole, verified
        # copy in place, and the second rename only replaces the first's equal bytes.
        fd, staged_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        staged = Path(staged_name)
        try:
            shutil.copyfile(fetched, staged)
            staged.chmod(0o644)
            staged.replace(target)
        finally:
            staged.unlink(missing_ok=True)
    return True
