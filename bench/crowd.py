"""Crowd suite: ordinary requests while slow clients from many addresses want every
connection slot.

Stowage runs with `--max-connections 256` (32 per address). 1,100 reconnecting tricklers
(tests/support/tricklers.py, in a process of their own: a request head, a small, large or
chunked body a byte a second, or nothing, each opening a new connection as soon as
theirs is cut) come from 8 and then from 64 loopback addresses. Meanwhile an ordinary
client on 127.0.0.1 GETs a 64 KiB file over and over for a few seconds, each GET on a
new connection: alone, then beside each crowd. Figures: how many GETs were served (200
with the whole file), and p50/p99/max of each GET's time, refusals included.

The same runs on the app of the commit before the reaper (`BEFORE_REAPER`, unpacked by
`checkout`), whose full table refused every newcomer with 503, so the two are compared
in one run. The machine's other work shows in the "others" figure; with both on two
shared cores the latencies are the machine's as much as the server's.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import (
    ROOT,
    WORK,
    CpuWatch,
    Server,
    Settings,
    checkout,
    curl,
    fresh_dir,
    log,
    random_file,
    start_all,
    stop_all,
    stowage,
)
from bench.loadgen import percentile

BEFORE_REAPER = "5707150"
SIZE = 64 * 1024
TRICKLERS = 1100
MAX_CONNECTIONS = 256
ALONE = "alone"


def _get(server: Server, path: str) -> tuple[bool, float]:
    """One GET on a new connection: (200 with the whole body, seconds)."""
    began = time.perf_counter()
    request = f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{server.port}\r\nconnection: close\r\n"
    request += "".join(f"{k}: {v}\r\n" for k, v in server.headers.items()) + "\r\n"
    received = bytearray()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(request.encode())
            while chunk := sock.recv(262144):
                received += chunk
    except OSError:
        return False, time.perf_counter() - began
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    return head.startswith(b"HTTP/1.1 200 ") and len(body) == SIZE, time.perf_counter() - began


def _phase(server: Server, path: str, seconds: float, addresses: int | None) -> dict:
    """GETs for `seconds`, alone (`addresses` None) or beside the tricklers."""
    flood = None
    if addresses is not None:
        flood = subprocess.Popen(
            [sys.executable, "-m", "tests.support.tricklers", str(server.port), server.token or "",
             str(TRICKLERS), "2", str(addresses + 1), str(seconds + 30)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert flood.stdout is not None
        if flood.stdout.readline() != "ready\n":
            raise RuntimeError("the tricklers did not start")
        time.sleep(1)  # the table is full and turning over
    times: list[float] = []
    served = 0
    with CpuWatch(server) as watch:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ok, took = _get(server, path)
            served += ok
            times.append(took * 1000)
    met = ""
    if flood is not None:
        out, _ = flood.communicate(timeout=30)
        met = out.strip().splitlines()[-1]
    return {"served": served, "gets": len(times), "times": times, "others": watch.foreign,
            "tricklers": json.loads(met) if met else {}}  # fmt: skip


def _line(name: str, phase: dict) -> str:
    times = phase["times"]
    # What the tricklers' connections ended with (a status, "closed" or "reset"), all kinds.
    ended: dict[str, int] = {}
    for key, count in phase["tricklers"].items():
        if ": " in key:
            outcome = key.split(": ", 1)[1]
            ended[outcome] = ended.get(outcome, 0) + count
    crowd = "; tricklers cut: " + ", ".join(f"{n:,} {k}" for k, n in ended.items()) if ended else ""
    return (
        f"{name:16} served {phase['served']:5}/{phase['gets']:<5}"
        f" p50 {percentile(times, 0.5):6.1f} ms, p99 {percentile(times, 0.99):6.1f} ms,"
        f" max {max(times):6.1f} ms [others {phase['others']:.0%}]{crowd}"
    )


def run_crowd(settings: Settings) -> None:
    seconds = 2.0 if settings.quick else 5.0
    work = fresh_dir(WORK / "crowd")
    source = random_file(work / "small.bin", SIZE)
    trees: list[tuple[str, Path]] = [("now", ROOT)]
    before = checkout(BEFORE_REAPER)
    if before is not None:
        trees.append((f"before ({BEFORE_REAPER})", before))
    crowds = [None, 8, 64]
    log(
        f"crowd: GET of a 64 KiB file, each on a new connection, for {seconds:g} s: alone,"
        f" and beside {TRICKLERS:,} reconnecting tricklers from 8 and from 64 addresses;"
        f" --max-connections {MAX_CONNECTIONS}"
    )
    results: dict[str, dict[str, dict]] = {}
    for label, tree in trees:
        server = stowage(
            f"Stowage {label}", work / f"data-{len(results)}", "--log", "off",
            "--max-connections", str(MAX_CONNECTIONS),
            # The tricklers name the host without its port.
            "--allowed-hosts", "127.0.0.1", cwd=tree,
        )  # fmt: skip
        start_all([server])
        try:
            t = curl(f"{server.base}/uploads/small.bin", *server.curl_auth, "-T", str(source))
            if t.status != 201:
                raise RuntimeError(f"upload answered {t.status}: {t.body[:200]!r}")
            path = f"/files/{json.loads(t.body)['files'][0]['id']}"
            phases = results.setdefault(label, {})
            for addresses in crowds:
                name = ALONE if addresses is None else f"{addresses} addresses"
                phases[name] = _phase(server, path, seconds, addresses)
                log(f"  {label}: {_line(name, phases[name])}")
        finally:
            stop_all([server])
    log()
    log("== crowd: ordinary GETs (new connection each) beside 1,100 reconnecting tricklers")
    for label, phases in results.items():
        log(f"   Stowage {label}:")
        for name, phase in phases.items():
            log(f"     {_line(name, phase)}")
        alone = percentile(phases[ALONE]["times"], 0.99)
        for name, phase in phases.items():
            if name != ALONE and alone:
                ratio = percentile(phase["times"], 0.99) / alone
                log(f"     p99 beside {name} / alone: {ratio:.1f}x")
