"""Drop suite: a folder of 1,000 small files chosen in the page, against the same files flat.

One real `stowage serve` on 127.0.0.1 and one real Chromium (Debian's /usr/bin/chromium
through Playwright, never a downloaded browser), signed in as the bench account. In
rounds, the order alternating each round:

(a) folder: the page's "Choose a folder" input (`#folder-picker`, webkitdirectory) gets
    the folder `shoot/` (1,000 files of 1-4 KiB, in a few subfolders) with
    `set_input_files(directory)`, as a person's directory picker gives it; the page's
    module (assets/resumable.js) makes the folders (POST /api/folders with a path) and
    sends the files in multipart batches, each part named by its path;
(b) flat: the page's "Choose files" input (`#picker`) gets the same 1,000 files (the
    same bytes and names, from one flat directory), which the page sends as it sends
    any pick of small files (Datastar file signals, or a multipart form when too big).

Each is timed from the moment the files are handed to the input to the moment the page
shows every file stored (the folder panel's "1,000 of 1,000 files stored" and its
done state; the upload form's "Stored 1000 files."); then, not timed, the API counts
the stored files (each must be there, at its path), everything is deleted, the disk
synced and the page loaded afresh. Goal (issue 24): the folder at least 0.9x the flat
speed, i.e. flat seconds / folder seconds >= 0.9. `--quick`: 50 files, one round, no
warm-up.

"Others" is the share of the machine that processes other than the harness, its server
and its browser (Playwright's driver and every Chromium process) used during the
measurement; the machine is shared, so each measurement prints it and nothing is
redone.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from app.ingest.multipart import MAX_PARTS
from bench.harness import (
    ACCOUNT_NAME,
    ACCOUNT_PASSWORD,
    WORK,
    Pair,
    Server,
    Settings,
    SuiteResult,
    Target,
    fresh_dir,
    log,
    machine_task_cpu,
    own_cpu,
    report,
    settle,
    start_all,
    stop_all,
    stowage,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOP = "shoot"
# Where the folder's files sit under TOP ("" = TOP itself): a few subfolders, two deep.
PLACES = ("", "raw", "raw/day1", "raw/day2", "edits", "export")
SMALLEST, LARGEST = 1024, 4096
# How long one measurement may take before the suite gives up on it.
UPLOAD_TIMEOUT_MS = 300_000
FOLDER, FLAT = "folder (Choose a folder)", "flat (Choose files)"
if TYPE_CHECKING:
    from playwright.sync_api import Page as Tab

_TICK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- files


def make_files(root: Path, count: int) -> tuple[Path, Path, list[str]]:
    """The same `count` files twice: as a tree under root/tree/TOP and flat under
    root/flat (hard links, the same inodes). Names are unique across the tree, so the
    flat pick has no clashes. Returns both directories and every file's path in TOP."""
    tree = fresh_dir(root / "tree") / TOP
    flat = fresh_dir(root / "flat")
    rng = random.Random(24)
    paths = []
    for n in range(count):
        place = PLACES[n % len(PLACES)]
        name = f"img-{n:04d}.jpg"
        folder = tree / place if place else tree
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(rng.randbytes(rng.randint(SMALLEST, LARGEST)))
        os.link(path, flat / name)
        paths.append(f"/{TOP}/{place}/{name}" if place else f"/{TOP}/{name}")
    return tree, flat, sorted(paths)


# ----------------------------------------------------------------------------- CPU


def _descendants_cpu(root_pid: int) -> float:
    """CPU seconds of every live process under root_pid (the server, Playwright's
    driver and every Chromium process), with what their exited children used."""
    parents: dict[int, int] = {}
    spent: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        spent[pid] = sum(int(x) for x in fields[11:15]) / _TICK
    total = 0.0
    for pid in spent:
        at = pid
        while at > 1:
            at = parents.get(at, 0)
            if at == root_pid:
                total += spent[pid]
                break
    return total


