"""The fixtures every tier shares (loaded by tests/conftest.py as a plugin): a `config`
on SQLite or PostgreSQL, local or S3 storage; accounts and signed-in TestClients; a real
`stowage serve` on a free port; the session's PostgreSQL cluster, SeaweedFS and
tus-js-client."""

import asyncio
import hashlib
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from stario.http.config import RequestPolicy
from stario.testing import TestClient
from tests.support.clients import ClientSetupError, TusJs, ensure_tus_js_client
from tests.support.postgres import PG_BIN, Cluster, PostgresMissing
from tests.support.seaweed import Seaweed, SeaweedUnavailable

from app.accounts.passwords import hash_password
from app.accounts.store import Account, create_account, create_token
from app.bundle import BundleError, ensure_datastar
from app.catalog.open import open_catalog
from app.cli.main import server_config
from app.config import Config, uv_executable
from app.main import make_bootstrap

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def datastar_bundle() -> None:
    """The first test run fetches the bundle, like the first `stowage serve`."""
    try:
        ensure_datastar(uv_executable())
    except BundleError as exc:
        pytest.exit(f"Stowage tests need the Datastar bundle: {exc}", returncode=3)


# The catalog every `config` gets: "sqlite" (the default) or "postgres", by
# STOWAGE_TEST_DATABASE; the modules below run their tests on both in every run.
CATALOGS = ("sqlite", "postgres")
TEST_DATABASE = os.environ.get("STOWAGE_TEST_DATABASE", "sqlite")
# The caller's own settings (a STOWAGE_DATA_DIR or STOWAGE_MAX_FILE_BYTES left in the
# shell after `serve`) never reach a test, nor a server or command a test starts: each
# test says every setting it means. STOWAGE_TEST_DATABASE is the suite's, not the app's.
for _name in [name for name in os.environ if name.startswith("STOWAGE_")]:
    if _name != "STOWAGE_TEST_DATABASE":
        del os.environ[_name]
