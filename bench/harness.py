"""What every suite shares: servers on 127.0.0.1, the peers' venv, curl, runs and reports.

Nothing here asserts a timing: suites print figures, goals are shown beside them.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PEERS_DIR = BENCH / "peers"
PEERS_ENV = BENCH / ".peers"
REQUIREMENTS = PEERS_DIR / "requirements.txt"
# Test files, data dirs and logs; removed afterwards. BENCH_WORK_DIR moves it (it must be
# a directory of its own: it is deleted at the end).
WORK = Path(os.environ.get("BENCH_WORK_DIR") or BENCH / ".work").resolve()
MiB = 1024 * 1024
GiB = 1024 * MiB
MB = 1_000_000
START_TIMEOUT = 60.0
CURL_TIMEOUT = 300.0
ACCOUNT_TIMEOUT = 60.0
CHUNK = 4 * MiB
# Every Stowage route needs an account: each Stowage data dir gets this one, made with
# the app's own CLI before its server starts, and an API token sent on every request.
ACCOUNT_NAME = "bench"
ACCOUNT_PASSWORD = "bench-password-not-secret"


def log(message: str = "") -> None:
    print(message, flush=True)


# ----------------------------------------------------------------------------- settings


# The last commit before accounts: `small` runs its app/ beside today's (an A/B run), so
# the cost of the Bearer token on every request is measured in the same run.
BASELINE = "29fbefe"


@dataclass(frozen=True, slots=True)
class Settings:
    quick: bool
    runs: int
    warmups: int = 1
    baseline: str | None = BASELINE

    @classmethod
    def make(cls, quick: bool, runs: int | None, baseline: str | None = BASELINE) -> Settings:
        return cls(
            quick=quick, runs=runs if runs is not None else (3 if quick else 11), baseline=baseline
        )


# ----------------------------------------------------------------------------- files


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def random_file(path: Path, size: int) -> Path:
    """Random bytes (incompressible, nothing a server could dedupe), made once per run."""
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            piece = min(CHUNK, left)
            f.write(os.urandom(piece))
            left -= piece
    return path


def remove_files(root: Path, keep_dirs: bool = True) -> None:
    """Delete every file under root (what a run uploaded); directories stay."""
    if not root.exists():
        return
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file() or path.is_symlink():
            path.unlink(missing_ok=True)
        elif not keep_dirs:
            path.rmdir()


def settle() -> None:
    """Between measurements: flush dirty pages so one run's write-back never lands in the next."""
    os.sync()


def human_size(size: int) -> str:
    if size % GiB == 0:
        return f"{size // GiB} GiB"
    if size % MiB == 0:
        return f"{size // MiB} MiB"
    return f"{size / 1024:.0f} KiB"


# ----------------------------------------------------------------------------- processes


_TICK = os.sysconf("SC_CLK_TCK")


