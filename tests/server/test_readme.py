"""Every command in the ```sh blocks of README.md and docs/*.md runs here, for real: the
README and the docs are a contract.

Conventions README.md and every docs/*.md page follow (below, "the README" is any of them):

- Commands are the lines of ```sh blocks (a line ending in `\\` continues on the next);
  blank lines and lines starting with `#` are not commands. Other blocks (text, json)
  show output. A ```bash, ```shell or ```console block fails this test: it would be
  a command nobody runs.
- Addresses are `http://127.0.0.1:8000`; each line's `127.0.0.1:8000` is rewritten to
  a real server (tests/support/fixtures.py `start_server`) on a free port. That server's data
  dir already holds the account "owner" and one API token.
- `$TOKEN` starts as owner's token. A line may set a variable (`TOKEN=$(...)`): each
  block is one shell session, in which a variable set by one line holds for the next.
- `<id>` is the id of the newest stored file; `<token-id>` the id of the newest API
  token other than `$TOKEN` (so a README line makes the token it then revokes).
- `uv run stowage users ...` / `tokens ...` work on the server's data dir
  (STOWAGE_DATA_DIR), as `var` does for a reader in the repository; `uv run` finds
  the project through UV_PROJECT.
- Each line runs with bash, stdin empty (a command that reads a password gets it
  piped, as the README shows), in its block's own directory (a fresh one per block,
  as a reader's shell stays in one), where the example files it names
  (EXAMPLE_FILES) are put before it runs. curl runs as `curl --fail-with-body -sS`: an HTTP error
  status fails the line. Every line must exit 0; a line that uploads a file (`-T F`,
  `@F`) must leave a new stored file with F's sha256; a line that downloads (`-O`)
  must write a file with the exact bytes of the example file of that name.

Three kinds of line are special:

- `uv run stowage serve ...` runs on an empty data dir and a free port (STOWAGE_PORT,
  STOWAGE_DATA_DIR): it must print its serving line and the setup link (starting with
  the line's `--public-url`, if any), the link must open the setup page, and then the
  server is stopped.
- `uv run --group dev pytest` cannot run inside pytest: CI covers it, `.ci/run` ends by running
  exactly that line. This test checks that `.ci/run` does.
- `uv run --group dev python -m bench SUITE ...` is not run here (minutes, and it measures, not
  tests): the test runs `uv run --group dev python -m bench --help` and checks that each line's
  suite and flags exist. `.ci/run` runs `python -m bench all --quick` (a failure there
  is a warning in its log, not a failed run).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.fixtures import ROOT, RunningServer, free_port, start_server
from tests.support.readme import (
    DOCS,
    README,
    README_ADDRESS,
    Command,
    documents,
    readme_blocks,
)

CI_SCRIPT = ROOT / ".ci" / "run"
# The files README commands upload; a line gets those it names in its directory.
EXAMPLE_FILES: dict[str, bytes] = {
    "photo.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + bytes(range(256)) * 40
    + b"\xff\xd9",
    "notes.txt": b"Notes from the README test.\nSecond line.\n",
}
CI_LINES = ("uv run --group dev pytest",)
SERVE = re.compile(r"uv run stowage serve(?:\s|$)")
BENCH = re.compile(r"uv run --group dev python -m bench\s+(\S+)(.*)")
PLACEHOLDER = re.compile(r"<[a-z][a-z-]*>")
UPLOADED = re.compile(r"(?:-T\s+|@)(?!-(?:\s|$))([\w.-]+)")
NUMBERED_COPY = re.compile(r"^(.*) \(\d+\)(?=\.[^.]*$)")
TOKEN_ID = re.compile(r"stw_([0-9a-f]{12})_")
# curl as the test runs it: an HTTP error status is a failed command.
CURL = 'curl() { command curl --fail-with-body -sS "$@"; }'
# Variables of bash itself, not of the session.
NOT_CARRIED = {"PWD", "OLDPWD", "SHLVL", "_", "__rc"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def uv_dir() -> str:
    """The directory of the real uv binary (`uv run` sets UV), not a pyenv shim."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv must be on PATH"
    return str(Path(uv).resolve().parent)