@dataclass
class Watch:
    """One measurement's wall time, the server's and the browser's CPU, and how much of
    the machine everything else took."""

    server: Server
    wall: float = 0.0
    server_cpu: float = 0.0
    browser_cpu: float = 0.0
    foreign: float = 0.0

    def __enter__(self) -> Watch:
        self._marks = self._read()
        self._t = time.perf_counter()
        return self

    def _read(self) -> tuple[float, float, float, float]:
        return (machine_task_cpu(), own_cpu(), _descendants_cpu(os.getpid()), self.server.cpu())

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t
        machine, own, tree, server = (b - a for a, b in zip(self._marks, self._read(), strict=True))
        self.server_cpu = server
        self.browser_cpu = max(0.0, tree - server)
        other = machine - own - tree
        self.foreign = max(0.0, other) / ((os.cpu_count() or 1) * self.wall)


# ----------------------------------------------------------------------------- the API


def _api(server: Server, method: str, path: str, body: object | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.base + path, data=data, method=method)
    for key, value in server.headers.items():
        request.add_header(key, value)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/json")
    with urllib.request.urlopen(request, timeout=60) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else None


def stored_paths(server: Server) -> list[str]:
    listed = _api(server, "GET", "/api/files?limit=10000")
    assert isinstance(listed, dict)
    return sorted(f["path"] for f in listed["files"])


def delete_everything(server: Server) -> None:
    """Every file and folder of the account (so the next pick finds none of its names)."""
    root = _api(server, "GET", "/api/folders/root")
    assert isinstance(root, dict)
    for folder in root.get("folders", []):
        _api(server, "DELETE", f"/api/folders/{folder['id']}")
    listed = _api(server, "GET", "/api/files?limit=10000")
    assert isinstance(listed, dict)
    ids = [f["id"] for f in listed["files"]]
    if ids:
        _api(server, "POST", "/api/files/delete", {"ids": ids})


# ----------------------------------------------------------------------------- the page


@dataclass
class OpenPage:
    server: Server
    page: Tab
    errors: list[str] = field(default_factory=list)

    def fresh(self) -> None:
        """The home page loaded afresh and live (not timed)."""
        page = self.page
        page.goto(self.server.base + "/")
        page.wait_for_selector("#files")
        page.wait_for_function("() => !document.documentElement.hasAttribute('data-nonce')")


def sign_in(page: Tab, server: Server) -> None:
    page.goto(server.base + "/")
    page.fill("input[name=name]", ACCOUNT_NAME)
    page.fill("input[name=password]", ACCOUNT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.base + "/")


FOLDER_DONE = """(n) => {
  const panel = document.getElementById('tree-upload');
  if (!panel || !panel.dataset.state) return false;
  return panel.dataset.state + ' ' + panel.querySelector('.tree-summary').textContent;
}"""
# The page's queue (assets/resumable.js): a row per file picked, each `done` once
# stored, `failed` or `refused` otherwise.
FLAT_DONE = """(n) => {
  const rows = [...document.querySelectorAll('#resumable .transfer')];
  const bad = rows.find((r) => r.dataset.state === 'failed' || r.dataset.state === 'refused');
  if (bad) return 'failed ' + bad.textContent;
  const done = rows.filter((r) => r.dataset.state === 'done').length;
  return done >= n ? 'done ' + done : false;
}"""


def pick_folder(page: OpenPage, tree: Path, count: int) -> None:
    page.page.locator("#folder-picker").set_input_files(tree)
    said = page.page.wait_for_function(
        FOLDER_DONE, arg=count, polling=10, timeout=UPLOAD_TIMEOUT_MS
    ).json_value()
    if not said.startswith("done") or f"{count:,} of {count:,} files stored" not in said:
        raise RuntimeError(f"the folder drop did not store every file: {said}")


def pick_flat(page: OpenPage, files: list[Path], count: int) -> None:
    """The files through "Choose files", at most MAX_PARTS a pick: the server refuses
    a pick of more (413, at most 100 files a request), so a person picks them so."""
    tab = page.page
    for at in range(0, count, MAX_PARTS):
        chunk = files[at : at + MAX_PARTS]
        tab.locator("#picker").set_input_files(chunk)
        said = tab.wait_for_function(
            FLAT_DONE, arg=len(chunk), polling=10, timeout=UPLOAD_TIMEOUT_MS
        ).json_value()
        if said != f"done {len(chunk)}":
            raise RuntimeError(f"the flat pick did not store every file: {said}")