def machine_task_cpu() -> float:
    """CPU seconds all tasks have used (user + nice + system), all cores together.

    irq, softirq and steal are left out: they are never charged to a process, so
    they cannot be split into ours and other people's."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system = (int(x) for x in fields[:3])
    return (user + nice + system) / _TICK


def process_cpu(pid: int) -> float:
    """CPU seconds of one process, all its threads."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def own_cpu() -> float:
    """CPU seconds of this harness and every child it has waited for (curl, dd, wrk)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class CpuWatch:
    """How busy the rest of the machine was during one measurement.

    This machine is shared: other processes (test suites, browsers) take cores
    away at random and halve a figure. `foreign` is the share of all cores that
    processes other than the harness, its children and the server used."""

    def __init__(self, server: Server | None) -> None:
        self.server = server

    def __enter__(self) -> CpuWatch:
        self._t = time.perf_counter()
        self._machine = machine_task_cpu()
        self._own = own_cpu()
        self._server = self._server_cpu()
        return self

    def _server_cpu(self) -> float:
        return 0.0 if self.server is None else self.server.cpu()

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t
        self.server_cpu = self._server_cpu() - self._server
        ours = own_cpu() - self._own + self.server_cpu
        other = machine_task_cpu() - self._machine - ours
        self.foreign = max(0.0, other) / ((os.cpu_count() or 1) * self.wall)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uv_binary() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise SystemExit(
            "bench: uv is not on PATH; run the benchmarks with `uv run --group dev python -m bench`"
        )
    return uv


def peers_python() -> Path:
    """The peers' own venv (FastAPI, uvicorn, ...), made or updated from the pins."""
    python = PEERS_ENV / "bin" / "python"
    stamp = PEERS_ENV / "installed-requirements.txt"
    wanted = REQUIREMENTS.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"bench: installing the peers into {PEERS_ENV.relative_to(ROOT)} (pinned)")
    uv = uv_binary()
    if not python.exists():
        subprocess.run([uv, "venv", "-q", "--python", "3.13", str(PEERS_ENV)], check=True)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), "-r", str(REQUIREMENTS)],
        check=True,
    )
    stamp.write_text(wanted)
    return python