class Catalog:
    """The server's SQLite catalog, read directly (WAL: readers never block it)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "stowage.db"

    def rows(self, sql: str) -> list[tuple]:
        conn = sqlite3.connect(self.path, timeout=5)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def files(self) -> dict[str, str]:
        """id -> sha256 of every stored file."""
        return dict(self.rows("SELECT id, sha256 FROM files"))

    def newest_file(self) -> str:
        found = self.rows("SELECT id FROM files ORDER BY rowid DESC LIMIT 1")
        assert found, "<id>: no file is stored yet; upload one in an earlier line"
        return str(found[0][0])

    def newest_token_but(self, token: str) -> str:
        current = TOKEN_ID.match(token)
        for (token_id,) in self.rows("SELECT id FROM tokens ORDER BY rowid DESC"):
            if current is None or token_id != current.group(1):
                return str(token_id)
        raise AssertionError("<token-id>: no token other than $TOKEN; make one first")


class Session:
    """One ```sh block: lines run one by one, the variables they set carry on."""

    def __init__(self, env: dict[str, str], work: Path, server: RunningServer) -> None:
        self.env = dict(env)
        self.work = work
        self.cwd = work / f"block-{len(list(work.glob('block-*')))}"
        self.cwd.mkdir()
        self.server = server
        self.catalog = Catalog(server.data_dir)
        self.port = server.base_url.rsplit(":", 1)[1]

    def substitute(self, command: Command) -> str:
        text = command.text.replace(README_ADDRESS, f"127.0.0.1:{self.port}")
        if "<id>" in text:
            text = text.replace("<id>", self.catalog.newest_file())
        if "<token-id>" in text:
            text = text.replace(
                "<token-id>", self.catalog.newest_token_but(self.env.get("TOKEN", ""))
            )
        left = PLACEHOLDER.findall(text)
        assert not left, f"{command}: unknown placeholder {left}; teach tests/server/test_readme.py"
        return text

    def run(self, command: Command, index: int) -> None:
        text = self.substitute(command)
        cwd = self.cwd
        named = [name for name in EXAMPLE_FILES if re.search(rf"\b{re.escape(name)}\b", text)]
        for name in EXAMPLE_FILES:
            # Put there for an earlier line: a download (curl -OJ never overwrites)
            # must find room for the name it is given.
            (cwd / name).unlink(missing_ok=True)
        for name in named:
            (cwd / name).write_bytes(EXAMPLE_FILES[name])
        present = {path.name for path in cwd.iterdir()}
        uploads = UPLOADED.findall(text)
        unknown = [name for name in uploads if name not in EXAMPLE_FILES]
        assert not unknown, f"{command}: add {unknown} to EXAMPLE_FILES"
        files_before = self.catalog.files()
        env_file = self.work / "env"
        script = f"{CURL}\nset -a\n{text}\n__rc=$?\nenv -0 > {env_file}\nexit $__rc\n"
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", script],
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
        output = (done.stdout + done.stderr).decode(errors="replace")
        assert done.returncode == 0, f"{command}\nexit {done.returncode}:\n{output}"
        self.env = {
            key: value
            for key, _, value in (
                item.partition("=") for item in env_file.read_text().split("\0") if item
            )
            if key not in NOT_CARRIED and not key.startswith("BASH_FUNC_")
        }
        new_files = set(self.catalog.files().items()) - set(files_before.items())
        for name in uploads:
            assert any(digest == sha256(EXAMPLE_FILES[name]) for _, digest in new_files), (
                f"{command}\n{name} was not stored:\n{output}"
            )
        if re.search(r"\s-[A-Za-z]*O", text):
            written = [p for p in cwd.iterdir() if p.name not in present]
            assert written, f"{command}\ndownloaded nothing:\n{output}"
            for path in written:
                # An earlier block stored the same name: this copy is "notes (2).txt".
                name = NUMBERED_COPY.sub(r"\1", path.name)
                assert name in EXAMPLE_FILES, f"{command}: unexpected file {path.name}"
                assert path.read_bytes() == EXAMPLE_FILES[name], (
                    f"{command}: {path.name} differs from what was uploaded"
                )


def run_serve(command: Command, env: dict[str, str], work: Path) -> None:
    """Start `uv run stowage serve` on an empty data dir, wait for its setup link, stop it."""
    assert not re.search(r"--(port|data-dir)\b", command.text), (
        f"{command}: the test sets the port and data dir through STOWAGE_PORT/STOWAGE_DATA_DIR"
    )
    port = free_port()
    data_dir = work / f"serve-{command.source.replace('/', '-')}-{command.line_number}"
    env = {**env, "STOWAGE_PORT": str(port), "STOWAGE_DATA_DIR": str(data_dir),
           "STOWAGE_LOG": "off"}  # fmt: skip
    public = re.search(r"--public-url[= ](\S+)", command.text)
    public_url = public.group(1).rstrip("/") if public else f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-c", "exec " + command.text],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines: list[str] = []
    found = threading.Event()
    link_pattern = re.compile(rf"^\s+({re.escape(public_url)}/setup\?token=[A-Za-z0-9_-]+)$")

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.append(raw.decode(errors="replace").rstrip("\n"))
            if link_pattern.match(lines[-1]):
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert found.wait(30), f"{command}: no setup link within 30 s:\n" + "\n".join(lines)
        assert any(
            line.startswith(f"stowage: serving http://127.0.0.1:{port}/") for line in lines
        ), f"{command}: no serving line:\n" + "\n".join(lines)
        link = next(m.group(1) for line in lines if (m := link_pattern.match(line)))
        local = f"http://127.0.0.1:{port}" + link.removeprefix(public_url)
        # The link is printed while the app starts, a moment before it listens.
        deadline = time.monotonic() + 10
        while True:
            try:
                page = httpx.get(local, timeout=10)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"{command}: {local} never answered"
                time.sleep(0.05)
        assert page.status_code == 200 and "<form" in page.text, (
            f"{command}: the setup link answered {page.status_code}"
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(5)


def check_bench(commands: list[Command], env: dict[str, str]) -> None:
    """`python -m bench --help` lists each suite and flag the README uses."""
    done = subprocess.run(
        ["uv", "run", "--group", "dev", "python", "-m", "bench", "--help"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    help_text = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    choices = re.search(r"\{([\w,]+)\}", help_text)
    assert choices, help_text
    suites = choices.group(1).split(",")
    for command in commands:
        match = BENCH.match(command.bare)
        assert match, f"{command}: write it as `uv run --group dev python -m bench SUITE [flags]`"
        assert match.group(1) in suites, f"{command}: no suite {match.group(1)!r}"
        flags = re.findall(r"(?<!\S)(--[a-z-]+)", match.group(2))
        for flag in flags:
            assert flag in help_text, f"{command}: bench has no {flag}"


@pytest.fixture
def readme_server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path)


@pytest.mark.slow
def test_every_readme_command_runs(readme_server: RunningServer, tmp_path: Path) -> None:
    blocks = readme_blocks()
    commands = [command for block in blocks for command in block]
    assert len(commands) >= 10, "README.md lost its ```sh blocks?"
    work = tmp_path / "readme"
    work.mkdir()
    base_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STOWAGE_", "PYTEST_", "BASH_FUNC_"))
    }
    base_env.update(
        PATH=uv_dir() + os.pathsep + os.environ["PATH"],
        UV_PROJECT=str(ROOT),
        STOWAGE_DATA_DIR=str(readme_server.data_dir),
        TOKEN=readme_server.token,
    )
    covered: dict[Command, str] = {}
    bench: list[Command] = []
    for block in blocks:
        session = Session(base_env, work, readme_server)
        for index, command in enumerate(block):
            if command.bare in CI_LINES:
                # Not here: pytest inside pytest. .ci/run runs exactly this line.
                ci_lines = CI_SCRIPT.read_text().splitlines()
                assert command.bare in [line.strip() for line in ci_lines], (
                    f"{command}: .ci/run must run it"
                )
                covered[command] = "run by .ci/run"
            elif SERVE.match(command.text):
                run_serve(command, session.env, work)
                covered[command] = "served until the setup link"
            elif command.bare.startswith("uv run --group dev python -m bench"):
                bench.append(command)
                covered[command] = "bench --help here; .ci/run runs bench all --quick"
            else:
                session.run(command, index)
                covered[command] = "run"
    if bench:
        assert "python -m bench all --quick" in CI_SCRIPT.read_text()
        check_bench(bench, base_env)
    missing = [str(command) for command in commands if command not in covered]
    assert not missing, "README commands no test covers:\n" + "\n".join(missing)