BOTH_CATALOGS_MODULES = frozenset(
    {
        "test_accounts",
        "test_accounts_server",
        "test_api",
        "test_folders",
        "test_folder_uploads",
        "test_shares",
        "test_collections",
        "test_requests",
        "test_tus",
        "test_quotas",
    }
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test of BOTH_CATALOGS_MODULES that uses `config` runs on SQLite and on
    PostgreSQL (unless it chose its catalog itself)."""
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module not in BOTH_CATALOGS_MODULES or "config" not in metafunc.fixturenames:
        return
    if any("config" in mark.args[0] for mark in metafunc.definition.iter_markers("parametrize")):
        return
    metafunc.parametrize("config", CATALOGS, indirect=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster for the whole run, started by the first test that
    needs it. A machine without PostgreSQL skips those tests, except in CI, where
    `.ci/run` installs it."""
    try:
        cluster = Cluster()
    except PostgresMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have PostgreSQL 15: {exc}")
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.close()


def test_database(request: pytest.FixtureRequest, kind: str | None = None) -> str | None:
    """None for SQLite, else the URL of a fresh PostgreSQL database."""
    if (kind or TEST_DATABASE) == "sqlite":
        return None
    cluster: Cluster = request.getfixturevalue("postgres")
    return cluster.new_database()


test_database.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def storage(request: pytest.FixtureRequest) -> str:
    """Where `config` keeps blobs: "local" unless a test is parametrized by `both_stores`."""
    return str(getattr(request, "param", "local"))


# The same test against the local store and against S3 (a real SeaweedFS).
both_stores = pytest.mark.parametrize("storage", ["local", "s3"], indirect=True)
# The two configurations Stowage runs in: local storage with SQLite, and S3 with
# PostgreSQL (what several nodes share); `every_configuration` adds local storage
# with PostgreSQL, for the modules of BOTH_CATALOGS_MODULES.
both_configurations = pytest.mark.parametrize(
    ("storage", "config"), [("local", "sqlite"), ("s3", "postgres")], indirect=True
)
every_configuration = pytest.mark.parametrize(
    ("storage", "config"),
    [("local", "sqlite"), ("local", "postgres"), ("s3", "postgres")],
    indirect=True,
)


@pytest.fixture
def config(tmp_path: Path, storage: str, request: pytest.FixtureRequest) -> Config:
    # The two configurations Stowage is run in: local storage with the catalog of
    # STOWAGE_TEST_DATABASE (SQLite by default), and S3 with PostgreSQL (a test's own
    # choice of catalog, by parametrizing `config`, wins).
    kind = getattr(request, "param", None) or ("postgres" if storage == "s3" else None)
    database = test_database(request, kind)
    catalog = {} if database is None else {"database": database}
    if storage == "s3":
        # These tests are about the node's own path on S3: no start-up probes of the
        # bucket (a few calls each app start, ~8 s over the fast tier), no 302s. Direct
        # transfers have their own tests (tests/server/test_direct_*.py).
        return s3_config(
            tmp_path / "data", request.getfixturevalue("seaweed"), s3_direct="none", **catalog
        )
    return Config.load({"data_dir": str(tmp_path / "data"), **catalog}, environ={})


def catalog_dump(config: Config) -> str:
    """Every row of the catalog as text (SQL), whichever database holds it."""
    if config.database is None:
        with sqlite3.connect(config.db_path) as db:
            return "\n".join(db.iterdump())
    done = subprocess.run(
        [str(PG_BIN / "pg_dump"), "--data-only", config.database],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def request_policy(config: Config) -> RequestPolicy:
    return server_config(config).requests


PASSWORD = "correct horse battery staple"
SETUP_TOKEN = "setup-token-for-tests-0123456789abcdef"
_password_hashes: dict[str, str] = {}


def password_hash(password: str = PASSWORD) -> str:
    """argon2 costs ~40 ms a hash: each distinct password is hashed once per run."""
    if password not in _password_hashes:
        _password_hashes[password] = hash_password(password)
    return _password_hashes[password]


async def add_account(
    config: Config, name: str = "owner", *, admin: bool = False, password: str = PASSWORD, **quota
) -> tuple[Account, str]:
    """An account straight into the catalog, and an API token for it."""
    db = await open_catalog(config)
    try:
        account = await create_account(db, name, password_hash(password), admin=admin, **quota)
        _, token = await create_token(db, account.id, "tests")
    finally:
        await db.close()
    return account, token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def app_client(config: Config, **kwargs) -> TestClient:
    """A TestClient on the production bootstrap, addressed as the server's own URL
    (its default `http://testserver` is not an allowed Host: 421)."""
    kwargs.setdefault("base_url", config.public_url)
    kwargs.setdefault("requests", request_policy(config))
    return TestClient(make_bootstrap(config, setup_token=SETUP_TOKEN), **kwargs)


@asynccontextmanager
async def signed_in_client(config: Config, token: str | None = None, **kwargs):
    """A TestClient on `config`, with an account "owner" (made if `token` is None)."""
    if token is None:
        _, token = await add_account(config, "owner", admin=True)
    async with app_client(config, headers=bearer(token), **kwargs) as c:
        yield c


@pytest.fixture
async def owner(config: Config) -> tuple[Account, str]:
    return await add_account(config, "owner", admin=True)


@pytest.fixture
async def client(config: Config, owner: tuple[Account, str]):
    """A TestClient signed in as `owner` (an API token on every request)."""
    async with app_client(config, headers=bearer(owner[1])) as c:
        yield c


@pytest.fixture
async def anonymous(config: Config, owner: tuple[Account, str]):
    """A TestClient with no credentials (an account exists, so /setup is closed)."""
    async with app_client(config, follow_redirects=False) as c:
        yield c


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Browser tests skip on a machine without Chromium, but never in CI, where
    `.ci/run` installs it: a skipped browser test there would hide a failure."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have Chromium at {CHROMIUM}; .ci/run installs it")
        pytest.skip(f"no Chromium at {CHROMIUM}")


async def unfinished_resumable(config: Config) -> int:
    """How many resumable uploads hold bytes: partial files on a local store, multipart
    uploads in the bucket on S3."""
    if config.storage.kind != "s3":
        held = config.uploads_dir / ".resumable"
        return len(list(held.iterdir())) if held.exists() else 0
    from app.storage.backends import open_store
    from app.storage.s3.store import S3Store

    store = await open_store(config)
    assert isinstance(store, S3Store)
    try:
        return len(await store.unfinished_uploads())
    finally:
        await store.aclose()


def stored_blobs(config: Config) -> list[Path]:
    """Every file under the uploads dir, committed or half-written."""
    return sorted(p for p in config.uploads_dir.rglob("*") if p.is_file())


async def stored_objects(config: Config) -> dict[str, int]:
    """Every blob in the S3 store of `config` (id: size), and fail if any multipart
    upload under its prefix was left unfinished (neither completed nor aborted)."""
    from app.storage.backends import open_store
    from app.storage.s3.store import S3Store

    store = await open_store(config)
    assert isinstance(store, S3Store)
    try:
        assert await store.unfinished_uploads() == []
        return await store.blob_sizes()
    finally:
        await store.aclose()


def write_random_file(path: Path, megabytes: int) -> str:
    """`megabytes` MB (10^6) of random bytes at `path`; returns their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(megabytes):
            block = os.urandom(1_000_000)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    def __init__(
        self, process: subprocess.Popen[bytes], base_url: str, data_dir: Path, token: str
    ) -> None:
        self.process = process
        self.base_url = base_url
        self.data_dir = data_dir
        # An API token of the account "owner", made before the server started.
        self.token = token
        self.headers = bearer(token)
        # For curl: `curl *server.curl_auth ...`.
        self.curl_auth = ["-H", f"Authorization: Bearer {token}"]

    def http(self, **kwargs) -> httpx.Client:
        """An httpx client signed in as "owner", on this server."""
        return httpx.Client(base_url=self.base_url, headers=self.headers, **kwargs)

    def reset_peak_rss(self) -> None:
        """Start VmHWM afresh (Linux clear_refs 5), to measure one request's peak."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])

    def peak_rss_kib(self) -> int:
        """VmHWM of the server process (the uvloop server is the only python in it)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1])


def start_server(
    tmp_path: Path,
    *extra: str,
    account: bool = True,
    preexec_fn: Callable[[], object] | None = None,
    database: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """A real server on its own port; `preexec_fn` runs in the child before it starts
    (e.g. to lower its open-file limit); `database`, a postgresql:// URL, is its
    catalog (else the SQLite file in its data dir); `env` is added to its environment."""
    port = free_port()
    data_dir = tmp_path / "server-data"
    token = ""
    if database is not None:
        extra = ("--database", database, *extra)
    if account:
        flags = {"data_dir": str(data_dir)}
        if database is not None:
            flags["database"] = database
        data_config = Config.load(flags, environ={})
        # In a thread of its own: sync Playwright keeps an event loop running in this
        # one, where asyncio.run() refuses to start.
        with ThreadPoolExecutor(1) as pool:
            _, token = pool.submit(
                asyncio.run, add_account(data_config, "owner", admin=True)
            ).result()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port),
         "--data-dir", str(data_dir), "--log", "off", *extra],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        preexec_fn=preexec_fn,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(base_url + "/login", timeout=1)
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError((tmp_path / "server.log").read_text()) from None
            time.sleep(0.1)
    try:
        yield RunningServer(process, base_url, data_dir, token)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """One real SeaweedFS (S3) for the run, started by the first test that asks, with
    the bucket `stowage`; killed at the end (SIGKILL after a short grace)."""
    try:
        weed = Seaweed(tmp_path_factory.mktemp("seaweed"))
        weed.start()
    except SeaweedUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run SeaweedFS: {exc}")
        pytest.skip(str(exc))
    try:
        weed.create_bucket()
        yield weed
    finally:
        weed.stop()


def stowage_check(config: Config, weed: Seaweed, *flags: str) -> subprocess.CompletedProcess:
    """`stowage check` of `config`'s S3 storage on `weed`, as a person runs it."""
    storage = f"s3://{config.storage.bucket}/{config.storage.prefix}"
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "check", "--data-dir", str(config.data_dir),
         "--storage", storage, "--s3-endpoint-url", weed.endpoint_url, *flags],
        capture_output=True, text=True, env={**os.environ, **weed.env}, timeout=60,
    )  # fmt: skip


