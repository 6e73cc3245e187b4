"""Uppy (`@uppy/core` + `@uppy/tus`) for the browser tier, bundled for a plain page.

Installed from the npm registry (whatever registry the machine's npm is configured
with), pinned, into a cache outside the checkout (`$XDG_CACHE_HOME/stowage-tests`, or
`~/.cache/stowage-tests`; `STOWAGE_TEST_NPM_CACHE` overrides it), then bundled once
with esbuild (also from npm, pinned) into one script that sets `window.Uppy` and
`window.UppyTus`. Nothing of it is committed; users of Stowage never need Node.
"""

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

from tests.support.clients import ClientSetupError, npm_install

UPPY_PACKAGES = {"@uppy/core": "6.3.1", "@uppy/tus": "6.0.0", "esbuild": "0.28.2"}
ENTRY = (
    "import Uppy from '@uppy/core';\n"
    "import Tus from '@uppy/tus';\n"
    "window.Uppy = Uppy;\n"
    "window.UppyTus = Tus;\n"
)


def npm_cache_root() -> Path:
    given = os.environ.get("STOWAGE_TEST_NPM_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stowage-tests"


def _cache_dir() -> Path:
    pins = "-".join(
        f"{name.rsplit('/', 1)[-1]}{version}" for name, version in UPPY_PACKAGES.items()
    )
    return npm_cache_root() / f"uppy-{pins}"


def ensure_uppy_bundle() -> Path:
    """The bundled script (one file), installing and bundling it the first time."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise ClientSetupError("Node.js and npm must be on PATH: the Uppy test bundles Uppy")
    cache = _cache_dir()
    bundle = cache / "uppy.bundle.js"
    if bundle.exists():
        return bundle
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".install-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if bundle.exists():
            return bundle
        npm_install(cache, "stowage-test-uppy", UPPY_PACKAGES)
        (cache / "entry.js").write_text(ENTRY)
        partial = cache / "uppy.bundle.js.part"
        bundled = subprocess.run(
            [str(cache / "node_modules" / ".bin" / "esbuild"), "entry.js", "--bundle",
             "--format=iife", f"--outfile={partial.name}", "--log-level=warning"],
            cwd=cache, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if bundled.returncode != 0:
            raise ClientSetupError(f"esbuild could not bundle Uppy: {bundled.stderr[-500:]}")
        partial.replace(bundle)  # whole, or not there: a later run never sees half of it
    return bundle