def test_readme_blocks_parse() -> None:
    """Cheap and always on: the README's commands use only what the slow test knows."""
    for block in readme_blocks():
        for command in block:
            for placeholder in PLACEHOLDER.findall(command.text):
                assert placeholder in ("<id>", "<token-id>"), f"{command}: {placeholder}"
            assert "127.0.0.1" not in command.text or README_ADDRESS in command.text, (
                f"{command}: use http://{README_ADDRESS}"
            )


def anchors(document: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file (outside code blocks)."""
    found: set[str] = set()
    fence = False
    for line in document.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and (heading := re.match(r"#+\s+(.*)", line)):
            words = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            found.add(words.replace(" ", "-"))
    return found


def test_docs_links_resolve() -> None:
    """README.md links every docs page, and every link between them reaches a heading."""
    pages = sorted(DOCS.glob("*.md"))
    assert len(pages) >= 10, "docs/ lost its pages?"
    readme = README.read_text()
    unlinked = [page.name for page in pages if f"](docs/{page.name}" not in readme]
    assert not unlinked, f"README.md links no {unlinked}"
    for document in documents():
        text = re.sub(r"```.*?```", "", document.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (document.parent / path).resolve() if path else document
            where = f"{document.relative_to(ROOT)}: ({target})"
            assert linked.exists(), f"{where}: no such file"
            if anchor:
                assert anchor in anchors(linked), f"{where}: no heading #{anchor}"
