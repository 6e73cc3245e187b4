"""Real resumable-upload clients for the tests (issue 12): tus-js-client under Node and tuspy.

tus-js-client is installed from the npm registry (whatever registry the machine's npm is
configured with) into tests/.cache/node on first use, pinned to one exact version, and
reused afterwards. tuspy is a dev dependency (pyproject.toml). Neither is vendored.
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tusclient.client import TusClient
from tusclient.uploader import Uploader

TUS_JS_CLIENT_VERSION = "4.3.1"
SUPPORT = Path(__file__).resolve().parent
NODE_CACHE = SUPPORT.parent / ".cache" / "node"
TUS_JS_RUNNER = SUPPORT / "tus_js_upload.cjs"
NPM_INSTALL_TIMEOUT = 300


class ClientSetupError(RuntimeError):
    """A real client could not be installed or started; the message says what to do."""


def _installed_version(cache: Path) -> str | None:
    manifest = cache / "node_modules" / "tus-js-client" / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _npm_reason(stderr: str) -> str:
    """The error code and message of npm's report, without its stack trace and dump."""
    lines = [line.removeprefix("npm error").strip() for line in stderr.splitlines()]
    telling = [
        line
        for line in lines
        if line
        and not line.startswith(("at ", "{", "}", "syscall ", "errno ", "A complete log"))
        and not re.match(r"^\w+: ('|\d|\[)", line)
    ]
    return " | ".join(telling[:2]) or "nothing"