def s3_config(data_dir: Path, weed: Seaweed, **flags: str) -> Config:
    """Settings for S3 storage on `weed`, under a key prefix of this data dir's own."""
    prefix = f"t-{secrets.token_hex(6)}"
    # Stario's TestClient runs the app in-process and cannot follow a 302 to the store:
    # downloads go through the node unless a test asks for direct downloads
    # (s3_direct="all", the setting's default, as real servers run).
    flags.setdefault("s3_direct", "uploads")
    return Config.load(
        {
            "data_dir": str(data_dir),
            "storage": f"s3://{weed.bucket}/{prefix}",
            "s3_endpoint_url": weed.endpoint_url,
            **flags,
        },
        environ=weed.env,
    )


@pytest.fixture(scope="session")
def tus_js() -> TusJs:
    """The real tus-js-client under Node; the first run installs it from the npm registry
    into tests/.cache/node. No Node, no npm or no registry is a test error, not a skip:
    the resumable-upload brief demands real clients and CI has all three."""
    try:
        client_dir = ensure_tus_js_client()
    except ClientSetupError as exc:
        problem = str(exc)
    else:
        return TusJs(client_dir)
    pytest.fail(problem, pytrace=False)


def environment_without_venv() -> dict[str, str]:
    """This process's environment without any STOWAGE_* setting or the venv of this
    checkout (the old tree has its own)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("STOWAGE_") and name != "VIRTUAL_ENV"
    }