def peer_versions() -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({n: m.version(n) for n in"
        " ('fastapi', 'starlette', 'uvicorn', 'httptools', 'uvloop', 'python-multipart')}))"
    )
    done = subprocess.run([str(peers_python()), "-c", code], capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else {}


class Server:
    """One server process on 127.0.0.1; its stdout (the request log) goes to a file."""

    def __init__(
        self,
        label: str,
        argv: list[str],
        port: int,
        *,
        env: dict[str, str] | None = None,
        rss: bool = True,
        children: bool = False,
        cwd: Path = ROOT,
        token: str | None = None,
    ) -> None:
        self.label = label
        self.cwd = cwd
        # An API token for Stowage (None: a peer, or a Stowage from before accounts).
        self.token = token
        self.children = children
        self._pids: list[int] = []
        self.argv = argv
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.rss = rss
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = WORK / "logs" / (label.replace(" ", "_").replace("/", "_") + ".log")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """What every request to this server carries: the Bearer token, if it has one."""
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}

    @property
    def curl_auth(self) -> tuple[str, ...]:
        """The same for curl: `curl(url, *server.curl_auth, ...)`."""
        return tuple(arg for k, v in self.headers.items() for arg in ("-H", f"{k}: {v}"))

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def wait_ready(self, deadline: float) -> None:
        assert self.process is not None
        while True:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.label} exited at start:\n{tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(
                        b"GET /bench-ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                    )
                    if s.recv(16).startswith(b"HTTP/"):
                        self._pids = [self.process.pid, *self._child_pids()]
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.label} did not answer within {START_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def _child_pids(self) -> list[int]:
        if not self.children or self.process is None:
            return []
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(stat.parent.name))
        return found

    def cpu(self) -> float:
        """CPU seconds the server has used (nginx: master and workers)."""
        return sum(process_cpu(pid) for pid in self._pids)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def _status(self) -> str:
        assert self.process is not None
        return Path(f"/proc/{self.process.pid}/status").read_text()

    def reset_peak(self) -> None:
        """Reset VmHWM (Linux: writing 5 to clear_refs) so the next peak is this run's."""
        if self.rss and self.process is not None:
            try:
                Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
            except OSError:
                pass

    def _field_bytes(self, name: str) -> int | None:
        if not self.rss or self.process is None:
            return None
        for line in self._status().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
        return None

    def peak_rss(self) -> int | None:
        return self._field_bytes("VmHWM")

    def rss_now(self) -> int | None:
        return self._field_bytes("VmRSS")


def start_all(servers: Iterable[Server]) -> None:
    servers = list(servers)
    for server in servers:
        server.start()
    deadline = time.monotonic() + START_TIMEOUT
    for server in servers:
        server.wait_ready(deadline)


def stop_all(servers: Iterable[Server]) -> None:
    for server in servers:
        server.stop()


_TOKENS: dict[tuple[Path, str], str] = {}


def _app_cli(cwd: Path, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=ACCOUNT_TIMEOUT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"stowage {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout


def stowage_account(
    data_dir: Path, name: str = ACCOUNT_NAME, password: str = ACCOUNT_PASSWORD
) -> str:
    """An account in `data_dir` and an API token for it, made as an operator would, with
    `stowage users add` (password on stdin) and `stowage tokens add` (prints the token),
    before the server starts. Once per data dir and name: servers sharing a data dir
    share the token."""
    key = (data_dir.resolve(), name)
    if key not in _TOKENS:
        _app_cli(ROOT, "users", "add", name, "--data-dir", str(data_dir), stdin=password + "\n")
        token = _app_cli(ROOT, "tokens", "add", name, "--data-dir", str(data_dir)).strip()
        _TOKENS[key] = token
    return _TOKENS[key]


def stowage(
    label: str, data_dir: Path, *extra: str, cwd: Path = ROOT, account: bool = True
) -> Server:
    """Stowage exactly as `stowage serve` runs it (this venv's python, the app's CLI).

    With `account` (the default) the data dir gets the bench account first and the
    server carries its token (`server.headers`, `server.curl_auth`). `cwd` runs the app
    of another tree (an A/B run against an older commit, see `checkout`); a tree from
    before accounts takes `account=False`."""
    token = stowage_account(data_dir) if account else None
    port = free_port()
    argv = [sys.executable, "-m", "app.cli", "serve", "--port", str(port),
            "--data-dir", str(data_dir), *extra]  # fmt: skip
    return Server(label, argv, port, cwd=cwd, token=token)


def checkout(rev: str) -> Path | None:
    """The app of commit `rev` (`git archive`, not a worktree: nothing is added to the
    repository) unpacked under WORK, for A/B runs with `stowage(..., cwd=)`. It runs
    with this venv's python: `python -m` puts the cwd first on sys.path, ahead of the
    editable install. None, with the reason logged, when git or the commit is missing."""
    if shutil.which("git") is None:
        log(f"  git not found: no A/B target at {rev}")
        return None
    resolved = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if resolved.returncode != 0:
        log(f"  commit {rev} not in this clone: no A/B target at it")
        return None
    commit = resolved.stdout.strip()
    tree = WORK / "trees" / commit[:12]
    if not (tree / "app").is_dir():
        fresh_dir(tree)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, "app", "assets"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        # The Datastar bundle is git-ignored and fetched at start; reuse this tree's.
        vendor = ROOT / "assets" / "vendor"
        if vendor.is_dir():
            shutil.copytree(vendor, tree / "assets" / "vendor", dirs_exist_ok=True)
    return tree


def stario_peer(label: str, write_dir: Path, files_dir: Path) -> Server:
    port = free_port()
    argv = [sys.executable, str(PEERS_DIR / "stario_peer.py"), "--port", str(port),
            "--write-dir", str(write_dir), "--files-dir", str(files_dir)]  # fmt: skip
    return Server(label, argv, port)


def fastapi_peer(label: str, write_dir: Path, files_dir: Path, db: Path) -> Server:
    port = free_port()
    tmp = WORK / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    argv = [str(peers_python()), "-m", "uvicorn", "--app-dir", str(PEERS_DIR),
            "fastapi_peer:app", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    env = {
        "PEER_WRITE_DIR": str(write_dir),
        "PEER_FILES_DIR": str(files_dir),
        "PEER_DB": str(db),
        # UploadFile spools to TMPDIR: keep it on the same disk and inside .work/.
        "TMPDIR": str(tmp),
    }
    return Server(label, argv, port, env=env)


def nginx_peer(label: str, root: Path) -> Server:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    prefix = WORK / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""daemon off;
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""
    )
    argv = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    # Its master process is not the one serving: no RSS figure for nginx.
    return Server(label, argv, port, rss=False, children=True)


def have_nginx() -> bool:
    return shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists()


# ----------------------------------------------------------------------------- curl


@dataclass(frozen=True, slots=True)
class Transfer:
    status: int
    seconds: float
    body: bytes


def curl(url: str, *args: str, output: str | None = None) -> Transfer:
    """One request with curl (no `Expect: 100-continue` wait); timed by curl itself."""
    out = Path(output) if output else WORK / "curl-response"
    command = ["curl", "-sS", "-o", str(out), "-w", "%{http_code} %{time_total}",
               "-H", "Expect:", *args, url]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=CURL_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"curl failed ({done.returncode}): {done.stderr.strip()}")
    status, seconds = done.stdout.split()
    body = b"" if output else out.read_bytes()
    return Transfer(int(status), float(seconds), body)


def have_curl() -> bool:
    return shutil.which("curl") is not None


# ----------------------------------------------------------------------------- runs


class Unavailable(Exception):
    """The server under test does not offer this yet (e.g. HTTP 415): reported, not failed."""


@dataclass
class Target:
    """One compared thing: `measure` returns a figure (higher is better)."""

    label: str
    measure: Callable[[], float]
    server: Server | None = None
    cleanup: Callable[[], None] | None = None
    probe: Callable[[], None] | None = None
    values: list[float] = field(default_factory=list)
    peak: int | None = None
    unavailable: str | None = None
    foreign: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    retries: int = 0


@dataclass(frozen=True, slots=True)
class Pair:
    a: str
    b: str
    goal: float | None = None  # a/b at least this much; None: report only


@dataclass
class SuiteResult:
    name: str
    title: str
    unit: str
    runs: int
    warmups: int
    targets: list[Target]
    pairs: list[Pair]
    notes: list[str] = field(default_factory=list)


RESULTS: list[SuiteResult] = []


NOISE_LIMIT = 0.10
MAX_TRIES = 4


def _measure_once(target: Target) -> tuple[float, CpuWatch]:
    if target.server:
        target.server.reset_peak()
    try:
        with CpuWatch(target.server) as watch:
            value = target.measure()
    finally:
        if target.cleanup:
            target.cleanup()
        settle()
    if target.server:
        peak = target.server.peak_rss()
        if peak is not None and (target.peak is None or peak > target.peak):
            target.peak = peak
    return value, watch


def run_targets(targets: list[Target], settings: Settings) -> None:
    """1 warm-up (not counted) + `runs` counted runs; the order reverses every run.

    After each single measurement the uploaded files are deleted and `sync` runs.
    A measurement during which other processes used more than NOISE_LIMIT of the
    machine is taken again (at most MAX_TRIES times; the quietest one counts).
    """
    for target in targets:
        if target.probe is None:
            continue
        try:
            target.probe()
        except Unavailable as exc:
            target.unavailable = str(exc)
            log(f"  {target.label}: not available ({exc})")
        if target.cleanup:
            target.cleanup()
    settle()
    live = [t for t in targets if t.unavailable is None]
    total = settings.warmups + settings.runs if live else 0
    for run in range(total):
        order = live if run % 2 == 0 else list(reversed(live))
        figures = []
        for target in order:
            best: tuple[float, CpuWatch] | None = None
            try:
                for _ in range(MAX_TRIES):
                    value, watch = _measure_once(target)
                    if best is None or watch.foreign < best[1].foreign:
                        best = (value, watch)
                    if watch.foreign <= NOISE_LIMIT:
                        break
                    target.retries += 1
            except Unavailable as exc:
                target.unavailable = str(exc)
                log(f"  {target.label}: not available ({exc})")
                continue
            assert best is not None
            value, watch = best
            if run >= settings.warmups:
                target.values.append(value)
                target.foreign.append(watch.foreign)
                target.cpu.append(watch.server_cpu)
            busy = f" [busy {watch.foreign:.0%}]" if watch.foreign > NOISE_LIMIT else ""
            figures.append(f"{target.label} {value:,.0f}{busy}")
        kind = "warm-up" if run < settings.warmups else f"run {run - settings.warmups + 1}"
        log(f"  {kind}: " + "; ".join(figures))
        live = [t for t in live if t.unavailable is None]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def report(result: SuiteResult) -> None:
    RESULTS.append(result)
    log()
    log(f"== {result.title}")
    log(
        f"   {result.warmups} warm-up + {result.runs} counted runs, order reversed every run;"
        f" figures in {result.unit}"
    )
    width = max(len(t.label) for t in result.targets) + 2
    log(
        f"   {'':{width}} {'median':>9} {'min':>9} {'max':>9}  {'peak RSS':>9}"
        f"  {'server CPU':>10}  {'others':>6}  redone"
    )
    for t in result.targets:
        if t.unavailable is not None or not t.values:
            log(f"   {t.label:{width}} not available ({t.unavailable or 'no figures'})")
            continue
        peak = f"{t.peak / MB:.0f} MB" if t.peak else "-"
        cpu = f"{statistics.median(t.cpu):.2f} s" if t.server else "-"
        log(
            f"   {t.label:{width}} {_fmt(statistics.median(t.values)):>9} "
            f"{_fmt(min(t.values)):>9} {_fmt(max(t.values)):>9}  {peak:>9}  {cpu:>10}"
            f"  {statistics.median(t.foreign):>6.0%}  {t.retries}"
        )
    by_label = {t.label: t for t in result.targets}
    for pair in result.pairs:
        a, b = by_label[pair.a], by_label[pair.b]
        goal = f"goal >= {pair.goal:g}x" if pair.goal is not None else "report"
        if not a.values or not b.values:
            log(f"   {pair.a} / {pair.b}: not available ({goal})")
            continue
        ratio = pair_ratio(a, b)
        paired = [x / y for x, y in zip(a.values, b.values, strict=False)]
        verdict = ""
        if pair.goal is not None:
            verdict = "  met" if ratio >= pair.goal else "  MISSED"
        log(
            f"   {pair.a} / {pair.b}: {ratio:.2f}x  (run by run: median "
            f"{statistics.median(paired):.2f}, {min(paired):.2f}-{max(paired):.2f}; {goal})"
            f"{verdict}"
        )
    log(
        "   peak RSS: highest VmHWM of the server process in any measurement; server CPU:"
        " median CPU seconds the server used per measurement; others: median share of"
        f" the machine other processes used (a measurement above {NOISE_LIMIT:.0%} is"
        f" taken again, up to {MAX_TRIES} times, and the quietest counts)"
    )
    for note in result.notes:
        log(f"   note: {note}")


def pair_ratio(a: Target, b: Target) -> float:
    """The ratio of the two medians (both measured in the same run of the suite)."""
    return statistics.median(a.values) / statistics.median(b.values)


def results_json() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for r in RESULTS:
        out.append(
            {
                "suite": r.name,
                "title": r.title,
                "unit": r.unit,
                "runs": r.runs,
                "targets": [
                    {
                        "label": t.label,
                        "values": t.values,
                        "median": statistics.median(t.values) if t.values else None,
                        "peak_rss_bytes": t.peak,
                        "server_cpu_seconds": t.cpu,
                        "others_busy": t.foreign,
                        "redone": t.retries,
                        "unavailable": t.unavailable,
                    }
                    for t in r.targets
                ],
                "pairs": [{"a": p.a, "b": p.b, "goal": p.goal} for p in r.pairs],
                "notes": r.notes,
            }
        )
    return out


def machine_line() -> str:
    from importlib.metadata import version

    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {mem} memory, Linux {platform.release()}, "
        f"Python {platform.python_version()}, stario {version('stario')}, "
        f"uvloop {version('uvloop')}"
    )