def npm_install(
    cache: Path, name: str, packages: dict[str, str], env: dict[str, str] | None = None
) -> None:
    """Install `packages` (exact versions) from the npm registry into `cache`, or raise
    ClientSetupError saying why. `env` replaces the environment npm runs in."""
    manifest = {
        "name": name,
        "private": True,
        "description": "Installed by tests/support/ for the tests; never committed.",
        "dependencies": packages,
    }
    (cache / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    command = [
        "npm", "install", "--no-audit", "--no-fund", "--ignore-scripts",
        "--loglevel=error", "--prefix", str(cache),
    ]  # fmt: skip
    wanted = " ".join(f"{package}@{version}" for package, version in packages.items())
    try:
        done = subprocess.run(
            command, cwd=cache, capture_output=True, text=True,
            timeout=NPM_INSTALL_TIMEOUT, env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ClientSetupError(
            f"npm install {wanted} took over {NPM_INSTALL_TIMEOUT} s;"
            " is the npm registry reachable?"
        ) from None
    if done.returncode != 0:
        raise ClientSetupError(
            f"could not install {wanted} from the npm registry into {cache} (are you"
            f" offline? the first test run needs the registry); npm said:"
            f" {_npm_reason(done.stderr)}"
        )


def ensure_tus_js_client(cache: Path = NODE_CACHE, env: dict[str, str] | None = None) -> Path:
    """The directory whose node_modules holds tus-js-client TUS_JS_CLIENT_VERSION,
    installing it with npm the first time. `env` replaces the environment npm runs in."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise ClientSetupError(
            "Node.js and npm must be on PATH: the resumable-upload tests run the real "
            f"tus-js-client {TUS_JS_CLIENT_VERSION} under Node"
        )
    if _installed_version(cache) == TUS_JS_CLIENT_VERSION:
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    # One installer at a time (two pytest processes could share this checkout).
    with (cache / ".install-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(cache) == TUS_JS_CLIENT_VERSION:
            return cache
        npm_install(cache, "stowage-test-clients", {"tus-js-client": TUS_JS_CLIENT_VERSION}, env)
        if _installed_version(cache) != TUS_JS_CLIENT_VERSION:
            raise ClientSetupError(
                f"npm installed another tus-js-client than {TUS_JS_CLIENT_VERSION} in {cache}"
            )
    return cache


@dataclass
class TusJsResult:
    """What tests/support/tus_js_upload.cjs printed, plus how it exited."""

    returncode: int
    ok: bool
    url: str | None
    bytes_sent: int
    bytes_accepted: int
    size: int
    # One entry per request: {"method", "url", "headers" (the Upload-* ones), "status"}.
    requests: list[dict[str, Any]] = field(default_factory=list)
    # {"status", "headers" (lower-case names), "body" on errors} of the last response.
    last_response: dict[str, Any] | None = None
    error: str | None = None
    stopped: bool = False
    stderr: str = ""

    def methods(self) -> list[str]:
        return [entry["method"] for entry in self.requests]


class TusJs:
    """Runs uploads through the real tus-js-client (Node build, unmodified)."""

    def __init__(self, client_dir: Path) -> None:
        self.client_dir = client_dir

    def upload(
        self,
        file: Path,
        *,
        endpoint: str | None = None,
        upload_url: str | None = None,
        protocol: str = "tus-v1",
        parallel: int = 1,
        chunk_size: int | None = None,
        token: str | None = None,
        stop_after: int | None = None,
        source: str = "file",
        name: str | None = None,
        filetype: str | None = None,
        retry_delays: list[int] | None = None,
        override_patch: bool = False,
        data_during_creation: bool = False,
        defer_length: bool = False,
        metadata: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> TusJsResult:
        """Upload `file`; resume one with `upload_url`. `stop_after=n` aborts (like a closed
        tab) once n bytes are acknowledged. `source="buffer"` reads the file into memory
        (tus-js-client's Buffer source) instead of streaming it (its fs.ReadStream source).
        `retry_delays=[]` disables retries; None keeps the runner's short default.
        `override_patch` sends each PATCH as POST with `X-HTTP-Method-Override: PATCH`;
        `data_during_creation` sends the first chunk with the POST (creation-with-upload);
        `defer_length` creates with `Upload-Defer-Length: 1`; `metadata` adds to the
        upload's metadata (Uppy's `relativePath`, say)."""
        args = ["node", str(TUS_JS_RUNNER), "--file", str(file), "--protocol", protocol,
                "--parallel", str(parallel), "--source", source,
                "--client-dir", str(self.client_dir)]  # fmt: skip
        optional = {
            "--endpoint": endpoint,
            "--upload-url": upload_url,
            "--chunk-size": chunk_size,
            "--token": token,
            "--stop-after": stop_after,
            "--name": name,
            "--type": filetype,
            "--override-patch": "yes" if override_patch else None,
            "--data-during-creation": "yes" if data_during_creation else None,
            "--defer-length": "yes" if defer_length else None,
            "--meta": None if metadata is None else json.dumps(metadata),
            "--retry-delays": None
            if retry_delays is None
            else (",".join(map(str, retry_delays)) or "none"),
        }
        for flag, value in optional.items():
            if value is not None:
                args += [flag, str(value)]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"tus-js-client did not finish within {timeout} s: {exc.stdout!r}"
            ) from None
        lines = done.stdout.strip().splitlines()
        try:
            report = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise AssertionError(
                f"tus-js-client runner printed no JSON (exit {done.returncode}): "
                f"stdout={done.stdout!r} stderr={done.stderr!r}"
            ) from None
        return TusJsResult(
            returncode=done.returncode,
            ok=bool(report.get("ok")),
            url=report.get("url"),
            bytes_sent=int(report.get("bytesSent", 0)),
            bytes_accepted=int(report.get("bytesAccepted", 0)),
            size=int(report.get("size", 0)),
            requests=report.get("requests", []),
            last_response=report.get("lastResponse"),
            error=report.get("error"),
            stopped=bool(report.get("stopped")),
            stderr=done.stderr,
        )


def tuspy_client(base_url: str, token: str) -> TusClient:
    """tuspy pointed at Stowage's creation URL, signed in with an API token."""
    return TusClient(f"{base_url}/tus/", headers={"Authorization": f"Bearer {token}"})


class Sha256Uploader(Uploader):
    """tuspy's checksums are sha1 only; this is its documented switch to sha256."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


class DeferredLengthUploader(Uploader):
    """tuspy 1.1.0 has no creation-defer-length: it always sends Upload-Length. This creates
    with `Upload-Defer-Length: 1` and declares `Upload-Length` on the PATCH that carries
    the last bytes, as the tus spec asks of a client that learns the length late."""

    _declaring_length = False

    def get_url_creation_headers(self) -> dict[str, str]:
        headers = dict(self.get_headers(), **{"Upload-Defer-Length": "1"})
        headers.pop("Upload-Length", None)
        metadata = ",".join(self.encode_metadata())
        if metadata:
            headers["Upload-Metadata"] = metadata
        return headers

    def get_headers(self) -> dict[str, str]:
        headers = super().get_headers()
        if self._declaring_length:
            headers["Upload-Length"] = str(self.get_file_size())
        return headers

    def upload_chunk(self) -> None:
        size = self.get_file_size()
        self._declaring_length = self.offset + self.get_request_length() >= size
        try:
            super().upload_chunk()
        finally:
            self._declaring_length = False


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def offline_npm_env(scratch: Path) -> dict[str, str]:
    """An environment in which npm has an empty cache and a registry that refuses, fast:
    what a machine without network looks like to ensure_tus_js_client."""
    return {
        **os.environ,
        "npm_config_registry": "http://127.0.0.1:9/",
        "npm_config_cache": str(scratch / "npm-cache"),
        "npm_config_fetch_retries": "0",
        "npm_config_fetch_timeout": "5000",
        "npm_config_userconfig": str(scratch / "npmrc"),
    }