# ----------------------------------------------------------------------------- the suite


def run_drop(settings: Settings) -> None:
    from playwright.sync_api import sync_playwright

    count = 50 if settings.quick else 1000
    warmups, rounds = (0, 1) if settings.quick else (settings.warmups, settings.runs)
    log(f"== drop: a folder of {count:,} files of 1-4 KiB chosen in the page vs the same flat")
    if not Path(CHROMIUM).exists():
        log(f"  no Chromium at {CHROMIUM}: skipped")
        return
    base = fresh_dir(WORK / "drop")
    tree, flat_dir, expected = make_files(base / "files", count)
    flat_files = sorted(flat_dir.iterdir())
    flat_expected = sorted(f"/{p.name}" for p in flat_files)
    server = stowage("stowage", base / "data")
    start_all([server])
    load_before = os.getloadavg()
    targets = {FOLDER: Target(FOLDER, lambda: 0.0, server), FLAT: Target(FLAT, lambda: 0.0, server)}
    browser_cpu: dict[str, list[float]] = {FOLDER: [], FLAT: []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1100, "height": 900})
            tab = context.new_page()
            page = OpenPage(server, tab)
            tab.on("pageerror", lambda exc: page.errors.append(str(exc)))
            sign_in(tab, server)
            steps: dict[str, tuple[Callable[[], None], list[str]]] = {
                FOLDER: (lambda: pick_folder(page, tree, count), expected),
                FLAT: (lambda: pick_flat(page, flat_files, count), flat_expected),
            }
            for n in range(warmups + rounds):
                order = [FOLDER, FLAT] if n % 2 == 0 else [FLAT, FOLDER]
                figures = []
                for label in order:
                    step, paths = steps[label]
                    page.fresh()
                    settle()
                    with Watch(server) as watch:
                        step()
                    found = stored_paths(server)
                    if found != paths:
                        raise RuntimeError(
                            f"{label}: {len(found)} files stored, {len(paths)} expected"
                        )
                    delete_everything(server)
                    if n >= warmups:
                        target = targets[label]
                        target.values.append(watch.wall)
                        target.cpu.append(watch.server_cpu)
                        target.foreign.append(watch.foreign)
                        browser_cpu[label].append(watch.browser_cpu)
                    figures.append(
                        f"{label} {watch.wall:.2f} s (server {watch.server_cpu:.2f} s,"
                        f" browser {watch.browser_cpu:.2f} s CPU; others {watch.foreign:.0%})"
                    )
                    peak = server.peak_rss()
                    target = targets[label]
                    if peak is not None and (target.peak is None or peak > target.peak):
                        target.peak = peak
                kind = "warm-up" if n < warmups else f"round {n - warmups + 1}"
                log(f"  {kind}: " + "; ".join(figures))
            browser.close()
    finally:
        stop_all([server])
    load_after = os.getloadavg()
    notes = [
        f"{count:,} files, {sum(p.stat().st_size for p in flat_files) / 1024:,.0f} KiB in all,"
        f" the folder's in {len(PLACES)} places ({TOP}/ and {len(PLACES) - 1} subfolders)",
        "browser CPU (Playwright's driver and every Chromium process), median per pick: "
        + ", ".join(
            f"{label} {statistics.median(v):.2f} s" for label, v in browser_cpu.items() if v
        ),
        f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}",
        "here nothing is taken again, whatever the others used: every round line shows"
        " its share, and the CPU seconds (server, browser) are the steadier comparison",
    ]
    if page.errors:
        notes.append(f"page errors: {page.errors[:3]}")
    for label in (FOLDER, FLAT):
        values = targets[label].values
        if values:
            notes.append(f"{label}: {count / statistics.median(values):,.0f} files/s at the median")
    report(
        SuiteResult(
            name="drop",
            title=f"drop: {count:,} small files chosen as a folder vs flat, in Chromium",
            unit="seconds of wall time (lower is better)",
            runs=rounds,
            warmups=warmups,
            targets=list(targets.values()),
            # Times: flat / folder is the folder's speed over the flat speed.
            pairs=[Pair(FLAT, FOLDER, goal=0.9)],
            notes=notes,
        )
    )
